"""Inference split over the batch axis of an 8-device mesh (8 host CPU devices in a subprocess).

Every per-example output of the jitted inpainting core lives on the 8 devices as 8 shards of B/8
examples, the compiled program moves no data between devices (no collective: each device decodes
only its own examples, the per-step images included), and the tokens are those of one device.
"""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WORKER = """
import re
import jax
import numpy as np
from maskgit_jax import inpaint as ip, mesh as mesh_lib
from maskgit_jax.data import normalize
from tests.test_inpaint import TRANSFORMER, VQGAN, config, make_batch, params

mesh = mesh_lib.make_mesh()
assert mesh.devices.size == 8
vq, tr = params()
images, known = make_batch(16, seed=4)
keys = jax.random.split(jax.random.key(2), 16)
cfg = config()

out = ip._dispatch(VQGAN, vq, TRANSFORMER, tr, images, known, cfg, keys, True, mesh=mesh)
for name, array in out.items():
    batch_axis = 1 if name.startswith("step_") else 0
    shards = array.addressable_shards
    assert len({s.device for s in shards}) == 8, name
    assert {s.data.shape[batch_axis] for s in shards} == {2}, (name, [s.data.shape for s in shards])

split = lambda x: jax.device_put(x, mesh_lib.batch_sharded(mesh))
hlo = ip._inpaint_core.lower(
    VQGAN, {"params": vq}, TRANSFORMER, tr, split(normalize.fill_holes(images, known)), split(known),
    split(keys), None, cfg=cfg, return_history=True, mesh=mesh).compile().as_text()
collectives = re.findall(r"all-gather|all-reduce|all-to-all|collective-permute|reduce-scatter", hlo)
assert not collectives, sorted(set(collectives))

one = ip.inpaint_batched(VQGAN, vq, TRANSFORMER, tr, images, known, cfg, jax.random.key(1), 16,
                         return_history=True)
eight = ip.inpaint_batched(VQGAN, vq, TRANSFORMER, tr, images, known, cfg, jax.random.key(1), 16,
                           return_history=True, mesh=mesh)
for name in ("ids", "unknown_tokens", "step_masks"):
    np.testing.assert_array_equal(getattr(one, name), getattr(eight, name), err_msg=name)
# The VQ decoder's convolutions may round differently on a smaller batch: one level at most.
for name in ("images", "decoded", "step_images"):
    a, b = getattr(one, name).astype(int), getattr(eight, name).astype(int)
    assert np.abs(a - b).max() <= 1 and np.mean(a != b) < 1e-3, name
print("ok")
"""


def test_inference_is_split_over_the_batch_axis_of_8_devices():
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT),
               XLA_FLAGS="--xla_force_host_platform_device_count=8")
    proc = subprocess.run([sys.executable, "-c", WORKER], capture_output=True, text=True, timeout=300,
                          env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "ok"
