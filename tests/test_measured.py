"""measured-multicoil: k-space undersampled at acquisition, without ground truth (training only)."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from ssibench.data.demo import write_demo_volumes
from ssibench.data.fastmri import BadVolumeError
from ssibench.data.kspace import (
    acquired_columns,
    centre_acs_lines,
    crop_kspace,
    read_kspace_slices,
    slices_around_middle,
    write_undersampled_volumes,
)
from ssibench.data.measurements import read_measurements
from ssibench.errors import ConfigError, DataFileError
from ssibench.fft import to_complex
from ssibench.methods import skip_reason
from ssibench.simulate import simulate_scenario
from ssibench.simulate.acquired_spec import validate_measured_spec

SIZE = 24
ESPIRIT = {"threshold": 0.005, "crop": 0.8}


@pytest.fixture(scope="module")
def measured_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four demo volumes (3 slices, 4 coils, 48 × 24 k-space) undersampled 2× with 8 ACS lines."""
    root = tmp_path_factory.mktemp("measured")
    write_demo_volumes(
        root / "raw", n_volumes=4, n_slices=3, height=SIZE, width=SIZE, n_coils=4, seed=0
    )
    write_undersampled_volumes(root / "raw", root / "kspace", "random", 2.0, 8, seed=0)
    return root


def _spec(folder: Path, **extra: object) -> dict[str, object]:
    return {
        "physics": "measured-multicoil",
        "kspace_dir": str(folder),
        "crop": [SIZE, SIZE],
        "slices_per_volume": 2,
        "espirit": ESPIRIT,
        **extra,
    }


def test_undersampled_volumes_have_the_test_set_layout(measured_dir: Path) -> None:
    path = measured_dir / "kspace" / "demo_000.h5"
    with h5py.File(path) as handle:
        assert "reconstruction_rss" not in handle
        mask = handle["mask"][()]
        kspace = handle["kspace"][()]
        assert handle.attrs["num_low_frequency"] == 8
    assert mask.shape == (SIZE,)
    assert mask.sum() == SIZE // 2  # R = 2
    assert np.all(kspace[..., ~mask] == 0)
    assert np.all(np.abs(kspace[..., mask]).sum((0, 1, 2)) > 0)
    columns = acquired_columns(path, torch.from_numpy(kspace))
    assert columns.tolist() == mask.tolist()
    assert centre_acs_lines(columns) >= 8


def test_the_columns_come_from_the_data_without_a_mask_and_a_contradiction_is_refused(
    tmp_path: Path,
) -> None:
    kspace = torch.zeros(1, 2, 6, 8, dtype=torch.complex64)
    kspace[..., [1, 3, 4, 5]] = 1
    path = tmp_path / "v.h5"
    with h5py.File(path, "w") as handle:
        handle.create_dataset("kspace", data=kspace.numpy())
    assert acquired_columns(path, kspace).nonzero().flatten().tolist() == [1, 3, 4, 5]
    assert centre_acs_lines(acquired_columns(path, kspace)) == 3  # columns 3, 4, 5 around 4
    with h5py.File(path, "a") as handle:
        handle.create_dataset("mask", data=np.array([0, 1, 0, 1, 1, 0, 0, 0], bool))
    with pytest.raises(BadVolumeError, match=r"columns \[5\] hold data that its mask marks"):
        acquired_columns(path, kspace)


def test_the_store_keeps_the_acquired_samples_and_holds_no_ground_truth(measured_dir: Path) -> None:
    store = simulate_scenario(
        None, measured_dir / "m.h5", "measured", _spec(measured_dir / "kspace"), seed=0
    )
    train = read_measurements(store, "train")
    assert len(train) == 4 * 2  # every volume, two slices around the middle
    assert len(read_measurements(store, "val")) == 0
    assert len(read_measurements(store, "test")) == 0
    assert not train.has_ground_truth
    assert torch.isnan(train.x).all()
    assert train.coil_maps.shape == (8, 4, SIZE, SIZE)
    assert train.sigma > 0
    with h5py.File(store) as handle:
        scale = handle["train/scale"][()]
        assert json.loads(handle.attrs["volumes"])[0] == "demo_000.h5"
        assert json.loads(handle.attrs["filtered_out"]) == []
    # y = M ⊙ (readout-cropped k) / s on the file's own columns, exactly 0 elsewhere
    path = measured_dir / "kspace" / "demo_000.h5"
    with h5py.File(path) as handle:
        mask = torch.from_numpy(handle["mask"][()])
    raw = read_kspace_slices(path, slices_around_middle(3, 2))
    expected = (
        crop_kspace(raw, (SIZE, SIZE))[..., mask] / torch.from_numpy(scale[:2])[:, None, None, None]
    )
    y = to_complex(train.y[:2])
    assert torch.equal(train.masks[0, 0, 0].bool(), mask)
    assert torch.all(y[..., ~mask] == 0)
    torch.testing.assert_close(y[..., mask], expected, rtol=1e-4, atol=1e-6)


def test_volumes_that_do_not_fit_are_left_out_and_named(measured_dir: Path) -> None:
    spec = _spec(measured_dir / "kspace", crop=[SIZE, SIZE - 4])  # not the data's width
    with pytest.raises(DataFileError, match="no volume is left"):
        simulate_scenario(None, measured_dir / "bad.h5", "measured", spec, seed=0)
    narrow = _spec(measured_dir / "kspace", espirit={**ESPIRIT, "kernel_size": 12})
    with pytest.raises(DataFileError, match="no volume is left"):
        simulate_scenario(None, measured_dir / "bad.h5", "measured", narrow, seed=0)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"acceleration": 4}, r"\.acceleration: measured k-space keeps the sampling"),
        ({"sigma": 0.1}, r"\.sigma: .*carries its own noise"),
        ({"kspace_dir": ""}, r"\.kspace_dir: .*folder"),
    ],
)
def test_a_bad_measured_spec_names_the_key(change: dict, message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=message):
        validate_measured_spec("measured", _spec(tmp_path, **change))


def test_only_self_supervised_methods_train_on_it_and_nothing_is_evaluated(
    measured_dir: Path,
) -> None:
    from ssibench.evaluation.evaluate import evaluate
    from ssibench.training import train

    spec = _spec(measured_dir / "kspace")
    assert "needs ground truth" in skip_reason("sup", spec)
    assert "trains nothing" in skip_reason("zero-filled", spec)
    assert skip_reason("ssdu", spec) is None
    assert skip_reason("ensure", spec) is None  # the noise level is estimated
    store = measured_dir / "m2.h5"
    simulate_scenario(None, store, "measured", spec, seed=0)
    run_spec = {
        "model": {"num_iter": 1, "scales": 2, "width": 4},
        "train": {"epochs": 1, "batch_size": 4},
        "scenario": spec,
    }
    cpu = torch.device("cpu")
    with pytest.raises(DataFileError, match="no ground truth, which method 'sup' trains on"):
        train(store, measured_dir / "sup", "sup", 0, run_spec, cpu)
    model = train(store, measured_dir / "ssdu", "ssdu", 0, run_spec, cpu)
    assert model.is_file()
    with pytest.raises(DataFileError, match=r"no ground truth to score.*training only"):
        evaluate(
            store,
            "ssdu",
            model.parent,
            0,
            run_spec,
            cpu,
            measured_dir / "m.csv",
            measured_dir / "s.npz",
        )


def test_the_plan_trains_a_measured_scenario_and_gives_it_no_leaderboard(
    measured_dir: Path,
) -> None:
    import yaml
    from snakemake.utils import update_config

    from ssibench.pipeline import check_config, plan_runs

    root = Path(__file__).resolve().parents[1]
    config = yaml.safe_load((root / "config" / "config.yaml").read_text())
    scenario = {k: v for k, v in _spec(measured_dir / "kspace").items() if k != "physics"}
    update_config(
        config, {"scenarios": {"acquired": {"physics": "measured-multicoil", **scenario}}}
    )
    config["methods"] = ["zero-filled", "sup", "ssdu"]
    check_config(config)
    plan = plan_runs(config)
    assert [run for run in plan.runs if run[0] == "acquired"] == [("acquired", "ssdu", 0)]
    assert dict(plan.skipped["acquired"]).keys() == {"zero-filled", "sup"}
    targets = plan.all_targets()
    assert plan.run_path("acquired", "ssdu", 0, "model.pt") in targets
    assert f"{plan.results}/figures/curves_acquired.png" in targets
    assert not [t for t in targets if "leaderboard_acquired" in t or "samples_acquired" in t]
    assert "acquired" not in plan.evaluated_scenarios()

    # its model.pt scored elsewhere: a planned run's path needs no file yet, with transfer only
    external = {"label": "SSDU (acquired)", "metrics": None, "method": None, "model_spec": {}}
    model = plan.run_path("acquired", "ssdu", 0, "model.pt")
    run = {**external, "scenario": "raw-multicoil", "checkpoint": model, "transfer": True}
    config["external_runs"] = {"ssdu-acquired": run}
    check_config(config)
    assert plan_runs(config).external_transfer_option("ssdu-acquired") == "--transfer"
    for change, message in [
        ({"transfer": False}, "no such file"),
        ({"scenario": "acquired"}, "has no ground truth to score a run on"),
        ({"checkpoint": None, "metrics": "m.csv"}, r"transfer: only a checkpoint"),
    ]:
        config["external_runs"] = {"ssdu-acquired": {**run, **change}}
        with pytest.raises(ConfigError, match=message):
            check_config(config)
    config["external_runs"] = {}

    config["scenarios"]["acquired"]["kspace_dir"] = str(measured_dir / "nothing-here")
    with pytest.raises(ConfigError, match=r"acquired\.kspace_dir: .*no \.h5 volumes.*undersample"):
        check_config(config)


def test_a_measured_run_is_scored_on_a_reference_scenario_by_transfer(measured_dir: Path) -> None:
    """--transfer: same scores as the bare weights, with the run's code hash; refused without."""
    import pandas as pd

    from ssibench.data.slices import extract_slices
    from ssibench.evaluation.checkpoint import read_checkpoint
    from ssibench.evaluation.evaluate import evaluate_checkpoint
    from ssibench.training import train

    spec = _spec(measured_dir / "kspace")
    store = simulate_scenario(None, measured_dir / "m3.h5", "prospective", spec, seed=0)
    model_spec = {"num_iter": 1, "scales": 2, "width": 4}
    run_spec = {"model": model_spec, "train": {"epochs": 1, "batch_size": 4}, "scenario": spec}
    cpu = torch.device("cpu")
    model = train(store, measured_dir / "run", "ssdu", 0, run_spec, cpu)
    slices = measured_dir / "slices.h5"
    extract_slices(measured_dir / "raw", slices, (SIZE, SIZE), (0.5, 0.25, 0.25), seed=0)
    reference = {
        "physics": "raw-multicoil",
        "mask": "random",
        "acceleration": 2,
        "center_lines": 8,
        "crop": [SIZE, SIZE],
        "espirit": ESPIRIT,
    }
    ref = simulate_scenario(
        slices, measured_dir / "ref.h5", "ref", reference, 0, raw_dir=measured_dir / "raw"
    )
    out = measured_dir / "transfer"
    with pytest.raises(DataFileError, match=r"trained on other data.*--transfer"):
        evaluate_checkpoint(ref, read_checkpoint(model), cpu, out / "a.csv", out / "a.npz")
    moved = evaluate_checkpoint(
        ref, read_checkpoint(model), cpu, out / "m.csv", out / "m.npz", transfer=True
    )
    torch.save(torch.load(model, weights_only=True)["model"], out / "weights.pt")
    bare = read_checkpoint(out / "weights.pt", method="ssdu", seed=0, model_spec=model_spec)
    plain = evaluate_checkpoint(ref, bare, cpu, out / "p.csv", out / "p.npz")
    assert set(moved["scenario"]) == {"ref"}
    record = torch.load(model, weights_only=True)["record"]
    assert set(moved["code_hash"]) == {record["code"]["hash"]}
    pd.testing.assert_frame_equal(moved.drop(columns="code_hash"), plain.drop(columns="code_hash"))
