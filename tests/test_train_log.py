"""The training log: written with the csv module, exactly as pandas wrote it before."""

from __future__ import annotations

import pandas as pd

from ssibench.training.checkpoint import write_log


def test_train_log_is_written_as_pandas_wrote_it(tmp_path) -> None:
    """The csv writer that replaced pandas (not imported by training jobs) gives the same bytes."""
    log = [
        {"epoch": 1, "loss_total": 0.30000000000000004, "loss_mc": 1e-05, "val_psnr": float("nan")},
        {"epoch": 2, "loss_total": 1.0, "val_psnr": 23.5, "loss_mc": 2.5e-7},
    ]
    for rows in (log, []):
        write_log(tmp_path / "new.csv", rows)
        frame = pd.DataFrame(rows)
        if rows:
            first = ["epoch", "loss_total"]
            frame = frame[[*first, *[c for c in frame.columns if c not in first]]]
        frame.to_csv(tmp_path / "old.csv", index=False)
        assert (tmp_path / "new.csv").read_text() == (tmp_path / "old.csv").read_text()
