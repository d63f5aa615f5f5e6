"""Output folders and files: never an input, never a user's file lost, earlier outputs replaced only
when asked for."""

import pytest

from maskgit_jax.output_folder import OutputError, prepare_file, prepare_folder, record


def _write(folder, names):
    """An earlier run: records the names, then writes them."""
    record(folder, names)
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text("old")


def test_a_new_folder_is_made_and_a_full_one_refused_without_overwrite(tmp_path):
    out = prepare_folder(tmp_path / "a" / "out")
    assert out.is_dir()
    _write(out, ["image_000.png"])
    with pytest.raises(OutputError, match=r"--output=.*out: is not empty; .* --overwrite"):
        prepare_folder(out)
    assert (out / "image_000.png").read_text() == "old"


def test_overwrite_removes_only_what_was_recorded(tmp_path):
    out = prepare_folder(tmp_path / "out")
    _write(out, ["image_000.png", "steps/image_000.png", "metrics.json"])
    prepare_folder(out, overwrite=True)
    assert list(out.iterdir()) == []  # the files, the steps/ folder and the list itself


def test_overwrite_refuses_a_folder_with_a_users_file_and_deletes_nothing(tmp_path):
    out = prepare_folder(tmp_path / "out")
    _write(out, ["image_000.png"])
    (out / "steps").mkdir()
    (out / "steps" / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match=r"holds .*steps/notes.txt, which maskgit_jax did not write"):
        prepare_folder(out, overwrite=True)
    assert (out / "steps" / "notes.txt").read_text() == "mine" and (out / "image_000.png").exists()


def test_a_recorded_path_outside_the_folder_is_never_deleted(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    out = prepare_folder(tmp_path / "out")
    record(out, ["../victim.txt", str(victim)])  # an edited or hostile list
    prepare_folder(out, overwrite=True)
    assert victim.read_text() == "keep"


@pytest.mark.parametrize("output, message", [
    ("data", "is the input"),
    ("data/masked_image", "lies inside the input"),
    (".", "holds the input"),
])
def test_an_output_folder_never_overlaps_an_input(tmp_path, monkeypatch, output, message):
    (tmp_path / "data" / "masked_image").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(OutputError, match=message):
        prepare_folder(output, inputs=["data"], overwrite=True)


def test_a_single_output_file(tmp_path):
    (tmp_path / "photo.png").write_text("input")
    with pytest.raises(OutputError, match="is the input"):
        prepare_file(tmp_path / "photo.png", [tmp_path / "photo.png"], overwrite=True)
    (tmp_path / "out.png").write_text("earlier")
    with pytest.raises(OutputError, match="out.png: exists; .* --overwrite"):
        prepare_file(tmp_path / "out.png", [tmp_path / "photo.png"])
    assert prepare_file(tmp_path / "out.png", [tmp_path / "photo.png"], overwrite=True).name == "out.png"
    (tmp_path / "dir").mkdir()
    with pytest.raises(OutputError, match="is a folder"):
        prepare_file(tmp_path / "dir", [tmp_path / "photo.png"], overwrite=True)

