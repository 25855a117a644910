"""The gate of the parity tests: importing it skips the importing module unless DeepInverse 0.5.0
(with torchvision, through the shim of ``benchmarks/parity/env.py``) imports; see docs/parity.md.

``from parity_gate import deepinv, env`` puts ``benchmarks/`` on the path (the ``parity`` package
lives outside ``src/``) and hands over the imported DeepInverse.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from parity import env  # noqa: E402

try:
    env.prepare_torchvision()
except ImportError:
    pytest.skip("torchvision is not installed (parity extra)", allow_module_level=True)
deepinv = pytest.importorskip("deepinv")
if deepinv.__version__ != env.DEEPINV_VERSION:
    pytest.skip(f"needs deepinv {env.DEEPINV_VERSION}", allow_module_level=True)

__all__ = ["BENCHMARKS", "deepinv", "env"]
