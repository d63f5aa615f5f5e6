"""``maskgit-demo`` / ``python -m maskgit_jax.demo``: serve the inpainting page (see the package
docstring). A missing gradio, a bad model or a busy port end it with one line."""

import importlib.util
import socket
import sys
from typing import Optional

from maskgit_jax.cli import boundary

INSTALL_HINT = 'the demo needs gradio: pip install "maskgit_jax[demo]"'


def parse(argv: list[str]):
    parser = boundary.ArgumentParser(prog="maskgit-demo",
                                     description="Serve MaskGIT's inpainting page (Gradio).")
    parser.add_argument("--model", default="faces-small",
                        help="a shipped model name, imagenet256/imagenet512, or a model folder "
                             "(default: faces-small)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (0.0.0.0: every interface; default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None,
                        help="port (default: 7860, or the next free one)")
    parser.add_argument("--share", action="store_true",
                        help="also a temporary public link through Gradio's share servers")
    parser.add_argument("--allow_paths", action="store_true", default=None,
                        help="let the page load any model folder of this machine or download the "
                             "ImageNet models (default: only with a 127.0.0.1 host and no --share)")
    args = parser.parse_args(argv)
    if args.port is not None and not 0 < args.port < 65536:
        parser.error(f"--port must be in 1..65535, got {args.port}")
    return args


def check_port(host: str, port: int) -> None:
    """Fails naming --port when it is taken (before the model loads; gradio's own message would
    point at its Python API)."""
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.bind((host, port))
    except OSError as e:
        boundary.fail(f"--port={port}: cannot listen on {host}:{port} ({e.strerror or e}); choose "
                      "another port, or leave --port out for the first free one from 7860")


def run(argv: Optional[list[str]] = None) -> None:
    args = parse(sys.argv[1:] if argv is None else argv)
    if importlib.util.find_spec("gradio") is None:
        boundary.fail(INSTALL_HINT)
    if args.port is not None:
        check_port(args.host, args.port)
    from maskgit_jax.demo import page
    with boundary.user_errors():
        page.launch(model=args.model, host=args.host, port=args.port, share=args.share,
                    allow_paths=args.allow_paths)


if __name__ == "__main__":
    run()
