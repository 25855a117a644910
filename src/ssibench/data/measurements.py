"""The measurement store: simulated k-space per split, written by ``simulate``, read by training.

This module writes and reads the store; what identifies its contents (the content hashes) is
:mod:`ssibench.data.identity`, what a read checks first :mod:`ssibench.data.store_checks`.

File layout (HDF5), one group per split ``train``, ``val``, ``test``:

- ``x`` float32 ``(n, 2, H, W)``: ground truth, real/imaginary in dim 1 (imaginary part 0);
  ``(n, 2, T, H, W)`` for ``dynamic`` (a video); NaN for ``measured-multicoil`` (k-space
  undersampled at acquisition has no reference image);
- ``y`` float32 ``(n, 2, H, W)`` single-coil, ``(n, 2, N, H, W)`` multicoil or ``(n, 2, T, H, W)``
  time-resolved (``sequential``, ``dynamic``): the measurements;
- ``mask`` float32 ``(n, 1, H, W)``, or ``(1, 1, H, W)`` when the scenario shares one mask;
  ``(n|1, 1, T, H, W)`` (one mask per frame) for the time-resolved kinds;
- ``index`` int64 ``(n,)``: row of each sample in the slices store;

- acquired-k-space kinds (``raw-multicoil``, ``measured-multicoil``) only: ``coil_maps``
  float32 ``(n, 2, N, H, W)`` (ESPIRiT maps estimated per slice), ``scale`` float32 ``(n,)``
  (what the raw k-space was divided by), ``noise_sigma`` float32 ``(n,)`` (the noise level
  estimated on each slice) and ``slice_index`` int64 ``(n,)`` (the slice of the volume ``index``
  points to; for ``measured-multicoil``, ``index`` is the volume's place in the attribute
  ``volumes``, its sorted file names);

file-level ``coil_maps`` float32 ``(N, 2, H, W)`` (simulated multicoil only, real/imaginary in
dim 1) and
attrs ``scenario``, ``physics`` (``single-coil`` | ``multicoil`` | ``sequential`` | ``dynamic``),
``sigma``, ``spec`` (JSON), ``seed``, ``slices_file``, ``ssibench_version``, and the content hashes
(hex SHA-256) that identify what a run was trained and evaluated on: ``hash_train``,
``hash_val``, ``hash_test`` (the bytes of the split's ``index``, ``x``, ``y`` and ``mask``),
``training_hash`` (what training reads: the physics attributes, ``coil_maps``, train and val) and
``content_hash`` (all of it, test included). See :mod:`ssibench.data.identity`.

``sequential`` is a static image acquired as T frames
(:class:`~ssibench.physics.time.SequentialMRI`), ``dynamic`` a video
(:class:`~ssibench.physics.time.DynamicMRI`); both are single-coil.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import h5py
import numpy as np
import torch
from torch import Tensor

import ssibench
from ssibench.config.kinds import PHYSICS_KINDS
from ssibench.data.identity import (
    HASH_ATTRS,
    PHYSICS_ATTRS,
    missing_error,
    open_store,
    read_attrs,
    verify_split,
    write_hashes,
)
from ssibench.data.splits import SPLITS
from ssibench.data.store_checks import check_values, checked_datasets, store_sigma
from ssibench.errors import DataFileError, rebuild_hint
from ssibench.fft import to_complex, to_real
from ssibench.io import atomic_path
from ssibench.physics import Operator, build_operator

__all__ = [
    "MeasurementSet",
    "MeasurementWriter",
    "read_measurements",
    "write_measurements",
]

#: gzip level for the mask datasets: column masks compress ~H-fold, x and y hardly at all.
MASK_COMPRESSION_LEVEL = 4

PhysicsKindName = Literal["single-coil", "multicoil", "sequential", "dynamic", "raw-multicoil"]


@dataclass(frozen=True, eq=False)
class MeasurementSet:
    """One split of a measurement store, in memory.

    Attributes:
        x: ground truth ``(n, 2, H, W)`` float32 (``(n, 2, T, H, W)`` for ``dynamic``); NaN when
            the data have none (:attr:`has_ground_truth`).
        y: measurements ``(n, 2, H, W)`` (single-coil), ``(n, 2, N, H, W)`` (multicoil) or
            ``(n, 2, T, H, W)`` (sequential, dynamic) float32.
        masks: ``(n, 1, H, W)`` per-sample masks, or ``(1, 1, H, W)`` shared by every sample;
            ``(n|1, 1, T, H, W)`` for the time-resolved kinds.
        coil_maps: ``(N, H, W)`` complex64 (simulated multicoil: one set for every sample),
            ``(n, N, H, W)`` (acquired k-space: per-sample estimated maps) or ``None``.
        sigma: noise standard deviation per real/imaginary k-space component.
        physics_kind: one of :data:`ssibench.config.PHYSICS_KINDS`.
        scenario: scenario name.
        index: ``(n,)`` int64 rows in the slices store (``None`` when not known).

    Example:
        >>> data = MeasurementSet(torch.zeros(3, 2, 8, 8), torch.zeros(3, 2, 8, 8),
        ...                       torch.ones(1, 1, 8, 8), None, 0.0, "single-coil", "demo")
        >>> len(data), data.physics(slice(0, 2)).mask.shape
        (3, torch.Size([1, 1, 8, 8]))
    """

    x: Tensor
    y: Tensor
    masks: Tensor
    coil_maps: Tensor | None
    sigma: float
    physics_kind: PhysicsKindName
    scenario: str
    index: Tensor | None = None
    slice_index: Tensor | None = None
    """``(n,)`` int64 slice of the volume (acquired-k-space stores), else ``None``."""

    @property
    def has_ground_truth(self) -> bool:
        """Whether ``x`` holds reference images (not for k-space undersampled at acquisition)."""
        return PHYSICS_KINDS[self.physics_kind].ground_truth

    def __len__(self) -> int:
        return self.x.shape[0]

    @property
    def shared_mask(self) -> bool:
        """Whether one mask (``(1, 1, H, W)`` or ``(1, 1, T, H, W)``) serves every sample."""
        return self.masks.shape[0] == 1

    def physics(self, index: Tensor | slice | None = None) -> Operator:
        """The forward operator of the rows ``index`` (all rows when ``None``).

        A shared mask keeps its batch dim of 1; per-sample masks are indexed like ``x``. The kind
        gives the class: ``SingleCoilMRI``, ``MultiCoilMRI``, ``SequentialMRI`` or ``DynamicMRI``.
        """
        masks, coil_maps = self.masks, self.coil_maps
        if index is not None and not self.shared_mask:
            masks = masks[index]
        if PHYSICS_KINDS[self.physics_kind].coils and coil_maps is None:
            raise ValueError(f"scenario {self.scenario!r}: multicoil data without coil maps")
        if coil_maps is not None and coil_maps.ndim == 4 and index is not None:
            coil_maps = coil_maps[index]  # per-sample maps follow the rows
        return build_operator(self.physics_kind, masks, self.sigma, coil_maps)

    def to(self, device: torch.device | str) -> MeasurementSet:
        """A copy with every tensor on ``device``."""
        return replace(
            self,
            x=self.x.to(device),
            y=self.y.to(device),
            masks=self.masks.to(device),
            coil_maps=None if self.coil_maps is None else self.coil_maps.to(device),
            index=None if self.index is None else self.index.to(device),
            slice_index=None if self.slice_index is None else self.slice_index.to(device),
        )


class MeasurementWriter:
    """Writes the splits of an open measurement store, chunk by chunk.

    ``physics_kind`` fixes the shapes of ``x`` and ``mask`` from that of one measurement (module
    docstring): 2-D kinds have x ``(2, H, W)`` and masks ``(1, H, W)``; time-resolved kinds masks
    ``(1, T, H, W)`` and x ``(2, H, W)`` (sequential) or ``(2, T, H, W)`` (dynamic).
    """

    def __init__(self, handle: h5py.File, physics_kind: PhysicsKindName = "single-coil") -> None:
        self._handle = handle
        self._physics_kind = physics_kind
        self._shared_mask_splits: set[str] = set()

    def create_split(
        self,
        split: str,
        index: Tensor,
        y_shape: tuple[int, ...],
        shared_mask: Tensor | None = None,
        per_sample_maps: bool = False,
    ) -> None:
        """Create the group of ``split`` for ``n = len(index)`` samples.

        Args:
            split: one of ``train``, ``val``, ``test``.
            index: ``(n,)`` rows in the slices store.
            y_shape: shape of one measurement, ``(2, H, W)``, ``(2, N, H, W)`` or ``(2, T, H, W)``.
            shared_mask: the ``(1, 1, H, W)`` (time-resolved: ``(1, 1, T, H, W)``) mask of a
                shared-mask scenario, written now; ``None`` for per-sample masks, which
                :meth:`write_rows` then fills.
            per_sample_maps: create ``coil_maps`` ``(n, 2, N, H, W)`` (acquired k-space, ``y_shape``
                ``(2, N, H, W)``), filled by :meth:`write_rows`.

        Raises:
            ValueError: for an unknown split or a shared mask of the wrong shape.
        """
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
        n = index.shape[0]
        height, width = y_shape[-2:]
        timed = PHYSICS_KINDS[self._physics_kind].time_series
        one_mask = (1, y_shape[1], height, width) if timed else (1, height, width)
        one_x = (
            (2, y_shape[1], height, width)
            if PHYSICS_KINDS[self._physics_kind].video
            else (2, height, width)
        )
        if shared_mask is not None and tuple(shared_mask.shape) != (1, *one_mask):
            raise ValueError(
                f"split {split!r}: shared mask of shape {tuple(shared_mask.shape)}, expected "
                f"{(1, *one_mask)} for {self._physics_kind} measurements {tuple(y_shape)}"
            )
        group = self._handle.create_group(split)
        group.create_dataset("index", data=index.numpy().astype(np.int64))
        # No reference image: x is NaN (never written), so nothing can score against it by mistake
        fill = {} if PHYSICS_KINDS[self._physics_kind].ground_truth else {"fillvalue": np.nan}
        group.create_dataset("x", shape=(n, *one_x), dtype=np.float32, **fill)
        group.create_dataset("y", shape=(n, *y_shape), dtype=np.float32)
        mask_shape = (1 if shared_mask is not None else n, *one_mask)
        compressed = {
            "chunks": (1, *[1] * (len(one_mask) - 2), height, width),
            "compression": "gzip",
            "compression_opts": MASK_COMPRESSION_LEVEL,
        }
        mask = group.create_dataset(
            "mask", shape=mask_shape, dtype=np.float32, **(compressed if mask_shape[0] else {})
        )
        if shared_mask is not None:
            mask[...] = shared_mask.numpy()
            self._shared_mask_splits.add(split)
        if per_sample_maps:
            n_coils = y_shape[1]
            group.create_dataset(
                "coil_maps", shape=(n, 2, n_coils, height, width), dtype=np.float32
            )

    def write_rows(
        self,
        split: str,
        start: int,
        x: Tensor | None,
        y: Tensor,
        masks: Tensor | None = None,
        coil_maps: Tensor | None = None,
    ) -> None:
        """Write rows [start, start + len(x)) of ``x``, ``y`` and, for per-sample masks, ``mask``.

        ``coil_maps`` ``(b, N, H, W)`` complex fills the per-sample maps of a split created with
        ``per_sample_maps``. ``x`` is ``None`` exactly for a kind without ground truth.

        Raises:
            ValueError: if per-sample masks are expected and ``masks`` is ``None``, or the reverse.
        """
        if (x is None) == PHYSICS_KINDS[self._physics_kind].ground_truth:
            raise ValueError(
                f"split {split!r}: x must be given exactly when {self._physics_kind} data have a "
                "ground truth"
            )
        stop = start + y.shape[0]
        group = self._handle[split]
        per_sample = split not in self._shared_mask_splits
        if per_sample != (masks is not None):
            raise ValueError(
                f"split {split!r}: masks must be given exactly when the split has per-sample masks"
            )
        if x is not None:
            group["x"][start:stop] = x.numpy()
        group["y"][start:stop] = y.numpy()
        if masks is not None:
            group["mask"][start:stop] = masks.numpy()
        if coil_maps is not None:
            group["coil_maps"][start:stop] = to_real(coil_maps.to(torch.complex64)).numpy()

    def set_attribute(self, name: str, value: str | float) -> None:
        """Set a file attribute known only once the data are written (before the hashes are)."""
        self._handle.attrs[name] = value

    def write_per_sample(self, split: str, name: str, values: Tensor) -> None:
        """Write a per-sample dataset ``name`` ``(n,)`` of ``split`` (e.g. ``scale``)."""
        self._handle[split].create_dataset(name, data=values.numpy())


@contextlib.contextmanager
def write_measurements(
    path: Path | str,
    *,
    scenario: str,
    physics_kind: PhysicsKindName,
    sigma: float,
    spec: Mapping[str, object],
    seed: int,
    slices_file: Path | str,
    coil_maps: Tensor | None,
    skipped_files: Sequence[tuple[str, str]] = (),
) -> Iterator[MeasurementWriter]:
    """Open a new measurement store at ``path`` (atomically) and yield a writer for its splits.

    The file-level attrs and ``coil_maps`` are written here; the caller creates and fills each split
    with :class:`MeasurementWriter`. The file appears at ``path`` only when the block succeeds.

    Args:
        path: target file.
        scenario: scenario name.
        physics_kind: one of :data:`ssibench.config.PHYSICS_KINDS`.
        sigma: noise standard deviation.
        spec: the scenario spec (stored as sorted JSON).
        seed: master seed.
        slices_file: the slices store the images came from (recorded as given).
        coil_maps: ``(N, H, W)`` complex for multicoil, else ``None``.
        skipped_files: (file, reason) of the raw files extraction left out
            (``data.on_bad_file: skip``), recorded as the JSON attribute ``skipped_files``.
    """
    if physics_kind not in PHYSICS_KINDS:
        raise ValueError(
            f"physics_kind must be one of {', '.join(PHYSICS_KINDS)}; got {physics_kind!r}"
        )
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as handle:
        handle.attrs["scenario"] = scenario
        handle.attrs["physics"] = physics_kind
        handle.attrs["sigma"] = float(sigma)
        handle.attrs["spec"] = json.dumps(dict(spec), sort_keys=True)
        handle.attrs["seed"] = int(seed)
        handle.attrs["slices_file"] = str(slices_file)
        handle.attrs["ssibench_version"] = ssibench.__version__
        handle.attrs["skipped_files"] = json.dumps(
            [{"file": name, "reason": reason} for name, reason in skipped_files]
        )
        if coil_maps is not None:
            maps = to_real(coil_maps.to(torch.complex64))  # (N, H, W) → (N, 2, H, W)
            handle.create_dataset("coil_maps", data=maps.numpy().astype(np.float32))
        yield MeasurementWriter(handle, physics_kind)
        write_hashes(handle)


def _attr(attrs: Mapping[str, object], path: Path, key: str) -> str:
    if key not in attrs:
        raise missing_error(path, key, "no attribute")
    return str(attrs[key])


def read_measurements(path: Path | str, split: str) -> MeasurementSet:
    """Read one split (``train``, ``val`` or ``test``) of a store into CPU memory, checked.

    Nothing the file declares is trusted (:mod:`ssibench.data.store_checks`): dtypes, declared
    sizes and shapes are checked before a byte is read; ``y``, coil maps and ground truth must be
    finite and masks 0/1; the split's content hash is recomputed from the bytes read
    (:func:`~ssibench.data.identity.verify_split`). ``x``, ``y`` and masks come back float32.

    Raises:
        ValueError: for an unknown split name.
        DataFileError: a missing or non-HDF5 file, a missing or malformed group, dataset or
            attribute, shapes that disagree, a value that is not finite, data that do not match
            the store's hashes; the message names the path, what is wrong and the rebuild command.
    """
    path = Path(path)
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    handle = open_store(path)
    with handle:
        if split not in handle:
            raise missing_error(path, split, "no group")
        attrs = read_attrs(handle, (*PHYSICS_ATTRS, *HASH_ATTRS))
        physics_kind = _attr(attrs, path, "physics")
        if physics_kind not in PHYSICS_KINDS:
            raise DataFileError(
                f"{path}: attribute 'physics' is {physics_kind!r}, expected one of "
                f"{', '.join(PHYSICS_KINDS)}; {rebuild_hint(path)}"
            )
        kind = PHYSICS_KINDS[physics_kind]
        datasets = checked_datasets(path, handle, split, kind)
        sigma = store_sigma(path, attrs)
        scenario = _attr(attrs, path, "scenario")
        try:  # a truncated file opens, but its datasets fail to read
            arrays = {name: dataset[()] for name, dataset in datasets.items()}
        except OSError as error:
            raise DataFileError(
                f"{path}: cannot read split {split!r} ({error}); {rebuild_hint(path)}"
            ) from error
    check_values(path, split, arrays, kind)
    verify_split(path, split, arrays, attrs)
    coil_maps = None
    if kind.coils:  # per-slice maps of acquired k-space, else one set: (n,) N, H, W complex
        maps = arrays[f"{split}/coil_maps" if kind.acquired else "coil_maps"]
        coil_maps = to_complex(torch.from_numpy(maps.astype(np.float32, copy=False)))
    slice_index = arrays.get(f"{split}/slice_index") if kind.acquired else None
    return MeasurementSet(
        x=_float32(arrays[f"{split}/x"]),
        y=_float32(arrays[f"{split}/y"]),
        masks=_float32(arrays[f"{split}/mask"]),
        coil_maps=coil_maps,
        sigma=sigma,
        physics_kind=physics_kind,  # type: ignore[arg-type]
        scenario=scenario,
        index=torch.from_numpy(arrays[f"{split}/index"].astype(np.int64)),
        slice_index=None if slice_index is None else torch.from_numpy(slice_index.astype(np.int64)),
    )


def _float32(values: np.ndarray) -> Tensor:
    """``values`` as a float32 tensor (no copy when the file holds float32, as ssibench writes)."""
    return torch.from_numpy(values.astype(np.float32, copy=False))
