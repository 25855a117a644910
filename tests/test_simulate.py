"""Scenario simulation of the 2-D kinds (ssibench.simulate)."""

import json
import re

import h5py
import numpy as np
import pytest
import torch

from ssibench.data.measurements import read_measurements
from ssibench.data.slices import SliceStore, write_slice_store
from ssibench.errors import ConfigError
from ssibench.physics import MultiCoilMRI, SingleCoilMRI, birdcage_maps
from ssibench.simulate import simulate

N, H, W = 12, 16, 16
ACCELERATION = 4  # ⌊16 / 4⌋ = 4 sampled columns per mask
SINGLE = {
    "physics": "single-coil",
    "sigma": 0.0,
    "shared_mask": False,
    "mask": "gaussian",
    "acceleration": ACCELERATION,
    "center_fraction": None,
}
MULTI = {**SINGLE, "physics": "multicoil", "n_coils": 3}


def _store(path, generator, split=(range(0, 8), range(8, 10), range(10, 12))):
    images = torch.rand(N, H, W, generator=generator)
    store = SliceStore(
        images=images,
        source_file=tuple(f"vol{i}.h5" for i in range(N)),
        slice_index=torch.zeros(N, dtype=torch.int64),
        acquisition=("AXT1",) * N,
        split={
            name: torch.tensor(list(rows), dtype=torch.int64)
            for name, rows in zip(("train", "val", "test"), split, strict=True)
        },
    )
    write_slice_store(path, store, seed=0, split_fractions=(8 / 12, 2 / 12, 2 / 12))
    return store


@pytest.fixture(scope="module")
def slices(tmp_path_factory):
    path = tmp_path_factory.mktemp("simulate") / "slices.h5"
    return path, _store(path, torch.Generator().manual_seed(0))


def _contents(path):
    """Every dataset and attribute of an HDF5 file, as numpy arrays / plain values."""
    found = {}
    with h5py.File(path, "r") as handle:
        found.update({f"@{k}": v for k, v in handle.attrs.items()})
        handle.visititems(
            lambda name, obj: (
                found.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None
            )
        )
    return found


def test_x_holds_the_split_images_with_zero_imaginary_part(slices, tmp_path):
    path, store = slices
    out = simulate(path, tmp_path / "m.h5", "single-coil", SINGLE, seed=0)
    for split in ("train", "val", "test"):
        data = read_measurements(out, split)
        assert torch.equal(data.index, store.split[split])
        assert torch.equal(data.x[:, 0], store.images[store.split[split]])
        assert torch.count_nonzero(data.x[:, 1]) == 0


def test_masks_have_the_exact_column_count(slices, tmp_path):
    out = simulate(slices[0], tmp_path / "m.h5", "single-coil", SINGLE, seed=0)
    masks = torch.cat([read_measurements(out, s).masks for s in ("train", "val", "test")])
    assert masks.shape == (N, 1, H, W)
    assert torch.all(masks == masks[:, :, :1, :])  # whole columns
    assert masks[:, 0, 0].sum(dim=1).tolist() == [W // ACCELERATION] * N
    assert len({tuple(m[0, 0].tolist()) for m in masks}) > 1  # one mask per sample


def test_noiseless_single_coil_y_equals_forward_operator(slices, tmp_path):
    out = simulate(slices[0], tmp_path / "m.h5", "single-coil", SINGLE, seed=0)
    data = read_measurements(out, "train")
    physics = data.physics()
    assert isinstance(physics, SingleCoilMRI)
    torch.testing.assert_close(data.y, SingleCoilMRI(data.masks).A(data.x), rtol=0, atol=1e-6)


def test_noise_has_std_sigma_on_sampled_entries_and_is_zero_elsewhere(slices, tmp_path):
    sigma = 0.1
    out = simulate(slices[0], tmp_path / "m.h5", "noisy", {**SINGLE, "sigma": sigma}, seed=0)
    data = read_measurements(out, "train")
    assert data.sigma == sigma
    noise = data.y - SingleCoilMRI(data.masks).A(data.x)
    sampled = data.masks.expand_as(noise).bool()
    assert torch.all(data.y[~sampled] == 0)
    assert float(noise[sampled].std()) == pytest.approx(sigma, rel=0.1)
    assert abs(float(noise[sampled].mean())) < 0.02


def test_shared_mask_is_stored_once_and_identical_in_every_split(slices, tmp_path):
    spec = {**SINGLE, "shared_mask": True}
    out = simulate(slices[0], tmp_path / "m.h5", "single-operator", spec, seed=0)
    masks = [read_measurements(out, s).masks for s in ("train", "val", "test")]
    assert all(m.shape == (1, 1, H, W) for m in masks)
    assert all(torch.equal(m, masks[0]) for m in masks)
    assert int(masks[0][0, 0, 0].sum()) == W // ACCELERATION
    data = read_measurements(out, "train")
    torch.testing.assert_close(data.y, data.physics().A(data.x), rtol=0, atol=1e-6)


def test_multicoil_shapes_coil_maps_and_forward_operator(slices, tmp_path):
    out = simulate(slices[0], tmp_path / "m.h5", "multicoil", MULTI, seed=0)
    data = read_measurements(out, "test")
    maps = birdcage_maps(3, H, W)
    assert data.y.shape == (2, 2, 3, H, W)
    assert torch.equal(data.coil_maps, maps)
    with h5py.File(out, "r") as handle:
        stored = torch.from_numpy(handle["coil_maps"][()])
        assert handle.attrs["physics"] == "multicoil"
    assert stored.shape == (3, 2, H, W)
    assert torch.equal(stored[:, 0], maps.real)
    assert torch.equal(stored[:, 1], maps.imag)
    physics = data.physics()
    assert isinstance(physics, MultiCoilMRI)
    torch.testing.assert_close(data.y, MultiCoilMRI(data.masks, maps).A(data.x), rtol=0, atol=1e-6)


def test_same_seed_gives_bit_identical_contents_and_another_seed_differs(slices, tmp_path):
    spec = {**MULTI, "sigma": 0.05}
    first = _contents(simulate(slices[0], tmp_path / "a.h5", "multicoil", spec, seed=3))
    again = _contents(simulate(slices[0], tmp_path / "b.h5", "multicoil", spec, seed=3))
    other = _contents(simulate(slices[0], tmp_path / "c.h5", "multicoil", spec, seed=4))
    assert first.keys() == again.keys()
    for key, value in first.items():
        np.testing.assert_array_equal(value, again[key], err_msg=key)
    assert not np.array_equal(first["train/mask"], other["train/mask"])
    assert not np.array_equal(first["train/y"], other["train/y"])
    assert json.loads(first["@spec"])["n_coils"] == 3
    assert first["@seed"] == 3


def test_global_rng_is_untouched(slices, tmp_path):
    before = torch.get_rng_state()
    simulate(slices[0], tmp_path / "m.h5", "noisy", {**SINGLE, "sigma": 0.1}, seed=0)
    assert torch.equal(torch.get_rng_state(), before)


def test_empty_val_split_is_written_empty(tmp_path, generator):
    path = tmp_path / "slices.h5"
    _store(path, generator, split=(range(0, 9), range(0), range(9, 12)))
    out = simulate(path, tmp_path / "m.h5", "single-coil", SINGLE, seed=0)
    assert len(read_measurements(out, "val")) == 0
    assert len(read_measurements(out, "test")) == 3


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"sigma": -0.1}, "scenarios.bad.sigma"),
        ({"physics": "dynamic"}, "scenarios.bad.physics"),
        ({"mask": "gausian"}, "scenarios.bad.mask"),
        ({"acceleration": 0.5}, "scenarios.bad.acceleration"),
        ({"center_fraction": 1.5}, "scenarios.bad.center_fraction"),
        ({"shared_mask": "yes"}, "scenarios.bad.shared_mask"),
        ({"physics": "multicoil"}, "scenarios.bad.n_coils"),
        ({"center_fraction": 0.5}, "scenarios.bad.acceleration"),  # centre block > W / R
        ({"noise": 0.1}, "unknown key"),
    ],
)
def test_bad_spec_raises_config_error_naming_the_key(slices, tmp_path, change, key):
    with pytest.raises(ConfigError, match=re.escape(key)):
        simulate(slices[0], tmp_path / "m.h5", "bad", {**SINGLE, **change}, seed=0)
    assert not (tmp_path / "m.h5").exists()


def test_missing_required_key_is_named(slices, tmp_path):
    spec = {k: v for k, v in SINGLE.items() if k != "acceleration"}
    with pytest.raises(ConfigError, match=r"missing key.*acceleration"):
        simulate(slices[0], tmp_path / "m.h5", "bad", spec, seed=0)
