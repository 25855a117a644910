"""``evaluate.final_dc``: the optional data-consistency step after inference, and k-space errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from ssibench.config.records import parse_evaluate_config
from ssibench.errors import ConfigError
from ssibench.evaluation.consistency import apply_final_dc, kspace_errors, resolve_final_dc
from ssibench.evaluation.evaluate import evaluate
from ssibench.fft import fft2c, to_complex
from ssibench.physics import MultiCoilMRI, SingleCoilMRI, birdcage_maps
from ssibench.simulate import simulate
from ssibench.training import train

CPU = torch.device("cpu")


def _mask(generator: torch.Generator, batch: int = 3, size: int = 16) -> torch.Tensor:
    columns = (torch.rand(batch, size, generator=generator) < 0.4).float()
    return columns[:, None, None, :].expand(batch, 1, size, size).contiguous()


def test_hard_dc_overwrites_the_acquired_points_in_single_coil(generator) -> None:
    mask = _mask(generator)
    physics = SingleCoilMRI(mask)
    x, x_hat = torch.randn(2, 3, 2, 16, 16, generator=generator)
    y = physics.A(x)
    corrected = apply_final_dc(x_hat, y, physics, "hard")
    k_hat, k = fft2c(to_complex(x_hat)), fft2c(to_complex(corrected))
    acquired = mask[:, 0] > 0
    assert torch.allclose(k[acquired], fft2c(to_complex(x))[acquired], atol=1e-5)
    assert torch.allclose(k[~acquired], k_hat[~acquired], atol=1e-5)
    assert apply_final_dc(x_hat, y, physics, "none") is x_hat
    errors = kspace_errors(corrected, x, physics)
    assert errors.acquired.max() < 1e-5
    assert errors.unacquired.min() > 0.1


def test_hard_dc_makes_multicoil_reconstructions_consistent(generator) -> None:
    physics = MultiCoilMRI(_mask(generator), birdcage_maps(4, 16, 16), cg_max_iter=200, cg_tol=1e-7)
    x, x_hat = torch.randn(2, 3, 2, 16, 16, generator=generator)
    y = physics.A(x)
    before = kspace_errors(x_hat, x, physics).acquired
    after = kspace_errors(apply_final_dc(x_hat, y, physics, "hard"), x, physics).acquired
    assert after.max() < 1e-3 < before.min()


def test_noiseless_applies_hard_dc_only_to_noiseless_data() -> None:
    assert resolve_final_dc("noiseless", 0.0) == "hard"
    assert resolve_final_dc("noiseless", 0.1) == "none"
    assert resolve_final_dc("hard", 0.1) == "hard"


def test_unknown_final_dc_is_refused() -> None:
    with pytest.raises(
        ConfigError, match=r"evaluate\.final_dc: got 'soft'; allowed: none, hard, noiseless"
    ):
        parse_evaluate_config({"final_dc": "soft"})


def test_evaluate_with_hard_dc_changes_only_the_network_rows(tmp_path, tiny_slices: Path) -> None:
    scenario = {"physics": "single-coil", "sigma": 0.0, "mask": "gaussian", "acceleration": 4}
    spec = {
        "model": {"num_iter": 1, "scales": 2, "width": 4},
        "train": {"epochs": 1, "batch_size": 2},
        "method_options": {},
        "scenario": scenario,
        "evaluate": {"n_samples": 1},
    }
    store = simulate(tiny_slices, tmp_path / "store.h5", "sc", scenario, seed=0)
    run = tmp_path / "run"
    train(store, run, "ssdu", 0, spec, CPU)
    plain = evaluate(store, "ssdu", run, 0, spec, CPU, tmp_path / "a.csv", tmp_path / "a.npz")
    hard_spec = {**spec, "evaluate": {"n_samples": 1, "final_dc": "hard"}}
    hard = evaluate(store, "ssdu", run, 0, hard_spec, CPU, tmp_path / "b.csv", tmp_path / "b.npz")
    pd.testing.assert_series_equal(plain["zf_psnr"], hard["zf_psnr"])
    assert not np.allclose(plain["psnr"], hard["psnr"])
