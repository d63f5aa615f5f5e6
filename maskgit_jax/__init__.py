"""maskgit_jax: MaskGIT (VQGAN tokenizer + bidirectional transformer) for image inpainting in JAX/Flax."""

__version__ = "0.1.0"
