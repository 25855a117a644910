"""Specs of the acquired-k-space scenarios: their keys, checks, ESPIRiT settings and volume filter.

Scenario spec (key → meaning): ``physics: raw-multicoil``; ``mask``, ``acceleration``,
``center_fraction`` | ``center_lines`` and ``shared_mask`` as every scenario; ``sigma`` must be 0
(the data carry their own noise); ``crop`` [H, W]; ``filter`` {``acquisition``: name or list,
``n_coils``: count or list}; ``slices_per_volume`` ≥ 1; ``espirit`` {``kernel_size``,
``threshold``, ``crop``} (defaults :data:`ESPIRIT_SETTINGS`). The simulator is
:mod:`ssibench.simulate.acquired`.

K-space undersampled at acquisition (``physics: measured-multicoil``, :data:`MEASURED_KEYS`):
``kspace_dir`` (the folder of its ``.h5`` volumes), ``crop`` [H, W] (a readout crop: W is the
volumes' column count), ``filter``, ``slices_per_volume``, ``espirit``; no mask keys (the
sampling pattern is the acquisition's own). Its simulator is :mod:`ssibench.simulate.measured`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ssibench.config.kinds import ACQUIRED_KINDS, MEASURED_KINDS
from ssibench.data.kspace import VolumeInfo
from ssibench.errors import ConfigError
from ssibench.masks import center_block
from ssibench.simulate.spec import (
    acquisition_mask_generator,
    check_required_keys,
    check_unknown_keys,
    is_integer,
    validate_spec,
)

__all__ = [
    "ACQUIRED_KEYS",
    "ESPIRIT_SETTINGS",
    "FILTER_KEYS",
    "MASK_KEYS",
    "MEASURED_KEYS",
    "check_acquired_mask",
    "filter_reason",
    "validate_acquired_spec",
    "validate_measured_spec",
]

#: Spec keys of an acquired-k-space scenario and their defaults (``...`` = required).
ACQUIRED_KEYS: dict[str, object] = {
    "physics": ...,
    "sigma": 0.0,
    "shared_mask": False,
    "mask": ...,
    "acceleration": ...,
    "center_fraction": None,
    "center_lines": None,
    "crop": ...,
    "filter": {},
    "slices_per_volume": 1,
    "espirit": {},
}
#: Spec keys of a scenario on k-space undersampled at acquisition (``...`` = required).
MEASURED_KEYS: dict[str, object] = {
    "physics": ...,
    "sigma": 0.0,
    "kspace_dir": ...,
    "crop": ...,
    "filter": {},
    "slices_per_volume": 1,
    "espirit": {},
}
#: The keys of a drawn mask, which k-space undersampled at acquisition does not take.
MASK_KEYS = ("mask", "acceleration", "center_fraction", "center_lines", "shared_mask")
#: What ``filter`` may select on: volume attribute → how to read it from :class:`VolumeInfo`.
FILTER_KEYS = {"acquisition": "acquisition", "n_coils": "n_coils"}
#: ESPIRiT's default parameters (Uecker et al. 2014; sigpy's ``EspiritCalib`` defaults): kernel
#: width, singular-value threshold relative to the largest, eigenvalue crop. A small calibration
#: region (few ACS lines, small images) keeps too few kernels at 0.02 and its maps are cropped
#: inside the object: lower the threshold and the crop there (the demo: 0.005 and 0.8).
ESPIRIT_SETTINGS: dict[str, float] = {"kernel_size": 6, "threshold": 0.02, "crop": 0.95}


def _as_list(value: object) -> list[object]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def validate_acquired_spec(scenario: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """Check an acquired-k-space scenario spec (module docstring) and fill its defaults.

    Raises:
        ConfigError: naming ``scenarios.<scenario>.<key>``, the value and what is allowed.
    """
    where = f"scenarios.{scenario}"
    full = _own_data_keys(where, spec, ACQUIRED_KEYS, ACQUIRED_KINDS)
    # the mask keys are those of every scenario: check them as a simulated one's
    common = {k: full[k] for k in ("shared_mask", "mask", "acceleration", "center_fraction")}
    as_simulated = {**common, "center_lines": full["center_lines"], "sigma": 0.0}
    validate_spec(scenario, {**as_simulated, "physics": "single-coil"})
    _check_selection(where, full)
    if full["center_lines"] is None:
        del full["center_lines"]
    return full


def validate_measured_spec(scenario: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """Check a scenario spec on k-space undersampled at acquisition and fill its defaults.

    Raises:
        ConfigError: naming ``scenarios.<scenario>.<key>``, the value and what is allowed; a mask
            key is refused (the files' own sampling is used).
    """
    where = f"scenarios.{scenario}"
    for key in MASK_KEYS:
        if key in spec:
            raise ConfigError(
                f"{where}.{key}: measured k-space keeps the sampling it was acquired with (the "
                f"files' mask, or their non-zero columns); remove {key}"
            )
    full = _own_data_keys(where, spec, MEASURED_KEYS, MEASURED_KINDS)
    if not isinstance(full["kspace_dir"], str) or not full["kspace_dir"]:
        raise ConfigError(
            f"{where}.kspace_dir: got {full['kspace_dir']!r}; expected the folder of the "
            "scenario's .h5 volumes"
        )
    _check_selection(where, full)
    return full


def _own_data_keys(
    where: str, spec: Mapping[str, Any], keys: Mapping[str, object], kinds: Sequence[str]
) -> dict[str, Any]:
    """``spec`` with the defaults of ``keys``: known keys, a physics of ``kinds``, sigma 0."""
    check_unknown_keys(where, spec, keys)
    check_required_keys(where, spec, keys)
    full = {key: spec.get(key, default) for key, default in keys.items()}
    if full["physics"] not in kinds:
        raise ConfigError(f"{where}.physics: got {full['physics']!r}; allowed: {', '.join(kinds)}")
    if full["sigma"] != 0:
        raise ConfigError(
            f"{where}.sigma: got {full['sigma']!r}; acquired k-space carries its own noise, whose "
            "level is estimated from the data: remove sigma or set it to 0"
        )
    return full


def _check_selection(where: str, full: dict[str, Any]) -> None:
    """``crop``, ``filter``, ``slices_per_volume`` and ``espirit`` of ``full``, checked in place."""
    crop = full["crop"]
    if not (
        isinstance(crop, (list, tuple)) and len(crop) == 2 and all(is_integer(c, 8) for c in crop)
    ):
        raise ConfigError(f"{where}.crop: got {crop!r}; expected [H, W], two integers ≥ 8")
    full["crop"] = [int(c) for c in crop]
    selection = full["filter"]
    if not isinstance(selection, Mapping):
        raise ConfigError(
            f"{where}.filter: got {selection!r}; expected a mapping, e.g. "
            "{acquisition: AXT2, n_coils: 16}"
        )
    check_unknown_keys(f"{where}.filter", selection, FILTER_KEYS)
    for value in _as_list(selection.get("n_coils", [])):
        if not is_integer(value, 1):
            raise ConfigError(f"{where}.filter.n_coils: got {value!r}; expected integers ≥ 1")
    for value in _as_list(selection.get("acquisition", [])):
        if not isinstance(value, str):
            raise ConfigError(f"{where}.filter.acquisition: got {value!r}; expected names")
    full["filter"] = dict(sorted(selection.items()))
    if not is_integer(full["slices_per_volume"], 1):
        raise ConfigError(
            f"{where}.slices_per_volume: got {full['slices_per_volume']!r}; expected an integer ≥ 1"
        )
    full["espirit"] = _check_espirit(where, full["espirit"])


def _check_espirit(where: str, given: object) -> dict[str, float]:
    """ESPIRiT settings: :data:`ESPIRIT_SETTINGS` updated with ``given``, each checked."""
    if not isinstance(given, Mapping):
        raise ConfigError(f"{where}.espirit: got {given!r}; expected a mapping")
    check_unknown_keys(f"{where}.espirit", given, ESPIRIT_SETTINGS)
    settings = {**ESPIRIT_SETTINGS, **given}
    if not is_integer(settings["kernel_size"], 2):
        raise ConfigError(
            f"{where}.espirit.kernel_size: got {settings['kernel_size']!r}; expected an integer ≥ 2"
        )
    for key in ("threshold", "crop"):
        value = settings[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
            raise ConfigError(f"{where}.espirit.{key}: got {value!r}; expected a number in [0, 1)")
        settings[key] = float(value)
    return settings


def check_acquired_mask(scenario: str, spec: Mapping[str, Any]) -> slice:
    """The ACS columns of a validated spec's mask at its crop width.

    Raises:
        ConfigError: if the mask cannot be drawn at that width, or its centre block is narrower
            than the ESPIRiT kernel (the maps are calibrated on it).
    """
    width = spec["crop"][1]
    masks = acquisition_mask_generator(spec)
    try:
        masks.line_counts(width)
        acs_columns = center_block(width, masks.n_center(width))
    except ValueError as error:
        raise ConfigError(f"scenarios.{scenario}: {error} (at the crop width {width})") from None
    n_acs = acs_columns.stop - acs_columns.start
    kernel = spec["espirit"]["kernel_size"]
    if n_acs < kernel:
        raise ConfigError(
            f"scenarios.{scenario}: {n_acs} centre (ACS) lines at width {width} are fewer than "
            f"the ESPIRiT kernel width {kernel}; raise center_lines (or center_fraction)"
        )
    return acs_columns


def filter_reason(
    info: VolumeInfo, selection: Mapping[str, Any], crop: Sequence[int]
) -> str | None:
    """Why a volume is left out (not matching ``filter``, or smaller than ``crop``), or None."""
    for key, attribute in FILTER_KEYS.items():
        if key in selection and getattr(info, attribute) not in _as_list(selection[key]):
            wanted = " or ".join(str(v) for v in _as_list(selection[key]))
            return f"{key} {getattr(info, attribute)} is not {wanted} (filter)"
    if info.shape[0] < crop[0] or info.shape[1] < crop[1]:
        size = f"{info.shape[0]} × {info.shape[1]}"
        return f"k-space {size} is smaller than the crop {crop[0]} × {crop[1]}"
    return None
