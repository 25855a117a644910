"""Import DeepInverse 0.5.0 next to the CPU build of torch.

PyPI's torchvision wheels are built against the CUDA torch: beside ``torch==2.13.0+cpu`` their
compiled ops (``torchvision/_C.so``) fail to load, which torchvision tolerates, except that one
unguarded fake-kernel registration in ``torchvision/_meta_registrations.py``
(``register_fake("torchvision::nms")``) then raises "operator torchvision::nms does not exist" at
import. DeepInverse imports torchvision at import time (and uses only its pure-Python
``transforms.functional.rotate``), so the registration is made a no-op for ``torchvision::`` ops
while torchvision is first imported. Nothing in ssibench is touched.
"""

from __future__ import annotations

import types
import warnings

import torch
import torch.library

__all__ = ["DEEPINV_VERSION", "import_deepinv", "prepare_torchvision"]

#: The DeepInverse release this benchmark compares against.
DEEPINV_VERSION = "0.5.0"


def prepare_torchvision() -> None:
    """Import torchvision with its ``torchvision::`` fake-kernel registrations made harmless.

    Raises:
        ImportError: torchvision is not installed.
    """
    original = torch.library.register_fake

    def tolerant(op, func=None, /, *args, **kwargs):
        if isinstance(op, str) and op.startswith("torchvision::"):
            return (lambda fn: fn) if func is None else func
        return original(op, func, *args, **kwargs)

    torch.library.register_fake = tolerant
    try:
        import torchvision  # noqa: F401
    finally:
        torch.library.register_fake = original


def import_deepinv() -> types.ModuleType:
    """Return the ``deepinv`` module (version checked), importing torchvision first.

    Raises:
        ImportError: deepinv is not installed, or is not version 0.5.0.
    """
    prepare_torchvision()
    import deepinv

    if deepinv.__version__ != DEEPINV_VERSION:
        raise ImportError(
            f"this parity benchmark is written for deepinv {DEEPINV_VERSION}; found "
            f"{deepinv.__version__} (pip install 'deepinv=={DEEPINV_VERSION}')"
        )
    # DeepInverse warns on every split of a multicoil operator and on Rotate's default
    # interpolation; neither changes a number.
    warnings.filterwarnings("ignore", module="deepinv")
    warnings.filterwarnings("ignore", category=UserWarning, module="torch")
    return deepinv
