"""ssibench import-measurements: DeepInverse generate_dataset files → measurement stores.

The files are written with h5py in DeepInverse 0.5.0's exact layout (``dinv_dataset0.h5`` with
``x_<split>``, ``y_<split>``, ``mask_<split>`` and the attribute ``operator``; ``physics0.pt`` the
operator's state dict), measured as DeepInverse measures: y = M ⊙ (F x + σ ε).
tests/test_parity_import_measurements.py does the same with files DeepInverse writes itself.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from ssibench.cli import main
from ssibench.data.measurements import read_measurements
from ssibench.errors import ConfigError, DataFileError
from ssibench.evaluation.functional import complex_abs, psnr
from ssibench.fft import fft2c, to_complex, to_real
from ssibench.interop.measurements import UNSEEDED, import_measurements
from ssibench.masks import GaussianMaskGenerator
from ssibench.physics import birdcage_maps, build_operator

H, W = 16, 12
SPEC = {"mask": "gaussian", "acceleration": 4}


def _measure(x: torch.Tensor, mask: torch.Tensor, maps: torch.Tensor | None, sigma: float, gen):
    """DeepInverse's MRI / MultiCoilMRI forward: M ⊙ (A x + σ ε), ε per real component."""
    image = to_complex(x)
    k = fft2c(image if maps is None else maps * image.unsqueeze(1))
    y = to_real(k)
    y = y + sigma * torch.randn(y.shape, generator=gen)
    return (mask.unsqueeze(2) if maps is not None else mask) * y


def write_deepinv_file(
    folder: Path,
    *,
    sizes: dict[str, int] | None = None,
    per_sample: bool = True,
    sigma: float = 0.0,
    coils: int = 0,
) -> tuple[Path, Path]:
    """``dinv_dataset0.h5`` and ``physics0.pt`` as ``generate_dataset`` writes them."""
    gen = torch.Generator().manual_seed(1)
    sizes = {"train": 5, "test": 3} if sizes is None else sizes
    sampler = GaussianMaskGenerator(acceleration=4, center_fraction=0.2)
    fixed = sampler.sample(1, H, W, gen)
    maps = birdcage_maps(coils, H, W) if coils else None
    folder.mkdir(parents=True, exist_ok=True)
    with h5py.File(folder / "dinv_dataset0.h5", "w") as handle:
        handle.attrs["operator"] = "MultiCoilMRI" if coils else "MRI"
        for split, n in sizes.items():
            x = torch.stack([torch.rand(n, H, W, generator=gen), torch.zeros(n, H, W)], dim=1)
            x[:, 1] = 0.1 * torch.rand(n, H, W, generator=gen)  # complex images are allowed
            masks = sampler.sample(n, H, W, gen) if per_sample else fixed.expand(n, -1, -1, -1)
            handle.create_dataset(f"x_{split}", data=x.numpy())
            handle.create_dataset(f"y_{split}", data=_measure(x, masks, maps, sigma, gen).numpy())
            if per_sample:
                handle.create_dataset(f"mask_{split}", data=masks.numpy())
    state = OrderedDict(mask=torch.cat([fixed, fixed], dim=1))  # DeepInverse's (1, 2, H, W)
    if maps is not None:
        state["coil_maps"] = maps.unsqueeze(0)
    if sigma:
        state["noise_model.sigma"] = torch.tensor(sigma)
    torch.save(state, folder / "physics0.pt")
    return folder / "dinv_dataset0.h5", folder / "physics0.pt"


def _edit(path: Path, name: str, values: np.ndarray | None) -> None:
    """Replace (or, given None, delete) dataset ``name`` of ``path``."""
    with h5py.File(path, "a") as handle:
        del handle[name]
        if values is not None:
            handle.create_dataset(name, data=values)


def _read(path: Path, name: str) -> np.ndarray:
    with h5py.File(path, "r") as handle:
        return handle[name][()]


def test_per_sample_noisy_file_becomes_a_store_with_the_same_bytes(tmp_path: Path) -> None:
    source, state = write_deepinv_file(tmp_path / "dinv", sigma=0.05)
    out = tmp_path / "noisy.h5"
    summary = import_measurements(source, out, physics=SPEC, physics_state=state)
    assert summary.sizes == {"train": 5, "val": 0, "test": 3}
    assert summary.sigma == 0.05  # the float32 buffer read back as the decimal it was
    assert summary.accelerations["train"] == pytest.approx(4, rel=0.3)
    for split in ("train", "test"):
        data = read_measurements(out, split)
        assert np.array_equal(data.x.numpy(), _read(source, f"x_{split}"))
        assert np.array_equal(data.y.numpy(), _read(source, f"y_{split}"))
        assert np.array_equal(data.masks.numpy(), _read(source, f"mask_{split}"))
        assert data.index.tolist() == list(range(len(data)))
        assert data.physics_kind == "single-coil"
        assert data.sigma == 0.05
    assert len(read_measurements(out, "val")) == 0  # no val in the file: training skips it
    with h5py.File(out, "r") as handle:
        spec, record = json.loads(handle.attrs["spec"]), json.loads(handle.attrs["imported_from"])
        assert handle.attrs["seed"] == UNSEEDED
        assert handle.attrs["slices_file"] == str(source)
    assert spec["physics"] == "single-coil"
    assert spec["shared_mask"] is False
    assert spec["sigma"] == 0.05
    assert spec["mask"] == "gaussian"
    assert record["format"] == "deepinv.datasets.generate_dataset"
    assert record["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    assert record["physics"] == SPEC
    assert record["physics_state"]["file"] == str(state.resolve())


def test_zero_filled_evaluation_scores_the_imported_test_split(tmp_path: Path) -> None:
    source, state = write_deepinv_file(tmp_path / "dinv", sigma=0.05)
    out = tmp_path / "noisy.h5"
    argv = [str(source), "--physics", json.dumps(SPEC), "--physics-state", str(state)]
    assert main(["--quiet", "import-measurements", *argv, "--out", str(out)]) == 0
    metrics = tmp_path / "metrics.csv"
    run = ["--run-dir", str(tmp_path / "run"), "--out-samples", str(tmp_path / "s.npz")]
    status = main(
        [
            "--quiet",
            "evaluate",
            "--data",
            str(out),
            "--method",
            "zero-filled",
            "--device",
            "cpu",
            "--out-metrics",
            str(metrics),
            *run,
        ]
    )
    assert status == 0
    rows = pd.read_csv(metrics).query("mode == 'ssibench'").sort_values("sample")
    x, y = (torch.from_numpy(_read(source, f"{k}_test")) for k in "xy")
    physics = build_operator("single-coil", torch.from_numpy(_read(source, "mask_test")))
    expected = psnr(complex_abs(physics.A_adjoint(y)), complex_abs(x), 1.0)
    assert rows["psnr"].to_numpy() == pytest.approx(expected.numpy(), abs=1e-4)


def test_single_operator_file_takes_its_fixed_mask_and_val_from_the_files(tmp_path: Path) -> None:
    sizes = {"train": 4, "test": 2, "val": 2}
    source, state = write_deepinv_file(tmp_path / "dinv", sizes=sizes, per_sample=False)
    out = tmp_path / "fixed.h5"
    summary = import_measurements(source, out, physics={**SPEC, "sigma": 0}, physics_state=state)
    assert summary.sizes == {"train": 4, "val": 2, "test": 2}
    assert summary.noise_estimates["test"] == pytest.approx(0, abs=1e-6)
    data = read_measurements(out, "val")
    assert data.shared_mask
    assert torch.equal(data.masks, torch.load(state)["mask"][:, :1])
    with pytest.raises(DataFileError, match=r"no per-sample masks.*--physics-state .*physics0\.pt"):
        import_measurements(source, tmp_path / "x.h5", physics={**SPEC, "sigma": 0})


def test_multicoil_needs_the_coil_maps_of_the_physics_state(tmp_path: Path) -> None:
    source, state = write_deepinv_file(tmp_path / "dinv", sigma=0.02, coils=3)
    out = tmp_path / "mc.h5"
    summary = import_measurements(source, out, physics=SPEC, physics_state=state)
    assert summary.physics_kind == "multicoil"
    data = read_measurements(out, "test")
    assert torch.equal(data.coil_maps, torch.load(state)["coil_maps"][0])
    with h5py.File(out, "r") as handle:
        assert json.loads(handle.attrs["spec"])["n_coils"] == 3
    with pytest.raises(DataFileError, match=r"need their coil maps.*--physics-state"):
        import_measurements(source, tmp_path / "x.h5", physics={**SPEC, "sigma": 0.02})


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda f: _edit(f, "y_test", None), r"no dataset 'y_test'"),
        (lambda f: _edit(f, "x_train", None), r"no dataset 'x_train' \(.*supervised=False"),
        (
            lambda f: _edit(f, "x_train", _read(f, "x_train")[:, :1]),
            r"'x_train' has shape \(5, 1, 16, 12\), expected \(5, 2, 16, 12\)",
        ),
        (
            lambda f: _edit(f, "y_test", _read(f, "y_test")[:2]),
            r"'x_test' has shape \(3, 2, 16, 12\), expected \(2, 2, 16, 12\)",
        ),
        (lambda f: _edit(f, "mask_test", None), r"some splits have per-sample masks"),
        (
            lambda f: _add(f, "sigma_train", 0.1),
            r"physics generator parameters sigma",
        ),
        (lambda f: _set_attr(f, "operator", "Denoising"), r"'operator' is 'Denoising'"),
        (
            lambda f: _edit(f, "mask_train", _read(f, "mask_train")[::-1].copy()),
            r"y is not 0 at k-space points its mask says were not sampled",
        ),
        (  # a mask wider than the acquisition: zero data where it says sampled
            lambda f: _edit(f, "mask_test", np.ones_like(_read(f, "mask_test"))),
            r"split 'test', y differs from A x .* noise level of",
        ),
        (
            lambda f: _edit(f, "y_train", np.where(True, np.inf, _read(f, "y_train"))),
            r"y holds values that are not finite: row\(s\) 0, 1, 2, 3, 4",
        ),
        (
            lambda f: _edit(f, "mask_train", 0.5 * _read(f, "mask_train")),
            r"'mask_train' holds values other than 0 and 1",
        ),
    ],
    ids=[
        "missing-y",
        "unsupervised",
        "x-shape",
        "n-mismatch",
        "mask-missing-in-one-split",
        "unknown-param",
        "operator",
        "mask-of-another-row",
        "mask-wider-than-data",
        "non-finite",
        "non-binary-mask",
    ],
)
def test_malformed_files_are_refused_with_the_file_named(tmp_path: Path, edit, message) -> None:
    source, state = write_deepinv_file(tmp_path / "dinv", sigma=0.05)
    edit(source)
    out = tmp_path / "out.h5"
    with pytest.raises(DataFileError, match=message) as caught:
        import_measurements(source, out, physics=SPEC, physics_state=state)
    assert str(caught.value).startswith(str(source))
    assert not out.exists()  # nothing half-written


def _add(path: Path, name: str, value: float) -> None:
    with h5py.File(path, "a") as handle:
        handle.create_dataset(name, data=np.full(5, value, dtype=np.float32))


def _set_attr(path: Path, name: str, value: str) -> None:
    with h5py.File(path, "a") as handle:
        handle.attrs[name] = value


def test_declared_sizes_are_checked_before_anything_is_read(tmp_path, monkeypatch) -> None:
    source, state = write_deepinv_file(tmp_path / "dinv", sigma=0.05)
    with h5py.File(source, "a") as handle:  # 800 GB declared, never written
        del handle["y_train"]
        handle.create_dataset("y_train", shape=(10**6, 2, 320, 320), dtype=np.float32)
    with pytest.raises(DataFileError, match=r"declares shape \(1000000, 2, 320, 320\)"):
        import_measurements(source, tmp_path / "a.h5", physics=SPEC, physics_state=state)
    # compressed zeros pass the storage bound; the read limit refuses the read itself
    shapes = {"x": (1, 2, 400, 400), "y": (1, 2, 400, 400), "mask": (1, 1, 400, 400)}
    with h5py.File(source, "w") as handle:
        handle.attrs["operator"] = "MRI"
        for split in ("train", "test"):
            for key, shape in shapes.items():
                data = np.zeros(shape, np.float32)
                handle.create_dataset(f"{key}_{split}", data=data, compression="gzip")
    monkeypatch.setenv("SSIBENCH_MAX_READ_MB", "1")
    with pytest.raises(DataFileError, match=r"'x_train' declares .* over the 0\.001 GB limit"):
        import_measurements(source, tmp_path / "b.h5", physics={**SPEC, "sigma": 0})


@pytest.mark.parametrize(
    ("physics", "message"),
    [
        ({**SPEC, "sigma": 0.1}, r"--physics: sigma is 0\.1, but .* say 0\.05; leave sigma out"),
        (
            {**SPEC, "physics": "multicoil"},
            r"--physics: physics is 'multicoil', but .* 'single-coil'",
        ),
        ({**SPEC, "mask": "spiral"}, r"--physics: scenarios\.noisy\.mask: got 'spiral'"),
        ({"acceleration": 4}, r"--physics: scenarios\.noisy: missing key\(s\) mask"),
    ],
)
def test_a_spec_that_contradicts_the_files_is_refused(tmp_path: Path, physics, message) -> None:
    source, state = write_deepinv_file(tmp_path / "dinv", sigma=0.05)
    with pytest.raises(ConfigError, match=message):
        import_measurements(source, tmp_path / "noisy.h5", physics=physics, physics_state=state)


def test_sigma_must_be_given_or_stated_and_must_match_the_data(tmp_path: Path) -> None:
    source, _ = write_deepinv_file(tmp_path / "dinv", sigma=0.05)
    with pytest.raises(ConfigError, match=r"no sigma and no physics state"):
        import_measurements(source, tmp_path / "a.h5", physics=SPEC)
    with pytest.raises(DataFileError, match=r"noise level of 0\.0\d+ .* where sigma is 0\.1"):
        import_measurements(source, tmp_path / "a.h5", physics={**SPEC, "sigma": 0.1})
    summary = import_measurements(source, tmp_path / "a.h5", physics={**SPEC, "sigma": 0.05})
    assert summary.noise_estimates["train"] == pytest.approx(0.05, rel=0.2)


def test_physics_states_other_than_gaussian_noise_and_mri_are_refused(tmp_path: Path) -> None:
    source, state = write_deepinv_file(tmp_path / "dinv", sigma=0.05)
    torch.save({"mask": torch.ones(1, 2, H, W), "noise_model.gain": torch.tensor(2.0)}, state)
    with pytest.raises(DataFileError, match=r"noise_model\.gain: ssibench imports Gaussian"):
        import_measurements(source, tmp_path / "a.h5", physics=SPEC, physics_state=state)
    # a fixed-mask file takes the state's mask, which must fit y (a generator's is never used)
    source, state = write_deepinv_file(tmp_path / "fixed", per_sample=False)
    torch.save({"mask": torch.ones(1, 2, H + 1, W)}, state)
    with pytest.raises(DataFileError, match=r"physics0\.pt: 'mask' has shape \(1, 1, 17, 12\)"):
        import_measurements(
            source, tmp_path / "a.h5", physics={**SPEC, "sigma": 0}, physics_state=state
        )
    with pytest.raises(ConfigError, match=r"--out: .* is the file imported"):
        import_measurements(source, source, physics=SPEC, physics_state=state)


def test_cli_reports_a_refusal_as_one_line(tmp_path: Path, capsys) -> None:
    source, _ = write_deepinv_file(tmp_path / "dinv", coils=2)
    argv = [str(source), "--physics", json.dumps({**SPEC, "sigma": 0})]
    assert main(["import-measurements", *argv, "--out", str(tmp_path / "a.h5")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "--physics-state" in err


def test_an_unknown_flag_shows_the_usage_of_import_measurements(capsys) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["import-measurements", "a.h5", "--out", "b.h5", "--physics", "{}", "--bogus"])
    assert raised.value.code == 2
    assert "usage: ssibench import-measurements" in capsys.readouterr().err
