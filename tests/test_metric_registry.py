"""The metric registry: built-ins unchanged, a registered metric as a column, clashes refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from snakemake.utils import update_config, validate
from torch import Tensor

from ssibench.config import drop_disabled_scenarios
from ssibench.data.identity import store_identity
from ssibench.errors import ConfigError
from ssibench.evaluation import (
    METRIC_MODES,
    METRICS,
    complex_abs,
    compute_metrics,
    image_metrics,
    register_metric,
)
from ssibench.evaluation.evaluate import evaluate
from ssibench.pipeline import check_config, plan_runs
from ssibench.report.checks import check_metrics
from ssibench.report.leaderboard import leaderboard_table
from ssibench.simulate import simulate

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = {
    "physics": "single-coil",
    "sigma": 0.0,
    "shared_mask": False,
    "mask": "gaussian",
    "acceleration": 4,
    "center_fraction": None,
}
CPU = torch.device("cpu")


def mean_absolute_error(x_hat: Tensor, x: Tensor) -> Tensor:
    """MAE = (1/HW) Σ ||x̂| − |x|| per image: ``(B, 2, H, W)`` → ``(B,)``."""
    return (complex_abs(x_hat) - complex_abs(x)).abs().mean(dim=(1, 2, 3))


@pytest.fixture
def mae():
    """The metric ``mae`` registered for one test, then removed from the registry."""
    register_metric("mae", mean_absolute_error, higher_is_better=False)
    yield "mae"
    METRICS.pop("mae", None)


@pytest.fixture(scope="module")
def store(tmp_path_factory, tiny_slices: Path) -> Path:
    root = tmp_path_factory.mktemp("registry")
    return simulate(tiny_slices, root / "store.h5", "sc", SCENARIO, seed=0)


def _zero_filled(store: Path, out: Path, **spec) -> pd.DataFrame:
    spec = {"train": {"batch_size": 2}, "evaluate": {"n_samples": 2}, **spec}
    return evaluate(store, "zero-filled", out, 0, spec, CPU, out / "m.csv", out / "s.npz")


def test_the_builtins_are_registered_and_give_image_metrics_bit_for_bit(generator) -> None:
    x = torch.rand(3, 2, 16, 16, generator=generator)
    x_hat = x + 0.05 * torch.randn(x.shape, generator=generator)
    assert list(METRICS)[:3] == ["psnr", "ssim", "nmse"]
    assert [METRICS[k].higher_is_better for k in ("psnr", "ssim", "nmse")] == [True, True, False]
    for mode in METRIC_MODES:
        expected = image_metrics(x_hat, x, mode)
        computed = compute_metrics(x_hat, x, ["psnr", "ssim", "nmse"], mode)
        for name, value in expected.items():
            assert torch.equal(computed[name], value)
            assert torch.equal(METRICS[name](x_hat, x, mode), value)


def test_a_registered_metric_has_hand_checked_values(mae) -> None:
    x = torch.zeros(2, 2, 8, 8)
    x[:, 0] = 1.0  # |x| = 1
    x_hat = torch.zeros(2, 2, 8, 8)
    x_hat[0, 0], x_hat[0, 1] = 0.9, 1.2  # |x̂| = 1.5 everywhere: MAE 0.5
    x_hat[1, 0, :4] = 1.0  # rows 0-3: |x̂| = 1, error 0 on 32 pixels
    x_hat[1, 0, 4:6] = 3.0  # rows 4-5: error 2 on 16 pixels; rows 6-7: |x̂| = 0, error 1 on 16
    for mode in METRIC_MODES:
        values = compute_metrics(x_hat, x, [mae], mode)[mae]
        torch.testing.assert_close(values, torch.tensor([0.5, (2 * 16 + 1 * 16) / 64]))
    assert METRICS[mae].higher_is_better is False


def test_a_registered_metric_is_a_column_of_metrics_csv(store, mae, tmp_path) -> None:
    default = _zero_filled(store, tmp_path / "default")
    chosen = _zero_filled(store, tmp_path / "mae", metrics=["psnr", "ssim", "nmse", mae])
    assert list(chosen.columns) == [
        *["scenario", "method", "seed", "sample", "mode", "psnr", "ssim", "nmse", mae],
        *["zf_psnr", "zf_ssim", "zf_nmse", f"zf_{mae}", "store_hash", "code_hash"],
    ]
    pd.testing.assert_frame_equal(chosen[default.columns], default)  # built-ins unchanged
    # Hand check from the saved magnitudes (n_samples = the whole test split of 2 slices).
    samples = np.load(tmp_path / "mae" / "s.npz")
    by_hand = np.abs(samples["zero_filled"] - samples["target"]).mean(axis=(1, 2))
    for mode in METRIC_MODES:  # mode-independent: the same value in both modes' rows
        rows = chosen[chosen["mode"] == mode].sort_values("sample")
        np.testing.assert_allclose(rows[mae], by_hand, rtol=1e-5)
        np.testing.assert_array_equal(rows[mae], rows[f"zf_{mae}"])  # zero-filled is its baseline
    written = pd.read_csv(tmp_path / "mae" / "m.csv")
    assert {mae, f"zf_{mae}"} <= set(written.columns)


def test_tables_accept_extra_metric_columns(store, mae, tmp_path) -> None:
    frame = _zero_filled(store, tmp_path, metrics=["psnr", "ssim", "nmse", mae])
    check_metrics(pd.read_csv(tmp_path / "m.csv"), tmp_path / "m.csv", store_identity(store))
    table = leaderboard_table(frame)
    assert table.loc[0, "method"] == "zero-filled"
    assert table.loc[0, "psnr_mean"] == pytest.approx(frame.query("mode == 'ssibench'").psnr.mean())


def test_a_clash_a_bad_name_and_a_non_callable_are_refused(mae) -> None:
    with pytest.raises(ConfigError, match="metric 'psnr' is a built-in metric; register yours"):
        register_metric("psnr", mean_absolute_error)
    with pytest.raises(ConfigError, match=r"metric 'mae' is already registered; .* 'my_mae'"):
        register_metric("mae", mean_absolute_error)
    for name in ("mode", "zf_error", "2nd", "a-b", ""):
        with pytest.raises(ConfigError, match="not a valid name"):
            register_metric(name, mean_absolute_error)
    with pytest.raises(ConfigError, match="metric 'l1': fn must be callable"):
        register_metric("l1", 1.0)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="higher_is_better must be a bool"):
        register_metric("l1", mean_absolute_error, higher_is_better="no")  # type: ignore[arg-type]
    assert "l1" not in METRICS


def test_a_metric_without_one_value_per_image_is_named(tmp_path) -> None:
    register_metric("total", lambda x_hat, x: (x_hat - x).abs().sum())
    try:
        x = torch.rand(2, 2, 8, 8)
        with pytest.raises(ConfigError, match=r"metric 'total' returned \(\), not one value"):
            compute_metrics(x, x, ["total"], "ssibench")
    finally:
        METRICS.pop("total")


def _config(**overlay):
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    update_config(config, overlay)
    drop_disabled_scenarios(config)
    validate(config, str(ROOT / "workflow" / "schemas" / "config.schema.yaml"))
    return config


def test_the_config_chooses_the_metrics_and_unknown_names_stop_the_dag(mae) -> None:
    config = _config()
    assert config["metrics"] == ["psnr", "ssim", "nmse"]  # the schema default
    check_config(config)
    plan = plan_runs(config)
    assert '"metrics"' not in plan.evaluate_spec("noisy", "mc")  # default: params unchanged
    config = _config(metrics=["psnr", "ssim", "nmse", mae])
    check_config(config)
    assert '"metrics": ["psnr", "ssim", "nmse", "mae"]' in plan_runs(config).evaluate_spec(
        "noisy", "zero-filled"
    )
    with pytest.raises(ConfigError, match=r"metrics\[3\]: unknown metric 'mea' \(did you mean "):
        check_config(_config(metrics=["psnr", "ssim", "nmse", "mea"]))
    with pytest.raises(ConfigError, match="valid: psnr, ssim, nmse, mae"):
        check_config(_config(metrics=["psnr", "ssim", "nmse", "lpips"]))
    with pytest.raises(ConfigError, match="metrics: ssim missing"):
        check_config(_config(metrics=["psnr", "nmse", mae]))
