"""Argument helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import json
from typing import Any

import torch

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
        help="compute device: auto (CUDA if visible; honours CUDA_VISIBLE_DEVICES), cpu, cuda[:N]",
    )


def resolve_device(name: str) -> torch.device:
    """Turn ``auto|cpu|cuda|cuda:N`` into a ``torch.device``; ``auto`` prefers CUDA."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise ConfigError(f"--device: {error}; use auto, cpu, cuda or cuda:N") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda requested but no CUDA device is visible; use --device cpu")
    return device
