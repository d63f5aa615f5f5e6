"""`--config=configs/lab.py` from a checkout; the config itself is maskgit_jax/configs/lab.py (installed with the package)."""

from maskgit_jax.configs.lab import get_config  # noqa: F401
