"""Data layer: fastMRI reading, embedded demo volumes, the slices store and the measurement store.

Modules: fastmri, kspace (acquired multicoil k-space), demo, slices (the slices store and its
extraction), splits (split assignment), measurements (the measurement store) and identity (its
content hashes).

Files flow ``data/raw/<dataset>/*.h5`` → :func:`extract_slices` → ``data/slices/<dataset>.h5``
→ :func:`ssibench.simulate.simulate_scenario` → ``data/measurements/<dataset>/<scenario>.h5``
→ :func:`read_measurements`.

The names below are imported on first use: a training job reads a measurement store and should
not pay for the demo's imports (scipy.ndimage, nilearn) or the slices store's.
"""

from __future__ import annotations

from ssibench.lazy import lazy_attributes

__all__ = [
    "SPLITS",
    "FastMRISlice",
    "MeasurementSet",
    "SliceStore",
    "extract_slices",
    "read_measurements",
    "read_middle_slice",
    "read_slice_store",
    "rss_from_kspace",
    "write_demo_volumes",
    "write_measurements",
    "write_slice_store",
]

#: Public name → the module that defines it.
_LAZY = {
    "SPLITS": "ssibench.data.splits",
    "FastMRISlice": "ssibench.data.fastmri",
    "read_middle_slice": "ssibench.data.fastmri",
    "rss_from_kspace": "ssibench.data.fastmri",
    "MeasurementSet": "ssibench.data.measurements",
    "read_measurements": "ssibench.data.measurements",
    "write_measurements": "ssibench.data.measurements",
    "SliceStore": "ssibench.data.slices",
    "extract_slices": "ssibench.data.slices",
    "read_slice_store": "ssibench.data.slices",
    "write_slice_store": "ssibench.data.slices",
    "write_demo_volumes": "ssibench.data.demo",
}


__getattr__, __dir__ = lazy_attributes(globals(), _LAZY)
