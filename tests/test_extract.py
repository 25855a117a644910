"""fastMRI reading and the slices store (ssibench.data.fastmri, ssibench.data.slices)."""

import json
import re

import h5py
import numpy as np
import pytest
import torch

from ssibench.data.fastmri import RSS_FROM_KSPACE, read_middle_slice, recon_size_from_header
from ssibench.data.slices import (
    center_crop_or_pad,
    extract_slices,
    read_slice_store,
    split_indices,
    split_lengths,
)
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
    with h5py.File(tmp_path / "flat.h5", "w") as handle:
        handle.create_dataset("kspace", data=np.zeros((1, 2, 8, 8), dtype=np.complex64))
        handle.create_dataset("reconstruction_rss", data=np.full((1, 8, 8), 3.0, np.float32))
    data = extract_slices(tmp_path, tmp_path / "out" / "s.h5", (8, 8), (1.0, 0.0, 0.0), seed=0)
    assert torch.equal(data.images, torch.ones(1, 8, 8))


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
