"""A real (tiny) workflow run in a subprocess: the smoke config with an overlay, in a workdir."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: Seconds a tiny workflow run may take on 2 cores.
RUN_TIMEOUT_S = 600


def run_smoke(
    workdir: Path,
    overlay: Path,
    *targets: str,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``snakemake --cores 2`` of config.yaml + smoke.yaml + ``overlay`` in ``workdir``."""
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "--cores",
        "2",
        "--snakefile",
        str(ROOT / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(ROOT / "config" / "config.yaml"),
        str(ROOT / "config" / "smoke.yaml"),
        str(overlay),
        "--printshellcmds",
        *targets,
    ]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=None if env is None else dict(env),
        timeout=RUN_TIMEOUT_S,
        cwd=workdir.parent,
    )
