"""The benchmark's methods: a torch-free registry, option rules, and the builders of their losses.

* :mod:`~ssibench.methods.registry`: :data:`METHODS` (name, label, citation, flags, where a
  method applies, option defaults), :func:`skip_reason`, the typed options records;
* :mod:`~ssibench.methods.options`: the type and range of every option;
* :mod:`~ssibench.methods.builders`: a method name and a scenario → its losses (imports torch);
* :mod:`~ssibench.methods.adversarial`: the discriminator and losses of adversarial methods.

Importing this package does not import torch, the losses or the transforms: the workflow, the
command line and the tables read the registry only.
"""

from ssibench.methods.options import OPTION_ORDERS, OPTION_RULES, OptionOrder, OptionRule
from ssibench.methods.registry import (
    METHODS,
    MethodSpec,
    get_method,
    method_options,
    options_record,
    parse_method_options,
    skip_reason,
)

__all__ = [
    "METHODS",
    "OPTION_ORDERS",
    "OPTION_RULES",
    "MethodSpec",
    "OptionOrder",
    "OptionRule",
    "get_method",
    "method_options",
    "options_record",
    "parse_method_options",
    "skip_reason",
]
