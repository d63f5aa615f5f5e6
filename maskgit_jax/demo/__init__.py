"""An inpainting page in the browser (Gradio): paint a mask, watch MaskGIT fill it.

Needs the ``demo`` extra: ``pip install "maskgit_jax[demo]"``. From a shell::

    maskgit-demo [--model=NAME|PATH] [--host=127.0.0.1] [--port=7860] [--share]
    python -m maskgit_jax.demo ...

From Python or a notebook (Jupyter, Colab: the page shows under the cell)::

    from maskgit_jax import demo
    page = demo.launch(model="faces-small")   # builds and serves; returns the gr.Blocks
    page.close()                              # stops the server
    page = demo.build(model="faces-small")    # the gr.Blocks alone, to launch or embed yourself

``model``: a shipped model name (``maskgit_jax.pretrained.names()``), "imagenet256" or
"imagenet512" (fetched once), or an exported model folder. The page offers the others too.
``build`` and ``launch`` load the model at once: a bad one raises ValueError or OSError.
Importing ``maskgit_jax`` never imports gradio; this package imports it on first use of
``build`` or ``launch``.
"""

__all__ = ["build", "launch"]


def __getattr__(name):
    if name in __all__:
        from maskgit_jax.demo import page
        return getattr(page, name)
    raise AttributeError(f"module 'maskgit_jax.demo' has no attribute {name!r}")
