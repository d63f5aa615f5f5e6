"""The inpainting page (maskgit_jax.demo), driven by a real headless browser: Debian's chromium
through Playwright. The server runs as `python -m maskgit_jax.demo` in a process of its own."""

import os
import re
import signal
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from maskgit_jax import imageio, pretrained
from maskgit_jax.data import faces
from maskgit_jax.demo import editor

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[1]
SIDE = 256       # the uploaded picture
STROKE_Y = 128   # the painted stroke, in picture pixels: a horizontal line ...
STROKE_X = (80, 176)
FAR = 40         # pixels this far from the stroke's line are unpainted (the brush's radius: ~25)


def test_importing_the_package_does_not_import_gradio():
    code = "import sys, maskgit_jax, maskgit_jax.pipeline; print('gradio' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.stdout.strip() == "False", proc.stdout + proc.stderr


@pytest.mark.parametrize("args, named", [
    (["--model=no/such/model"], "no/such/model"),
    (["--port=70000"], "--port"),
    (["--port=http"], "--port"),
    (["--sharee"], "--sharee"),
    (["--port=BUSY"], "--port=BUSY: cannot listen on 127.0.0.1:BUSY"),
])
def test_command_line_mistakes_are_one_line(args, named):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        args, named = [a.replace("BUSY", port) for a in args], named.replace("BUSY", port)
        proc = subprocess.run([sys.executable, "-m", "maskgit_jax.demo", *args],
                              capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert named in proc.stderr


def test_without_gradio_the_command_says_what_to_install():
    code = ("import sys; sys.modules['gradio'] = None  # as if not installed\n"
            "from maskgit_jax.demo.__main__ import run; run([])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 1
    assert proc.stderr == 'error: the demo needs gradio: pip install "maskgit_jax[demo]"\n'


def _editor(picture, *layers):
    return {"background": picture, "layers": list(layers), "composite": picture}


def test_editor_value_to_picture_and_known_mask():
    picture = np.random.default_rng(0).integers(0, 256, (20, 30, 4), dtype=np.uint8)
    picture[..., 3] = 255
    picture[0, 0, 3] = 0  # a transparent pixel shows (and is taken) as white
    stroke, other = np.zeros((20, 30, 4), np.uint8), np.zeros((20, 30, 4), np.uint8)
    stroke[5:8, 2:9, 3] = 40     # faint brush edge: painted too
    other[15, 29] = (255, 0, 255, 255)
    rgb, known = editor.picture_and_known(_editor(picture, stroke, other))
    np.testing.assert_array_equal(rgb[1:, 1:], picture[1:, 1:, :3])
    np.testing.assert_array_equal(rgb[0, 0], (255, 255, 255))
    expected = np.ones((20, 30), bool)
    expected[5:8, 2:9] = expected[15, 29] = False
    np.testing.assert_array_equal(known, expected)


@pytest.mark.parametrize("value, message", [
    (None, "no picture"),
    (_editor(np.zeros((20, 30, 3), np.uint8)), "nothing to fill"),
    (_editor(np.zeros((20, 30, 3), np.uint8), np.full((20, 30, 4), 255, np.uint8)),
     "covers the whole picture"),
    (_editor(np.zeros((20, 30, 3), np.uint8), np.full((10, 30, 4), 255, np.uint8)),
     "a painted layer is 30x10 but the picture is 30x20"),
    (_editor(np.zeros((20, 30), np.float32)), "not an 8-bit image"),
])
def test_editor_mistakes_are_one_readable_line(value, message):
    with pytest.raises(ValueError, match=message):
        editor.picture_and_known(value)


def test_too_small_picture_and_unloadable_model_are_refused_by_name(tmp_path):
    from maskgit_jax.demo.session import Session

    session = Session(str(tmp_path))
    stroke = np.zeros((6, 40, 4), np.uint8)
    stroke[2:4, 10:20, 3] = 255
    # faces-small's token grid is 16x16: a picture needs at least one pixel per token on each side.
    with pytest.raises(ValueError, match="is 40x6 pixels: too small, .* at least 16 on each side"):
        session.inpaint("faces-small", _editor(np.zeros((6, 40, 3), np.uint8), stroke))
    with pytest.raises(ValueError, match="no/such/model"):
        session.inpaint("no/such/model", _editor(np.zeros((6, 40, 3), np.uint8), stroke))
    assert list(tmp_path.iterdir()) == []  # nothing written for a refused run


def test_a_page_others_can_reach_loads_only_the_models_it_offers(tmp_path):
    """No folder of the server (nor an ImageNet download) for a visitor of a shared page."""
    from maskgit_jax.demo.session import Session

    stroke = np.zeros((64, 64, 4), np.uint8)
    stroke[20:30, 20:30, 3] = 255
    exported = tmp_path / "model"
    shutil.copytree(Path(pretrained.path("faces-small")), exported)
    session = Session(str(tmp_path / "out"), only={"faces-small"})
    for name in (str(exported), "imagenet256", "emoji-small"):
        with pytest.raises(ValueError, match="this page serves only faces-small"):
            session.inpaint(name, _editor(np.zeros((64, 64, 3), np.uint8), stroke))
    local = Session(str(tmp_path / "out"))
    first = local.model(str(exported))  # a local page may
    local.model("faces-small")
    assert local.model(str(exported)) is first  # kept, and now the most recently used
    local.model("emoji-small")  # a third model: the least recently used (faces-small) is let go
    assert local.model(str(exported)) is first and len(local._models) == 2
    assert "faces-small" not in local._models


def test_launch_serves_the_page_in_process_and_close_stops_it():
    """The notebook API: ``demo.launch`` returns at once (as in a notebook) with the page served."""
    import urllib.error
    import urllib.request

    from maskgit_jax import demo

    port = _free_port()
    page = demo.launch(port=port, prevent_thread_lock=True, quiet=True)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as response:
            assert response.status == 200 and b"MaskGIT inpainting" in response.read()
    finally:
        page.close()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _descendants(pid: int) -> list[int]:
    """The live processes below ``pid`` (from /proc)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()  # after "pid (name) "
            if fields[0] != "Z":
                parents[int(entry.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        children = [p for p, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


@pytest.fixture
def server(tmp_path):
    """The page on 127.0.0.1, a free port; afterwards the server, its children and every other
    process the test started are gone."""
    port = _free_port()
    log = tmp_path / "server.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "maskgit_jax.demo", f"--port={port}"],
                                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                env=dict(os.environ, JAX_PLATFORMS="cpu"), start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while "Running on local URL" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    with pytest.raises(ProcessLookupError):  # nothing of the server's process group lives on
        os.killpg(proc.pid, 0)
    assert _descendants(os.getpid()) == []  # nor anything else the test started (the browser)


def _picture_to_screen(page, x: float, y: float) -> tuple[float, float]:
    """Screen coordinates of a picture pixel: the editor shows the picture centred on its canvas
    at the zoom its toolbar reads."""
    box = page.locator("#editor canvas").first.bounding_box()
    zoom = float(re.search(r"(\d+)%", page.locator("#editor").inner_text()).group(1)) / 100
    return (box["x"] + box["width"] / 2 + (x - SIDE / 2) * zoom,
            box["y"] + box["height"] / 2 + (y - SIDE / 2) * zoom)


@pytest.mark.skipif(not Path(CHROMIUM).is_file(),
                    reason=f"no {CHROMIUM} (Debian's chromium package; .ci/run installs it)")
def test_page_inpaints_a_painted_stroke_in_a_browser(server, tmp_path):
    from playwright.sync_api import sync_playwright

    zoom = SIDE // 64
    picture = np.repeat(np.repeat(faces.faces_split("test", 5)[4], zoom, 0), zoom, 1)
    upload = tmp_path / "face.png"
    imageio.write_image(upload, picture)
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(upload.read_bytes()[:200])  # a PNG cut short
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1100}, accept_downloads=True)
        page.goto(server)
        # A file that is no picture: the editor stays empty, and the page says so.
        page.get_by_role("button", name="Clear canvas").click()  # the example face
        page.locator("#editor input[type=file]").set_input_files(str(corrupt))
        page.locator("#run").click()
        page.locator("#status").get_by_text("no picture").wait_for(timeout=30_000)

        page.get_by_role("button", name="Clear canvas").click()
        page.locator("#editor input[type=file]").set_input_files(str(upload))
        page.wait_for_timeout(1500)  # the editor draws the new picture

        # An empty mask: a message in the page.
        page.locator("#run").click()
        page.locator("#status").get_by_text("nothing to fill").wait_for(timeout=30_000)

        # A stroke with the brush (the editor's default tool).
        page.mouse.move(*_picture_to_screen(page, STROKE_X[0], STROKE_Y))
        page.mouse.down()
        for x in np.linspace(*STROKE_X, 12):
            page.mouse.move(*_picture_to_screen(page, x, STROKE_Y))
        page.mouse.up()

        # A model path that does not load: a message; then the shipped model.
        page.locator("#model input").fill("no/such/model")
        page.keyboard.press("Enter")
        page.locator("#run").click()
        page.locator("#status").get_by_text("no/such/model").wait_for(timeout=30_000)
        page.locator("#model input").fill("faces-small")
        page.keyboard.press("Enter")
        page.locator("#run").click()
        page.locator("#status").get_by_text("Done in").wait_for(timeout=180_000)
        with page.expect_download() as download:
            page.locator("#download a").first.click()
        result_file = tmp_path / "result.png"
        download.value.save_as(result_file)
        # Close the earlier messages' toasts in one script: they also close themselves after a
        # few seconds, so a toast listed first may be gone when a locator clicks it (a 30 s wait).
        page.evaluate("document.querySelectorAll('.toast-close').forEach(b => b.click())")
        page.screenshot(path=str(tmp_path / "demo.png"), full_page=True)
        if os.environ.get("MASKGIT_DEMO_SCREENSHOT"):  # refreshes the README's picture
            page.screenshot(path=str(ROOT / "docs" / "demo.png"), full_page=True)
        browser.close()

    result = imageio.read_image(result_file)
    assert result.shape == picture.shape
    ys, xs = np.mgrid[:SIDE, :SIDE]
    distance = np.hypot(np.clip(xs, *STROKE_X) - xs, ys - STROKE_Y)  # to the stroke's line
    far, on = distance > FAR, distance <= 2
    np.testing.assert_array_equal(result[far], picture[far])  # 'paste': known pixels exactly
    changed = np.any(result[on] != picture[on], axis=-1).mean()
    assert changed > 0.5, f"only {changed:.0%} of the stroke's pixels changed"
