"""The sequential scenario: disjoint line partition, simulation and the 5-D measurement store."""

import h5py
import pytest
import torch

from ssibench.data.measurements import read_measurements, write_measurements
from ssibench.data.slices import SliceStore, write_slice_store
from ssibench.errors import ConfigError
from ssibench.masks import GaussianMaskGenerator
from ssibench.physics import DynamicMRI, SequentialMRI, SingleCoilMRI
from ssibench.simulate import (
    partition_lines,
    simulate_sequential,
    validate_sequential_spec,
)

N, H, W, T = 6, 16, 16, 4
SPEC = {
    "physics": "sequential",
    "sigma": 0.0,
    "mask": "gaussian",
    "acceleration": 2,  # 8 of 16 columns
    "center_fraction": None,
    "n_frames": T,
}


def _g(seed):
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def slices(tmp_path_factory):
    path = tmp_path_factory.mktemp("sequential") / "slices.h5"
    store = SliceStore(
        images=torch.rand(N, H, W, generator=_g(0)),
        source_file=tuple(f"vol{i}.h5" for i in range(N)),
        slice_index=torch.zeros(N, dtype=torch.int64),
        acquisition=("AXT1",) * N,
        split={
            "train": torch.arange(0, 3),
            "val": torch.arange(3, 4),
            "test": torch.arange(4, 6),
        },
    )
    write_slice_store(path, store, seed=0, split_fractions=(0.5, 1 / 6, 1 / 3))
    return path, store


# --- partition_lines ------------------------------------------------------------------------


@pytest.mark.parametrize("partition", ["random", "interleaved"])
def test_partition_is_disjoint_covers_the_mask_and_is_balanced(partition):
    omega = GaussianMaskGenerator(acceleration=3).sample(5, 8, 32, _g(1))
    frames = partition_lines(omega, 3, partition, _g(2))
    assert frames.shape == (5, 1, 3, 8, 32)
    assert torch.equal(frames.sum(dim=2), omega)  # disjoint (no sum > 1) and covering
    assert torch.equal(frames, frames[..., :1, :].expand_as(frames))  # whole columns
    counts = frames[:, 0, :, 0, :].sum(dim=2)  # (B, T) columns per frame
    lines = omega[:, 0, 0].sum(dim=1, keepdim=True)  # K_b
    expected = torch.ceil((lines - torch.arange(3)) / 3)  # frame t gets ⌈(K − t)/T⌉
    assert torch.equal(counts, expected)


def test_interleaved_partition_deals_columns_in_index_order():
    omega = torch.zeros(1, 1, 2, 10)
    omega[..., [1, 2, 4, 5, 8]] = 1
    frames = partition_lines(omega, 2, "interleaved")
    assert frames[0, 0, 0, 0].nonzero().flatten().tolist() == [1, 4, 8]
    assert frames[0, 0, 1, 0].nonzero().flatten().tolist() == [2, 5]


def test_random_partition_is_reproducible_varies_and_leaves_the_global_rng_alone():
    omega = GaussianMaskGenerator(acceleration=2).sample(4, 4, 32, _g(3))
    state = torch.get_rng_state()
    first = partition_lines(omega, 4, "random", _g(4))
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(first, partition_lines(omega, 4, "random", _g(4)))
    assert not torch.equal(first, partition_lines(omega, 4, "random", _g(5)))


def test_partition_refuses_masks_that_are_not_whole_columns():
    omega = torch.zeros(1, 1, 4, 4)
    omega[0, 0, 0, 0] = 1
    with pytest.raises(ValueError, match="whole columns"):
        partition_lines(omega, 2, "interleaved")


def test_partition_needs_a_generator_and_a_known_mode():
    omega = torch.ones(1, 1, 2, 4)
    with pytest.raises(ValueError, match="generator"):
        partition_lines(omega, 2, "random")
    with pytest.raises(ValueError, match="random, interleaved"):
        partition_lines(omega, 2, "spiral", _g(0))


# --- simulation -----------------------------------------------------------------------------


def test_sequential_store_shapes_and_disjoint_frames_of_an_ordinary_mask(slices, tmp_path):
    path, store = slices
    out = simulate_sequential(path, tmp_path / "m.h5", "sequential", SPEC, seed=3)
    data = read_measurements(out, "train")
    assert data.physics_kind == "sequential"
    assert data.x.shape == (3, 2, H, W)
    assert data.y.shape == (3, 2, T, H, W)
    assert data.masks.shape == (3, 1, T, H, W)
    assert torch.equal(data.x[:, 0], store.images[:3])
    union = data.masks.sum(dim=2)
    assert union.max() == 1  # disjoint frames
    assert torch.all(union[:, 0, 0].sum(dim=1) == W // 2)  # the scenario's line count
    physics = data.physics()
    assert isinstance(physics, SequentialMRI)
    torch.testing.assert_close(data.y, physics.A(data.x))
    # The zero-filled image equals the 2-D single-coil one with the union mask.
    single = SingleCoilMRI(union)
    torch.testing.assert_close(physics.A_adjoint(data.y), single.A_adjoint(single.A(data.x)))


def test_sequential_noise_is_masked_and_seeded(slices, tmp_path):
    path, _ = slices
    spec = {**SPEC, "sigma": 0.2, "frame_partition": "interleaved"}
    first = simulate_sequential(path, tmp_path / "a.h5", "noisy-seq", spec, seed=4)
    again = simulate_sequential(path, tmp_path / "b.h5", "noisy-seq", spec, seed=4)
    other = simulate_sequential(path, tmp_path / "c.h5", "noisy-seq", spec, seed=5)
    data = read_measurements(first, "test")
    noise = data.y - data.physics().A(data.x)
    assert torch.all(noise[(data.masks == 0).expand_as(noise)] == 0)
    assert noise[(data.masks == 1).expand_as(noise)].std().item() == pytest.approx(0.2, rel=0.2)
    assert torch.equal(read_measurements(again, "test").y, data.y)
    assert not torch.equal(read_measurements(other, "test").y, data.y)


def test_shared_mask_is_stored_once(slices, tmp_path):
    path, _ = slices
    out = simulate_sequential(
        path, tmp_path / "m.h5", "seq-shared", {**SPEC, "shared_mask": True}, seed=6
    )
    masks = [read_measurements(out, split).masks for split in ("train", "val", "test")]
    assert masks[0].shape == (1, 1, T, H, W)
    assert all(torch.equal(m, masks[0]) for m in masks)
    with h5py.File(out, "r") as handle:
        assert handle.attrs["physics"] == "sequential"


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"n_frames": 1}, "n_frames"),
        ({"n_frames": "4"}, "n_frames"),
        ({"frame_partition": "spiral"}, "frame_partition"),
        ({"n_coils": 4}, "n_coils"),
        ({"physics": "single-coil"}, "physics"),
        ({"acceleration": 0.5}, "acceleration"),
        ({"frames": 4}, "frames"),
    ],
)
def test_bad_spec_names_the_key(change, key):
    with pytest.raises(ConfigError, match=rf"scenarios\.seq.*{key}"):
        validate_sequential_spec("seq", {**SPEC, **change})


def test_missing_frame_count_is_named():
    spec = {k: v for k, v in SPEC.items() if k != "n_frames"}
    with pytest.raises(ConfigError, match=r"missing key.*n_frames"):
        validate_sequential_spec("seq", spec)


def test_more_frames_than_sampled_columns_is_refused(slices, tmp_path):
    path, _ = slices
    with pytest.raises(ConfigError, match=r"scenarios\.seq\.n_frames: got 9.* only 8 of the 16"):
        simulate_sequential(path, tmp_path / "m.h5", "seq", {**SPEC, "n_frames": 9}, seed=0)
    assert not (tmp_path / "m.h5").exists()


def test_validated_spec_has_defaults():
    full = validate_sequential_spec("seq", SPEC)
    assert full["physics"] == "sequential"
    assert full["frame_partition"] == "random"
    assert full["shared_mask"] is False


# --- the 5-D measurement store --------------------------------------------------------------


def test_dynamic_store_round_trip(tmp_path):
    x = torch.randn(2, 2, 3, 8, 8, generator=_g(7))
    masks = (torch.rand(2, 1, 3, 8, 8, generator=_g(8)) < 0.5).float()
    y = DynamicMRI(masks).A(x)
    with write_measurements(
        tmp_path / "d.h5",
        scenario="video",
        physics_kind="dynamic",
        sigma=0.0,
        spec={},
        seed=0,
        slices_file="s.h5",
        coil_maps=None,
    ) as writer:
        for split, count in (("train", 2), ("val", 0), ("test", 0)):
            writer.create_split(split, torch.arange(count), (2, 3, 8, 8))
        writer.write_rows("train", 0, x, y, masks=masks)
    data = read_measurements(tmp_path / "d.h5", "train")
    assert torch.equal(data.x, x)
    assert torch.equal(data.masks, masks)
    physics = data.physics(torch.tensor([1]))
    assert isinstance(physics, DynamicMRI)
    assert torch.equal(physics.A(x[1:]), y[1:])


def test_writer_refuses_a_two_dimensional_shared_mask_for_sequential_data(tmp_path):
    with (
        pytest.raises(ValueError, match=r"expected \(1, 1, 3, 8, 8\)"),
        write_measurements(
            tmp_path / "s.h5",
            scenario="seq",
            physics_kind="sequential",
            sigma=0.0,
            spec={},
            seed=0,
            slices_file="s.h5",
            coil_maps=None,
        ) as writer,
    ):
        writer.create_split("train", torch.arange(1), (2, 3, 8, 8), torch.ones(1, 1, 8, 8))
