"""The persistent compilation cache: where it goes, how it is turned off, and that a second process
reads the inpainting program the first one compiled (tiny model, a cache folder of the test's own)."""

import json
import os
import subprocess
import sys
from pathlib import Path

from maskgit_jax import compile_cache

ROOT = Path(__file__).resolve().parents[1]

WORKER = """
import collections, json
import jax
from maskgit_jax.model_config import ModelConfig
from maskgit_jax.pipeline import MaskGIT
from tests.test_inpaint import MEAN, STD, TRANSFORMER, VQGAN, make_batch, params

events = collections.Counter()
jax.monitoring.register_event_listener(lambda event, **_: events.update([event]))
fields = lambda module: {name: getattr(module, name) for name in module.__dataclass_fields__
                         if name not in ("parent", "name", "dtype", "param_dtype")}
config = ModelConfig(tokenizer=fields(VQGAN), transformer=fields(TRANSFORMER), mean=MEAN, std=STD)
vq, tr = params()
images, known = make_batch(3)
out = MaskGIT(config, {"tokenizer": vq, "transformer": tr}).inpaint(images, known, total_iter=4)
print(json.dumps({"hits": events["/jax/compilation_cache/cache_hits"], "ids": out.ids.tolist()}))
"""


def _run(cache: str) -> dict:
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT), **{compile_cache.ENV: cache})
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    proc = subprocess.run([sys.executable, "-c", WORKER], capture_output=True, text=True, timeout=300,
                          env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv(compile_cache.ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert compile_cache.folder() == tmp_path / "maskgit_jax" / "jax_cache"
    for off in ("0", "off", "False", ""):
        monkeypatch.setenv(compile_cache.ENV, off)
        assert compile_cache.folder() is None, off
    monkeypatch.setenv(compile_cache.ENV, str(tmp_path / "mine"))
    assert compile_cache.folder() == tmp_path / "mine"


def test_a_second_process_reads_the_program_the_first_compiled(tmp_path):
    cache = tmp_path / "cache"
    first = _run(str(cache))
    core_entries = lambda: sorted(p.name for p in cache.glob("jit__inpaint_core-*"))
    written = core_entries()
    assert len(written) == 1, sorted(p.name for p in cache.iterdir()) if cache.exists() else "no folder"
    second = _run(str(cache))
    assert second["hits"] > first["hits"] and core_entries() == written
    assert second["ids"] == first["ids"]
    assert _run("0")["hits"] == 0
