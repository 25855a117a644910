"""The acquired-k-space scenario: the raw volumes' own multicoil k-space, undersampled afterwards.

Nothing is simulated from the magnitude image (no "inverse crime"): per selected slice of a raw
volume, with k the slice's fully sampled k-space ``(N, rows, cols)``,

1. k ← F(crop(F⁻¹ k)), the coil images centre-cropped to ``crop`` = (H, W) (removes the readout
   oversampling; :func:`ssibench.data.kspace.crop_kspace`);
2. k ← k / s, s = the 99th percentile of the root-sum-of-squares image of the ACS (centre) columns
   (:func:`~ssibench.data.kspace.acs_scale`), the one scaling rule of every slice;
3. coil maps S from the ACS columns by ESPIRiT (:func:`ssibench.physics.espirit.espirit_maps`,
   Uecker et al., MRM 2014), all H rows × the mask's centre columns as calibration region;
4. ground truth x = Σₙ conj(Sₙ) F⁻¹ kₙ, the coil-combined complex image (so the fully sampled y
   reconstructs x exactly: Aᴴ k = x);
5. an acquisition mask M from the ``masks`` stream (per slice, or one shared), y = M ⊙ k;
6. the noise level σ̂ per slice, from the readout-oversampled margin of the raw k-space
   (:func:`~ssibench.data.kspace.estimate_noise_sigma`), divided by s; the store's ``sigma`` (what
   noise-aware methods use) is the median σ̂ of the training slices. No noise is added.

Selection: the volumes of the slices store's split (per volume, so no volume is in two splits),
those matching ``filter`` (the others are listed in the log and in the store's ``filtered_out``
attribute, never silently dropped); ``slices_per_volume`` slices around the middle of each training
volume, the middle slice of each validation and test volume (as the later SSIBench experiments).

Scenario spec: :mod:`ssibench.simulate.acquired_spec`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor

from ssibench.data.fastmri import BadVolumeError
from ssibench.data.kspace import (
    ACS_PERCENTILE,
    acs_scale,
    crop_kspace,
    estimate_noise_sigma,
    read_kspace_slices,
    read_volume_info,
    slices_around_middle,
)
from ssibench.data.measurements import write_measurements
from ssibench.data.slices import read_slice_store
from ssibench.data.splits import SPLITS
from ssibench.errors import ConfigError, DataFileError
from ssibench.fft import ifft2c, to_real
from ssibench.physics.espirit import espirit_maps
from ssibench.progress import progress
from ssibench.rng import stream
from ssibench.simulate.acquired_spec import (
    ESPIRIT_SETTINGS,
    check_acquired_mask,
    filter_reason,
    validate_acquired_spec,
)
from ssibench.simulate.spec import acquisition_mask_generator

__all__ = [
    "PreparedSlices",
    "prepare_slices",
    "scale_and_calibrate",
    "select_slices",
    "simulate_acquired",
]


class SelectedSlices(NamedTuple):
    """The slices of one split: the slices-store row of their volume, file, slice index."""

    rows: list[int]
    files: list[Path]
    slice_index: list[int]


def select_slices(
    raw_dir: Path,
    store_rows: Mapping[str, Tensor],
    source_file: Sequence[str],
    spec: Mapping[str, Any],
) -> tuple[dict[str, SelectedSlices], list[tuple[str, str]]]:
    """Per split, the slices to read; and (file, reason) of every volume left out."""
    selected: dict[str, SelectedSlices] = {}
    left_out: list[tuple[str, str]] = []
    for split in SPLITS:
        picked = SelectedSlices([], [], [])
        for row in store_rows[split].tolist():
            path = raw_dir / source_file[row]
            if not path.is_file():
                raise DataFileError(
                    f"{path}: the volume of slices-store row {row} is missing; the slices store "
                    "was built from another raw folder: rebuild it (snakemake --forcerun extract)"
                )
            info = read_volume_info(path)
            reason = filter_reason(info, spec["filter"], spec["crop"])
            if reason is not None:
                left_out.append((path.name, reason))
                continue
            count = spec["slices_per_volume"] if split == "train" else 1
            for index in slices_around_middle(info.n_slices, count):
                picked.rows.append(row)
                picked.files.append(path)
                picked.slice_index.append(index)
        selected[split] = picked
    return selected, left_out


class PreparedSlices(NamedTuple):
    """One volume's slices, preprocessed (module docstring, steps 1–4)."""

    kspace: Tensor
    """``(S, N, H, W)`` complex64, cropped and scaled."""
    x: Tensor
    """``(S, H, W)`` complex64, Σₙ conj(Sₙ) F⁻¹ kₙ."""
    coil_maps: Tensor
    """``(S, N, H, W)`` complex64 ESPIRiT maps."""
    scale: Tensor
    """``(S,)`` what the raw k-space was divided by."""


def prepare_slices(
    kspace: Tensor,
    crop: Sequence[int],
    acs_columns: slice,
    espirit: Mapping[str, float] = ESPIRIT_SETTINGS,
) -> PreparedSlices:
    """Crop, scale, estimate the maps of and coil-combine raw k-space ``(S, N, rows, cols)``."""
    kspace, maps, scale = scale_and_calibrate(
        crop_kspace(kspace, (crop[0], crop[1])), acs_columns, espirit
    )
    x = (maps.conj() * ifft2c(kspace)).sum(dim=1)
    return PreparedSlices(kspace, x, maps, scale)


def scale_and_calibrate(
    kspace: Tensor, acs_columns: slice, espirit: Mapping[str, float] = ESPIRIT_SETTINGS
) -> tuple[Tensor, Tensor, Tensor]:
    """Cropped k-space ``(S, N, H, W)`` divided by its ACS scale s, its ESPIRiT maps, and s.

    The maps are calibrated on all H rows × the ACS columns (``espirit`` over
    :data:`ESPIRIT_SETTINGS`); shared by the fully sampled and the measured kinds.
    """
    scale = acs_scale(kspace, acs_columns)
    kspace = kspace / scale[:, None, None, None]
    settings = {**ESPIRIT_SETTINGS, **espirit}
    maps = espirit_maps(
        kspace,
        (kspace.shape[-2], acs_columns.stop - acs_columns.start),
        kernel_size=int(settings["kernel_size"]),
        threshold=settings["threshold"],
        crop=settings["crop"],
    )
    return kspace, maps, scale


def simulate_acquired(
    slices_path: Path | str,
    out: Path | str,
    scenario: str,
    spec: Mapping[str, Any],
    seed: int,
    raw_dir: Path | str | None = None,
) -> Path:
    """Write the measurement store of an acquired-k-space scenario (module docstring).

    Args:
        slices_path: the slices store (its split and the volume of each row).
        out: measurement store to write (layout: :mod:`ssibench.data.measurements`).
        scenario: scenario name, recorded in the file.
        spec: scenario spec (module docstring); validated first.
        seed: master seed (stream ``masks``).
        raw_dir: the raw volume folder the slices store was extracted from.

    Raises:
        ConfigError: a bad spec, or no raw folder given.
        DataFileError: a missing volume, bad k-space, or a split left empty by the filter.
    """
    spec = validate_acquired_spec(scenario, spec)
    if raw_dir is None:
        raise ConfigError(
            f"scenarios.{scenario}: acquired k-space needs the raw volumes (ssibench simulate "
            "--raw-dir DIR)"
        )
    raw_dir = Path(raw_dir)
    store = read_slice_store(slices_path)
    selected, left_out = select_slices(raw_dir, store.split, store.source_file, spec)
    for name, reason in left_out:
        progress(f"simulate {scenario}: leaving out {name}: {reason}")
    for split in ("train", "test"):
        if not selected[split].rows:
            raise DataFileError(
                f"{raw_dir}: no {split} volume is left for scenario {scenario!r} after "
                f"scenarios.{scenario}.filter {spec['filter']} ({len(left_out)} left out); relax "
                "the filter or add matching volumes"
            )
    height, width = spec["crop"]
    masks = acquisition_mask_generator(spec)
    acs_columns = check_acquired_mask(scenario, spec)
    mask_stream = stream(seed, "masks")
    shared = masks.sample(1, height, width, mask_stream) if spec["shared_mask"] else None
    n_coils = read_volume_info(selected["test"].files[0]).n_coils
    sigmas: dict[str, Tensor] = {}
    out = Path(out)
    with write_measurements(
        out,
        scenario=scenario,
        physics_kind=spec["physics"],
        sigma=0.0,  # replaced by the estimate below, before the hashes are written
        spec=spec,
        seed=seed,
        slices_file=slices_path,
        coil_maps=None,
        skipped_files=store.skipped_files,
    ) as writer:
        for split in SPLITS:
            picked = selected[split]
            n_split = len(picked.rows)
            index = torch.tensor(picked.rows, dtype=torch.int64)
            writer.create_split(
                split, index, (2, n_coils, height, width), shared_mask=shared, per_sample_maps=True
            )
            scales, noise = [], []
            start = 0
            for path, group in _by_volume(picked):
                raw = read_kspace_slices(path, [picked.slice_index[i] for i in group])
                if raw.shape[1] != n_coils:
                    raise BadVolumeError(
                        path,
                        f"{raw.shape[1]} coils, but the scenario's volumes have {n_coils}; "
                        f"select one coil count with scenarios.{scenario}.filter.n_coils",
                    )
                prepared = prepare_slices(raw, spec["crop"], acs_columns, spec["espirit"])
                sigma_raw, noise_source = estimate_noise_sigma(raw, height)
                batch = len(group)
                mask = (
                    shared
                    if shared is not None
                    else masks.sample(batch, height, width, mask_stream)
                )
                y = mask * prepared.kspace
                noise.append(sigma_raw / prepared.scale)  # on the scaled k-space
                scales.append(prepared.scale)
                writer.write_rows(
                    split,
                    start,
                    to_real(prepared.x),
                    to_real(y),
                    masks=None if shared is not None else mask,
                    coil_maps=prepared.coil_maps,
                )
                start += batch
                progress(f"simulate {scenario}: {split} {start}/{n_split} slices")
            sigmas[split] = torch.cat(noise) if noise else torch.zeros(0)
            writer.write_per_sample(split, "scale", torch.cat(scales) if scales else torch.zeros(0))
            writer.write_per_sample(split, "noise_sigma", sigmas[split].float())
            writer.write_per_sample(
                split, "slice_index", torch.tensor(picked.slice_index, dtype=torch.int64)
            )
        sigma = float(sigmas["train"].median())
        writer.set_attribute("sigma", sigma)
        writer.set_attribute(
            "filtered_out", json.dumps([{"file": f, "reason": r} for f, r in left_out])
        )
        writer.set_attribute(
            "preprocessing", json.dumps(_preprocessing(spec, acs_columns, noise_source))
        )
    spread = sigmas["train"]
    progress(
        f"simulate {scenario}: noise level σ̂ = {sigma:.4g} per real/imaginary component "
        f"(median of {spread.numel()} training slices, range {float(spread.min()):.3g}–"
        f"{float(spread.max()):.3g}); {len(left_out)} volume(s) left out"
    )
    return out


def _by_volume(picked: SelectedSlices) -> list[tuple[Path, list[int]]]:
    """Consecutive positions of ``picked`` grouped by volume file (read each file once)."""
    groups: list[tuple[Path, list[int]]] = []
    for position, path in enumerate(picked.files):
        if groups and groups[-1][0] == path:
            groups[-1][1].append(position)
        else:
            groups.append((path, [position]))
    return groups


def _preprocessing(
    spec: Mapping[str, Any], acs_columns: slice, noise_source: str
) -> dict[str, Any]:
    """What was done to the raw k-space, recorded in the store (attribute ``preprocessing``)."""
    return {
        "crop": list(spec["crop"]),
        "crop_domain": "image (coil images centre-cropped, readout oversampling removed)",
        "scale": f"k-space / percentile {ACS_PERCENTILE:g} of the RSS image of the ACS columns",
        "acs_columns": [acs_columns.start, acs_columns.stop],
        "coil_maps": {
            "method": "ESPIRiT",
            "calibration": "all rows x ACS columns",
            **ESPIRIT_SETTINGS,
        },
        "ground_truth": "sum_n conj(S_n) F^-1 k_n of the fully sampled k-space",
        "noise_estimate": {
            "estimator": "median |v| / sqrt(2 ln 2), coils pooled, divided by the scale",
            "region": noise_source,
            "sigma": "median over the training slices",
        },
    }
