"""A fast subset of the DeepInverse parity benchmark (benchmarks/parity_deepinv.py).

Skipped unless DeepInverse 0.5.0 (with torchvision) is importable: install the ``parity`` extra in
a separate environment, see docs/parity.md.
"""

from __future__ import annotations

import pytest
import torch

from parity_gate import deepinv, env  # skips this module without DeepInverse 0.5.0

# isort: split
from parity import (  # benchmarks/, put on the path by the gate
    cases_equivariant,
    cases_noise,
    cases_other,
    cases_splitting,
    report,
)
from parity.common import Setup

#: Comparisons of the fast subset: one per mechanism (operators, splitting, weights, replayed
#: transforms and noise, global-RNG replay, a documented offset, a documented bug).
FAST = {
    "physics [single-coil]",
    "mc",
    "ssdu",
    "robust-ssdu",
    "ei",
    "moi [noisy]",
    "vortex [T_e shift, B1 fixed]",
    "vortex [T_e shift]",
    "robust-ei",
    "ddssl",
    "adversarial [G]",
}

ALL_CASES = [
    *cases_other.CASES,
    *cases_splitting.CASES,
    *cases_equivariant.CASES,
    *cases_noise.CASES,
]


@pytest.fixture(scope="module")
def setup() -> Setup:
    env.import_deepinv()
    torch.set_num_threads(1)
    return Setup(deepinv, draws=20)


@pytest.mark.parametrize("case", [c for c in ALL_CASES if c.label in FAST], ids=lambda c: c.label)
def test_fast_subset_agrees_or_differs_only_as_documented(setup: Setup, case) -> None:
    outcome = case.run(setup)
    state = report.status(outcome)
    assert state != report.UNEXPLAINED, report.verdict(outcome)
    if outcome.known is None:
        assert state in (report.EQUAL, report.EXPECTATION), report.verdict(outcome)
    if outcome.adjusted is not None:
        assert outcome.explained, report.verdict(outcome)


def test_every_fast_label_exists() -> None:
    assert {case.label for case in ALL_CASES} >= FAST


def test_phase_error_bug_is_what_separates_vortex(setup: Setup) -> None:
    by_label = {case.label: case for case in cases_equivariant.CASES}
    assert report.status(by_label["vortex [T_e shift]"].run(setup)) == report.EXPLAINED
    assert report.status(by_label["vortex [T_e shift, B1 fixed]"].run(setup)) == report.EQUAL


def test_table_ends_with_the_summary(setup: Setup) -> None:
    case = next(c for c in cases_splitting.CASES if c.label == "sup")
    rows = [report.Row(case.label, case.counterpart, case.run(setup), 0.0)]
    table = report.format_table(rows, markdown=True)
    assert table.splitlines()[0].startswith("| method | DeepInverse counterpart | \\|Δ loss\\| |")
    assert report.summary(rows).startswith("summary: 1 comparisons against deepinv 0.5.0: 1 equal")
