"""`--config=configs/faces.py` from a checkout; the config itself is maskgit_jax/configs/faces.py (installed with the package)."""

from maskgit_jax.configs.faces import get_config  # noqa: F401
