"""Stores and metrics from anywhere end in one clear error (issue 20, findings 6 and 7).

Finding 6: a measurement store's contents are checked when a split is read. Each crafted store
is a valid tiny store (``test_measurements._write``) corrupted with h5py in every split (NaN in
``y``, a wrong ``y`` shape, a text ``sigma``, an integer ``x``, ``x`` of 1 row beside ``y`` of 3,
a huge declared dataset, a mask of 0.5, data edited after the hashes were written); reading it,
training on it and evaluating zero-filled on it all fail with one ``DataFileError`` that names
the store and the rebuild command, and nothing is written (no ``model.pt``, no ``metrics.csv``).
Finding 7: ``import-metrics`` refuses a non-integer ``sample`` and a non-UTF-8 file, and
``train --method adversarial`` without ``scenario`` in ``--spec`` names the missing key and the
fix, all as one line with exit status 2.
"""

from __future__ import annotations

import json
import re
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from report_data import make_metrics, with_provenance, write_store
from ssibench.cli import main
from ssibench.data.identity import store_identity, write_hashes
from ssibench.data.measurements import read_measurements, write_measurements
from ssibench.errors import DataFileError
from ssibench.evaluation.evaluate import evaluate
from ssibench.simulate import simulate
from ssibench.training import CHECKPOINT, MODEL, RUN_RECORD, train
from test_external_runs import MODEL_SPEC, SCENARIO_SPEC
from test_measurements import H, W, _write

CPU = torch.device("cpu")
SPLITS = ("train", "val", "test")
#: Rows per split of the crafted stores (over 1 each, so "x of 1 row" is a mismatch in each).
ROWS = (3, 2, 3)
#: The declared shape of the finding's huge dataset: 960 GB of float32 in a few bytes of header.
HUGE_SHAPE = (3, 2, 200000, 200000)


def _replace(group: h5py.Group, key: str, **dataset: object) -> None:
    del group[key]
    group.create_dataset(key, **dataset)


def _nan_in_y(handle: h5py.File, split: str) -> None:
    handle[split]["y"][0, 0, 0, 0] = np.nan


def _wrong_y_shape(handle: h5py.File, split: str) -> None:
    y = handle[split]["y"][()]
    _replace(handle[split], "y", data=y[:, 0])  # the real/imaginary dim dropped: (n, H, W)


def _text_sigma(handle: h5py.File, split: str) -> None:
    handle.attrs["sigma"] = "0.05"


def _integer_x(handle: h5py.File, split: str) -> None:
    _replace(handle[split], "x", data=np.zeros(handle[split]["x"].shape, dtype=np.int64))


def _one_row_of_x(handle: h5py.File, split: str) -> None:
    _replace(handle[split], "x", data=handle[split]["x"][:1])


def _huge_y(handle: h5py.File, split: str) -> None:
    _replace(handle[split], "y", shape=HUGE_SHAPE, dtype=np.float32)


def _half_mask(handle: h5py.File, split: str) -> None:
    handle[split]["mask"][0] = 0.5


def _edited_y(handle: h5py.File, split: str) -> None:
    handle[split]["y"][0] += 1.0  # finite, the right shape: only the hash tells


#: corruption → the message after "<store>: " (a regex; ``{split}`` is the split read).
CORRUPTIONS: dict[str, tuple[Callable[[h5py.File, str], None], str]] = {
    "nan-in-y": (
        _nan_in_y,
        r"dataset '{split}/y' holds values that are not finite \(NaN or inf\) in slice\(s\) 0;",
    ),
    "wrong-y-shape": (
        _wrong_y_shape,
        r"dataset '{split}/y' has shape \(\d, 8, 8\), expected \(\d, 2, H, W\) for single-coil "
        r"measurements",
    ),
    "text-sigma": (
        _text_sigma,
        r"attribute 'sigma' is '0.05', expected the noise standard deviation, one finite number",
    ),
    "integer-x": (_integer_x, r"dataset '{split}/x' has dtype int64, expected floats;"),
    "one-row-of-x": (
        _one_row_of_x,
        r"dataset '{split}/x' has shape \(1, 2, 8, 8\), expected \(\d, 2, 8, 8\) for single-coil "
        r"data \(n = \d slices as '{split}/index' has",
    ),
    "huge-declared-y": (
        _huge_y,
        r"dataset '{split}/y' declares shape \(3, 2, 200000, 200000\) \(960,000,000,000 bytes\) "
        r"but the file holds 0 bytes of it;",
    ),
    "mask-of-one-half": (_half_mask, r"dataset '{split}/mask' holds values other than 0 and 1"),
    "edited-after-hashing": (
        _edited_y,
        r"the data of split '{split}' do not match its hash \(attribute 'hash_{split}'\): the "
        r"file was changed after ssibench wrote it",
    ),
}


def _crafted(tmp_path: Path, corrupt: Callable[[h5py.File, str], None]) -> Path:
    """A valid tiny single-coil store, then ``corrupt`` applied to each of its splits."""
    store = tmp_path / "store.h5"
    _write(store, torch.Generator().manual_seed(0), n=ROWS)
    read_measurements(store, "train")  # valid before it is corrupted
    with h5py.File(store, "a") as handle:
        for split in SPLITS:
            corrupt(handle, split)
    return store


def _refused(store: Path, split: str, pattern: str) -> str:
    """The error of reading ``split`` of ``store``, checked to name it and the rebuild command."""
    with pytest.raises(DataFileError) as raised:
        read_measurements(store, split)
    message = str(raised.value)
    assert message.startswith(f"{store}: ")
    assert re.search(pattern.replace("{split}", split), message), message
    assert "snakemake --cores all --force data/measurements/" in message  # the rebuild command
    return message


@pytest.mark.parametrize("case", CORRUPTIONS)
def test_a_corrupt_store_is_one_clear_error_and_nothing_is_written(
    case: str, tmp_path: Path
) -> None:
    corrupt, pattern = CORRUPTIONS[case]
    store = _crafted(tmp_path, corrupt)
    for split in SPLITS:
        _refused(store, split, pattern)
    run = tmp_path / "run"
    with pytest.raises(DataFileError, match=re.escape(f"{store}: ")):
        train(store, run, "mc", 0, {"model": MODEL_SPEC, "train": {"epochs": 1}}, CPU)
    assert not any((run / name).exists() for name in (MODEL, CHECKPOINT, RUN_RECORD))
    # zero-filled has no model.pt: the store is blamed, not a network that never existed
    metrics, samples = tmp_path / "zf" / "metrics.csv", tmp_path / "zf" / "samples.npz"
    with pytest.raises(DataFileError) as raised:
        evaluate(store, "zero-filled", tmp_path / "zf", 0, {}, CPU, metrics, samples)
    assert str(raised.value).startswith(f"{store}: ")
    assert MODEL not in str(raised.value)
    assert not metrics.exists()
    assert not samples.exists()


def test_zero_filled_blames_the_store_when_its_finite_data_overflow(tmp_path: Path) -> None:
    """y finite but near the float32 maximum, hashes rewritten: Aᴴy overflows, no model.pt."""
    store = _crafted(tmp_path, lambda handle, split: None)
    with h5py.File(store, "a") as handle:
        handle["test/y"][...] = np.float32(3e38)
        write_hashes(handle)  # a store written so, not edited afterwards
    metrics, samples = tmp_path / "zf" / "metrics.csv", tmp_path / "zf" / "samples.npz"
    with pytest.raises(DataFileError) as raised:
        evaluate(store, "zero-filled", tmp_path / "zf", 0, {}, CPU, metrics, samples)
    message = str(raised.value)
    assert message.startswith(f"{store}: the zero-filled reconstruction Aᴴy of test slice(s) ")
    assert MODEL not in message
    assert not metrics.exists()
    assert not samples.exists()


def test_a_huge_declared_dataset_is_refused_before_anything_is_allocated(tmp_path: Path) -> None:
    store = _crafted(tmp_path, _huge_y)
    assert store.stat().st_size < 1_000_000  # 960 GB declared in a tiny file
    tracemalloc.start()
    try:
        _refused(store, "train", CORRUPTIONS["huge-declared-y"][1])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 10_000_000


def test_measured_k_space_keeps_its_nan_ground_truth_but_not_nan_measurements(
    tmp_path: Path,
) -> None:
    """``x`` is NaN by design without ground truth (never written); a NaN ``y`` is still refused."""
    store, n_coils, n = tmp_path / "measured.h5", 2, 2
    with write_measurements(
        store,
        scenario="measured",
        physics_kind="measured-multicoil",
        sigma=0.01,
        spec={"physics": "measured-multicoil"},
        seed=0,
        slices_file="raw",
        coil_maps=None,
    ) as writer:
        for split, rows in zip(SPLITS, (n, 0, 0), strict=True):
            writer.create_split(
                split,
                torch.zeros(rows, dtype=torch.int64),
                (2, n_coils, H, W),
                per_sample_maps=True,
            )
            if rows:
                y = torch.randn(rows, 2, n_coils, H, W)
                maps = torch.ones(rows, n_coils, H, W, dtype=torch.complex64)
                writer.write_rows(split, 0, None, y, torch.ones(rows, 1, H, W), maps)
    data = read_measurements(store, "train")
    assert not data.has_ground_truth
    assert bool(data.x.isnan().all())
    assert data.x.shape == (n, 2, H, W)
    assert data.coil_maps.shape == (n, n_coils, H, W)
    with h5py.File(store, "a") as handle:
        handle["train/y"][1, 0, 0, 0, 0] = np.inf
    _refused(store, "train", r"dataset 'train/y' holds values that are not finite .* slice\(s\) 1;")


# ---------------------------------------------------------------- finding 7: tracebacks


def _metrics_file(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    """A store of 3 test slices and a metrics table of one zero-filled run on it."""
    store = tmp_path / "store.h5"
    frame = make_metrics({("zero-filled", 0): [20.0, 21.0, 22.0]})
    return store, with_provenance(frame, write_store(store))


def _import(store: Path, metrics: Path, out: Path) -> int:
    args = ["import-metrics", "--data", store, "--metrics", metrics, "--scenario", "noisy"]
    return main([str(arg) for arg in [*args, "--name", "theirs", "--label", "T", "--out", out]])


@pytest.mark.parametrize(
    ("sample", "shown"), [("abc", "'abc'"), (0.5, "0.5"), (None, "an empty value")]
)
def test_import_metrics_refuses_a_sample_that_is_not_a_whole_number(
    sample: object, shown: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, frame = _metrics_file(tmp_path)
    good, bad, out = tmp_path / "good.csv", tmp_path / "bad.csv", tmp_path / "out.csv"
    frame.to_csv(good, index=False)
    assert _import(store, good, tmp_path / "good_out.csv") == 0  # the file before the edit
    frame = frame.astype({"sample": object})
    frame.loc[1, "sample"] = sample  # 0.5 was silently truncated to 0 by astype(int)
    frame.to_csv(bad, index=False)
    assert _import(store, bad, out) == 2
    err = capsys.readouterr().err
    assert f"{bad}: column 'sample' holds {shown} (data row(s) 2), expected whole numbers; " in err
    assert f"compute it again on the test split of {store}" in err
    assert "Traceback" not in err
    assert not out.exists()


def test_import_metrics_refuses_a_file_that_is_not_utf8(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, frame = _metrics_file(tmp_path)
    latin, out = tmp_path / "latin1.csv", tmp_path / "out.csv"
    frame.assign(method="modèle").to_csv(latin, index=False, encoding="latin-1")
    assert _import(store, latin, out) == 2
    err = capsys.readouterr().err
    assert f"{latin}: cannot read the metrics: not UTF-8 text (" in err
    assert "save it as UTF-8, or compute it again on the test split of" in err
    assert "Traceback" not in err
    assert not out.exists()


def test_train_adversarial_without_scenario_names_the_key_and_the_fix(
    tmp_path: Path, tiny_slices: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = simulate(tiny_slices, tmp_path / "store.h5", "sc", SCENARIO_SPEC, seed=0)
    run = tmp_path / "run"
    spec = {"model": MODEL_SPEC, "train": {"epochs": 1, "batch_size": 2}}
    options = {"method_options": {"d_dim": 4, "d_blocks": 2}}
    args = ["train", "--data", str(store), "--out-dir", str(run), "--method", "adversarial"]
    args += ["--device", "cpu"]
    assert main([*args, "--spec", json.dumps({**spec, **options})]) == 2
    err = capsys.readouterr().err
    assert "error: scenario.mask: missing; method 'adversarial' draws new acquisition masks" in err
    fix = re.search(r"--spec '(\{.*?\}\})'", err)
    assert fix is not None, err
    assert not any((run / name).exists() for name in (MODEL, CHECKPOINT, RUN_RECORD))
    # the fix works: the scenario slice of the hint (with this store's acceleration) trains
    scenario = {**json.loads(fix.group(1))["scenario"], "acceleration": 4}
    assert main([*args, "--spec", json.dumps({**spec, **options, "scenario": scenario})]) == 0
    assert (run / MODEL).exists()
    assert store_identity(store).training_hash  # the store itself was read without complaint
