"""The emoji64 files and the folder of PNGs they are made from, each from the other.

    python -m maskgit_jax.data.emoji64 --build FOLDER [--into DIR] [--overwrite]
    python -m maskgit_jax.data.emoji64 --export OUT
    python -m maskgit_jax.data.emoji64 --check FOLDER

FOLDER holds train/ and val/ (RGB PNGs) and test/ in the lab layout (gt/, masked_image/, mask64/).
--build writes train.npz, val.npz and test.npz into DIR (default: the package's own emoji64 folder,
which already holds them: --overwrite replaces them); the test set's masked images are stored only
where they are not gt with gray holes. --export writes such a folder (a new or empty one) with the
same pixel values as the PNGs the files were built from. --check decodes every PNG of FOLDER and
compares it with the files, and prints the file sizes.
"""

import sys
from pathlib import Path

import numpy as np
from PIL import Image

from maskgit_jax import imageio, output_folder
from maskgit_jax.cli import boundary
from maskgit_jax.data import array_files
from maskgit_jax.data.emoji64 import FOLDER, IMAGE_SIZE

IMAGE_SPLITS = ("train", "val")


def _split_files(folder: Path) -> list[Path]:
    """The PNGs of a train/ or val/ folder, sorted by name; anything else there is an error (it
    would not be in the built file)."""
    if not folder.is_dir():
        raise FileNotFoundError(f"missing folder: {folder}")
    files = sorted(folder.iterdir())
    other = [p for p in files if p.suffix.lower() != ".png" or not p.is_file()]
    if other:
        raise ValueError(f"{other[0]}: not a .png file ({len(other)} such); the split folders hold "
                         "only the images")
    if not files:
        raise ValueError(f"no .png files in {folder}")
    return files


def _folder_arrays(folder: Path) -> dict[str, dict[str, np.ndarray]]:
    """{split: the arrays of its file} read from the PNG folder."""
    arrays = {}
    for split in IMAGE_SPLITS:
        files = _split_files(folder / split)
        images = np.stack([imageio.read_image(p, (IMAGE_SIZE, IMAGE_SIZE)) for p in files])
        arrays[split] = {"images": images, "names": np.asarray([p.name for p in files], str)}
    test = imageio.read_lab_layout(folder / "test", IMAGE_SIZE)
    if test.ground_truth is None:
        raise ValueError(f"{folder / 'test'}: no gt/ folder")
    arrays["test"] = array_files.test_set_arrays(test)
    return arrays


def build(folder: Path, into: Path, overwrite: bool = False) -> dict[str, Path]:
    """Writes {split}.npz into ``into`` from the PNG folder ``folder``; returns the files written."""
    targets = {split: output_folder.prepare_file(into / f"{split}.npz", [folder], overwrite, "--into")
               for split in (*IMAGE_SPLITS, "test")}
    arrays = _folder_arrays(folder)
    for split, path in targets.items():
        array_files.write(path, arrays[split])
        written = array_files.read(path)
        assert written.keys() == arrays[split].keys() and all(
            np.array_equal(written[k], arrays[split][k]) for k in written), f"{path} reads back different"
    return targets


def export(out: Path, source: Path = FOLDER, overwrite: bool = False) -> None:
    """Writes the PNG folder that the files in ``source`` were built from into ``out`` (new or
    empty; with ``overwrite`` it may hold an earlier export, which is replaced)."""
    splits = {split: array_files.read_images(source / f"{split}.npz", IMAGE_SIZE) for split in IMAGE_SPLITS}
    test = array_files.read_test_set(source / "test.npz", IMAGE_SIZE)
    readme = (FOLDER / "README.md").read_text()  # the attribution travels with the images
    output_folder.prepare_folder(out, [source], overwrite, flag="--export")
    masks = [n.replace("image_", "mask_") for n in test.names]
    output_folder.record(out, [
        "README.md", *(f"{split}/{name}" for split, (_, names) in splits.items() for name in names),
        *(f"test/{sub}/{name}" for sub in ("gt", "masked_image") for name in test.names),
        *(f"test/mask64/{name}" for name in masks)])
    (out / "README.md").write_text(readme)
    for split, (images, names) in splits.items():
        for name, image in zip(names, images):
            imageio.write_image(out / split / name, image)
    imageio.write_lab_layout(out / "test", test.ground_truth, test.known, test.names,
                             masked_images=test.images)


def _decoded(path: Path, mode: str) -> np.ndarray:
    """The pixels of a PNG as stored (no conversion), after checking its mode."""
    with Image.open(path) as im:
        if im.mode != mode:
            raise ValueError(f"{path}: a {im.mode} image, expected {mode}")
        return np.asarray(im)


def check(folder: Path, source: Path = FOLDER) -> list[str]:
    """Compares every pixel of the files in ``source`` with the PNGs of ``folder`` (decoded on their
    own, not through the build's reader); returns one line per split, raises at the first difference."""
    lines = []
    for split in (*IMAGE_SPLITS, "test"):
        path = source / f"{split}.npz"
        if split == "test":
            test = array_files.read_test_set(path, IMAGE_SIZE)
            expected = {"gt": test.ground_truth, "masked_image": test.images,
                        "mask64": np.where(test.known, 255, 0).astype(np.uint8)}
            names = test.names
        else:
            images, names = array_files.read_images(path, IMAGE_SIZE)
            expected = {"": images}
        pngs = 0
        for sub, arrays in expected.items():
            if not (folder / split / sub).is_dir():
                raise FileNotFoundError(f"missing folder: {folder / split / sub}")
            files = sorted((folder / split / sub).iterdir())
            file_names = [p.name for p in files]
            want = [n.replace("image_", "mask_") for n in names] if sub == "mask64" else names
            if file_names != want:
                raise ValueError(f"{folder / split / sub}: its files are not the {len(names)} names "
                                 f"in {path}")
            for p, array in zip(files, arrays):
                if not np.array_equal(_decoded(p, "L" if sub == "mask64" else "RGB"), array):
                    raise ValueError(f"{p}: pixels differ from {path}")
            pngs += sum(p.stat().st_size for p in files)
        folders = ", ".join(f"{split}/{sub}" if sub else f"{split}/" for sub in expected)
        lines.append(f"{split}: {len(names)} images; every pixel of {folders} equals {path.name} "
                     f"({', '.join(array_files.read(path))}); {path.name} "
                     f"{path.stat().st_size / 1e6:.2f} MB, its PNGs {pngs / 1e6:.2f} MB")
    return lines


def main(argv=None) -> None:
    p = boundary.ArgumentParser(prog="python -m maskgit_jax.data.emoji64",
                                description=__doc__.split("\n")[0])
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--build", metavar="FOLDER", help="make the .npz files from this PNG folder")
    which.add_argument("--export", metavar="OUT", help="write the PNG folder into OUT (new or empty)")
    which.add_argument("--check", metavar="FOLDER", help="compare every pixel of the files with this folder")
    p.add_argument("--into", default=str(FOLDER), help="--build: where the files go (default: %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace the files of an earlier --build "
                   "or --export")
    a = p.parse_args(argv)
    with boundary.user_errors():
        if a.build:
            for split, path in build(Path(a.build), Path(a.into), a.overwrite).items():
                print(f"{path}: {path.stat().st_size / 1e6:.2f} MB")
        elif a.export:
            export(Path(a.export), overwrite=a.overwrite)
            print(f"wrote {a.export}")
        else:
            print("\n".join(check(Path(a.check))))


if __name__ == "__main__":
    sys.exit(main())
