"""Your own images as a data source (ssibench.data.images, extract_volumes, source: images)."""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import nibabel
import numpy as np
import pytest
import torch
from PIL import Image

from ssibench.cli import main
from ssibench.data.images import IMAGE_SUFFIXES, extract_images, read_image, read_volumes
from ssibench.data.slices import extract_volumes, read_slice_store
from ssibench.data.splits import split_indices
from ssibench.errors import ConfigError, DataFileError
from ssibench.pipeline import check_config, n_volumes
from ssibench.rng import stream

SPLIT = (0.6, 0.2, 0.2)  # 5 volumes → 3 / 1 / 1
SIZE = (4, 4)
#: The PNG checked by hand: 8-bit values 0 … 250.
PNG = np.array([[0, 50, 100], [150, 200, 250]], dtype=np.uint8)


def _nifti(path: Path, data: np.ndarray) -> None:
    nibabel.save(nibabel.Nifti1Image(data, affine=np.eye(4)), path)


def _rng_images(shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.5, 2.0, size=shape).astype(np.float32)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Five volumes, one file each: png (1 slice), npy stack (3, one blank), nii.gz (2), pt (1),
    npy image (1); plus a hidden file that is ignored."""
    root = tmp_path / "images"
    root.mkdir()
    Image.fromarray(PNG).save(root / "a.png")
    stack = _rng_images((3, 5, 4), 1)
    stack[2] = 0.7  # a blank slice: left out
    np.save(root / "b.npy", stack)
    _nifti(root / "c.nii.gz", _rng_images((4, 4, 2), 2))  # (X, Y, Z): 2 slices along Z
    torch.save(torch.from_numpy(_rng_images((3, 6), 3)), root / "d.pt")
    np.save(root / "e.npy", _rng_images((4, 4), 4).astype(np.float64))
    (root / ".DS_Store").write_bytes(b"\0\1")
    return root


def _normalise(image: np.ndarray) -> np.ndarray:
    return (image - image.min()) / (image.max() - image.min())


def test_every_file_is_a_volume_and_every_slice_is_stored(folder, tmp_path, capsys):
    store = extract_images(folder, tmp_path / "s.h5", SIZE, SPLIT, seed=0)
    assert store.source_file == ("a.png", "b.npy", "b.npy", "c.nii.gz", "c.nii.gz", "d.pt", "e.npy")
    assert store.slice_index.tolist() == [0, 0, 1, 0, 1, 0, 0]  # slice 2 of b.npy is blank
    assert "b.npy: leaving out constant slices [2]" in capsys.readouterr().err
    assert store.images.shape == (7, *SIZE)
    assert store.images.dtype == torch.float32
    assert store.acquisition == ("unknown",) * 7
    assert store.skipped_files == ()
    on_disk = read_slice_store(tmp_path / "s.h5")
    assert torch.equal(on_disk.images, store.images)
    assert on_disk.source_file == store.source_file


def test_split_is_drawn_over_volumes_and_keeps_each_volume_together(folder, tmp_path):
    store = extract_images(folder, tmp_path / "s.h5", SIZE, SPLIT, seed=3)
    names = ["a.png", "b.npy", "c.nii.gz", "d.pt", "e.npy"]
    by_volume = split_indices(5, SPLIT, stream(3, "split"))
    for split, volumes in by_volume.items():
        expected = [i for i, name in enumerate(store.source_file) if names.index(name) in volumes]
        assert store.split[split].tolist() == expected
    assert sorted(i for part in store.split.values() for i in part.tolist()) == list(range(7))


def test_png_is_min_max_normalised_then_zero_padded(folder, tmp_path):
    image = extract_images(folder, tmp_path / "s.h5", SIZE, SPLIT, seed=0).images[0]
    # (v − 0) / (250 − 0); 2 × 3 → 4 × 4: one zero row above and below, one zero column right
    expected = torch.tensor(
        [
            [0.0, 0.0, 0.0, 0.0],
            [0.0, 0.2, 0.4, 0.0],
            [0.6, 0.8, 1.0, 0.0],
            [0.0, 0.0, 0.0, 0.0],
        ]
    )
    assert torch.allclose(image, expected, atol=1e-7)


def test_nifti_slices_run_along_the_last_axis_and_others_along_the_first(folder, tmp_path):
    store = extract_images(folder, tmp_path / "s.h5", SIZE, SPLIT, seed=0)
    nifti = nibabel.load(folder / "c.nii.gz").get_fdata()
    for k in (0, 1):
        np.testing.assert_allclose(store.images[3 + k].numpy(), _normalise(nifti[:, :, k]), 1e-6)
    stack = np.load(folder / "b.npy")
    # 5 × 4 → 4 × 4: crop start round(1 / 2) = 0 (half to even)
    np.testing.assert_allclose(store.images[2].numpy(), _normalise(stack[1])[:4], atol=1e-6)
    tensor = torch.load(folder / "d.pt").numpy()  # 3 × 6: pad 0 above, 1 below; crop 1 … 4
    np.testing.assert_allclose(store.images[5, :3].numpy(), _normalise(tensor)[:, 1:5], 1e-6)
    assert store.images[5, 3].abs().sum() == 0


def test_read_volumes_gives_float32_stacks_by_file_name(folder):
    volumes = read_volumes(folder)
    assert list(volumes) == ["a.png", "b.npy", "c.nii.gz", "d.pt", "e.npy"]
    assert {name: v.shape for name, v in volumes.items()} == {
        "a.png": (1, 2, 3),
        "b.npy": (3, 5, 4),
        "c.nii.gz": (2, 4, 4),
        "d.pt": (1, 3, 6),
        "e.npy": (1, 4, 4),
    }
    assert all(v.dtype == np.float32 for v in volumes.values())
    np.testing.assert_array_equal(volumes["a.png"][0], PNG.astype(np.float32))


def test_grayscale_saved_as_rgba_and_16_bit_png_are_read(tmp_path):
    grey = np.array([[0, 40], [90, 255]], dtype=np.uint8)
    rgba = np.stack([grey, grey, grey, np.full_like(grey, 255)], axis=-1)
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    np.testing.assert_array_equal(read_image(tmp_path / "rgba.png")[0], grey)
    deep = np.array([[0, 1000], [40000, 65535]], dtype=np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    np.testing.assert_array_equal(read_image(tmp_path / "deep.png")[0], deep)


# --- plugin path: a mapping of volumes ----------------------------------------------------------


def test_extract_volumes_takes_a_mapping_of_arrays_and_tensors(tmp_path):
    volumes = {f"v{i}": _rng_images((2, 4, 4), i) for i in range(4)}
    volumes["v4"] = torch.from_numpy(_rng_images((4, 4), 9))  # a 2-D tensor: one slice
    store = extract_volumes(volumes, tmp_path / "s.h5", SIZE, SPLIT, seed=0)
    assert store.source_file == ("v0", "v0", "v1", "v1", "v2", "v2", "v3", "v3", "v4")
    assert store.slice_index.tolist() == [0, 1, 0, 1, 0, 1, 0, 1, 0]
    np.testing.assert_allclose(store.images[8].numpy(), _normalise(volumes["v4"].numpy()), 1e-6)


def test_extract_volumes_lists_every_bad_volume_and_writes_nothing(tmp_path):
    volumes = {
        "good": np.ones((2, 4, 4)) * np.arange(4),
        "complex": np.ones((4, 4), np.complex64),
        "four_d": np.ones((1, 2, 4, 4)),
        "nan": np.full((4, 4), np.nan),
        "blank": np.zeros((3, 4, 4)),
    }
    with pytest.raises(DataFileError) as error:
        extract_volumes(volumes, tmp_path / "s.h5", SIZE, SPLIT, seed=0)
    head, *lines = str(error.value).splitlines()
    assert head.startswith("4 of 5 volumes are not magnitude images")
    assert [line.split(":")[0].strip() for line in lines] == ["blank", "complex", "four_d", "nan"]
    assert "every slice is constant" in lines[0]
    assert "complex" in lines[1]
    assert "abs()" in lines[1]
    assert "(1, 2, 4, 4)" in lines[2]
    assert "non-finite" in lines[3]
    assert not (tmp_path / "s.h5").exists()
    with pytest.raises(DataFileError, match="empty mapping"):
        extract_volumes({}, tmp_path / "s.h5", SIZE, SPLIT, seed=0)


# --- bad, unsupported and empty folders ---------------------------------------------------------


def _write_bad_files(root: Path) -> dict[str, str]:
    """Bad files in ``root``: name → a fragment of the reason they must be reported with."""
    (root / "notes.txt").write_text("scan protocol")
    (root / "photo.jpg").write_bytes(b"\xff\xd8\xff")
    (root / "broken.png").write_bytes(b"<html>502 Bad Gateway</html>")
    colour = np.zeros((2, 2, 3), np.uint8)
    colour[0, 0] = (255, 0, 0)
    Image.fromarray(colour).save(root / "colour.png")
    Image.fromarray(np.full((3, 3), 7, np.uint8)).save(root / "blank.png")
    np.save(root / "movie.npy", np.ones((2, 2, 4, 4)))
    torch.save({"image": torch.ones(4, 4)}, root / "dict.pt")
    torch.save(torch.ones(4, 4, dtype=torch.complex64), root / "complex.pt")
    (root / "cut.nii.gz").write_bytes(b"\x1f\x8b\x08\x00truncated")
    return {
        "blank.png": "every slice is constant",
        "broken.png": "not a readable PNG file",
        "colour.png": "a colour image (RGB); save it as grayscale",
        "complex.pt": "torch .pt data: dtype complex64 is complex",
        "cut.nii.gz": "not a readable NIfTI file",
        "dict.pt": "holds a dict, not a tensor",
        "movie.npy": "NumPy .npy data: shape (2, 2, 4, 4)",
        "notes.txt": "unsupported file type '.txt' (.png, .npy, .nii, .nii.gz, .pt)",
        "photo.jpg": "unsupported file type '.jpg'",
    }


def test_every_bad_file_is_listed_in_one_error_and_nothing_is_written(folder, tmp_path):
    reasons = _write_bad_files(folder)
    out = tmp_path / "slices" / "s.h5"
    with pytest.raises(DataFileError) as error:
        extract_images(folder, out, SIZE, SPLIT, seed=0)
    head, *lines = str(error.value).splitlines()
    assert head.startswith(f"{folder}: 9 of 14 files are unreadable, malformed or not a supported")
    assert "data.on_bad_file: skip" in head
    assert "--on-bad-file skip" in head
    assert len(lines) == len(reasons)
    for line, (name, reason) in zip(lines, sorted(reasons.items()), strict=True):
        assert line.startswith(f"  {folder / name}: "), line
        assert reason in line, line
    assert not out.parent.exists()
    with pytest.raises(DataFileError, match="9 of 14 files"):
        read_volumes(folder)


def test_skip_keeps_the_good_files_and_records_the_bad_ones(folder, tmp_path, capsys):
    clean = extract_images(folder, tmp_path / "clean.h5", SIZE, SPLIT, seed=0)
    reasons = _write_bad_files(folder)
    store = extract_images(folder, tmp_path / "s.h5", SIZE, SPLIT, seed=0, on_bad_file="skip")
    assert torch.equal(store.images, clean.images)
    assert all(torch.equal(store.split[k], clean.split[k]) for k in clean.split)
    assert [name for name, _ in store.skipped_files] == sorted(reasons)
    assert read_slice_store(tmp_path / "s.h5").skipped_files == store.skipped_files
    err = capsys.readouterr().err
    assert all(f"skipping {folder / name}: " in err for name in reasons)


def test_folder_of_only_bad_files_fails_even_with_skip(tmp_path):
    _write_bad_files(tmp_path)
    with pytest.raises(DataFileError, match=r"all 9 files are .*nothing is left to extract"):
        extract_images(tmp_path, tmp_path / "s.h5", SIZE, SPLIT, seed=0, on_bad_file="skip")


@pytest.mark.parametrize("kind", ["empty", "hidden-only", "missing"])
def test_empty_or_missing_folder_is_a_clear_error_naming_it(tmp_path, kind):
    root = tmp_path / "mine"
    if kind != "missing":
        root.mkdir()
    if kind == "hidden-only":
        (root / ".DS_Store").write_bytes(b"")
    state = "does not exist" if kind == "missing" else "holds no files"
    with pytest.raises(DataFileError, match=re.escape(f"{root}: {state}; put your images there")):
        extract_images(root, tmp_path / "s.h5", SIZE, SPLIT, seed=0)
    assert not (tmp_path / "s.h5").exists()


def test_too_few_volumes_for_the_split_is_a_config_error(tmp_path):
    for i in range(2):
        np.save(tmp_path / f"{i}.npy", _rng_images((3, 4, 4), i))  # 6 slices, but 2 volumes
    with pytest.raises(ConfigError, match="N = 2 images give train 2, val 0, test 0"):
        extract_images(tmp_path, tmp_path / "out" / "s.h5", SIZE, SPLIT, seed=0)


def test_cli_extracts_images_with_source_images(folder, tmp_path, capsys):
    out = tmp_path / "s.h5"
    args = ["extract", "--source", "images", "--raw-dir", str(folder), "--out", str(out)]
    assert main([*args, "--size", "4", "4", "--split", *map(str, SPLIT)]) == 0
    assert len(read_slice_store(out)) == 7
    (folder / "notes.txt").write_text("x")
    assert main([*args, "--size", "4", "4", "--split", *map(str, SPLIT)]) == 2
    assert "unsupported file type '.txt'" in capsys.readouterr().err


# --- the workflow: config checks and a dry run ---------------------------------------------------


def test_n_volumes_counts_image_files(folder):
    (folder / "notes.txt").write_text("x")
    assert n_volumes({"source": "images", "raw_dir": str(folder)}) == 5
    assert set(IMAGE_SUFFIXES) == {".png", ".npy", ".nii", ".nii.gz", ".pt"}


@pytest.fixture(scope="module")
def dag():
    """The dry-run helpers of tests/workflow/test_dag.py."""
    sys.path.insert(0, str(Path(__file__).parent / "workflow"))
    try:
        return importlib.import_module("test_dag")
    finally:
        sys.path.pop(0)


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (None, "data.raw_dir: required when data.source is 'images'"),
        ("missing", "is not a folder"),
        ("jpg", "holds no image files (found: .jpg); data.source 'images' reads .png, .npy"),
    ],
)
def test_image_folder_is_checked_when_the_workflow_starts(dag, tmp_path, setup, message):
    data: dict = {"source": "images"}
    if setup is not None:
        data["raw_dir"] = str(tmp_path / "mine")
    if setup == "jpg":
        (tmp_path / "mine").mkdir()
        (tmp_path / "mine" / "photo.jpg").write_bytes(b"")
    with pytest.raises(ConfigError, match=re.escape(message)):
        check_config(dag._config({"data": data}))


def _five_images(workdir: Path) -> None:
    (workdir / "images").mkdir()
    for i in range(5):
        np.save(workdir / "images" / f"subject{i}.npy", _rng_images((2, 8, 8), i))


def test_dry_run_with_images_plans_extract_simulate_train(dag, tmp_path_factory):
    overlay = {"data": {"source": "images", "raw_dir": "images", "name": "mine"}}
    overlay.update(dag.FEW_METHODS)
    run = dag.DryRun(overlays=(overlay,), setup=_five_images)
    status, output = dag._launch({"images": run}, tmp_path_factory)["images"]
    assert status == 0, output
    counts = dag._job_counts(output)
    assert counts == dag._expected_counts(dag._config(overlay))
    assert "demo_data" not in counts
    assert counts["simulate"] >= 1
    assert counts["train"] >= 1
    assert "extract --source images --raw-dir images --out data/slices/mine-40x40.h5" in output
