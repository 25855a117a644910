"""The model registry: build a reconstruction model by name from the ``model`` config."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable

from torch import nn

from ssibench.errors import ConfigError
from ssibench.models.modl import build_modl

__all__ = ["MODELS", "build_model", "model_builder"]

#: Model name → builder; options of ``build_model`` are the builder's keyword arguments.
MODELS: dict[str, Callable[..., nn.Module]] = {"modl": build_modl}


def model_builder(name: str) -> Callable[..., nn.Module]:
    """The builder registered as model ``name``.

    Raises:
        ConfigError: for an unknown name, naming ``model.name``, the closest valid name, the valid
            names and how a plugin adds one.
    """
    if name not in MODELS:
        close = difflib.get_close_matches(name, list(MODELS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(
            f"model.name: unknown model {name!r}{hint}; valid models: {', '.join(MODELS)} "
            "(a plugin registers more with ssibench.register_model)"
        )
    return MODELS[name]


def build_model(name: str, **options: object) -> nn.Module:
    """Build the registered model ``name`` with keyword ``options`` (e.g. ``num_iter=3, width=32``).

    Raises:
        ConfigError: for an unknown name (lists the valid names and the closest match) or an option
            the builder does not take (lists the valid options).
    """
    builder = model_builder(name)
    allowed = list(inspect.signature(builder).parameters)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ConfigError(
            f"model {name!r} does not take option(s) {', '.join(unknown)}; "
            f"valid options: {', '.join(allowed)}"
        )
    return builder(**options)
