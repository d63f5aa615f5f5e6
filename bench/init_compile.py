"""How long a model's parameter initialisation takes to compile on this machine, and why.

    python -m bench.init_compile                    # faces.py:tiny (the tests' config)
    python -m bench.init_compile --config=small16   # emoji-small's 16x16 recipe on faces

Training starts by initialising each stage's parameters in one compiled program. On XLA:CPU that
program compiles slowly for what it computes: every parameter's initialiser draws its random bits
with threefry, and JAX's default, partitionable threefry (``jax_threefry_partitionable``, on since
JAX 0.5) builds a graph that the CPU backend takes seconds per parameter shape to optimise. The
non-partitionable form draws equally good random bits (different ones) and compiles several times
faster for the convolutional models; ``tokenizer_stage.init_state`` uses it (parameters start
replicated, so partitioning their random bits gains nothing). The transformer's init gains nothing
measurable and keeps the default. Rows: the VQGAN's, the discriminator's and the transformer's
``init``, compiled with each form (wall seconds, tracing and lowering included).
"""

import argparse
import time

import jax
import jax.numpy as jnp

from maskgit_jax.configs import faces
from maskgit_jax.models import from_config
from maskgit_jax.train import experiment


def _compile_seconds(init, key, partitionable: bool) -> float:
    def traced(key):
        with jax.threefry_partitionable(partitionable):
            return init(key)
    start = time.perf_counter()
    jax.jit(traced).lower(key).compile()
    return time.perf_counter() - start


def _row(name: str, init) -> None:
    key = jax.random.key(0)
    leaves = len(jax.tree.leaves(jax.eval_shape(init, key)))
    default, fast = (_compile_seconds(init, key, p) for p in (True, False))
    print(f"| {name} | {leaves} | {default:.2f} | {fast:.2f} | {default / fast:.1f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="tiny", choices=faces.VARIANTS,
                        help="configs/faces.py variant (default: tiny)")
    args = parser.parse_args()
    config = faces.get_config(args.config)
    _, disc, *_ = experiment.tokenizer_parts(config)
    vqgan, transformer = from_config.vqgan(config), from_config.transformer(config)
    size = config.data.image_size
    images = jnp.zeros((1, size, size, 3), jnp.float32)
    ids = jnp.zeros((1, transformer.seq_len), jnp.int32)
    print(f"faces.py:{args.config} on {jax.devices()[0].device_kind}, JAX {jax.__version__}\n")
    print("| init program | parameters | compile s, partitionable threefry (JAX default) "
          "| compile s, non-partitionable | faster |")
    print("|---|---:|---:|---:|---:|")
    _row("VQGAN", lambda key: vqgan.init(key, images)["params"])
    _row("discriminator", lambda key: disc.init(key, images)["params"])
    _row("transformer", lambda key: transformer.init(key, ids)["params"])


if __name__ == "__main__":
    main()
