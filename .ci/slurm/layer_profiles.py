"""Layer Snakemake profiles into one: later files replace whole top-level entries of earlier ones.

    python .ci/slurm/layer_profiles.py OUT_DIR profiles/slurm .ci/slurm/profile

writes OUT_DIR/config.yaml, for `snakemake --profile OUT_DIR`. Snakemake 9.27 does the same with
repeated `--profile` flags, but older 9.x releases (9.15 among them, which pip may pick for
`snakemake>=8`) keep only the last `--profile`; CI layers the profiles itself so that it runs the
same settings whichever Snakemake it gets.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

__all__ = ["layer"]


def layer(profiles: list[Path]) -> dict[str, Any]:
    """The entries of the profile folders' config.yaml, later folders overriding earlier ones."""
    merged: dict[str, Any] = {}
    for profile in profiles:
        merged.update(yaml.safe_load((profile / "config.yaml").read_text()) or {})
    return merged


if __name__ == "__main__":
    out_dir, *profile_dirs = map(Path, sys.argv[1:])
    out_dir.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(layer(profile_dirs), sort_keys=False)
    (out_dir / "config.yaml").write_text(text)
    print(text, end="")
