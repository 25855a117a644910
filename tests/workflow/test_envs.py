"""envs/ssibench.yaml (conda) and envs/requirements.lock (pip) agree with pyproject.toml.

Every dependency of pyproject.toml is in the conda environment with the same version specifier
(under its conda-forge name) and pinned in the lock to a version the specifier allows; whatever
else either file holds is explained: the conda env's interpreter and installer, and lock entries
that name (`# via ...`) the locked package needing them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = ROOT / "pyproject.toml"
CONDA_ENV = ROOT / "envs" / "ssibench.yaml"
LOCK = ROOT / "envs" / "requirements.lock"

# conda-forge name -> PyPI name, where they differ.
CONDA_TO_PYPI = {
    "pytorch": "torch",
    "matplotlib-base": "matplotlib",
    "snakemake-minimal": "snakemake",
}
# Conda entries that are not Python dependencies of the package.
CONDA_EXTRAS = {"python": "the interpreter", "pip": "installs the repository itself (-e ..)"}
# Used by the package but not yet in pyproject.toml's dependencies (scipy: the demo volumes;
# pygments: `snakemake --report`); treated as dependencies until pyproject.toml lists them.
PENDING = {"scipy": ">=1.10", "pygments": ">=2.10"}
# `# via ssibench[<extra>]`: pinned because an optional extra of pyproject.toml requires it.
EXTRA_PARENT = re.compile(r"^ssibench\[(?P<extra>[a-z0-9-]+)\]$")
LOCK_LINE = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>\S+)(?:\s+#\s*via\s+(?P<via>.+))?$"
)


def canonical(name: str) -> str:
    """PEP 503 normalised name."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Pin:
    """One lock entry: pinned version and the locked packages that need it (empty: direct)."""

    version: Version
    via: tuple[str, ...]


def pyproject_dependencies(text: str) -> dict[str, SpecifierSet]:
    """Dependencies of a pyproject.toml text plus PENDING, name -> specifier."""
    lines = tomllib.loads(text)["project"]["dependencies"]
    dependencies = {canonical(r.name): r.specifier for r in map(Requirement, lines)}
    for name, specifier in PENDING.items():
        dependencies.setdefault(canonical(name), SpecifierSet(specifier))
    return dependencies


def pyproject_extras(text: str) -> dict[str, dict[str, SpecifierSet]]:
    """Optional extras of a pyproject.toml text, extra -> name -> specifier."""
    extras = tomllib.loads(text)["project"].get("optional-dependencies", {})
    return {
        extra: {canonical(r.name): r.specifier for r in map(Requirement, lines)}
        for extra, lines in extras.items()
    }


def requires_python(text: str) -> SpecifierSet:
    return SpecifierSet(tomllib.loads(text)["project"]["requires-python"])


def conda_dependencies(text: str) -> dict[str, SpecifierSet]:
    """Conda packages of an environment file (the pip sub-list left out), name -> specifier."""
    entries = [entry for entry in yaml.safe_load(text)["dependencies"] if isinstance(entry, str)]
    dependencies = {}
    for entry in entries:
        name, _, specifier = entry.partition(" ")
        dependencies[canonical(name)] = SpecifierSet(specifier.replace(" ", ""))
    return dependencies


def lock_pins(text: str) -> dict[str, Pin]:
    """Entries of a requirements lock; a line that is not `name==version [# via a, b]` fails."""
    pins = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        match = LOCK_LINE.match(line.strip())
        if match is None:
            raise ValueError(f"lock line {number}: {line!r} is not `name==version [# via ...]`")
        via = tuple(canonical(n.strip()) for n in (match["via"] or "").split(",") if n.strip())
        pins[canonical(match["name"])] = Pin(Version(match["version"]), via)
    return pins


def problems(pyproject_text: str, conda_text: str, lock_text: str) -> list[str]:
    """Every disagreement between the three files (empty when they agree)."""
    dependencies = pyproject_dependencies(pyproject_text)
    conda = conda_dependencies(conda_text)
    pins = lock_pins(lock_text)
    found = []
    conda_by_pypi = {CONDA_TO_PYPI.get(name, name): name for name in conda}
    for name, specifier in dependencies.items():
        if name not in conda_by_pypi:
            found.append(f"{name}: in pyproject.toml, missing from envs/ssibench.yaml")
        elif conda[conda_by_pypi[name]] != specifier:
            found.append(
                f"{name}: pyproject.toml asks for {specifier or 'any version'}, "
                f"envs/ssibench.yaml for {conda[conda_by_pypi[name]] or 'any version'}"
            )
        if name not in pins:
            found.append(f"{name}: in pyproject.toml, not pinned in envs/requirements.lock")
        elif not specifier.contains(pins[name].version, prereleases=True):
            found.append(
                f"{name}: locked at {pins[name].version}, outside pyproject.toml's {specifier}"
            )
    pypi_to_conda = {pypi: conda_name for conda_name, pypi in CONDA_TO_PYPI.items()}
    for name in conda:
        if name in pypi_to_conda:
            found.append(f"{name}: envs/ssibench.yaml must use conda-forge's {pypi_to_conda[name]}")
    for pypi_name, conda_name in conda_by_pypi.items():
        if pypi_name not in dependencies and conda_name not in CONDA_EXTRAS:
            found.append(f"{conda_name}: in envs/ssibench.yaml, not a dependency in pyproject.toml")
    if "python" in conda and not set(requires_python(pyproject_text)) <= set(conda["python"]):
        found.append(
            f"python: envs/ssibench.yaml asks for {conda['python']}, which does not keep "
            f"pyproject.toml's requires-python {requires_python(pyproject_text)}"
        )
    extras = pyproject_extras(pyproject_text)
    for name, pin in pins.items():
        if name in dependencies:
            continue
        if not pin.via:
            found.append(f"{name}: pinned in the lock, not in pyproject.toml and no `# via`")
        for parent in pin.via:
            extra = EXTRA_PARENT.match(parent)
            if extra is None:
                if parent not in pins:
                    found.append(f"{name}: `# via {parent}`, but {parent} is not in the lock")
            elif name not in extras.get(extra["extra"], {}):
                found.append(f"{name}: `# via {parent}`, but that extra does not require {name}")
            elif not extras[extra["extra"]][name].contains(pin.version, prereleases=True):
                found.append(
                    f"{name}: locked at {pin.version}, outside {parent}'s "
                    f"{extras[extra['extra']][name]}"
                )
    return found


PYPROJECT_FIXTURE = """
[project]
requires-python = ">=3.10"
dependencies = ["torch>=2.1", "matplotlib>=3.7", "numpy>=1.24", "scipy>=1.10", "pygments>=2.10"]
"""
CONDA_FIXTURE = """
dependencies:
  - python >=3.10,<3.13
  - pip
  - pytorch >=2.1
  - matplotlib-base >=3.7
  - numpy >=1.24
  - scipy >=1.10
  - pygments >=2.10
  - pip:
      - -e ..
"""
LOCK_FIXTURE = """# header
torch==2.13.0
matplotlib==3.11.2
numpy==2.4.6
scipy==1.17.1
pygments==2.21.0
pillow==13.0.0  # via matplotlib
"""


def test_repository_files_agree() -> None:
    found = problems(PYPROJECT.read_text(), CONDA_ENV.read_text(), LOCK.read_text())
    assert found == []


def test_fixture_that_agrees_has_no_problem() -> None:
    assert problems(PYPROJECT_FIXTURE, CONDA_FIXTURE, LOCK_FIXTURE) == []


@pytest.mark.parametrize(
    ("file", "old", "new", "expected"),
    [
        ("lock", "numpy==2.4.6", "numpy==1.23.5", "numpy: locked at 1.23.5, outside"),
        ("lock", "torch==2.13.0\n", "", "torch: in pyproject.toml, not pinned"),
        ("lock", "  # via matplotlib", "", "pillow: pinned in the lock, not in pyproject.toml"),
        ("lock", "# via matplotlib", "# via seaborn", "`# via seaborn`, but seaborn is not"),
        ("conda", "  - pytorch >=2.1\n", "", "torch: in pyproject.toml, missing from envs"),
        ("conda", "numpy >=1.24", "numpy >=1.20", "numpy: pyproject.toml asks for >=1.24"),
        ("conda", "  - pip\n", "  - pip\n  - tqdm\n", "tqdm: in envs/ssibench.yaml, not a"),
        (
            "conda",
            "pytorch >=2.1",
            "torch >=2.1",
            "torch: envs/ssibench.yaml must use conda-forge's",
        ),
        ("conda", "python >=3.10", "python >=3.11", "python: envs/ssibench.yaml asks for"),
        ("pyproject", '"numpy>=1.24"', '"numpy>=1.24", "h5py>=3.8"', "h5py: in pyproject.toml"),
    ],
)
def test_a_mismatch_is_reported(file: str, old: str, new: str, expected: str) -> None:
    texts = {"pyproject": PYPROJECT_FIXTURE, "conda": CONDA_FIXTURE, "lock": LOCK_FIXTURE}
    assert old in texts[file]
    texts[file] = texts[file].replace(old, new)
    found = problems(texts["pyproject"], texts["conda"], texts["lock"])
    assert any(line.startswith(expected) or expected in line for line in found), found


def test_pending_dependencies_are_required_until_pyproject_lists_them() -> None:
    without = PYPROJECT_FIXTURE.replace(', "scipy>=1.10", "pygments>=2.10"', "")
    assert problems(without, CONDA_FIXTURE, LOCK_FIXTURE) == []
    lock = LOCK_FIXTURE.replace("scipy==1.17.1\n", "")
    assert "scipy: in pyproject.toml, not pinned in envs/requirements.lock" in problems(
        without, CONDA_FIXTURE, lock
    )


def test_a_pin_of_an_optional_extra_names_the_extra() -> None:
    """`# via ssibench[x]` stands for an extra of pyproject.toml that requires the package."""
    extra = '[project.optional-dependencies]\nlive = ["tensorboard>=2.18"]\n'
    pyproject = PYPROJECT_FIXTURE + extra
    lock = LOCK_FIXTURE + "tensorboard==2.21.0  # via ssibench[live]\n"
    assert problems(pyproject, CONDA_FIXTURE, lock) == []
    assert "that extra does not require" in " ".join(
        problems(pyproject, CONDA_FIXTURE, lock.replace("[live]", "[other]"))
    )
    assert "outside ssibench[live]'s >=2.18" in " ".join(
        problems(pyproject, CONDA_FIXTURE, lock.replace("2.21.0", "2.17.0"))
    )


def test_a_malformed_lock_line_is_an_error() -> None:
    with pytest.raises(ValueError, match="lock line 2"):
        lock_pins("torch==2.13.0\nnumpy>=1.24\n")
