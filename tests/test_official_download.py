"""Fetching the official checkpoints: a local HTTP server on 127.0.0.1 serves the reduced pair under
the released names (success, a corrupted file, a cut-off transfer, offline, a local folder)."""

import http.server
import os
import subprocess
import sys
import threading
from pathlib import Path

import jax
import jax.numpy as jnp
import msgpack
import numpy as np
import pytest
from flax import serialization

from maskgit_jax import MaskGIT, downloads
from maskgit_jax.models.official_transformer import OfficialTransformer
from maskgit_jax.models.official_vqgan import OfficialVQGAN
from maskgit_jax.official import checkpoints, download

from official_reference import TOKENIZER, TOKENIZER_FILE, TRANSFORMER, TRANSFORMER_FILE

ROOT = Path(__file__).resolve().parents[1]
NAMES = download.file_names("imagenet256")
SOURCES = dict(zip(NAMES, (TOKENIZER_FILE, TRANSFORMER_FILE)))


class _Handler(http.server.BaseHTTPRequestHandler):
    """/<name>: the file; /corrupt/<name>: one byte changed; /cut/<name>: the full length
    announced, half of it sent, then the connection closed."""
    requests: list = []

    def do_GET(self):
        _Handler.requests.append(self.path)
        mode, _, name = self.path.strip("/").rpartition("/")
        if name not in SOURCES:
            self.send_error(404)
            return
        data = SOURCES[name].read_bytes()
        if mode == "corrupt":
            data = data[:100] + bytes([data[100] ^ 1]) + data[101:]
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2] if mode == "cut" else data)
        if mode == "cut":
            self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache, and the pins of the reduced pair in place of the released files'."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(download.ENV_DIR, raising=False)
    for name, source in SOURCES.items():
        monkeypatch.setitem(download.PINS, name, download.Pin(source.stat().st_size,
                                                              downloads.sha256(source)))
    return download.folder()


def test_downloads_once_and_loads(server, cache, monkeypatch):
    monkeypatch.setenv(download.ENV_URL, server)
    _Handler.requests.clear()
    tokenizer, transformer = download.files("imagenet256")
    assert (tokenizer.parent, tokenizer.name, transformer.name) == (cache, *NAMES)
    assert tokenizer.read_bytes() == TOKENIZER_FILE.read_bytes()
    assert sorted(p.name for p in cache.iterdir()) == sorted(NAMES)  # no .part left
    model = MaskGIT.from_pretrained("imagenet256")  # from the cache: no new request
    assert model.config.architecture == "official" and model.image_size == 64
    assert len(_Handler.requests) == 2


@pytest.mark.parametrize("mode, error", [("corrupt", "sha256 .* does not match the expected"),
                                         ("cut", "cannot download|bytes, expected")])
def test_bad_downloads_leave_nothing(server, cache, monkeypatch, mode, error):
    monkeypatch.setenv(download.ENV_URL, f"{server}/{mode}")
    with pytest.raises(downloads.DownloadError, match=error):
        download.files("imagenet256")
    assert not cache.exists() or list(cache.iterdir()) == []


def test_offline_says_what_to_download_and_where(cache, tmp_path):
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT),
               XDG_CACHE_HOME=str(tmp_path / "cache"), **{download.ENV_URL: "http://127.0.0.1:9"})
    env.pop(download.ENV_DIR, None)
    proc = subprocess.run([sys.executable, "sample.py", "--model=imagenet256"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("error: cannot download http://127.0.0.1:9/tokenizer_imagenet256_checkpoint")
    assert f"put it in {tmp_path / 'cache' / 'maskgit_jax' / 'official'}" in line
    assert download.ENV_DIR in line


def test_local_folder_is_used_and_checked(cache, tmp_path, monkeypatch):
    local = tmp_path / "local"
    local.mkdir()
    monkeypatch.setenv(download.ENV_DIR, str(local))
    (local / NAMES[0]).write_bytes(TOKENIZER_FILE.read_bytes())
    with pytest.raises(downloads.DownloadError, match=f"{NAMES[1]}: not found"):
        download.files("imagenet256")
    (local / NAMES[1]).write_bytes(TOKENIZER_FILE.read_bytes()[:1000])
    with pytest.raises(downloads.DownloadError, match="1000 bytes, expected"):
        download.files("imagenet256")
    (local / NAMES[1]).write_bytes(TRANSFORMER_FILE.read_bytes())
    assert download.files("imagenet256") == (local / NAMES[0], local / NAMES[1])
    assert not cache.exists()


def _msgpack_size(tree) -> int:
    """Bytes of flax.serialization.to_bytes(tree) with float32 leaves of these shapes, counted
    without building them: a map per dict, an ext value per array holding
    msgpack([shape, "float32", bin(data)])."""
    if isinstance(tree, dict):
        header = 1 if len(tree) < 16 else 3
        return header + sum(len(msgpack.packb(k)) + _msgpack_size(v) for k, v in tree.items())
    data = 4 * int(np.prod(tree.shape))
    payload = (1 + len(msgpack.packb(list(tree.shape))) + len(msgpack.packb("float32"))
               + (2 if data < 256 else 3 if data < 65536 else 5) + data)
    return payload + (2 if payload in (1, 2, 4, 8, 16) else 3 if payload < 256 else
                      4 if payload < 65536 else 6)


def _shapes(model, *example):
    return jax.eval_shape(model.init, jax.random.key(0), *example)


def test_pinned_sizes_are_those_of_the_released_trees():
    # The count gives the reduced files' real sizes and each of their arrays' encoded size ...
    tok = _shapes(OfficialVQGAN(**TOKENIZER), jnp.zeros((1, 64, 64, 3)))
    tr = _shapes(OfficialTransformer(**TRANSFORMER), jnp.zeros((1, 17), jnp.int32))
    assert (_msgpack_size(tok), _msgpack_size(tr)) == (TOKENIZER_FILE.stat().st_size,
                                                        TRANSFORMER_FILE.stat().st_size)
    for leaf in jax.tree.leaves(checkpoints.read(TOKENIZER_FILE)):
        assert _msgpack_size(leaf) == len(serialization.msgpack_serialize(leaf))
    # ... and the pins of the released ones (the tokenizer's tree is the same at 512).
    tok = _shapes(OfficialVQGAN(**checkpoints.tokenizer_preset(256)), jnp.zeros((1, 256, 256, 3)))
    for size in (256, 512):
        tr = _shapes(OfficialTransformer(**checkpoints.transformer_preset(size)),
                     jnp.zeros((1, 1 + (size // 16) ** 2), jnp.int32))
        tokenizer_name, transformer_name = download.file_names(f"imagenet{size}")
        assert download.PINS[tokenizer_name].size == _msgpack_size(tok)
        assert download.PINS[transformer_name].size == _msgpack_size(tr)
