"""`--config=configs/emoji.py` from a checkout; the config itself is maskgit_jax/configs/emoji.py (installed with the package)."""

from maskgit_jax.configs.emoji import get_config  # noqa: F401
