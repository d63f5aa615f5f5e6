"""The error boundary that every command line shares: a user's mistake ends it with one line.

A user error (a bad flag, file, folder or config: ``ValueError``, ``OSError``, absl's flag and
usage errors, and what a command adds) prints ``error: MESSAGE`` on stderr and exits with status 1.
Anything else is a bug and keeps its traceback. A user error's traceback is shown too with
``--verbosity=1`` (the absl commands) or the environment variable MASKGIT_TRACEBACK=1 (all).
"""

import argparse
import contextlib
import os
import sys
from typing import Callable, NoReturn, Optional

from absl import app, flags

TRACEBACK_ENV = "MASKGIT_TRACEBACK"
USER_ERRORS = (ValueError, OSError, app.UsageError, flags.Error)
_TRACEBACK = "Traceback (most recent call last):"
_MAX_CHARS = 500


def wants_traceback() -> bool:
    """MASKGIT_TRACEBACK=1, or --verbosity >= 1 given to an absl command."""
    if os.environ.get(TRACEBACK_ENV, "0") not in ("", "0"):
        return True
    return flags.FLAGS.is_parsed() and "verbosity" in flags.FLAGS and flags.FLAGS.verbosity >= 1


def one_line(error: BaseException) -> str:
    """The error's message on one line. Some libraries put a traceback into the message (a config
    file that raised): its last line is the error that counts."""
    while error.args and isinstance(error.args[0], BaseException):  # AttributeError(KeyError(...))
        error = error.args[0]
    text = error.args[0] if isinstance(error, KeyError) and error.args else error
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    if _TRACEBACK in lines:
        lines = lines[:lines.index(_TRACEBACK)] + lines[-1:]
    message = " ".join(lines) or type(error).__name__
    if len(message) > _MAX_CHARS:
        message = message[:_MAX_CHARS] + f"... (all of it with {TRACEBACK_ENV}=1)"
    return message


def fail(message: str) -> NoReturn:
    """Ends the command: ``error: message`` on stderr, exit status 1."""
    sys.stderr.write(f"error: {message}\n")
    sys.stderr.flush()
    sys.exit(1)


@contextlib.contextmanager
def user_errors(*also: type):
    """Turns the user errors raised inside (and those of the types ``also``) into one line."""
    try:
        yield
    except USER_ERRORS + also as e:
        if wants_traceback():
            raise
        fail(one_line(e))


def _parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing, with a bad flag or config override (``--config.tokenizer.lrr=1``) as
    one line rather than absl's FATAL message and help hint, or ml_collections' traceback."""
    try:
        with user_errors(TypeError):
            return flags.FLAGS(argv)
    except (KeyError, AttributeError) as e:  # ml_collections: a field that the config lacks
        if wants_traceback():
            raise
        overrides = [arg.partition("=")[0] for arg in argv if arg.startswith("--config.")]
        key, _, hint = one_line(e).partition(" ")  # "'lrr' Did you mean ...?"
        flag = next((o for o in overrides if o.rsplit(".", 1)[-1] == key.strip("'\"")), "--config")
        fail(f"{flag}: no such config field" + (f"; {hint}" if hint else ""))


def run(main: Callable[[list[str]], None], argv: Optional[list[str]] = None) -> None:
    """``absl.app.run(main)`` inside the boundary: flag parsing and ``main`` both."""
    def guarded(args):
        with user_errors():
            return main(args)
    app.run(guarded, argv=argv, flags_parser=_parse_flags)


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line too (argparse prints the usage first)."""

    def error(self, message: str) -> NoReturn:
        fail(f"{message} (see {self.prog} --help)")
