"""Plugins: a researcher's own methods, models, metrics, physics and data sets, outside the package.

A plugin is an importable Python module (on ``PYTHONPATH``, or an installed package). It is loaded
by name from the config (``plugins: [my_module]``: the workflow imports it before it builds the DAG,
and every job imports it again through ``ssibench --plugin my_module <step>``), or, for an installed
package, through the entry-point group ``ssibench.plugins``. At import it registers what it adds
with the functions below (exported as ``ssibench.register_*``); the names are then used in the
config exactly like the built-in ones::

    # my_module.py
    import ssibench
    from ssibench.losses import MCLoss

    class TVLoss(torch.nn.Module):                      # DeepInverse's loss signature
        def forward(self, x_net, y, physics, model, **kwargs):
            return x_net.diff(dim=-1).abs().flatten(1).mean(1)   # (B,): averaged

    ssibench.register_method("mc-tv", lambda context: [MCLoss(), TVLoss()], label="MC+TV")

    # config overlay
    plugins: [my_module]
    extra_methods: [mc-tv]

A name that is already registered (built in, or by another plugin) is refused, naming the plugin
being loaded. This module imports no torch: the registries it fills are imported when first used.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import inspect
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Literal

from ssibench.errors import ConfigError

__all__ = [
    "ENTRY_POINT_GROUP",
    "PluginError",
    "load_plugins",
    "loaded_plugins",
    "register_dataset",
    "register_method",
    "register_metric",
    "register_model",
    "register_physics",
    "registered_source",
]

#: Installed packages register through this entry-point group (``[project.entry-points]``).
ENTRY_POINT_GROUP = "ssibench.plugins"


class PluginError(ConfigError):
    """A plugin that cannot be imported, or that registers a name already taken or a bad object."""


#: Plugin modules imported so far, in order (the loaded ones are not imported twice).
_LOADED: list[str] = []
#: The plugin module being imported now (named in registration errors).
_CURRENT: list[str] = []
#: (kind, name) → the module that defines what a plugin registered (its code provenance).
_SOURCES: dict[tuple[str, str], str] = {}


def loaded_plugins() -> tuple[str, ...]:
    """Names of the plugin modules imported so far, in load order."""
    return tuple(_LOADED)


def registered_source(kind: str, name: str) -> str | None:
    """The module defining what a plugin registered as ``name``; ``None`` for a built-in.

    ``kind`` is ``model``, ``physics``, ``metric`` or ``dataset``.
    """
    return _SOURCES.get((kind, name))


def _record_source(kind: str, name: str, build: Callable[..., Any]) -> None:
    source = builder_source(build)
    if source is not None:
        _SOURCES[(kind, name)] = source


def _who() -> str:
    return f"plugin {_CURRENT[-1]!r}" if _CURRENT else "a plugin"


def _refuse_clash(kind: str, name: str, taken: Mapping[str, Any] | Sequence[str]) -> None:
    if not isinstance(name, str) or not name:
        raise PluginError(f"{_who()}: a {kind} name must be a non-empty string; got {name!r}")
    if name in taken:
        raise PluginError(
            f"{_who()}: {kind} name {name!r} is already registered (built in or by another "
            f"plugin); give the {kind} another name"
        )


def _require_callable(
    kind: str,
    name: str,
    value: object,
    what: str,
    call: str | None = None,
    n_args: int = 0,
    **keywords: object,
) -> None:
    """Refuse a non-callable, or one that cannot take ``n_args`` positional arguments."""
    if not callable(value):
        raise PluginError(
            f"{_who()}: {kind} {name!r}: {what} must be callable; got {type(value).__name__}"
        )
    if call is None:
        return
    try:
        signature = inspect.signature(value)
    except (TypeError, ValueError):  # no introspectable signature: it will tell when called
        return
    try:
        signature.bind(*range(n_args), **keywords)
    except TypeError as error:
        raise PluginError(
            f"{_who()}: {kind} {name!r}: {what} is called as {call}, but its signature "
            f"{signature} does not fit ({error})"
        ) from None


def register_method(
    name: str,
    build: Callable[[Any], list[Any]],
    *,
    label: str,
    supervised: bool = False,
    needs_noise: bool = False,
    time_series: Literal["only", "also", "never"] = "never",
    defaults: Mapping[str, bool | int | float] | None = None,
    citation: str = "",
) -> None:
    """Register a training method: ``build(context) -> list of losses``, as the built-ins.

    ``context`` is a :class:`ssibench.methods.builders.MethodContext`: ``scenario`` (the scenario
    spec), ``options`` (the method's options record: ``defaults`` updated with
    ``method_options.<name>``, one attribute per option) and ``generator`` (the loss random
    stream). A loss is an ``nn.Module`` called as ``loss(x_net, y, physics, model, x=..,
    epoch=..)`` returning a scalar or a per-sample ``(B,)`` tensor. Each option's type is that of
    its default (bool, int or float); a name the built-in methods use keeps its built-in rule.

    Raises:
        PluginError: a name already taken, a non-callable ``build``, a bad ``time_series`` or an
            option default that is not a bool, int or finite float.
    """
    from ssibench.methods.registry import METHODS, register

    _refuse_clash("method", name, METHODS)
    _require_callable("method", name, build, "build", "build(context)", 1)
    if time_series not in ("only", "also", "never"):
        raise PluginError(
            f"{_who()}: method {name!r}: time_series must be 'only', 'also' or 'never'; "
            f"got {time_series!r}"
        )
    try:
        register(
            name,
            build,
            label=label,
            supervised=supervised,
            needs_noise=needs_noise,
            time_series=time_series,
            defaults=dict(defaults or {}),
            citation=citation,
            source=_CURRENT[-1] if _CURRENT else None,
        )
    except ConfigError as error:
        raise PluginError(f"{_who()}: method {name!r}: {error}") from None


def register_model(
    name: str,
    build: Callable[..., Any],
    *,
    cost: Callable[..., tuple[float, float]] | None = None,
) -> None:
    """Register a reconstruction model: ``build(**options, generator=...) -> nn.Module``.

    The model is called ``model(y, physics)`` and returns the image ``(B, 2, H, W)``. It is chosen
    with ``model: {name: <name>, options: {...}}``; ``options`` are the keyword arguments of
    ``build``, and a ``generator`` keyword (the run's ``init`` stream), if ``build`` takes one,
    makes the initialisation reproducible. ``cost((H, W), **options)`` returns (multiply-
    accumulates of one forward pass, floats kept for backpropagation) on one H × W image; the
    workflow sizes the jobs' time and memory from it (without it, as MoDL's other ``model`` keys).
    """
    from ssibench.models.build import MODELS
    from ssibench.models.cost import MODEL_COSTS

    _refuse_clash("model", name, MODELS)
    _require_callable("model", name, build, "build")
    if cost is not None:
        _require_callable("model", name, cost, "cost", "cost((H, W), **options)", 1)
        MODEL_COSTS[name] = cost
    MODELS[name] = build
    _record_source("model", name, build)


def register_metric(
    name: str, fn: Callable[[Any, Any], Any], *, higher_is_better: bool = True
) -> None:
    """Register an image metric ``fn(x_hat, x) -> (B,)`` (images ``(B, 2, H, W)``).

    Chosen with ``metrics: [psnr, ssim, nmse, <name>]``; evaluation writes it as a column of
    ``metrics.csv``.
    """
    from ssibench.evaluation import metrics

    _refuse_clash("metric", name, metrics.METRICS)
    _require_callable("metric", name, fn, "fn", "fn(x_hat, x)", 2)
    metrics.register_metric(name, fn, higher_is_better=higher_is_better)
    _record_source("metric", name, fn)


def register_physics(
    name: str, build: Callable[..., Any], *, coils: bool = False, description: str = ""
) -> None:
    """Register a 2-D acquisition: ``build(mask, sigma=...) -> operator``.

    With ``coils``, ``build(mask, coil_maps, sigma=...)``. The operator needs ``A``,
    ``A_adjoint`` and ``with_mask`` (MoDL solves its data-consistency step by conjugate gradient
    when it has no ``prox_l2``) and ``measure(x, generator)``. Images are ``(B, 2, H, W)`` and
    masks ``(B|1, 1, H, W)``; measurements ``(B, 2, H, W)``, or with ``coils``
    ``(B, 2, N, H, W)`` and ``coil_maps`` ``(N, H, W)`` complex (the scenario's ``n_coils``
    birdcage maps, stored with the data). A scenario then names it: ``physics: <name>``; it is
    simulated like ``single-coil`` (or ``multicoil``) with this operator.
    """
    from ssibench.config.kinds import PHYSICS_KINDS, PhysicsKind
    from ssibench.physics import OPERATORS

    _refuse_clash("physics", name, PHYSICS_KINDS)
    if not isinstance(coils, bool):
        raise PluginError(f"{_who()}: physics {name!r}: coils must be true or false")
    if coils:
        call = "build(mask, coil_maps, sigma=sigma)"
        _require_callable("physics", name, build, "build", call, 2, sigma=0.0)
    else:
        _require_callable("physics", name, build, "build", "build(mask, sigma=sigma)", 1, sigma=0.0)
    PHYSICS_KINDS[name] = PhysicsKind(
        name, coils, False, False, description or f"registered by {_who()}"
    )
    OPERATORS[name] = build
    _record_source("physics", name, build)


def register_dataset(name: str, build: Callable[..., Mapping[str, Any]]) -> None:
    """Register a data source: ``build(**options) -> {volume name: (S, H, W) magnitude images}``.

    Chosen with ``data: {source: <name>, options: {...}}``; the volumes go through the same
    extraction (crop/pad, normalisation, per-volume split) as fastMRI volumes.
    """
    from ssibench.data.sources import BUILTIN_SOURCES, DATASETS

    _refuse_clash("data set", name, [*BUILTIN_SOURCES, *DATASETS])
    _require_callable("data set", name, build, "build")
    DATASETS[name] = build
    _record_source("dataset", name, build)


@contextlib.contextmanager
def _loading(name: str) -> Iterator[None]:
    _CURRENT.append(name)
    try:
        yield
    finally:
        _CURRENT.pop()


def _import_plugin(name: str) -> None:
    if name in _LOADED:
        return
    with _loading(name):
        try:
            importlib.import_module(name)
        except PluginError:
            raise
        except ModuleNotFoundError as error:
            if error.name is not None and name.startswith(error.name):
                raise PluginError(
                    f"plugin {name!r}: no module of that name on the Python path ({sys.path[0]!r} "
                    "first); install the plugin package or add its folder to PYTHONPATH"
                ) from None
            raise PluginError(f"plugin {name!r}: importing it failed: {error}") from error
        except Exception as error:  # the plugin's own bug: name it, keep the cause
            raise PluginError(
                f"plugin {name!r}: importing it failed with {type(error).__name__}: {error}"
            ) from error
    _LOADED.append(name)


def _entry_point_plugins() -> list[str]:
    return [entry.value for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)]


def load_plugins(names: Sequence[str] = (), *, entry_points: bool = True) -> tuple[str, ...]:
    """Import the plugin modules ``names`` (and the installed ``ssibench.plugins`` entry points).

    Each module is imported once per process, entry points first, then ``names`` in order.

    Returns:
        Every plugin module loaded so far.

    Raises:
        PluginError: a module that does not exist or fails to import, or a registration it makes
            that clashes with a registered name; the message names the plugin and the fix.
    """
    if isinstance(names, str) or not all(isinstance(name, str) for name in names):
        raise PluginError(f"plugins: expected a list of module names; got {names!r}")
    for name in [*(_entry_point_plugins() if entry_points else []), *names]:
        _import_plugin(name)
    return loaded_plugins()


def builder_source(build: Callable[..., Any]) -> str | None:
    """The module that defines ``build`` (a function, a class, or a callable object's class)."""
    module = inspect.getmodule(build) or inspect.getmodule(type(build))
    return module.__name__ if module is not None else None
