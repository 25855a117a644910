"""fastMRI reading, the slices store and its splits (ssibench.data.fastmri, .slices, .splits)."""

import json
import pickle
import re
import shutil

import h5py
import numpy as np
import pytest
import torch

from ssibench.cli import main
from ssibench.cli.extract import ON_BAD_FILE_CHOICES, SPLIT_RULE_CHOICES
from ssibench.data.fastmri import (
    RSS_FROM_KSPACE,
    BadVolumeError,
    read_middle_slice,
    recon_size_from_header,
)
from ssibench.data.slice_images import center_crop_or_pad
from ssibench.data.slices import ON_BAD_FILE, extract_slices, read_slice_store
from ssibench.data.splits import SPLIT_RULES, check_split_sizes, split_indices, split_lengths
from ssibench.errors import ConfigError, DataFileError
from ssibench.rng import stream

TINY_SIZE = 16  # as in conftest.TINY_SIZE
SPLIT = (0.6, 0.2, 0.2)


def _normalise(image):
    return (image - image.min()) / (image.max() - image.min())


def _rss_by_hand(kspace, crop):
    """Numpy oracle: RSS over coils of the centred orthonormal inverse DFT, fastMRI centre crop."""
    axes = (-2, -1)
    images = np.fft.fftshift(
        np.fft.ifft2(np.fft.ifftshift(kspace, axes=axes), axes=axes, norm="ortho"), axes=axes
    )
    rss = np.sqrt((np.abs(images) ** 2).sum(axis=0))
    top, left = (rss.shape[0] - crop[0]) // 2, (rss.shape[1] - crop[1]) // 2
    return rss[top : top + crop[0], left : left + crop[1]]


@pytest.fixture(scope="module")
def store(tiny_fastmri_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("slices") / "tiny.h5"
    extract_slices(tiny_fastmri_dir, out, (TINY_SIZE, TINY_SIZE), SPLIT, seed=0)
    return out


def _raw(tiny_fastmri_dir, name, key, slice_index):
    with h5py.File(tiny_fastmri_dir / name, "r") as handle:
        return handle[key][slice_index]


def test_store_lists_files_sorted_with_middle_slices(store):
    data = read_slice_store(store)
    assert data.source_file == (
        "a_multicoil_4coils.h5",
        "b_multicoil_narrow.h5",
        "c_singlecoil_knee.h5",
        "d_no_target_header.h5",
        "e_no_target_no_header.h5",
    )
    # slices 3, 5, 4, 4, 3 → middle ⌊S/2⌋
    assert data.slice_index.tolist() == [1, 2, 2, 2, 1]
    assert data.acquisition == ("AXT1", "AXT2", "CORPD_FBK", "AXFLAIR", "AXT1POST")
    assert data.images.shape == (5, TINY_SIZE, TINY_SIZE)
    assert data.images.dtype == torch.float32
    assert float(data.images.min()) >= 0
    assert float(data.images.max()) <= 1


def test_target_of_exact_size_is_minmax_normalised(store, tiny_fastmri_dir):
    image = read_slice_store(store).images[0].numpy()
    expected = _normalise(_raw(tiny_fastmri_dir, "a_multicoil_4coils.h5", "reconstruction_rss", 1))
    np.testing.assert_allclose(image, expected, atol=1e-6)
    assert image.min() == 0.0
    assert image.max() == 1.0


def test_narrow_target_is_zero_padded_floor_before_ceil_after(store, tiny_fastmri_dir):
    image = read_slice_store(store).images[1].numpy()
    target = _normalise(_raw(tiny_fastmri_dir, "b_multicoil_narrow.h5", "reconstruction_rss", 2))
    # 13×11 → 16×16: rows pad 1 before / 2 after, columns 2 before / 3 after
    np.testing.assert_allclose(image[1:14, 2:13], target, atol=1e-6)
    inside = np.zeros_like(image, dtype=bool)
    inside[1:14, 2:13] = True
    assert np.all(image[~inside] == 0)
    assert image.max() == 1.0


def test_single_coil_uses_esc_and_crops_with_rounded_start(store, tiny_fastmri_dir):
    image = read_slice_store(store).images[2].numpy()
    esc = _normalise(_raw(tiny_fastmri_dir, "c_singlecoil_knee.h5", "reconstruction_esc", 2))
    # 21×19 → 16×16: start round(5/2) = 2 rows, round(3/2) = 2 columns
    np.testing.assert_allclose(image, esc[2:18, 2:18], atol=1e-6)


def test_missing_target_falls_back_to_rss_cropped_to_header_recon_size(store, tiny_fastmri_dir):
    image = read_slice_store(store).images[3].numpy()
    kspace = _raw(tiny_fastmri_dir, "d_no_target_header.h5", "kspace", 2)
    expected = _normalise(_rss_by_hand(kspace, (16, 14)))
    np.testing.assert_allclose(image[:, 1:15], expected, atol=1e-5)
    assert np.all(image[:, [0, 15]] == 0)


def test_missing_target_and_header_crops_square_min_side(store, tiny_fastmri_dir):
    image = read_slice_store(store).images[4].numpy()
    kspace = _raw(tiny_fastmri_dir, "e_no_target_no_header.h5", "kspace", 1)
    expected = _normalise(_rss_by_hand(kspace, (12, 12)))
    np.testing.assert_allclose(image[2:14, 2:14], expected, atol=1e-5)


def test_reader_reports_kind_and_target_source(tiny_fastmri_dir):
    knee = read_middle_slice(tiny_fastmri_dir / "c_singlecoil_knee.h5")
    assert (knee.kind, knee.target_key, knee.n_slices) == ("single-coil", "reconstruction_esc", 4)
    fallback = read_middle_slice(tiny_fastmri_dir / "d_no_target_header.h5")
    assert (fallback.kind, fallback.target_key) == ("multicoil", RSS_FROM_KSPACE)
    assert fallback.image.shape == (16, 14)


def test_header_recon_size_parsing():
    header = b'<ismrmrdHeader xmlns="http://www.ismrm.org/ISMRMRD"><encoding><reconSpace>'
    header += b"<matrixSize><x>320</x><y>300</y><z>1</z></matrixSize></reconSpace></encoding>"
    header += b"</ismrmrdHeader>"
    assert recon_size_from_header(header) == (320, 300)
    assert recon_size_from_header(b"not xml <") is None
    assert recon_size_from_header(b"<ismrmrdHeader/>") is None


def test_store_attrs_record_seed_size_and_fractions(store):
    with h5py.File(store, "r") as handle:
        assert int(handle.attrs["seed"]) == 0
        assert handle.attrs["size"].tolist() == [TINY_SIZE, TINY_SIZE]
        assert json.loads(handle.attrs["split_fractions"]) == list(SPLIT)
        assert "ssibench_version" in handle.attrs


def test_store_split_is_disjoint_sorted_and_covering(store):
    split = read_slice_store(store).split
    everything = torch.cat([split["train"], split["val"], split["test"]])
    assert sorted(everything.tolist()) == list(range(5))
    for part in split.values():
        assert part.tolist() == sorted(part.tolist())
    assert [len(split[name]) for name in ("train", "val", "test")] == [3, 1, 1]


def test_extract_is_deterministic_for_a_seed(tiny_fastmri_dir, store, tmp_path):
    again = extract_slices(tiny_fastmri_dir, tmp_path / "again.h5", (TINY_SIZE,) * 2, SPLIT, 0)
    first = read_slice_store(store)
    assert torch.equal(first.images, again.images)
    assert all(torch.equal(first.split[k], again.split[k]) for k in first.split)


@pytest.mark.parametrize(
    ("n", "fractions", "lengths"),
    [
        (10, (0.8, 0.1, 0.1), (8, 1, 1)),
        (7, (0.8, 0.0, 0.2), (6, 0, 1)),  # remainder skips the empty val split
        (11, (0.7, 0.1, 0.2), (8, 1, 2)),  # ⌊7.7⌋, ⌊1.1⌋, ⌊2.2⌋ = 7, 1, 2; remainder 1 → train
        (0, (0.5, 0.25, 0.25), (0, 0, 0)),
    ],
)
def test_split_lengths(n, fractions, lengths):
    assert split_lengths(n, fractions) == lengths
    assert sum(lengths) == n


def test_split_matches_torch_random_split_when_val_is_empty():
    split = split_indices(23, (0.8, 0.0, 0.2), stream(5, "split"))
    train, test = torch.utils.data.random_split(range(23), (0.8, 0.2), generator=stream(5, "split"))
    assert split["train"].tolist() == sorted(train.indices)
    assert split["test"].tolist() == sorted(test.indices)
    assert split["val"].numel() == 0


def test_split_depends_on_the_seed():
    first = split_indices(50, (0.6, 0.2, 0.2), stream(0, "split"))
    same = split_indices(50, (0.6, 0.2, 0.2), stream(0, "split"))
    other = split_indices(50, (0.6, 0.2, 0.2), stream(1, "split"))
    assert all(torch.equal(first[k], same[k]) for k in first)
    assert not torch.equal(first["train"], other["train"])


@pytest.mark.parametrize("fractions", [(0.5, 0.2, 0.2), (0.8, 0.2), (1.2, -0.1, -0.1)])
def test_bad_split_fractions_raise_config_error(fractions):
    with pytest.raises(ConfigError, match="--split"):
        split_lengths(10, fractions)


def test_center_crop_or_pad_odd_and_even_geometry():
    image = torch.arange(1, 5 * 6 + 1, dtype=torch.float32).view(5, 6)
    padded = center_crop_or_pad(image, (8, 9))
    # pad rows ⌊3/2⌋ = 1 before, 2 after; columns 1 before, 2 after
    assert torch.equal(padded[1:6, 1:7], image)
    assert padded.sum() == image.sum()
    cropped = center_crop_or_pad(image, (2, 3))
    # start round(3/2) = 2 (half to even), round(3/2) = 2
    assert torch.equal(cropped, image[2:4, 2:5])


def test_constant_image_is_clipped_not_divided(tmp_path):
    for name, value in (("flat.h5", 3.0), ("flat_negative.h5", -2.0)):
        with h5py.File(tmp_path / name, "w") as handle:
            handle.create_dataset("kspace", data=np.zeros((1, 2, 8, 8), dtype=np.complex64))
            handle.create_dataset("reconstruction_rss", data=np.full((1, 8, 8), value, np.float32))
    data = extract_slices(tmp_path, tmp_path / "out" / "s.h5", (8, 8), (0.5, 0.0, 0.5), seed=0)
    assert data.source_file == ("flat.h5", "flat_negative.h5")
    assert torch.equal(data.images, torch.stack([torch.ones(8, 8), torch.zeros(8, 8)]))


def test_non_hdf5_file_raises_with_its_path(tmp_path):
    bad = tmp_path / "broken.h5"
    bad.write_text("this is not HDF5")
    with pytest.raises(DataFileError, match=re.escape(str(bad))):
        extract_slices(tmp_path, tmp_path / "out.h5", (8, 8), (1.0, 0.0, 0.0), seed=0)
    assert not (tmp_path / "out.h5").exists()


def test_file_without_kspace_raises_naming_path_and_key(tmp_path):
    path = tmp_path / "no_kspace.h5"
    with h5py.File(path, "w") as handle:
        handle.create_dataset("reconstruction_rss", data=np.ones((3, 8, 8), np.float32))
    with pytest.raises(DataFileError, match="kspace") as error:
        read_middle_slice(path)
    assert str(path) in str(error.value)


def test_target_with_wrong_slice_count_raises(tmp_path):
    path = tmp_path / "mismatch.h5"
    with h5py.File(path, "w") as handle:
        handle.create_dataset("kspace", data=np.ones((3, 2, 8, 8), np.complex64))
        handle.create_dataset("reconstruction_rss", data=np.ones((2, 8, 8), np.float32))
    with pytest.raises(DataFileError, match=re.escape(str(path))):
        read_middle_slice(path)


def test_empty_raw_dir_raises_naming_the_dir(tmp_path):
    with pytest.raises(DataFileError, match=re.escape(str(tmp_path))):
        extract_slices(tmp_path, tmp_path / "out.h5", (8, 8), (1.0, 0.0, 0.0), seed=0)


def test_missing_slices_store_raises_with_rebuild_hint(tmp_path):
    with pytest.raises(DataFileError, match="snakemake"):
        read_slice_store(tmp_path / "missing.h5")


# --- every raw file checked; bad files stop (one error) or are skipped -------------------------

GOOD_NAMES = (
    "a_multicoil_4coils.h5",
    "b_multicoil_narrow.h5",
    "c_singlecoil_knee.h5",
    "d_no_target_header.h5",
    "e_no_target_no_header.h5",
)


def _write_garbage(path):
    path.write_bytes(b"<html>502 Bad Gateway</html>" * 10)


def _write_without_kspace(path):
    with h5py.File(path, "w") as handle:
        handle.create_dataset("ismrmrd_header", data=np.bytes_(b"<ismrmrdHeader/>"))
        handle.attrs["acquisition"] = "AXT1"


def _write_truncated(path):
    with h5py.File(path, "w") as handle:
        handle.create_dataset("kspace", data=np.ones((3, 2, 16, 8), np.complex64))
        handle.create_dataset("reconstruction_rss", data=np.ones((3, 8, 8), np.float32))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # an interrupted download


#: name → (writer, fragment of the reason it must be reported with)
BAD_FILES = {
    "bad_garbage.h5": (_write_garbage, "not a readable HDF5 file"),
    "bad_no_kspace.h5": (_write_without_kspace, "no dataset 'kspace' (found: ismrmrd_header)"),
    "bad_truncated.h5": (_write_truncated, "truncated file"),
}


def _mixed_dir(tiny_fastmri_dir, root, good=GOOD_NAMES):
    root.mkdir()
    for name in good:
        shutil.copy(tiny_fastmri_dir / name, root / name)
    for name, (write, _) in BAD_FILES.items():
        write(root / name)
    return root


def _outputs(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_every_bad_file_is_named_in_one_error_and_nothing_is_written(tiny_fastmri_dir, tmp_path):
    raw = _mixed_dir(tiny_fastmri_dir, tmp_path / "raw")
    out_dir = tmp_path / "slices"
    with pytest.raises(DataFileError) as error:
        extract_slices(raw, out_dir / "s.h5", (TINY_SIZE,) * 2, SPLIT, seed=0)
    message = str(error.value)
    head, *lines = message.splitlines()
    assert head.startswith(f"{raw}: 3 of 8 *.h5 files are unreadable or malformed")
    assert "data.on_bad_file: skip" in head
    assert "--on-bad-file skip" in head
    assert "re-download" in head
    assert len(lines) == 3
    for line, (name, (_, reason)) in zip(lines, sorted(BAD_FILES.items()), strict=True):
        assert line.startswith(f"  {raw / name}: ")
        assert reason in line
    assert not any(good in message for good in GOOD_NAMES)
    assert _outputs(out_dir) == []


def test_skip_keeps_the_good_files_and_records_the_bad_ones(tiny_fastmri_dir, tmp_path, capsys):
    raw = _mixed_dir(tiny_fastmri_dir, tmp_path / "raw")
    out = tmp_path / "s.h5"
    store = extract_slices(raw, out, (TINY_SIZE,) * 2, SPLIT, seed=0, on_bad_file="skip")
    assert store.source_file == GOOD_NAMES
    assert len(store) == len(GOOD_NAMES)
    assert [name for name, _ in store.skipped_files] == sorted(BAD_FILES)
    for name, reason in store.skipped_files:
        assert BAD_FILES[name][1] in reason
    on_disk = read_slice_store(out)
    assert on_disk.skipped_files == store.skipped_files
    assert on_disk.source_file == GOOD_NAMES
    with h5py.File(out, "r") as handle:
        recorded = json.loads(handle.attrs["skipped_files"])
    assert recorded == [{"file": n, "reason": r} for n, r in store.skipped_files]
    warnings = [line for line in capsys.readouterr().err.splitlines() if "skipping" in line]
    assert warnings == [
        f"ssibench extract: skipping {raw / name}: {reason}" for name, reason in store.skipped_files
    ]


def test_skip_gives_the_same_images_as_a_clean_folder(tiny_fastmri_dir, store, tmp_path):
    raw = _mixed_dir(tiny_fastmri_dir, tmp_path / "raw")
    skipped = extract_slices(raw, tmp_path / "s.h5", (TINY_SIZE,) * 2, SPLIT, 0, "skip")
    clean = read_slice_store(store)
    assert torch.equal(skipped.images, clean.images)
    assert all(torch.equal(skipped.split[k], clean.split[k]) for k in clean.split)


def test_every_file_bad_raises_even_with_skip(tiny_fastmri_dir, tmp_path, capsys):
    raw = _mixed_dir(tiny_fastmri_dir, tmp_path / "raw", good=())
    with pytest.raises(DataFileError) as error:
        extract_slices(raw, tmp_path / "s.h5", (8, 8), SPLIT, seed=0, on_bad_file="skip")
    head, *lines = str(error.value).splitlines()
    assert head.startswith(f"{raw}: all 3 *.h5 files are unreadable or malformed")
    assert [line.split(": ")[0].strip() for line in lines] == [
        str(raw / name) for name in sorted(BAD_FILES)
    ]
    assert not (tmp_path / "s.h5").exists()
    assert "skipping" not in capsys.readouterr().err


def _target_group(path):
    with h5py.File(path, "w") as handle:
        handle.create_dataset("kspace", data=np.ones((3, 2, 8, 8), np.complex64))
        handle.create_group("reconstruction_rss")


def _target_empty_axis(path):
    with h5py.File(path, "w") as handle:
        handle.create_dataset("kspace", data=np.ones((3, 2, 8, 8), np.complex64))
        handle.create_dataset("reconstruction_rss", data=np.ones((3, 0, 8), np.float32))


def _target_strings(path):
    with h5py.File(path, "w") as handle:
        handle.create_dataset("kspace", data=np.ones((3, 2, 8, 8), np.complex64))
        handle.create_dataset("reconstruction_rss", data=np.full((3, 2, 2), b"x"))


def _target_nan(path):
    target = np.ones((3, 8, 8), np.float32)
    target[1, 2, 3] = np.nan
    with h5py.File(path, "w") as handle:
        handle.create_dataset("kspace", data=np.ones((3, 2, 8, 8), np.complex64))
        handle.create_dataset("reconstruction_rss", data=target)


def _kspace_rank_2(path):
    with h5py.File(path, "w") as handle:
        handle.create_dataset("kspace", data=np.ones((8, 8), np.complex64))


def _kspace_no_rows(path):
    with h5py.File(path, "w") as handle:
        handle.create_dataset("kspace", data=np.ones((3, 2, 0, 8), np.complex64))


def _kspace_real(path):
    with h5py.File(path, "w") as handle:
        handle.create_dataset("kspace", data=np.ones((3, 2, 8, 8), np.float32))


@pytest.mark.parametrize(
    ("write", "reason"),
    [
        (_target_group, "'reconstruction_rss' is a Group, not a dataset"),
        (_target_empty_axis, "dataset 'reconstruction_rss' has shape (3, 0, 8)"),
        (_target_strings, "dtype |S1; expected a real number type"),
        (_target_nan, "slice 1 has 1 non-finite values"),
        (_kspace_rank_2, "dataset 'kspace' has shape (8, 8)"),
        (_kspace_no_rows, "dataset 'kspace' has shape (3, 2, 0, 8)"),
        (_kspace_real, "dtype float32, not complex"),
    ],
)
def test_malformed_volume_raises_a_reason_not_a_traceback(tmp_path, write, reason):
    path = tmp_path / "bad.h5"
    write(path)
    with pytest.raises(BadVolumeError) as error:
        read_middle_slice(path)
    assert isinstance(error.value, DataFileError)
    assert error.value.path == path
    assert reason in error.value.reason
    assert str(error.value).startswith(f"{path}: {error.value.reason}; re-download")


def test_damaged_data_chunk_is_a_bad_volume_not_an_oserror(tmp_path):
    path = tmp_path / "damaged.h5"
    with h5py.File(path, "w") as handle:
        handle.create_dataset("kspace", data=np.ones((3, 2, 8, 8), np.complex64))
        target = handle.create_dataset(
            "reconstruction_rss",
            data=np.ones((3, 8, 8), np.float32),
            chunks=(1, 8, 8),
            compression="gzip",
        )
        chunk = target.id.get_chunk_info(1)  # the middle slice's chunk
    with path.open("r+b") as raw:
        raw.seek(chunk.byte_offset)
        raw.write(b"\xff" * chunk.size)
    with pytest.raises(BadVolumeError, match="its contents cannot be read") as error:
        read_middle_slice(path)
    assert "OSError" in error.value.reason


def test_bad_volume_error_survives_pickling(tmp_path):
    error = BadVolumeError(tmp_path / "x.h5", "no dataset 'kspace' (found: nothing)")
    again = pickle.loads(pickle.dumps(error))
    assert (again.path, again.reason, str(again)) == (error.path, error.reason, str(error))


def test_unknown_on_bad_file_raises_config_error(tiny_fastmri_dir, tmp_path):
    with pytest.raises(ConfigError, match="stop, skip"):
        extract_slices(tiny_fastmri_dir, tmp_path / "s.h5", (8, 8), SPLIT, 0, "ignore")  # type: ignore[arg-type]
    assert not (tmp_path / "s.h5").exists()


def test_cli_choices_match_the_library():
    assert ON_BAD_FILE_CHOICES == ON_BAD_FILE
    assert SPLIT_RULE_CHOICES == SPLIT_RULES


def test_cli_on_bad_file_is_passed_through(tiny_fastmri_dir, tmp_path, capsys):
    raw = _mixed_dir(tiny_fastmri_dir, tmp_path / "raw")
    args = ["extract", "--raw-dir", str(raw), "--size", "8", "8", "--split", *map(str, SPLIT)]
    assert main([*args, "--out", str(tmp_path / "stop.h5")]) == 2
    assert "3 of 8 *.h5 files" in capsys.readouterr().err
    assert not (tmp_path / "stop.h5").exists()
    skip = ["--out", str(tmp_path / "skip.h5"), "--on-bad-file", "skip"]
    assert main([*args, *skip]) == 0
    assert len(read_slice_store(tmp_path / "skip.h5").skipped_files) == 3


# --- empty splits refused ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "fractions", "lengths"),
    [
        (5, (0.6, 0.2, 0.2), (3, 1, 1)),
        (5, (0.8, 0.0, 0.2), (4, 0, 1)),  # an empty validation split is allowed (the paper's)
        (10, (0.7, 0.1, 0.2), (7, 1, 2)),
        (2, (0.5, 0.0, 0.5), (1, 0, 1)),
    ],
)
def test_check_split_sizes_returns_split_lengths(n, fractions, lengths):
    assert check_split_sizes(n, fractions) == lengths == split_lengths(n, fractions)


@pytest.mark.parametrize(
    ("n", "fractions", "lengths", "needed"),
    [
        (4, (0.8, 0.0, 0.2), (4, 0, 0), 5),  # ⌊3.2⌋, 0, ⌊0.8⌋ = 3, 0, 0; remainder 1 → train
        (3, (0.7, 0.1, 0.2), (3, 0, 0), 5),  # ⌊2.1⌋, ⌊0.3⌋, ⌊0.6⌋ = 2, 0, 0; remainder → train
    ],
)
def test_check_split_sizes_refuses_an_empty_test_split(n, fractions, lengths, needed):
    assert split_lengths(n, fractions) == lengths
    with pytest.raises(ConfigError) as error:
        check_split_sizes(n, fractions)
    message = str(error.value)
    assert message.startswith("data.split: ")
    counts = f"train {lengths[0]}, val {lengths[1]}, test {lengths[2]}"
    assert f"of N = {n} images give {counts}" in message
    assert "the test split would be empty" in message
    assert f"raise data.split.test or add volumes (these fractions need N ≥ {needed})" in message
    assert check_split_sizes(needed, fractions)[2] >= 1


def test_check_split_sizes_refuses_an_empty_train_split_naming_where():
    assert split_lengths(2, (0.0, 0.5, 0.5)) == (0, 1, 1)
    with pytest.raises(ConfigError, match=r"^--split: .*the train split would be empty") as error:
        check_split_sizes(2, (0.0, 0.5, 0.5), where="--split")
    assert "raise --split.train" in str(error.value)


def test_check_split_sizes_with_no_images_asks_for_volumes():
    with pytest.raises(ConfigError, match="the train and test splits would be empty") as error:
        check_split_sizes(0, (0.8, 0.0, 0.2))
    assert str(error.value).endswith("; add volumes (these fractions need N ≥ 5)")


def test_check_split_sizes_validates_the_fractions_under_where():
    with pytest.raises(ConfigError, match=r"^data\.split: fractions must sum to 1"):
        check_split_sizes(10, (0.5, 0.2, 0.2))


def test_extract_refuses_an_empty_test_split_without_writing(tiny_fastmri_dir, tmp_path):
    assert split_lengths(5, (0.9, 0.0, 0.1)) == (5, 0, 0)
    out = tmp_path / "slices" / "s.h5"
    with pytest.raises(ConfigError, match="the test split would be empty") as error:
        extract_slices(tiny_fastmri_dir, out, (8, 8), (0.9, 0.0, 0.1), seed=0)
    assert "N = 5 images" in str(error.value)
    assert "--split TRAIN VAL TEST" in str(error.value)
    assert _outputs(out.parent) == []


def test_split_sizes_count_good_files_only_after_skipping(tiny_fastmri_dir, tmp_path):
    raw = _mixed_dir(tiny_fastmri_dir, tmp_path / "raw", good=GOOD_NAMES[:2])
    assert split_lengths(2, SPLIT) == (2, 0, 0)  # 5 files in all would give (3, 1, 1)
    with pytest.raises(ConfigError, match="N = 2 images") as error:
        extract_slices(raw, tmp_path / "s.h5", (8, 8), SPLIT, seed=0, on_bad_file="skip")
    assert "3 malformed raw files were skipped" in str(error.value)
    assert not (tmp_path / "s.h5").exists()


# --- the skipped_files attribute ---------------------------------------------------------------


def test_clean_store_records_no_skipped_files(store):
    assert read_slice_store(store).skipped_files == ()
    with h5py.File(store, "r") as handle:
        assert json.loads(handle.attrs["skipped_files"]) == []


def test_a_store_of_an_older_release_is_refused_with_the_rebuild_command(store, tmp_path):
    old = tmp_path / "old.h5"
    shutil.copy(store, old)
    with h5py.File(old, "a") as handle:
        del handle.attrs["skipped_files"]
    with pytest.raises(
        DataFileError, match="no attribute 'skipped_files'; write it again with the `ssibench` step"
    ) as error:
        read_slice_store(old)
    assert str(old) in str(error.value)


def test_malformed_skipped_files_attribute_names_the_store(store, tmp_path):
    broken = tmp_path / "broken.h5"
    shutil.copy(store, broken)
    with h5py.File(broken, "a") as handle:
        handle.attrs["skipped_files"] = "[{]"
    with pytest.raises(DataFileError, match=re.escape(f"{broken}: attribute 'skipped_files'")):
        read_slice_store(broken)
