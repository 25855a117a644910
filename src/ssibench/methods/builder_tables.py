"""Every function that builds a method's losses: the plain, adversarial and plugin tables together.

Its own module because it needs both :mod:`ssibench.methods.builders` and
:mod:`ssibench.methods.adversarial`, and the second imports the first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ssibench.methods.adversarial import ADVERSARIAL_BUILDERS
from ssibench.methods.builders import BUILDERS
from ssibench.methods.registry import get_method, plugin_builder

__all__ = ["builder_functions"]


def builder_functions(method: str) -> list[Callable[..., Any]]:
    """The functions that build ``method``'s losses (what :mod:`ssibench.provenance` reads).

    Raises:
        ConfigError: for an unknown method.
    """
    get_method(method)
    found = (BUILDERS.get(method), ADVERSARIAL_BUILDERS.get(method), plugin_builder(method))
    return [b for b in found if b is not None]
