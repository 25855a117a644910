"""Argument helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import torch

from ssibench.device import LOCK_DIR_ENV, WhenBusy, device_log_line
from ssibench.device import resolve_device as _resolve
from ssibench.errors import ConfigError

__all__ = ["add_device_argument", "formatter", "parse_spec", "resolve_device"]

formatter = argparse.ArgumentDefaultsHelpFormatter


def parse_spec(text: str, option: str = "--spec") -> dict[str, Any]:
    """Parse a JSON object given on the command line (the config slice a rule passes to a job)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{option}: not valid JSON ({error}); got {text[:80]!r}") from error
    if not isinstance(value, dict):
        raise ConfigError(f"{option}: expected a JSON object, got {type(value).__name__}")
    return value


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--device auto|cpu|cuda|cuda:N``."""
    parser.add_argument(
        "--device",
        default="auto",
        help=(
            "compute device: auto (CUDA if visible; honours CUDA_VISIBLE_DEVICES), cpu, cuda[:N]. "
            "With auto or cuda and several visible GPUs the job claims a free one by a lock file "
            f"in ${LOCK_DIR_ENV} (default: a per-user folder in the temp dir)"
        ),
    )


def resolve_device(name: str, when_busy: WhenBusy = "wait") -> torch.device:
    """Resolve ``--device`` (see :func:`ssibench.device.resolve_device`) and log it once.

    Prints ``ssibench: device <device> (CUDA_VISIBLE_DEVICES=<value or 'unset'>)`` to stderr.
    """
    device = _resolve(name, when_busy=when_busy)
    print(device_log_line(device), file=sys.stderr)
    return device
