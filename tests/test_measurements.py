"""The measurement store writer and reader (ssibench.data.measurements)."""

import re

import h5py
import pytest
import torch

from ssibench.data.measurements import MeasurementSet, read_measurements, write_measurements
from ssibench.errors import DataFileError
from ssibench.physics import MultiCoilMRI, SingleCoilMRI, birdcage_maps

H, W = 8, 8


def _write(path, generator, *, multicoil=False, shared=False, n=(3, 1, 2)):
    maps = birdcage_maps(3, H, W) if multicoil else None
    y_shape = (2, 3, H, W) if multicoil else (2, H, W)
    written = {}
    with write_measurements(
        path,
        scenario="toy",
        physics_kind="multicoil" if multicoil else "single-coil",
        sigma=0.05,
        spec={"physics": "toy"},
        seed=7,
        slices_file="slices.h5",
        coil_maps=maps,
    ) as writer:
        shared_mask = (
            (torch.rand(1, 1, H, W, generator=generator) > 0.5).float() if shared else None
        )
        for split, count in zip(("train", "val", "test"), n, strict=True):
            index = torch.arange(count) * 10
            writer.create_split(split, index, y_shape, shared_mask=shared_mask)
            x = torch.randn(count, 2, H, W, generator=generator)
            y = torch.randn(count, *y_shape, generator=generator)
            masks = None if shared else (torch.rand(count, 1, H, W, generator=generator) > 0.5)
            masks = None if masks is None else masks.float()
            writer.write_rows(split, 0, x, y, masks=masks)
            written[split] = (x, y, shared_mask if shared else masks, index)
    return written, maps


def test_single_coil_round_trip(tmp_path, generator):
    path = tmp_path / "m.h5"
    written, _ = _write(path, generator)
    for split, (x, y, masks, index) in written.items():
        data = read_measurements(path, split)
        assert len(data) == x.shape[0]
        assert torch.equal(data.x, x)
        assert torch.equal(data.y, y)
        assert torch.equal(data.masks, masks)
        assert torch.equal(data.index, index)
        assert data.coil_maps is None
        assert (data.sigma, data.physics_kind, data.scenario) == (0.05, "single-coil", "toy")
        assert isinstance(data.physics(), SingleCoilMRI)


def test_multicoil_shared_mask_round_trip(tmp_path, generator):
    path = tmp_path / "m.h5"
    _, maps = _write(path, generator, multicoil=True, shared=True)
    data = read_measurements(path, "train")
    assert torch.equal(data.coil_maps, maps)
    assert data.masks.shape == (1, 1, H, W)
    assert data.shared_mask
    physics = data.physics(torch.tensor([0, 2]))
    assert isinstance(physics, MultiCoilMRI)
    assert physics.mask.shape == (1, 1, H, W)
    assert physics.sigma == 0.05
    with h5py.File(path, "r") as handle:
        assert handle["coil_maps"].shape == (3, 2, H, W)
        assert handle["test/mask"].shape == (1, 1, H, W)


def test_physics_selects_per_sample_mask_rows(tmp_path, generator):
    path = tmp_path / "m.h5"
    written, _ = _write(path, generator)
    data = read_measurements(path, "train")
    masks = written["train"][2]
    assert torch.equal(data.physics(torch.tensor([2, 0])).mask, masks[[2, 0]])
    assert torch.equal(data.physics(slice(1, 3)).mask, masks[1:3])
    moved = data.to("cpu")
    assert isinstance(moved, MeasurementSet)
    assert torch.equal(moved.y, data.y)


def test_empty_split_reads_as_length_zero(tmp_path, generator):
    path = tmp_path / "m.h5"
    _write(path, generator, n=(2, 0, 1))
    data = read_measurements(path, "val")
    assert len(data) == 0
    assert data.x.shape == (0, 2, H, W)


def _write_without_masks(path):
    with write_measurements(
        path,
        scenario="toy",
        physics_kind="single-coil",
        sigma=0.0,
        spec={},
        seed=0,
        slices_file="s.h5",
        coil_maps=None,
    ) as writer:
        writer.create_split("train", torch.arange(2), (2, H, W))
        writer.write_rows("train", 0, torch.zeros(2, 2, H, W), torch.zeros(2, 2, H, W))


def test_write_rows_refuses_missing_per_sample_masks(tmp_path):
    with pytest.raises(ValueError, match="per-sample masks"):
        _write_without_masks(tmp_path / "m.h5")
    assert not (tmp_path / "m.h5").exists()  # a failed write leaves no file


def test_missing_file_names_path_and_rebuild_command(tmp_path):
    path = tmp_path / "absent.h5"  # not a workflow output: the hint names the target of one
    target = "snakemake --cores all data/measurements/<dataset>/<scenario>.h5"
    with pytest.raises(DataFileError, match=re.escape(f"{path}: no such measurement store")) as e:
        read_measurements(path, "train")
    assert target in str(e.value)


def test_missing_group_or_dataset_is_named(tmp_path, generator):
    path = tmp_path / "m.h5"
    _write(path, generator)
    with h5py.File(path, "a") as handle:
        del handle["val"]
        del handle["test/y"]
    with pytest.raises(DataFileError, match=r"'val'.*snakemake"):
        read_measurements(path, "val")
    with pytest.raises(DataFileError, match="'test/y'"):
        read_measurements(path, "test")


def test_multicoil_store_without_coil_maps_is_refused(tmp_path, generator):
    path = tmp_path / "m.h5"
    _write(path, generator, multicoil=True)
    with h5py.File(path, "a") as handle:
        del handle["coil_maps"]
    with pytest.raises(DataFileError, match="coil_maps"):
        read_measurements(path, "train")


def test_unknown_split_name_raises(tmp_path, generator):
    path = tmp_path / "m.h5"
    _write(path, generator)
    with pytest.raises(ValueError, match="train, val, test"):
        read_measurements(path, "validation")
