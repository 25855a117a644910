"""Catch host syncs and stray CPU tensors of code running on a stand-in device.

On a GPU, Python only queues kernels: the GPU runs ahead until something needs a value on the
host (``.item()``, ``bool(t)``, ``.tolist()``, ``nonzero``, a blocking copy) and Python waits.
Such a sync inside a training step stalls the GPU once per call; a CPU tensor that meets device
data inside a step is either an error or a blocking copy. Neither needs a GPU to be found: on
PyTorch's ``meta`` device (shapes and dtypes, no data) every operator still dispatches, so a
:class:`~torch.utils._python_dispatch.TorchDispatchMode` sees each one with its arguments.

:class:`DeviceAudit` flags, by the first file and line outside PyTorch that issued it:

- a **host sync**: an operator whose result needs the data (``_local_scalar_dense`` behind
  ``.item()``, ``bool``, ``int``, ``float``; ``nonzero``, ``masked_select``, boolean indexing,
  ``unique``, ``equal``, ``repeat_interleave`` without its output size) or a blocking copy from
  the device to the CPU (``.cpu()``, ``.numpy()``, ``.tolist()``; a ``non_blocking`` one read
  after its event, as conjugate gradient's stop, is not a sync and reads zeros here);
- a **blocking copy** from the CPU to the device (``.to(device)`` without ``non_blocking=True``:
  from pageable memory CUDA waits for the stream to drain; :func:`ssibench.rng.on_device` is the
  sync-free way);
- a **CPU tensor meeting device tensors** in one operator (a 0-dim CPU tensor is a scalar to
  PyTorch, on CUDA too, and is allowed).

Random draws made on the CPU streams run for real (the CPU is not the stand-in), so a stand-in
run advances every generator exactly as a CPU run does.
"""

from __future__ import annotations

import os
import traceback
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

__all__ = ["DeviceAudit", "DeviceAuditError", "Finding"]

aten = torch.ops.aten

#: Operators whose output needs the input's values on the host (shape or Python scalar).
SYNC_OPERATORS = frozenset(
    {
        aten._local_scalar_dense.default,
        aten.nonzero.default,
        aten.masked_select.default,
        aten.equal.default,
        aten.is_nonzero.default,
        aten._unique2.default,
        aten.unique_dim.default,
        aten.unique_consecutive.default,
        aten.allclose.default,
    }
)

#: Copy operators: checked for their direction and ``non_blocking`` instead of device mixing.
COPY_OPERATORS = frozenset({aten._to_copy.default, aten.copy_.default})

_TORCH_DIR = os.path.dirname(torch.__file__)
_THIS_FILE = os.path.abspath(__file__)

FindingKind = Literal["host sync", "blocking copy", "CPU tensor"]


@dataclass(frozen=True)
class Finding:
    """One flagged operator: what, which operator and where (``file:line``, the source line)."""

    kind: FindingKind
    operator: str
    where: str
    code: str

    def __str__(self) -> str:
        return f"{self.where}: {self.kind} ({self.operator}): {self.code}"


class DeviceAuditError(RuntimeError):
    """Code meant to run on the device without host syncs made one, or mixed in a CPU tensor."""

    def __init__(self, finding: Finding, context: str) -> None:
        super().__init__(f"{context}: {finding}")
        self.finding = finding


def _caller() -> tuple[str, str]:
    """(``file:line``, source) of the innermost frame outside PyTorch and this module."""
    for frame in reversed(traceback.extract_stack()):
        path = os.path.abspath(frame.filename)
        if path == _THIS_FILE or path.startswith(_TORCH_DIR):
            continue
        return f"{frame.filename}:{frame.lineno}", (frame.line or "").strip()
    return "?", ""


def _devices(tensors: list[torch.Tensor]) -> tuple[bool, bool]:
    """(any tensor on the stand-in device, any CPU tensor with at least one dimension)."""
    on_device = any(t.device.type != "cpu" for t in tensors)
    on_cpu = any(t.device.type == "cpu" and t.dim() > 0 for t in tensors)
    return on_device, on_cpu


class DeviceAudit(TorchDispatchMode):
    """A dispatch mode that flags host syncs, blocking uploads and CPU/device mixing.

    Args:
        context: named in the error (e.g. ``"ssdu training step"``).
        strict: raise :class:`DeviceAuditError` at the first finding (default); otherwise record
            it in :attr:`findings` and go on: a scalar read returns 0 and a download zeros, so
            the code after it runs (a data-dependent shape still fails in its kernel).

    Example:
        >>> x = torch.zeros(3, device="meta")
        >>> with DeviceAudit("example", strict=False) as audit:
        ...     _ = x * 2
        ...     _ = x.sum().item()
        >>> [f.kind for f in audit.findings]
        ['host sync']
    """

    def __init__(self, context: str, strict: bool = True) -> None:
        super().__init__()
        self.context = context
        self.strict = strict
        self.findings: list[Finding] = []

    def _flag(self, kind: FindingKind, func: Any) -> None:
        where, code = _caller()
        finding = Finding(kind, str(func.overloadpacket.__name__), where, code)
        self.findings.append(finding)
        if self.strict:
            raise DeviceAuditError(finding, self.context)

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: Any = None):
        kwargs = kwargs or {}
        tensors = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)]
        on_device, on_cpu = _devices(tensors)
        if func in SYNC_OPERATORS and on_device:
            self._flag("host sync", func)
            if func is aten._local_scalar_dense.default:
                return 0  # the value a scalar read sees on the stand-in
        elif on_device and _data_dependent_shape(func, args, kwargs):
            self._flag("host sync", func)
        elif func in COPY_OPERATORS:
            if self._check_copy(func, args, kwargs):  # a download: stand-in zeros
                if func is aten.copy_.default:
                    return args[0]
                dtype = kwargs.get("dtype") or args[0].dtype
                return torch.zeros(args[0].shape, dtype=dtype)
        elif on_device and on_cpu:
            self._flag("CPU tensor", func)
        return func(*args, **kwargs)

    def _check_copy(self, func: Any, args: tuple, kwargs: dict[str, Any]) -> bool:
        """Flag a download or a blocking upload; whether it was a download (device → host)."""
        if func is aten._to_copy.default:
            source = args[0].device
            target = kwargs.get("device") or source
        else:  # copy_(destination, source, non_blocking)
            target, source = args[0].device, args[1].device
        non_blocking = bool(kwargs.get("non_blocking", len(args) > 2 and args[2]))
        if source.type != "cpu" and torch.device(target).type == "cpu":
            if not non_blocking:  # waits for the data; a non-blocking download is read later
                self._flag("host sync", func)
            return True
        if source.type == "cpu" and torch.device(target).type != "cpu" and not non_blocking:
            self._flag("blocking copy", func)
        return False


def _data_dependent_shape(func: Any, args: tuple, kwargs: dict[str, Any]) -> bool:
    """Whether ``func``'s output shape depends on the values of its inputs.

    Boolean indexing (``x[mask]``) and ``repeat_interleave`` without its output size do.
    """
    if func is aten.repeat_interleave.Tensor:
        return "output_size" not in kwargs
    if func is aten.index.Tensor:
        indices = args[1] if len(args) > 1 else []
        return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in indices)
    return False
