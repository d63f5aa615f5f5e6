"""The work of one device in sharded inference: XLA's FLOP count of the compiled, partitioned
inpainting program (per device) and its collectives, on 8 host CPU devices.

    XLA_FLAGS=--xla_force_host_platform_device_count=8 JAX_PLATFORMS=cpu python -m bench.sharded_work
    XLA_FLAGS=... PYTHONPATH=../other python bench/sharded_work.py      # another checkout's maskgit_jax

The model is the tests' tiny one (tests/test_inpaint.py); a batch of 16 (2 examples per device),
T=4 with the per-step images (what sample.py asks for). A program that splits the batch does 1/8 of
the one-device work on each device and moves no data between them.
"""

import inspect
import re
import sys
from pathlib import Path

import jax

sys.path.append(str(Path(__file__).resolve().parents[1]))  # tests/; a PYTHONPATH checkout comes first

from maskgit_jax import inpaint as ip, mesh as mesh_lib  # noqa: E402
from maskgit_jax.data import normalize  # noqa: E402
from tests.test_inpaint import TRANSFORMER, VQGAN, config, make_batch, params  # noqa: E402


def compiled(mesh, batch: int = 16):
    vq, tr = jax.device_put(params(), mesh_lib.replicated(mesh))
    images, known = make_batch(batch, seed=4)
    split = lambda x: jax.device_put(x, mesh_lib.batch_sharded(mesh))
    extra = {"mesh": mesh} if "mesh" in inspect.signature(ip._inpaint_core).parameters else {}
    return ip._inpaint_core.lower(
        VQGAN, {"params": vq}, TRANSFORMER, tr, split(normalize.fill_holes(images, known)),
        split(known), split(jax.random.split(jax.random.key(0), batch)), None, cfg=config(),
        return_history=True, **extra).compile()


def main():
    one = compiled(jax.sharding.Mesh(jax.devices()[:1], ("data",)))
    eight = compiled(mesh_lib.make_mesh())
    hlo = eight.as_text()
    collectives = {name: len(re.findall(name, hlo))
                   for name in ("all-gather", "all-reduce", "all-to-all", "collective-permute")}
    flops = lambda c: c.cost_analysis()["flops"]
    print(f"maskgit_jax from {Path(ip.__file__).parent}, {jax.device_count()} devices")
    print(f"GFLOP per device: 1 device {flops(one) / 1e9:.2f}, each of {jax.device_count()} devices "
          f"{flops(eight) / 1e9:.2f} ({flops(one) / flops(eight):.2f}x less); collectives: {collectives}")


if __name__ == "__main__":
    main()
