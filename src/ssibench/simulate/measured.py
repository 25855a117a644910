"""K-space undersampled at acquisition: a training store without ground truth.

Prospectively undersampled scans (fastMRI's multicoil test and challenge sets are of this kind:
zero-filled unsampled columns, a 1-D ``mask`` dataset, no reconstruction) have no fully sampled
reference. Only methods that learn from the measurements alone can use them, and nothing can be
scored on them in the image domain, so such a scenario is **training only**: its store has one
``train`` split (empty ``val`` and ``test``) and NaN in place of ``x``.

Per selected slice of each volume of ``kspace_dir``, with k its k-space ``(N, rows, cols)``:

1. the acquisition's columns M (:func:`ssibench.data.kspace.acquired_columns`: the file's mask,
   or its non-zero columns) and the widest fully sampled centre block (ACS);
2. k ← F(crop(F⁻¹ k)) with the readout crop ``crop`` = (H, cols): rows only, since an image-domain
   crop across the phase-encode direction would fill the unsampled columns;
3. k ← k / s, s from the ACS columns as for ``raw-multicoil`` (:func:`~ssibench.data.kspace.
   acs_scale`);
4. ESPIRiT coil maps from all rows × the ACS columns;
5. y = M ⊙ k (exact zeros off the mask again), the mask stored per slice;
6. σ̂ per slice from the readout margin of the *sampled* columns (the unsampled ones are zero, not
   noise), divided by s; the store's ``sigma`` is the training median.

Volumes that do not match ``filter``, whose k-space width is not the crop width, or whose ACS
block is narrower than the ESPIRiT kernel are left out, each named in the log and in the store's
``filtered_out`` attribute. Scenario spec: :func:`ssibench.simulate.acquired_spec.
validate_measured_spec`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor

from ssibench.data.fastmri import BadVolumeError
from ssibench.data.kspace import (
    ACS_PERCENTILE,
    acquired_columns,
    centre_acs_lines,
    crop_kspace,
    estimate_noise_sigma,
    read_kspace_slices,
    read_volume_info,
    slices_around_middle,
)
from ssibench.data.measurements import write_measurements
from ssibench.errors import DataFileError
from ssibench.fft import to_real
from ssibench.masks import center_block
from ssibench.progress import progress
from ssibench.simulate.acquired import scale_and_calibrate
from ssibench.simulate.acquired_spec import filter_reason, validate_measured_spec

__all__ = ["MeasuredVolume", "prepare_measured", "simulate_measured"]


class MeasuredVolume(NamedTuple):
    """One volume's slices after steps 1–6 (module docstring)."""

    y: Tensor
    """``(S, N, H, W)`` complex64: M ⊙ k / s."""
    mask: Tensor
    """``(1, H, W)`` float32: the acquisition's columns."""
    maps: Tensor
    """``(S, N, H, W)`` complex64 ESPIRiT maps."""
    scale: Tensor
    """``(S,)`` what the k-space was divided by."""
    sigma: Tensor
    """``(S,)`` σ̂ on the scaled k-space."""


def prepare_measured(
    path: Path, raw: Tensor, crop: tuple[int, int], espirit: Mapping[str, float]
) -> MeasuredVolume | str:
    """Steps 1–6 for slices ``raw`` ``(S, N, rows, cols)`` of ``path``; or why to leave it out."""
    columns = acquired_columns(path, raw)
    n_acs = centre_acs_lines(columns)
    kernel = int(espirit["kernel_size"])
    if n_acs < kernel:
        return (
            f"{n_acs} fully sampled centre columns, fewer than the ESPIRiT kernel width {kernel} "
            "(lower espirit.kernel_size)"
        )
    height, width = crop
    acs_columns = center_block(width, n_acs)
    mask = columns.to(torch.float32).expand(height, width)
    # the crop's round trip along the columns leaves rounding off the mask: zero it again
    kspace, maps, scale = scale_and_calibrate(
        crop_kspace(raw, (height, width)) * mask, acs_columns, espirit
    )
    sigma, _ = estimate_noise_sigma(raw[..., columns], height)
    return MeasuredVolume(kspace, mask[None].contiguous(), maps, scale, sigma / scale)


def simulate_measured(out: Path | str, scenario: str, spec: Mapping[str, Any], seed: int) -> Path:
    """Write the training store of a scenario on k-space undersampled at acquisition.

    Args:
        out: measurement store to write (layout: :mod:`ssibench.data.measurements`).
        scenario: scenario name, recorded in the file.
        spec: scenario spec; validated first.
        seed: master seed (recorded; nothing is drawn).

    Raises:
        ConfigError: a bad spec.
        DataFileError: no ``kspace_dir``, no volume left, bad k-space, or volumes with different
            coil counts.
    """
    spec = validate_measured_spec(scenario, spec)
    folder = Path(spec["kspace_dir"])
    files = sorted(folder.glob("*.h5")) if folder.is_dir() else []
    if not files:
        raise DataFileError(
            f"{folder}: no .h5 volumes for scenario {scenario!r} (scenarios.{scenario}."
            "kspace_dir); point it at a folder of fastMRI-format multicoil files"
        )
    height, width = spec["crop"]
    picked: list[tuple[int, Path, list[int]]] = []
    left_out: list[tuple[str, str]] = []
    for number, path in enumerate(files):
        info = read_volume_info(path)
        reason = filter_reason(info, spec["filter"], spec["crop"])
        if reason is None and info.shape[1] != width:
            reason = (
                f"k-space width {info.shape[1]} is not the crop width {width} (measured k-space "
                "is cropped along the readout only)"
            )
        if reason is not None:
            left_out.append((path.name, reason))
            continue
        picked.append(
            (number, path, slices_around_middle(info.n_slices, spec["slices_per_volume"]))
        )
    volumes, n_coils = [], None
    for number, path, slices in picked:
        raw = read_kspace_slices(path, slices)
        if n_coils is not None and raw.shape[1] != n_coils:
            raise BadVolumeError(
                path,
                f"{raw.shape[1]} coils, but the scenario's other volumes have {n_coils}; select "
                f"one coil count with scenarios.{scenario}.filter.n_coils",
            )
        prepared = prepare_measured(path, raw, (height, width), spec["espirit"])
        if isinstance(prepared, str):
            left_out.append((path.name, prepared))
            continue
        n_coils = raw.shape[1]
        volumes.append((number, slices, prepared))
        progress(f"simulate {scenario}: read {len(volumes)}/{len(picked)} volumes")
    for name, reason in left_out:
        progress(f"simulate {scenario}: leaving out {name}: {reason}")
    if not volumes:
        raise DataFileError(
            f"{folder}: no volume is left for scenario {scenario!r} ({len(left_out)} left out, "
            "reasons above); relax the filter or crop, or add matching volumes"
        )
    n = sum(len(slices) for _, slices, _ in volumes)
    index = torch.cat([torch.full((len(s),), v, dtype=torch.int64) for v, s, _ in volumes])
    sigmas = torch.cat([p.sigma for _, _, p in volumes])
    out = Path(out)
    with write_measurements(
        out,
        scenario=scenario,
        physics_kind=spec["physics"],
        sigma=float(sigmas.median()),
        spec=spec,
        seed=seed,
        slices_file=folder,
        coil_maps=None,
    ) as writer:
        shape = (2, n_coils, height, width)
        for split in ("val", "test"):  # training only: nothing to validate or score against
            writer.create_split(
                split, torch.zeros(0, dtype=torch.int64), shape, per_sample_maps=True
            )
            for name, dtype in (("scale", torch.float32), ("noise_sigma", torch.float32)):
                writer.write_per_sample(split, name, torch.zeros(0, dtype=dtype))
            writer.write_per_sample(split, "slice_index", torch.zeros(0, dtype=torch.int64))
        writer.create_split("train", index, shape, per_sample_maps=True)
        start = 0
        for _, slices, prepared in volumes:
            batch = len(slices)
            writer.write_rows(
                "train",
                start,
                None,
                to_real(prepared.y),
                masks=prepared.mask.expand(batch, 1, height, width).contiguous(),
                coil_maps=prepared.maps,
            )
            start += batch
        writer.write_per_sample("train", "scale", torch.cat([p.scale for _, _, p in volumes]))
        writer.write_per_sample("train", "noise_sigma", sigmas.float())
        writer.write_per_sample(
            "train", "slice_index", torch.tensor([s for _, ss, _ in volumes for s in ss])
        )
        writer.set_attribute("volumes", json.dumps([path.name for path in files]))
        writer.set_attribute(
            "filtered_out", json.dumps([{"file": f, "reason": r} for f, r in left_out])
        )
        writer.set_attribute("preprocessing", json.dumps(_preprocessing(spec)))
    progress(
        f"simulate {scenario}: {n} training slices of {len(volumes)} volumes, no ground truth "
        f"(training only); noise level σ̂ = {float(sigmas.median()):.4g} (median); "
        f"{len(left_out)} volume(s) left out"
    )
    return out


def _preprocessing(spec: Mapping[str, Any]) -> dict[str, Any]:
    """What was done to the measured k-space (the store's attribute ``preprocessing``)."""
    return {
        "crop": list(spec["crop"]),
        "crop_domain": "readout only (hybrid space); the phase-encode columns are kept",
        "mask": "the acquisition's own: the file's mask, else its non-zero columns",
        "scale": f"k-space / percentile {ACS_PERCENTILE:g} of the RSS image of the ACS columns",
        "coil_maps": {"method": "ESPIRiT", "calibration": "all rows x ACS columns"},
        "ground_truth": "none (undersampled at acquisition): training only",
        "noise_estimate": "median |v| / sqrt(2 ln 2) of the readout margin of the sampled columns",
        "index": "position of the volume in the sorted file list (attribute volumes)",
    }
