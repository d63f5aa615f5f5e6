"""The inpainting test set behind an ``--input``: a folder in the lab layout, an `.npz` test set
(``array_files``), or a shipped set's split (``emoji64/test``); ``locate.resolve`` says which."""

from maskgit_jax import imageio
from maskgit_jax.data import array_files, locate


def read_test_set(text: str, image_size: int = 64) -> imageio.LabTestSet:
    """Masked images, masks and ground truth (when there is one) of the test set ``text`` names."""
    path = locate.resolve(text)
    if path.is_file():
        return array_files.read_test_set(path, image_size)
    return imageio.read_lab_layout(path, image_size)
