"""The acquired-k-space scenario: raw k-space preprocessing, the store, and its physics."""

import json
import math
from pathlib import Path

import h5py
import pytest
import torch

from ssibench.data.demo import NOISE_FRACTION, write_demo_volumes
from ssibench.data.kspace import (
    acs_scale,
    crop_kspace,
    estimate_noise_sigma,
    read_kspace_slices,
    slices_around_middle,
)
from ssibench.data.measurements import read_measurements
from ssibench.data.slices import extract_slices, read_slice_store
from ssibench.errors import ConfigError, DataFileError
from ssibench.fft import fft2c, ifft2c, to_complex
from ssibench.masks import center_block
from ssibench.methods import skip_reason
from ssibench.physics import birdcage_maps
from ssibench.simulate import simulate_scenario
from ssibench.simulate.acquired import prepare_slices
from ssibench.simulate.acquired_spec import validate_acquired_spec

SIZE = 32
N_COILS = 4
N_SLICES = 3
SPEC = {
    "physics": "raw-multicoil",
    "mask": "random",
    "acceleration": 3,
    "center_lines": 8,
    "crop": [SIZE, SIZE],
    "slices_per_volume": 3,
    "espirit": {"threshold": 0.005, "crop": 0.8},
}


@pytest.fixture(scope="module")
def raw_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 demo volumes (3 slices, 4 coils, 32 × 32) and their slices store, split 4/2/2."""
    root = tmp_path_factory.mktemp("acquired")
    write_demo_volumes(root / "raw", 8, N_SLICES, SIZE, SIZE, N_COILS, seed=0)
    extract_slices(root / "raw", root / "slices.h5", (SIZE, SIZE), (0.5, 0.25, 0.25), seed=0)
    return root


@pytest.fixture(scope="module")
def store(raw_tree: Path) -> Path:
    out = raw_tree / "raw-multicoil.h5"
    simulate_scenario(raw_tree / "slices.h5", out, "raw-multicoil", SPEC, 0, raw_tree / "raw")
    return out


def test_crop_keeps_white_noise_white_and_equals_the_image_crop(generator) -> None:
    noise = torch.randn(2, 3, 64, 32, dtype=torch.complex64, generator=generator) * 0.3
    cropped = crop_kspace(noise, (32, 32))
    # F⁻¹ of the cropped k-space is the centre of F⁻¹ k (rows 16:48)
    assert torch.allclose(ifft2c(cropped), ifft2c(noise)[..., 16:48, :], atol=1e-6)
    assert cropped.real.std().item() == pytest.approx(0.3 / math.sqrt(2), rel=0.05)
    with pytest.raises(ValueError, match="smaller than the crop"):
        crop_kspace(noise, (80, 32))


def test_acs_scale_is_the_percentile_of_the_acs_image() -> None:
    image = torch.zeros(1, 1, 16, 16, dtype=torch.complex64)
    image[..., 4:12, 4:12] = 2.0  # a square of value 2: its low-resolution image peaks near 2
    kspace = fft2c(image)
    every_column = acs_scale(kspace, slice(0, 16))
    assert every_column.item() == pytest.approx(2.0, rel=1e-4)  # the image itself: 99th pct = 2
    # a constant image has only the DC coefficient, which any ACS block holds: s = the constant
    constant = fft2c(torch.full((1, 2, 16, 16), 3.0, dtype=torch.complex64) / math.sqrt(2))
    assert acs_scale(constant, slice(7, 9)).item() == pytest.approx(3.0, rel=1e-5)


def test_noise_estimate_from_the_readout_margin(generator) -> None:
    """Pure noise of σ = 0.05 per component in the oversampled margin: σ̂ within 5 %."""
    sigma = 0.05
    image = torch.zeros(2, 4, 128, 64, dtype=torch.complex64)
    image[..., 40:88, 8:56] = 1.0  # object inside the kept rows 32:96
    noise = torch.complex(
        torch.randn(image.shape, generator=generator), torch.randn(image.shape, generator=generator)
    )
    kspace = fft2c(image) + sigma * noise
    estimate, region = estimate_noise_sigma(kspace, crop_rows=64)
    assert region == "readout margin"
    assert torch.allclose(estimate, torch.full((2,), sigma), rtol=0.05)
    _, fallback = estimate_noise_sigma(kspace[..., 32:96, :], crop_rows=64)
    assert fallback == "k-space corners"


def test_espirit_maps_of_the_demo_match_its_birdcage_maps(raw_tree: Path) -> None:
    """The demo's true maps are birdcage maps: |⟨Ŝ, S⟩| / (‖Ŝ‖‖S‖) ≥ 0.95 inside the head."""
    true = birdcage_maps(N_COILS, SIZE, SIZE)
    correlations = []
    for path in sorted((raw_tree / "raw").glob("*.h5")):
        raw = read_kspace_slices(path, [1])
        prepared = prepare_slices(raw, (SIZE, SIZE), center_block(SIZE, 8), SPEC["espirit"])
        estimate = prepared.coil_maps[0]
        with h5py.File(path) as handle:
            rss = torch.from_numpy(handle["reconstruction_rss"][1])
        head = rss > 0.1 * rss.max()
        inner = (estimate.conj() * true).sum(0).abs()
        norms = estimate.abs().square().sum(0).sqrt() * true.abs().square().sum(0).sqrt()
        correlations.append((inner[head] / norms[head].clamp_min(1e-12)).mean().item())
    assert min(correlations) >= 0.95, correlations


def test_fully_sampled_kspace_reconstructs_the_ground_truth(raw_tree: Path) -> None:
    """Aᴴ k = x exactly with the estimated maps (x is defined as Σ conj(Sₙ) F⁻¹ kₙ)."""
    from ssibench.fft import to_real
    from ssibench.physics import MultiCoilMRI

    raw = read_kspace_slices(sorted((raw_tree / "raw").glob("*.h5"))[0], [0, 1, 2])
    prepared = prepare_slices(raw, (SIZE, SIZE), center_block(SIZE, 8), SPEC["espirit"])
    physics = MultiCoilMRI(torch.ones(1, 1, SIZE, SIZE), prepared.coil_maps)
    recon = to_complex(physics.A_adjoint(to_real(prepared.kspace)))
    assert torch.allclose(recon, prepared.x, atol=1e-6 * prepared.x.abs().max().item())


def test_store_layout_selection_and_noise_level(raw_tree: Path, store: Path) -> None:
    slices = read_slice_store(raw_tree / "slices.h5")
    train = read_measurements(store, "train")
    test = read_measurements(store, "test")
    # three slices around the middle per training volume; the middle slice per test volume
    assert len(train) == 3 * slices.split["train"].numel()
    assert train.slice_index.tolist() == [0, 1, 2] * slices.split["train"].numel()
    assert test.slice_index.tolist() == [1] * slices.split["test"].numel()
    assert set(train.index.tolist()).isdisjoint(test.index.tolist())
    assert train.coil_maps.shape == (len(train), N_COILS, SIZE, SIZE)
    assert train.physics_kind == "raw-multicoil"
    # the x the store holds is complex (the acquisition's own phase), not a magnitude image
    assert to_complex(train.x).imag.abs().max() > 0.1
    with h5py.File(store) as handle:
        scale = handle["train/scale"][()]
        recorded = json.loads(handle.attrs["preprocessing"])
        assert recorded["noise_estimate"]["region"] == "readout margin"
        assert json.loads(handle.attrs["filtered_out"]) == []
        maxima = [
            h5py.File(raw_tree / "raw" / slices.source_file[row]).attrs["max"]
            for row in train.index.tolist()
        ]
    # the demo's noise is NOISE_FRACTION × max |image| per component, before the scaling
    truth = torch.tensor([NOISE_FRACTION * m / s for m, s in zip(maxima, scale, strict=True)])
    assert train.sigma == pytest.approx(truth.median().item(), rel=0.1)


def test_adjointness_with_the_estimated_maps(store: Path, generator) -> None:
    data = read_measurements(store, "train")
    physics = data.physics(torch.arange(4))
    x = torch.randn(4, 2, SIZE, SIZE, generator=generator)
    y = torch.randn(4, 2, N_COILS, SIZE, SIZE, generator=generator)
    lhs = (physics.A(x) * y).sum()
    rhs = (x * physics.A_adjoint(y)).sum()
    assert lhs.item() == pytest.approx(rhs.item(), rel=1e-5)


def test_same_seed_same_store(raw_tree: Path, store: Path) -> None:
    again = raw_tree / "again.h5"
    simulate_scenario(raw_tree / "slices.h5", again, "raw-multicoil", SPEC, 0, raw_tree / "raw")
    with h5py.File(store) as a, h5py.File(again) as b:
        assert a.attrs["content_hash"] == b.attrs["content_hash"]


def test_filter_lists_the_volumes_it_leaves_out(raw_tree: Path) -> None:
    out = raw_tree / "filtered.h5"
    with pytest.raises(DataFileError, match="no train volume is left"):
        simulate_scenario(
            raw_tree / "slices.h5",
            out,
            "raw-multicoil",
            {**SPEC, "filter": {"acquisition": "AXT2"}},
            0,
            raw_tree / "raw",
        )
    simulate_scenario(
        raw_tree / "slices.h5",
        out,
        "raw-multicoil",
        {**SPEC, "filter": {"n_coils": [N_COILS, 16], "acquisition": ["AXT1", "AXT2"]}},
        0,
        raw_tree / "raw",
    )
    with h5py.File(out) as handle:
        assert json.loads(handle.attrs["filtered_out"]) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"sigma": 0.1}, "carries its own noise"),
        ({"crop": [32]}, "crop"),
        ({"filter": {"coils": 4}}, "unknown key"),
        ({"slices_per_volume": 0}, "slices_per_volume"),
        ({"espirit": {"threshold": 1.5}}, "espirit.threshold"),
        ({"center_fraction": 0.1}, "center_lines"),
    ],
)
def test_bad_specs_name_the_key(change: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        validate_acquired_spec("raw", {**SPEC, **change})


def test_no_raw_folder_is_a_clear_error(raw_tree: Path) -> None:
    with pytest.raises(ConfigError, match="--raw-dir"):
        simulate_scenario(raw_tree / "slices.h5", raw_tree / "x.h5", "raw", SPEC, 0)


def test_noise_aware_methods_apply_to_acquired_kspace() -> None:
    assert skip_reason("robust-ssdu", {"physics": "raw-multicoil", "sigma": 0.0}) is None
    assert skip_reason("robust-ssdu", {"physics": "multicoil", "sigma": 0.0}) is not None
    assert skip_reason("phase2phase", {"physics": "raw-multicoil"}) is not None


def test_slices_around_middle_stay_in_the_volume() -> None:
    assert slices_around_middle(30, 3) == [14, 15, 16]
    assert slices_around_middle(4, 2) == [1, 2]
    assert slices_around_middle(1, 3) == [0]
