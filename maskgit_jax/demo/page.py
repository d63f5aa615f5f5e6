"""The Gradio page: the editor and the options on the left, the result, its steps and its file on
the right. ``build`` makes it, ``launch`` serves it (see the package docstring)."""

import os
from typing import Optional

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no telemetry calls from a local page

import gradio as gr
import numpy as np

from maskgit_jax import inpaint as inpaint_lib, pretrained, schedules
from maskgit_jax.cli.boundary import USER_ERRORS, one_line
from maskgit_jax.data import faces
from maskgit_jax.demo.session import Session, model_choices

DEFAULT_MODEL = "faces-small"
EXAMPLE_SIDE = 256  # the built-in faces (64x64) enlarged, so that there is room to paint
COMPILE_NOTE = ("The first run of a model, and of each new T, compiles it first: allow a minute "
                "on a CPU. Later runs take seconds.")
# System fonts only: the default theme would fetch its fonts from the web.
THEME = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                          font_mono=["ui-monospace", "monospace"])


def example_faces(count: int = 3) -> list[np.ndarray]:
    """Held-out built-in faces, enlarged to EXAMPLE_SIDE (nearest neighbour)."""
    zoom = EXAMPLE_SIDE // 64
    return [np.repeat(np.repeat(face, zoom, axis=0), zoom, axis=1)
            for face in faces.faces_split("test", count)]


def build(model: str = DEFAULT_MODEL, allow_paths: bool = False) -> gr.Blocks:
    """The page, opening on ``model`` (a shipped name, an official name or a model folder) and an
    example face. The model is loaded here, so a bad one fails now (ValueError / OSError).
    Unless ``allow_paths`` (for a page only this machine can reach), the page loads only ``model``
    and the shipped models (no other folder of the server, no ImageNet download)."""
    only = None if allow_paths else set(pretrained.names()) | {model}
    session = Session(only=only)  # results go to a temporary folder, which gradio serves
    defaults = session.model(model).decoding
    examples = example_faces()
    offered = model_choices() if allow_paths else pretrained.names()
    choices = offered + ([model] if model not in offered else [])

    with gr.Blocks(title="MaskGIT inpainting") as page:
        gr.Markdown("## MaskGIT inpainting\nPaint over what to fill (brush; eraser and undo in the "
                    "toolbar), choose a model and press **Inpaint**. " + COMPILE_NOTE)
        with gr.Row():
            with gr.Column():
                image = gr.ImageEditor(
                    value={"background": examples[0], "layers": [], "composite": examples[0]},
                    label="Picture (paint the region to fill)", type="numpy", image_mode="RGBA",
                    format="png", sources=("upload", "clipboard"), layers=False, transforms=(),
                    brush=gr.Brush(colors=["#ff00ff"], color_mode="fixed"), elem_id="editor")
                gr.Examples([[{"background": e, "layers": [], "composite": e}] for e in examples],
                            inputs=[image], label="Example faces")
                with gr.Row():
                    model_name = gr.Dropdown(choices, value=model, label="Model (or the path of a model folder)",
                                             allow_custom_value=True, elem_id="model",
                                             info="the ImageNet ones are fetched on first use (0.9 GB)")
                    class_label = gr.Number(0, precision=0, minimum=0, maximum=999,
                                            label="ImageNet class (ImageNet models only)")
                with gr.Accordion("Decoding", open=False):
                    schedule = gr.Dropdown(schedules.names(), value=defaults.schedule, label="Schedule")
                    total_iter = gr.Slider(1, 32, value=defaults.total_iter, step=1, label="Steps T")
                    sweet_spot = gr.Slider(0, 32, value=defaults.sweet_spot or 0, step=1,
                                           label="Sweet spot (stop after this many steps; 0: all)")
                    choice_temperature = gr.Number(defaults.choice_temperature, minimum=0,
                                                   label="Choice temperature")
                    composite = gr.Dropdown(list(inpaint_lib.COMPOSITES), value=defaults.composite,
                                            label="Compositing")
                    pixel_feedback = gr.Checkbox(defaults.pixel_feedback, label="Pixel feedback")
                    seed = gr.Number(0, precision=0, minimum=0, label="Seed")
                run = gr.Button("Inpaint", variant="primary", elem_id="run")
            with gr.Column():
                result = gr.Image(label="Result", type="numpy", format="png", interactive=False,
                                  elem_id="result")
                status = gr.Markdown(elem_id="status")
                download = gr.File(label="Download the result (PNG)", elem_id="download")
                gr.Markdown("**Decoding steps.** First column: the input, gray where it is to be "
                            "filled. Then one column per step: the tokens still masked after it "
                            "(black) above the image the step predicts.")
                steps = gr.Image(label="Decoding steps", show_label=False, type="numpy",
                                 format="png", interactive=False, elem_id="steps")

        def on_run(model_key, value, label, schedule_, t, spot, temperature, composite_, feedback,
                   seed_):
            yield gr.update(), "Running... " + COMPILE_NOTE, gr.update(), gr.update()
            try:
                out = session.inpaint(model_key, value, class_label=label or 0, seed=seed_ or 0,
                                      schedule=schedule_, total_iter=int(t), sweet_spot=int(spot),
                                      choice_temperature=temperature, composite=composite_,
                                      pixel_feedback=feedback)
            except USER_ERRORS as e:  # a toast, and the same line where the time goes
                gr.Warning(one_line(e))
                yield gr.update(), f"**Not run:** {one_line(e)}", gr.update(), gr.update()
                return
            masked = ", ".join(map(str, out.still_masked))
            yield (out.image, f"Done in {out.seconds:.1f} s: {len(out.still_masked)} steps, "
                              f"tokens still masked after each: {masked}.", str(out.file), out.steps)

        def on_model(model_key):  # the new model's own decoding defaults
            try:
                chosen = session.model(model_key).decoding
            except USER_ERRORS as e:
                gr.Warning(one_line(e))
                return [gr.update()] * 6
            return (chosen.schedule, chosen.total_iter, chosen.sweet_spot or 0,
                    chosen.choice_temperature, chosen.composite, chosen.pixel_feedback)

        model_name.change(on_model, [model_name], [schedule, total_iter, sweet_spot,
                                                   choice_temperature, composite, pixel_feedback])
        run.click(on_run, [model_name, image, class_label, schedule, total_iter, sweet_spot,
                           choice_temperature, composite, pixel_feedback, seed],
                  [result, status, download, steps])
    return page


def launch(model: str = DEFAULT_MODEL, host: str = "127.0.0.1", port: int | None = None,
           share: bool = False, allow_paths: Optional[bool] = None, **launch_options) -> gr.Blocks:
    """Builds the page and serves it (in a notebook, inline under the cell); ``launch_options``
    go to ``gr.Blocks.launch`` (e.g. ``prevent_thread_lock=True``). ``allow_paths`` (see
    ``build``) defaults to True only for a page that this machine alone can reach (a loopback
    host, no share link). Returns the page; ``.close()`` stops the server."""
    if allow_paths is None:
        allow_paths = host in ("127.0.0.1", "localhost", "::1") and not share
    page = build(model, allow_paths)
    page.launch(server_name=host, server_port=port, share=share, theme=THEME, **launch_options)
    return page
