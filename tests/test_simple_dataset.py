"""DeepInverse's simple data set as a source, and SSIBench's own split (data.split_rule)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils.data import random_split

from ssibench.cli import main
from ssibench.config.sources import SOURCE_KINDS, source_kind
from ssibench.data.slices import read_slice_store
from ssibench.data.splits import split_generator, split_indices
from ssibench.errors import ConfigError, DataFileError
from ssibench.interop.simple_dataset import (
    count_simple_dataset,
    extract_simple_dataset,
    read_simple_dataset,
)
from ssibench.pipeline.data_source import check_data_source, n_volumes

SSIBENCH_FRACTIONS = (0.8, 0.0, 0.2)


def ssibench_test_indices(n: int) -> list[int]:
    """The test indices of SSIBench's train.py, from torch's own random_split."""
    _, test = random_split(range(n), (0.8, 0.2), generator=torch.Generator("cpu").manual_seed(0))
    return sorted(test.indices)


def save_simple_dataset(path: Path, n: int, size: int = 16, seed: int = 3) -> torch.Tensor:
    """What DeepInverse's save_simple_dataset writes: min-max rescaled slices, stacked."""
    generator = torch.Generator().manual_seed(seed)
    slices = []
    for _ in range(n):
        x = torch.rand(size, size, generator=generator)
        slices.append((x - x.min()) / (x.max() - x.min()))
    stacked = torch.stack(slices)
    torch.save(stacked, path)
    return stacked


@pytest.mark.filterwarnings("ignore:Length of split")
@pytest.mark.parametrize("n", [5, 10, 17, 42, 101])
def test_the_ssibench_rule_gives_random_splits_parts_for_any_n(n):
    parts = split_indices(n, SSIBENCH_FRACTIONS, split_generator("ssibench", seed=123))
    train, test = random_split(range(n), (0.8, 0.2), generator=torch.Generator().manual_seed(0))
    assert parts["test"].tolist() == sorted(test.indices)
    assert parts["train"].tolist() == sorted(train.indices)
    assert parts["val"].numel() == 0
    # three fractions: the same as random_split with three
    parts = split_indices(n, (0.7, 0.1, 0.2), split_generator("ssibench", seed=0))
    reference = random_split(range(n), (0.7, 0.1, 0.2), generator=torch.Generator().manual_seed(0))
    for name, part in zip(("train", "val", "test"), reference, strict=True):
        assert parts[name].tolist() == sorted(part.indices)


def test_the_seeded_rule_depends_on_the_seed_and_the_ssibench_rule_does_not():
    seeded = [split_indices(30, SSIBENCH_FRACTIONS, split_generator("seeded", s)) for s in (0, 1)]
    assert seeded[0]["test"].tolist() != seeded[1]["test"].tolist()
    fixed = [split_indices(30, SSIBENCH_FRACTIONS, split_generator("ssibench", s)) for s in (0, 1)]
    assert fixed[0]["test"].tolist() == fixed[1]["test"].tolist() == ssibench_test_indices(30)


def test_an_unknown_split_rule_is_refused():
    with pytest.raises(ConfigError, match="unknown split rule 'random'; valid: seeded, ssibench"):
        split_generator("random", 0)


def test_a_simple_data_set_is_n_volumes_of_one_slice_split_as_ssibench(tmp_path):
    path = tmp_path / "fastmri_brain_singlecoil.pt"
    stacked = save_simple_dataset(path, 23)
    out = tmp_path / "slices.h5"
    extract_simple_dataset(path, out, (16, 16), SSIBENCH_FRACTIONS, seed=5, split_rule="ssibench")
    store = read_slice_store(out)
    assert store.images.shape == (23, 16, 16)
    torch.testing.assert_close(store.images, stacked, rtol=0, atol=1e-6)  # kept in file order
    assert store.slice_index.tolist() == list(range(23))
    assert store.split["test"].tolist() == ssibench_test_indices(23)
    assert store.source_file[0] == "fastmri_brain_singlecoil:00"
    assert count_simple_dataset(path) == 23


def test_channel_and_complex_layouts_read_as_magnitude_slices(tmp_path):
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(4, 1, 8, 8, dtype=torch.complex64, generator=generator)
    torch.save(images, tmp_path / "complex.pt")
    volumes = read_simple_dataset(tmp_path / "complex.pt")
    assert list(volumes) == [f"complex:{k}" for k in range(4)]
    assert volumes["complex:2"].shape == (1, 8, 8)
    torch.testing.assert_close(torch.from_numpy(volumes["complex:2"]), images[2].abs())


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (torch.zeros(3, 2, 8, 8), r"shape \(3, 2, 8, 8\); a simple data set is \(N, H, W\)"),
        (torch.zeros(8, 8), r"shape \(8, 8\)"),
        (torch.zeros(0, 8, 8), "no empty axis"),
        (torch.full((2, 4, 4), float("nan")), r"slice\(s\) 0, 1 hold values that are not finite"),
        (torch.zeros(2, 4, 4, dtype=torch.bool), "not a real number type"),
        ({"x": torch.zeros(2, 4, 4)}, "holds a dict, not a tensor"),
    ],
)
def test_a_malformed_simple_data_set_is_one_message_naming_the_file(tmp_path, value, message):
    path = tmp_path / "bad.pt"
    torch.save(value, path)
    with pytest.raises(DataFileError, match=message) as error:
        read_simple_dataset(path)
    assert str(path) in str(error.value)


def test_a_simple_data_set_that_would_run_code_is_refused(tmp_path):
    class Payload:
        def __reduce__(self):
            return (exec, ("raise SystemExit('ran')",))

    path = tmp_path / "crafted.pt"
    torch.save([Payload()], path)
    with pytest.raises(DataFileError, match=r"crafted\.pt: not a readable tensor file"):
        read_simple_dataset(path)


def test_the_source_table_drives_the_checks_and_the_volume_count(tmp_path):
    assert source_kind("simple") is SOURCE_KINDS["simple"]
    assert source_kind("simple").extract_as == "simple"
    assert not source_kind("simple").built
    path = tmp_path / "set.pt"
    save_simple_dataset(path, 12)
    data = {"source": "simple", "raw_dir": str(path), "name": "s", "image_size": [16, 16]}
    check_data_source(data)
    assert n_volumes(data) == 12
    with pytest.raises(ConfigError, match=r"data\.raw_dir: required when data\.source is 'simple'"):
        check_data_source({**data, "raw_dir": None})
    with pytest.raises(ConfigError, match="no such file"):
        check_data_source({**data, "raw_dir": str(tmp_path / "missing.pt")})


def test_extract_cli_reads_a_simple_data_set(tmp_path):
    path = tmp_path / "set.pt"
    save_simple_dataset(path, 15)
    out = tmp_path / "slices.h5"
    argv = ["extract", "--source", "simple", "--raw-dir", str(path), "--out", str(out)]
    argv += ["--size", "16", "16", "--split", "0.8", "0.0", "0.2", "--split-rule", "ssibench"]
    assert main(argv) == 0
    assert read_slice_store(out).split["test"].tolist() == ssibench_test_indices(15)
