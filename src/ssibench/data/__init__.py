"""Data layer: fastMRI reading, embedded demo volumes, the slices store and the measurement store.

Modules: fastmri, demo, slices (the slices store and its extraction), splits (split assignment),
measurements (the measurement store) and identity (its content hashes).

Files flow ``data/raw/<dataset>/*.h5`` → :func:`extract_slices` → ``data/slices/<dataset>.h5``
→ :func:`ssibench.simulate.simulate_scenario` → ``data/measurements/<dataset>/<scenario>.h5``
→ :func:`read_measurements`.
"""

from ssibench.data.demo import write_demo_volumes
from ssibench.data.fastmri import FastMRISlice, read_middle_slice, rss_from_kspace
from ssibench.data.measurements import MeasurementSet, read_measurements, write_measurements
from ssibench.data.slices import SliceStore, extract_slices, read_slice_store, write_slice_store
from ssibench.data.splits import SPLITS

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
