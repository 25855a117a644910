"""Code provenance: the source files a run of a method depends on, and their hash.

A run depends on the *core* (the trainer, evaluation, the model, physics, data, metrics and what
they import) and on its method's losses and transforms. Which losses and transforms those are is
read from the method's builder functions in :mod:`ssibench.methods.builders` (the names they
reference, followed through the helper functions they call), then closed over the ``ssibench``
imports of those modules. Imports are resolved to the module that *defines* the imported name, so
importing ``Loss`` from the package ``ssibench.losses`` depends on ``ssibench.losses.base`` only,
not on every loss the package re-exports.

What a plugin registered joins the code of the runs that use it (:func:`component_modules`): the
module defining a plugin *model* for the runs that train it, a plugin *physics* for the runs of its
scenarios (and the scenario's ``simulate`` job); a plugin *metric* or *data set* is an input of the
jobs that compute it (:func:`plugin_files`), not part of the trained weights' hash.

The workflow makes these files inputs of the train and evaluate jobs (editing a loss reruns
exactly the runs that use it), every run records :func:`code_hash`, and the tables mark a run
whose recorded hash differs from the code installed now.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib
import importlib.util
import inspect
import types
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "CORE_ROOTS",
    "code_files",
    "code_hash",
    "code_modules",
    "component_modules",
    "config_differences",
    "plugin_files",
]

PACKAGE = "ssibench"
#: Entry points of every run: what a train or evaluate job executes.
CORE_ROOTS = (
    "ssibench.training",
    "ssibench.evaluation",
    "ssibench.cli.train",
    "ssibench.cli.evaluate",
)
#: Packages whose modules belong to the methods that use them, not to the core.
METHOD_PACKAGES = ("ssibench.losses", "ssibench.transforms")
#: Where the builders and their helpers live (helpers are followed, not taken whole).
BUILDER_PACKAGE = "ssibench.methods"
#: Hex digits of the hash shown in tables (the full hash is recorded).
SHORT_HASH = 12


def _in_package(name: str, packages: Iterable[str]) -> bool:
    return any(name == package or name.startswith(package + ".") for package in packages)


def _defining_module(module: str, name: str) -> str:
    """The module that defines ``module.name`` (a submodule, or the ``__module__`` of an object)."""
    if importlib.util.find_spec(module) is not None and _is_submodule(module, name):
        return f"{module}.{name}"
    value = getattr(importlib.import_module(module), name, None)
    if isinstance(value, types.ModuleType):
        return value.__name__
    defined_in = getattr(value, "__module__", None)
    if isinstance(defined_in, str) and _in_package(defined_in, [PACKAGE]):
        return defined_in
    # A constant or type alias re-exported by a package: the submodule that assigns it.
    for submodule in sorted(_imports(module)):
        if name in _top_level_names(submodule):
            return submodule
    return module


@functools.cache
def _top_level_names(module: str) -> frozenset[str]:
    """Names a module defines at its top level (assignments, functions, classes)."""
    names: set[str] = set()
    for node in ast.parse(Path(_origin(module)).read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return frozenset(names)


def _is_submodule(module: str, name: str) -> bool:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.submodule_search_locations is None:
        return False
    return importlib.util.find_spec(f"{module}.{name}") is not None


@functools.cache
def _imports(module: str) -> frozenset[str]:
    """The ``ssibench`` modules that ``module`` imports, resolved to their defining modules."""
    source = Path(_origin(module)).read_text()
    package = module if _origin(module).endswith("__init__.py") else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if _in_package(a.name, [PACKAGE]))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                parent = package.rsplit(".", node.level - 1)[0]
                base = f"{parent}.{base}" if base else parent
            if _in_package(base, [PACKAGE]):
                found.update(_defining_module(base, alias.name) for alias in node.names)
    found.discard(module)
    return frozenset(found)


def _closure(roots: Iterable[str], skip: tuple[str, ...] = ()) -> set[str]:
    """``roots`` and every module they import, transitively, leaving out packages ``skip``."""
    seen: set[str] = set()
    todo = [root for root in roots if not _in_package(root, skip)]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        todo.extend(m for m in _imports(module) if m not in seen and not _in_package(m, skip))
    return seen


def _referenced_modules(function: types.FunctionType, seen: set[int] | None = None) -> set[str]:
    """Modules of the ``ssibench`` classes and functions a builder references, through helpers.

    Helper functions of :mod:`ssibench.methods` (the builders' helpers) are followed into; classes
    add the modules of their ``ssibench`` bases too (a loss depends on the base class it extends);
    the modules of :mod:`ssibench.methods` themselves are core, not seeds.
    """
    seen = set() if seen is None else seen
    if id(function) in seen:
        return set()
    seen.add(id(function))
    found: set[str] = set()
    namespace = function.__globals__
    for name in _code_names(function.__code__):
        value = namespace.get(name)
        if inspect.isfunction(value) and _in_package(value.__module__, [BUILDER_PACKAGE]):
            found |= _referenced_modules(value, seen)
        elif inspect.isclass(value):
            found.update(
                c.__module__ for c in value.__mro__ if _in_package(c.__module__, [PACKAGE])
            )
        elif callable(value) and _in_package(getattr(value, "__module__", "") or "", [PACKAGE]):
            found.add(value.__module__)
    # The builder modules import every method's losses; they are core (the trainer imports
    # them), so a class they define (a context record) must not pull in their whole closure.
    return {module for module in found if not _in_package(module, [BUILDER_PACKAGE])}


def _code_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return names


def _origin(module: str) -> str:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(f"no source file for module {module!r}")
    return spec.origin


def component_modules(spec: Mapping[str, Any], *, trains: bool = True) -> tuple[str, ...]:
    """Modules of the plugin components a run of ``spec`` uses: its model and its physics.

    ``spec`` is a job's or a run's spec (``model.name``, ``scenario.physics``); the model counts
    only for a method that ``trains``. Built-in components add nothing (they are core).
    """
    from ssibench.plugins import registered_source

    model = (spec.get("model") or {}).get("name")
    physics = (spec.get("scenario") or {}).get("physics")
    found = {registered_source("physics", physics)} if isinstance(physics, str) else set()
    if trains and isinstance(model, str):
        found.add(registered_source("model", model))
    return tuple(sorted(module for module in found if module is not None))


def plugin_files(kind: str, names: Iterable[str]) -> list[str]:
    """Source files of the plugin modules defining the ``kind`` registered as ``names``.

    ``kind`` is ``model``, ``physics``, ``metric`` or ``dataset``; built-in names add nothing, so
    with no plugin the workflow's inputs are unchanged.
    """
    from ssibench.plugins import registered_source

    modules = {registered_source(kind, name) for name in names}
    return sorted(_origin(module) for module in modules if module is not None)


@functools.cache
def code_modules(method: str, components: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Sorted names of the modules a run of ``method`` depends on.

    ``components`` are the plugin modules of its model and physics (:func:`component_modules`);
    they are taken with the ``ssibench`` modules they import.

    Raises:
        ConfigError: for an unknown method (from :func:`ssibench.methods.get_method`).
    """
    from ssibench.methods.builder_tables import builder_functions

    core = _closure(CORE_ROOTS, skip=METHOD_PACKAGES)
    builders = [b for b in builder_functions(method) if inspect.isfunction(b)]
    seeds: set[str] = set(components)
    for builder in builders:
        seeds |= _referenced_modules(builder)
        if not _in_package(builder.__module__, [PACKAGE]):  # a plugin's builder: its module too
            seeds.add(builder.__module__)
    return tuple(sorted(core | _closure(seeds)))


def code_files(method: str, components: tuple[str, ...] = ()) -> list[str]:
    """Source files of :func:`code_modules` (what the workflow's train and evaluate jobs read)."""
    return [_origin(module) for module in code_modules(method, components)]


@functools.cache
def code_hash(method: str, components: tuple[str, ...] = ()) -> str:
    """SHA-256 (hex) over the name and bytes of every module in :func:`code_modules`."""
    digest = hashlib.sha256()
    for module in code_modules(method, components):
        digest.update(f"{module}\n".encode())
        digest.update(Path(_origin(module)).read_bytes())
    return digest.hexdigest()


def config_differences(old: object, new: object, prefix: str = "") -> list[str]:
    """Dotted keys where two JSON-like configurations differ, as ``key: old → new``.

    Example:
        >>> config_differences({"train": {"lr": 0.001, "epochs": 4}}, {"train": {"lr": 0.003}})
        ['train.epochs: 4 → (absent)', 'train.lr: 0.001 → 0.003']
    """
    if isinstance(old, dict) and isinstance(new, dict):
        found: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            where = f"{prefix}.{key}" if prefix else str(key)
            if key not in new:
                found.append(f"{where}: {old[key]!r} → (absent)")
            elif key not in old:
                found.append(f"{where}: (absent) → {new[key]!r}")
            else:
                found += config_differences(old[key], new[key], where)
        return found
    if isinstance(old, (list, tuple)) and isinstance(new, (list, tuple)):
        old, new = list(old), list(new)
    return [] if old == new else [f"{prefix or 'value'}: {old!r} → {new!r}"]
