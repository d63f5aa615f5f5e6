"""JAX's persistent compilation cache in the user's cache folder: a second process (sample.py,
train.py, the demo, any ``MaskGIT``) reads the programs an earlier one compiled instead of compiling
them again (tens of seconds for the lab-scale model on a CPU).

Folder: ``$MASKGIT_JAX_COMPILE_CACHE`` when set (``0``, ``off``, ``false``, ``no`` or empty: no
cache), else ``jax_cache`` in the cache folder of the downloads ($XDG_CACHE_HOME/maskgit_jax, by
default ~/.cache/maskgit_jax). A cache the user configured for JAX itself
(``JAX_COMPILATION_CACHE_DIR`` or ``jax.config.update("jax_compilation_cache_dir", ...)``) is left
as it is, with its settings.

JAX runs what it finds in the cache as trusted code: the folder must not be writable by others
(https://docs.jax.dev/en/latest/persistent_compilation_cache.html). Entries are keyed by the
program, the JAX and XLA versions and the device; XLA:CPU refuses an entry compiled for a machine
with other CPU features (a shared home folder on several machines costs compilations, never wrong
code).
"""

import os
from pathlib import Path
from typing import Optional

import jax

from maskgit_jax import downloads

ENV = "MASKGIT_JAX_COMPILE_CACHE"
OFF = ("", "0", "off", "false", "no")
# JAX stores only programs that took at least this long to compile (its default: 1 s). On a CPU the
# tokenizer's and the small models' programs compile in 0.1-1 s each, and together they are most of
# the small models' start-up; a cache read takes milliseconds.
MIN_COMPILE_SECONDS = 0.1


def folder() -> Optional[Path]:
    """Where the cache goes, or None when ``$MASKGIT_JAX_COMPILE_CACHE`` turns it off."""
    value = os.environ.get(ENV)
    if value is None:
        return downloads.cache_dir() / "jax_cache"
    if value.strip().lower() in OFF:
        return None
    return Path(value).expanduser()


def enable() -> Optional[Path]:
    """Turns the cache on for the rest of the process (best before the first compilation; later
    compilations use it in any case); returns the folder in use, None when there is none. Calling
    it again changes nothing."""
    if jax.config.jax_compilation_cache_dir:  # the user's JAX setting, or an earlier call
        return Path(jax.config.jax_compilation_cache_dir)
    path = folder()
    if path is None:
        return None
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    return path
