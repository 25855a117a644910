"""The embedded demo data set (ssibench.data.demo)."""

import h5py
import numpy as np
import pytest

from ssibench.data.demo import demo_volume, load_template, write_demo_volumes
from ssibench.data.fastmri import read_middle_slice, recon_size_from_header
from ssibench.data.slices import extract_slices
from ssibench.errors import ConfigError

N_VOLUMES, N_SLICES, H, W, N_COILS = 2, 2, 32, 32, 2


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    paths = write_demo_volumes(root, N_VOLUMES, N_SLICES, H, W, N_COILS, seed=0)
    assert [p.name for p in paths] == ["demo_000.h5", "demo_001.h5"]
    return root


def _read(path):
    with h5py.File(path, "r") as handle:
        return (
            handle["kspace"][()],
            handle["reconstruction_rss"][()],
            handle["ismrmrd_header"][()],
            dict(handle.attrs),
        )


def test_only_the_volumes_are_written(demo_dir):
    assert sorted(p.name for p in demo_dir.iterdir()) == ["demo_000.h5", "demo_001.h5"]


def test_files_have_the_fastmri_layout(demo_dir):
    kspace, rss, header, attrs = _read(demo_dir / "demo_000.h5")
    assert kspace.dtype == np.complex64
    assert kspace.shape == (N_SLICES, N_COILS, 2 * H, W)  # readout oversampled ×2
    assert rss.dtype == np.float32
    assert rss.shape == (N_SLICES, H, W)
    assert recon_size_from_header(header) == (H, W)
    assert attrs["acquisition"] == "AXT1"
    assert attrs["max"] == pytest.approx(float(rss.max()))
    assert attrs["norm"] == pytest.approx(float(np.linalg.norm(rss)))
    assert isinstance(attrs["patient_id"], str)


def test_rss_target_equals_rss_of_inverse_fft_of_kspace_cropped_to_centre(demo_dir):
    kspace, rss, _, _ = _read(demo_dir / "demo_001.h5")
    axes = (-2, -1)
    images = np.fft.fftshift(
        np.fft.ifft2(np.fft.ifftshift(kspace, axes=axes), axes=axes, norm="ortho"), axes=axes
    )
    expected = np.sqrt((np.abs(images) ** 2).sum(axis=1))[:, H // 2 : H // 2 + H]
    np.testing.assert_allclose(rss, expected, rtol=1e-4, atol=1e-5 * rss.max())


def test_oversampled_rows_hold_only_noise(demo_dir):
    kspace, rss, _, _ = _read(demo_dir / "demo_000.h5")
    images = np.fft.fftshift(
        np.fft.ifft2(np.fft.ifftshift(kspace, axes=(-2, -1)), norm="ortho"), axes=(-2, -1)
    )
    outside = np.concatenate([images[..., : H // 2, :], images[..., H // 2 + H :, :]], axis=-2)
    assert np.abs(outside).max() < 0.05 * rss.max()


def test_images_look_like_a_centred_brain_filling_the_field_of_view(demo_dir):
    for path in sorted(demo_dir.iterdir()):
        _, rss, _, _ = _read(path)
        image = rss[N_SLICES // 2] / rss.max()
        corners = np.concatenate([image[:3, :3], image[:3, -3:], image[-3:, :3], image[-3:, -3:]])
        assert corners.mean() < 0.05
        assert image[H // 4 : -H // 4, W // 4 : -W // 4].mean() > 0.3
        assert 0.3 < (image > 0.2).mean() < 0.9


def test_subjects_differ_and_a_seed_is_reproducible():
    _, first = demo_volume(0, N_SLICES, H, W, N_COILS, seed=0)
    _, again = demo_volume(0, N_SLICES, H, W, N_COILS, seed=0)
    _, second = demo_volume(1, N_SLICES, H, W, N_COILS, seed=0)
    _, other_seed = demo_volume(0, N_SLICES, H, W, N_COILS, seed=1)
    np.testing.assert_array_equal(first, again)
    for different in (second, other_seed):
        assert np.abs(first - different).mean() > 0.05 * first.mean()


def test_template_is_axial_nose_up():
    template = load_template()
    assert template.shape == (189, 233, 197)  # (Z, Y, X)
    # the frontal lobe (top rows) is narrower than the parieto-occipital region below the middle
    axial = template[90] > 0.05
    rows = np.flatnonzero(axial.any(axis=1))
    width = axial.sum(axis=1)
    top, bottom = rows[0], rows[-1]
    quarter = (bottom - top) // 4
    assert width[top + quarter // 2] < width[bottom - quarter]


def test_demo_volumes_go_through_extract(demo_dir, tmp_path):
    store = extract_slices(demo_dir, tmp_path / "demo.h5", (H, W), (0.5, 0.0, 0.5), seed=0)
    assert store.images.shape == (N_VOLUMES, H, W)
    assert store.images.amax(dim=(1, 2)).tolist() == [1.0, 1.0]
    assert read_middle_slice(demo_dir / "demo_000.h5").slice_index == N_SLICES // 2


def test_bad_sizes_raise_config_error(tmp_path):
    with pytest.raises(ConfigError, match="--n-coils"):
        write_demo_volumes(tmp_path, 1, 1, 8, 8, 0, seed=0)
