"""Models shipped inside the package, loaded by name: ``MaskGIT.from_pretrained("faces-small")``.

Each is an exported model folder (``maskgit_jax.model_files``) next to this file, installed with
the package as package data, so loading one needs no download. Their cards (data, recipe, command,
scores) are in MODELS.md of the repository; ``config.json``'s "about" repeats the facts a user of
the weights must know (data, licence, attribution).
"""

from importlib import resources
from pathlib import Path


def names() -> list[str]:
    """The shipped model names."""
    root = resources.files(__name__)
    return sorted(p.name for p in root.iterdir() if p.is_dir() and (p / "config.json").is_file())


def path(name: str) -> Path:
    """The folder of a shipped model; a ValueError names the shipped ones for anything else."""
    if name not in names():
        raise ValueError(f"{name!r} is neither a shipped model ({', '.join(names()) or 'none'}) "
                         "nor an existing folder")
    return Path(str(resources.files(__name__) / name))
