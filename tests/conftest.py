"""Shared fixtures: a seeded torch generator and a tiny fastMRI-format tree built once per run."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

#: Side of the images the tiny tree is extracted to in tests.
TINY_SIZE = 16


def _header(recon_rows: int, recon_cols: int) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<ismrmrdHeader xmlns="http://www.ismrm.org/ISMRMRD"><encoding>'
        "<reconSpace><matrixSize>"
        f"<x>{recon_rows}</x><y>{recon_cols}</y><z>1</z>"
        "</matrixSize></reconSpace></encoding></ismrmrdHeader>"
    ).encode()


def _write_volume(
    path: Path,
    rng: np.random.Generator,
    kspace_shape: tuple[int, ...],
    targets: dict[str, tuple[int, int]],
    header: bytes | None,
    acquisition: str,
) -> None:
    kspace = rng.normal(size=kspace_shape) + 1j * rng.normal(size=kspace_shape)
    with h5py.File(path, "w") as handle:
        handle.create_dataset("kspace", data=kspace.astype(np.complex64))
        for key, (h, w) in targets.items():
            target = rng.uniform(0.1, 3.0, size=(kspace_shape[0], h, w)).astype(np.float32)
            handle.create_dataset(key, data=target)
        if header is not None:
            handle.create_dataset("ismrmrd_header", data=np.bytes_(header))
        handle.attrs["acquisition"] = acquisition
        handle.attrs["patient_id"] = path.stem


@pytest.fixture
def generator() -> torch.Generator:
    """A CPU generator seeded with 0."""
    return torch.Generator().manual_seed(0)


@pytest.fixture(scope="session")
def tiny_fastmri_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five tiny fastMRI-format volumes covering the reader's cases (files sorted as listed).

    - ``a_multicoil_4coils.h5``: 3 slices, 4 coils, kspace 32×16, rss 16×16 (= the test size);
    - ``b_multicoil_narrow.h5``: 5 slices, 2 coils, rss 13×11 (narrower than 16: zero-padded);
    - ``c_singlecoil_knee.h5``: 4 slices, single-coil, esc 21×19 (cropped) and an rss decoy;
    - ``d_no_target_header.h5``: 4 slices, 3 coils, kspace 32×20, no target, header recon 16×14;
    - ``e_no_target_no_header.h5``: 3 slices, 2 coils, kspace 24×12, no target, no header.
    """
    root = tmp_path_factory.mktemp("tiny_fastmri")
    rng = np.random.default_rng(1234)
    _write_volume(
        root / "a_multicoil_4coils.h5",
        rng,
        (3, 4, 32, 16),
        {"reconstruction_rss": (16, 16)},
        _header(16, 16),
        "AXT1",
    )
    _write_volume(
        root / "b_multicoil_narrow.h5",
        rng,
        (5, 2, 26, 11),
        {"reconstruction_rss": (13, 11)},
        _header(13, 11),
        "AXT2",
    )
    _write_volume(
        root / "c_singlecoil_knee.h5",
        rng,
        (4, 40, 19),
        {"reconstruction_esc": (21, 19), "reconstruction_rss": (21, 19)},
        _header(21, 19),
        "CORPD_FBK",
    )
    _write_volume(
        root / "d_no_target_header.h5", rng, (4, 3, 32, 20), {}, _header(16, 14), "AXFLAIR"
    )
    _write_volume(root / "e_no_target_no_header.h5", rng, (3, 2, 24, 12), {}, None, "AXT1POST")
    return root


@pytest.fixture(scope="session")
def tiny_slices(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A slices store of 8 demo volumes (one 16 × 16 slice each), split 4/2/2 by volume, seed 0.

    Built once per test session; tests simulate their own measurement stores from it.
    """
    from ssibench.data.demo import write_demo_volumes
    from ssibench.data.slices import extract_slices

    root = tmp_path_factory.mktemp("tiny-slices")
    write_demo_volumes(
        root / "raw", n_volumes=8, n_slices=1, height=16, width=16, n_coils=2, seed=0
    )
    extract_slices(root / "raw", root / "slices.h5", (16, 16), (0.5, 0.25, 0.25), seed=0)
    return root / "slices.h5"


#: The registries plugins add to, as (module, attribute).
PLUGIN_REGISTRIES = (
    ("ssibench.methods.registry", "METHODS"),
    ("ssibench.methods.registry", "_PLUGIN_BUILDERS"),
    ("ssibench.methods.registry", "_RECORDS"),
    ("ssibench.methods.options", "OPTION_RULES"),
    ("ssibench.models.build", "MODELS"),
    ("ssibench.evaluation.metrics", "METRICS"),
    ("ssibench.config.kinds", "PHYSICS_KINDS"),
    ("ssibench.physics", "OPERATORS"),
    ("ssibench.data.sources", "DATASETS"),
    ("ssibench.plugins", "_SOURCES"),
    ("ssibench.models.cost", "MODEL_COSTS"),
)
#: Folder of the example plugin (tests import it from there).
EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture
def isolated_plugins(monkeypatch: pytest.MonkeyPatch):
    """Registries restored after the test, and ``examples/`` importable: plugins stay local."""
    import importlib
    import sys

    import ssibench.plugins as plugins

    saved = []
    for module_name, attribute in PLUGIN_REGISTRIES:
        try:
            registry = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError):  # a registry not built yet
            continue
        saved.append((registry, dict(registry)))
    loaded = list(plugins._LOADED)
    monkeypatch.syspath_prepend(str(EXAMPLES_DIR))
    yield plugins
    for registry, content in saved:
        registry.clear()
        registry.update(content)
    for name in set(plugins._LOADED) - set(loaded):  # imported again by the next test
        sys.modules.pop(name, None)
    plugins._LOADED[:] = loaded
