"""Reading ``torch.save`` files without running any of their code.

A checkpoint is a pickle, and unpickling can call any function the file names (``os.system``
included) before a single byte of it has been checked. ssibench takes checkpoints from elsewhere
(``ssibench evaluate --ckpt``, ``external_runs:``, run folders copied between clusters), so every
one is read with ``torch.load(..., weights_only=True)``: PyTorch's restricted unpickler, which
rebuilds tensors, containers and plain Python values and refuses any other type
(https://pytorch.org/docs/stable/notes/serialization.html#weights-only).

The only other type a file of this package has ever held is ``torch.torch_version.TorchVersion``
(``model.pt`` recorded ``torch.__version__`` before it was written as a plain ``str``): a ``str``
subclass with comparison methods, allowed by name in :data:`SAFE_GLOBALS`. A file that needs
anything else is refused with one message naming the file and the types it asks for, before any
of its content is used; the types are listed by reading the pickle's opcodes
(``torch.serialization.get_unsafe_globals_in_checkpoint``), which executes nothing.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.torch_version import TorchVersion

from ssibench.errors import DataFileError

__all__ = ["SAFE_GLOBALS", "load_torch_file"]

#: Types beyond torch's weights-only defaults that the package's own older files contain.
SAFE_GLOBALS: tuple[type, ...] = (TorchVersion,)

#: Types named in a refusal before it stops listing.
LISTED_TYPES = 3


def _unsafe_types(path: Path) -> list[str]:
    """The ``module.name`` globals in ``path`` that weights-only loading refuses ([] if unknown)."""
    try:
        found = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # not a zip checkpoint, truncated: the load error says what is wrong
        return []
    allowed = {f"{t.__module__}.{t.__qualname__}" for t in SAFE_GLOBALS}
    return sorted(name for name in found if name not in allowed)


def load_torch_file(
    path: Path | str,
    hint: str,
    map_location: torch.device | str = "cpu",
    what: str = "file",
    mmap: bool = False,
) -> object:
    """``torch.load`` of ``path`` that never executes code from the file.

    Args:
        path: the ``torch.save`` file (a checkpoint, a ``state_dict``, a tensor).
        hint: how to get a good file; ends every message.
        map_location: where its tensors go.
        what: what the file should be, for messages ("checkpoint", "model").
        mmap: map the tensors' bytes instead of reading them (a zip-format file only): its
            structure and shapes then cost no read.

    Returns:
        The loaded object: tensors, dicts, lists, tuples, strings, numbers, None.

    Raises:
        DataFileError: a file that asks for any other type (``<path>: refused: the <what> contains
            <types>, which ssibench never loads ...``), or one that cannot be read at all.
    """
    path = Path(path)
    try:
        with torch.serialization.safe_globals(list(SAFE_GLOBALS)):
            return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except Exception as error:  # refused type, truncated or foreign file
        unsafe = _unsafe_types(path)
        if unsafe:
            shown = ", ".join(unsafe[:LISTED_TYPES])
            more = f" and {len(unsafe) - LISTED_TYPES} more" if len(unsafe) > LISTED_TYPES else ""
            raise DataFileError(
                f"{path}: refused: the {what} contains {shown}{more}, which ssibench never loads "
                "(a checkpoint is data: only tensors, containers, strings and numbers are read, "
                "so a file cannot run code on load); re-save it as plain data, e.g. "
                f"torch.save(network.state_dict(), path), or {hint}"
            ) from None
        cause = " ".join(str(error).split())[:200] or type(error).__name__
        raise DataFileError(f"{path}: cannot read the {what} ({cause}); {hint}") from error
