"""The package's shape: small modules, no import cycles, a torch-free registry and config."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "src" / "ssibench"
#: The line budget of a module; one that grows past it becomes a sub-package.
MAX_LINES = 400


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in sorted(PACKAGE_DIR.rglob("*.py"))}


def _imports(name: str, inside_functions: bool = False) -> set[str]:
    """The ``ssibench`` modules ``name`` imports (submodules, not names in them).

    At module level, or anywhere in the module with ``inside_functions`` (an import deferred into a
    function still ties the two modules together: it only hides the cycle from Python).
    """
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree) if inside_functions else tree.body:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0]
                base = f"{parent}.{base}" if base else parent
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return {module for module in found if module in MODULES and module != name}


def test_no_module_is_over_the_line_budget() -> None:
    long = {
        name: count
        for name, path in MODULES.items()
        if (count := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines (split them): {long}"


@pytest.mark.parametrize("inside_functions", [False, True], ids=["module level", "all imports"])
def test_the_module_import_graph_has_no_cycle(inside_functions: bool) -> None:
    graph = {name: _imports(name, inside_functions) for name in MODULES}
    state: dict[str, str] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = "open"
        for child in sorted(graph[name]):
            if state.get(child) == "open":
                cycle = [*trail[trail.index(child) :], child] if child in trail else [name, child]
                pytest.fail(f"import cycle: {' → '.join(cycle)}")
            if child not in state:
                visit(child, [*trail, child])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


@pytest.mark.parametrize("module", ["ssibench", "ssibench.methods", "ssibench.config"])
def test_metadata_modules_do_not_import_torch(module: str) -> None:
    """The method registry and the config helpers load without torch (the CLI's help, the DAG)."""
    code = f"import sys, {module}; print('torch' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_a_training_job_imports_no_report_or_demo_library() -> None:
    """``ssibench train`` loads the CLI and the trainer only: pandas, scipy, matplotlib and nilearn
    (the tables, figures and demo volumes) cost ~0.7 s of every job and are not needed there."""
    code = (
        "import sys, ssibench.cli, ssibench.training.run; "
        "print(sorted({m.split('.')[0] for m in sys.modules} "
        "& {'pandas', 'scipy', 'matplotlib', 'nilearn', 'seaborn'}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_every_method_has_exactly_one_builder() -> None:
    from ssibench.methods import METHODS
    from ssibench.methods.adversarial import ADVERSARIAL_BUILDERS
    from ssibench.methods.builders import BUILDERS

    assert set(BUILDERS).isdisjoint(ADVERSARIAL_BUILDERS)
    assert set(BUILDERS) | set(ADVERSARIAL_BUILDERS) == set(METHODS)
    assert set(ADVERSARIAL_BUILDERS) == {name for name, spec in METHODS.items() if spec.adversarial}


def test_every_physics_kind_has_an_operator() -> None:
    from ssibench.config import PHYSICS_KINDS
    from ssibench.physics import OPERATORS

    assert OPERATORS.keys() == PHYSICS_KINDS.keys()


def _layout_rows() -> dict[str, str]:
    """docs/development.md's map of the package: row names (left column) → description."""
    text = (PACKAGE_DIR.parents[1] / "docs" / "development.md").read_text()
    block = text.split("The package `src/ssibench/`:", 1)[1].split("```", 2)[1]
    rows: dict[str, str] = {}
    names: list[str] = []
    for line in block.splitlines():
        left, right = line[:31].strip(), line[31:].strip()
        if left and not line.startswith(" "):  # a new row; its names may go on below
            names = []
        names += [name.strip().rstrip("/") for name in left.split(",") if name.strip()]
        for name in names:
            rows[name] = f"{rows.get(name, '')} {right}"
    return rows


def test_the_layout_in_the_docs_matches_the_tree() -> None:
    """Every module and subpackage has its row; every module of a subpackage is named in it,
    but where the row says it holds one module per step, family or figure."""
    rows = _layout_rows()
    missing = []
    for entry in sorted(PACKAGE_DIR.iterdir()):
        name = entry.stem if entry.suffix == ".py" else entry.name
        if name.startswith(("_", ".")) or not (entry.suffix == ".py" or entry.is_dir()):
            continue
        if name not in rows:
            missing.append(name)
        elif entry.is_dir() and "one module per" not in rows[name]:
            words = set(re.findall(r"[a-z_]+", rows[name]))
            missing += [
                f"{name}/{m.stem}" for m in sorted(entry.glob("[!_]*.py")) if m.stem not in words
            ]
    assert not missing, f"docs/development.md's layout does not name: {', '.join(missing)}"
