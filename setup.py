"""maskgit_jax: MaskGIT (VQGAN tokenizer + bidirectional transformer) for image inpainting in JAX/Flax."""

from setuptools import find_packages, setup

setup(
    name="maskgit_jax",
    version="0.1.0",
    description="MaskGIT for image inpainting in JAX/Flax: train, decode on device, measure.",
    long_description=open("README.md").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["maskgit_jax", "maskgit_jax.*"]),
    python_requires=">=3.10",
    install_requires=[
        "jax>=0.6",
        "flax>=0.10",
        "optax>=0.2.4",
        "orbax-checkpoint>=0.11",
        "ml_collections>=1.0",
        "numpy>=1.26",
        "pillow>=10",
        "absl-py",
        "tqdm",
        "tensorboardX>=2.6",   # TensorBoard event files without TensorFlow
        "grain>=0.2.10",       # the input pipeline
        "matplotlib",          # the sweep report's plot
    ],
    extras_require={
        # torch only for the PyTorch reference models in tests and bench (2.13.0: the CPU build).
        "tests": ["pytest>=8", "pytest-xdist", "scipy", "torch==2.13.0"],
        "tfds": ["tensorflow-datasets"],   # its data sources need no TensorFlow
        "cuda12": ["jax[cuda12]"],
        "tpu": ["jax[tpu]"],
    },
)
