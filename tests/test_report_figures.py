"""The five figures: what each panel shows, shared scales, the zoom, and the `figures` CLI."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from report_data import PSNR, SCENARIO, make_metrics, with_provenance, write_metrics, write_store
from ssibench.cli import main
from ssibench.methods import METHODS
from ssibench.report import RunSamples, build_leaderboard, sample_figure
from ssibench.report.fig_cost import cost_figure
from ssibench.report.fig_curves import curves_figure
from ssibench.report.fig_distributions import distribution_figure
from ssibench.report.fig_published import published_figure, rank_correlation
from ssibench.report.fig_samples import INSET_FRACTION, ZoomRegion, auto_zoom_region

SIZE = 16


def make_runs(k: int = 3) -> list[RunSamples]:
    rng = np.random.default_rng(0)
    target = rng.random((k, SIZE, SIZE), dtype=np.float32)
    runs = []
    for index, (method, seed) in enumerate(PSNR):
        recon = target + 0.05 * (index + 1) * rng.random((k, SIZE, SIZE), dtype=np.float32)
        runs.append(RunSamples(method, seed, np.arange(k), target, recon, target * 0.5))
    return runs


def _axes(figure: Figure, prefix: str) -> dict[str, object]:
    return {
        ax.get_label().removeprefix(prefix): ax
        for ax in figure.axes
        if ax.get_label().startswith(prefix)
    }


def test_sample_strip_has_images_errors_zoom_and_psnr() -> None:
    figure = sample_figure(make_runs(), make_metrics(), SCENARIO, sample_index=1)
    images = _axes(figure, "image:")
    errors = _axes(figure, "error:")
    # ground truth, zero-filled, then the trained methods in leaderboard order (sup last)
    assert list(images) == ["ground-truth", "zero-filled", "mc", "ssdu", "sup"]
    assert list(errors) == ["zero-filled", "mc", "ssdu", "sup"]  # none under the ground truth
    titles = [ax.get_title() for ax in images.values()]
    assert titles == ["Ground truth", "Zero-filled", "MC", "SSDU", "(Supervised)"]
    texts = {name: [t.get_text() for t in ax.texts] for name, ax in images.items()}
    assert texts["zero-filled"] == ["21.00 dB"]  # zf_psnr of sample 1
    assert texts["mc"] == ["12.00 dB"]  # PSNR of the lowest seed on that slice
    assert texts["ground-truth"] == []
    # one grey scale for the images, one colour scale for every error map
    assert len({ax.images[0].get_clim() for ax in images.values()}) == 1
    assert len({ax.images[0].get_clim() for ax in errors.values()}) == 1
    assert errors["mc"].images[0].get_clim()[0] == 0.0


def test_inset_shows_the_boxed_region() -> None:
    runs = make_runs()
    zoom = (0.25, 0.5, 0.25)  # rows 4..7, cols 8..11 of a 16 × 16 image
    figure = sample_figure(runs, make_metrics(), SCENARIO, sample_index=0, zoom=zoom)
    ground_truth = _axes(figure, "image:")["ground-truth"]
    box = ground_truth.patches[0]
    assert (box.get_x(), box.get_y(), box.get_width()) == (7.5, 3.5, 4)
    inset = ground_truth.child_axes[0]
    np.testing.assert_array_equal(inset.images[0].get_array(), runs[0].target[0, 4:8, 8:12])


def test_auto_zoom_picks_the_detailed_window_away_from_inset_and_label() -> None:
    checkerboard = np.indices((8, 8)).sum(0) % 2
    image = np.zeros((32, 32), dtype=np.float32)
    image[10:18, 18:26] = checkerboard  # all the detail
    region = auto_zoom_region(image)
    assert region.size == 8
    assert abs(region.row - 10) <= 1  # the window sits on the checkerboard
    assert abs(region.col - 18) <= 1
    for corner in ((slice(24, 32), slice(0, 8)), (slice(0, 8), slice(24, 32))):
        image = np.zeros((32, 32), dtype=np.float32)
        image[corner] = checkerboard  # detail only under the inset, or under the PSNR label
        region = auto_zoom_region(image)
        under_inset = (
            region.row + region.size > 32 * (1 - INSET_FRACTION) and region.col < 32 * 0.42
        )
        under_label = region.row < 32 * 0.16 and region.col + region.size > 32 * 0.45
        assert not under_inset
        assert not under_label
    with pytest.raises(ValueError, match="leaves"):
        ZoomRegion.from_fractions((0.9, 0.0, 0.25), (16, 16))


def test_sample_figure_rejects_mismatched_rows() -> None:
    runs = make_runs()
    runs[1] = replace(runs[1], indices=runs[1].indices + 5)
    with pytest.raises(ValueError, match="different test rows"):
        sample_figure(runs, make_metrics(), SCENARIO, sample_index=0)


def test_distributions_plot_every_slice_of_every_method_in_leaderboard_order() -> None:
    figure = distribution_figure(make_metrics(), SCENARIO)
    psnr = _axes(figure, "psnr")[""]
    labels = [tick.get_text() for tick in psnr.get_yticklabels()]
    assert labels == ["MC", METHODS["zero-filled"].label, "SSDU", "(Supervised)"]
    points = np.concatenate([c.get_offsets()[:, 0] for c in psnr.collections])
    # three slices per method, each the mean over the two seeds (mc: 10.5, 12.5, 14.5)
    assert len(points) == 12
    np.testing.assert_allclose(sorted(points)[:3], [10.5, 12.5, 14.5])


def _log(terms: dict[str, list[float]], val: list[float]) -> pd.DataFrame:
    epochs = len(val)
    total = np.sum(list(terms.values()), axis=0)
    return pd.DataFrame(
        {"epoch": range(1, epochs + 1), "loss_total": total, **terms, "val_psnr": val}
    )


def test_curves_show_each_loss_term_and_the_mean_validation_psnr() -> None:
    logs = {
        ("ei", 0): _log({"loss_mc": [1.0, 0.5], "loss_ei": [0.2, 0.1]}, [20.0, 22.0]),
        ("ei", 1): _log({"loss_mc": [3.0, 1.5], "loss_ei": [0.2, 0.1]}, [22.0, 24.0]),
        ("sup", 0): _log({"loss_sup": [2.0, 1.0]}, [25.0, 26.0]),
    }
    figure = curves_figure(logs, SCENARIO, order=["sup", "ei"])
    panels = {ax.get_label(): ax for ax in figure.axes if ax.get_label() in ("ei", "sup")}
    assert list(panels) == ["sup", "ei"]
    ei = panels["ei"]
    assert [line.get_label() for line in ei.lines] == ["MC", "EI"]  # readable term names
    np.testing.assert_allclose(ei.lines[0].get_ydata(), [2.0, 1.0])  # mean over the two seeds
    assert ei.get_yscale() == "log"
    val = next(ax for ax in figure.axes if ax.get_label() == "ei:val_psnr")
    np.testing.assert_allclose(val.lines[0].get_ydata(), [21.0, 23.0])


def test_published_scatter_and_rank_correlation() -> None:
    table = build_leaderboard(make_metrics(), SCENARIO)
    figure = published_figure(table, SCENARIO)
    assert "ρ = nan" in figure.get_suptitle()  # three methods have a published number: too few
    ranks = pd.DataFrame({"psnr_mean": [1.0, 2.0, 3.0, 4.0], "psnr_published": [10, 20, 40, 30]})
    assert rank_correlation(ranks) == pytest.approx(0.8)  # 1 − 6·2/(4·15)
    with pytest.raises(ValueError, match="no method has a published PSNR"):
        published_figure(table.assign(psnr_published=np.nan), SCENARIO)


def test_cost_bars_are_mean_over_seeds_in_minutes_and_gigabytes() -> None:
    costs = pd.DataFrame(
        {
            "method": ["ei", "ei", "sup"],
            "seed": [0, 1, 0],
            "s": [60.0, 180.0, 30.0],
            "max_rss": [1024.0, 2048.0, 512.0],
        }
    )
    figure = cost_figure(costs, SCENARIO)
    time_ax = next(ax for ax in figure.axes if ax.get_label() == "time")
    memory_ax = next(ax for ax in figure.axes if ax.get_label() == "memory")
    assert [t.get_text() for t in time_ax.get_yticklabels()] == ["(Supervised)", "EI"]
    assert [bar.get_width() for bar in time_ax.patches] == pytest.approx([0.5, 2.0])
    assert time_ax.get_xlabel() == "training wall time (min)"  # the longest bar is 120 s
    assert [bar.get_width() for bar in memory_ax.patches] == pytest.approx([0.5, 1.5])


def write_samples(metrics: list[Path]) -> list[Path]:
    """A samples.npz of :func:`make_runs` beside each metrics.csv (same run order)."""
    paths = []
    for path, run in zip(metrics, make_runs(), strict=True):
        arrays = {"indices": run.indices, "target": run.target, "recon": run.recon}
        np.savez(path.parent / "samples.npz", zero_filled=run.zero_filled, **arrays)
        paths.append(path.parent / "samples.npz")
    return paths


def test_cli_writes_every_kind_as_pdf_and_png(tmp_path: Path) -> None:
    store = tmp_path / "store.h5"
    metrics = write_metrics(tmp_path / "runs", with_provenance(make_metrics(), write_store(store)))
    samples = write_samples(metrics)
    logs, benchmarks, runs = [], [], []
    for path, run in zip(metrics, make_runs(), strict=True):
        if METHODS[run.method].trains:
            _log({"loss_x": [1.0, 0.5]}, [20.0, 21.0]).to_csv(path.parent / "log.csv", index=False)
            (path.parent / "bench.tsv").write_text("s\th:m:s\tmax_rss\n12.5\t0:00:12\t300.1\n")
            logs.append(path.parent / "log.csv")
            benchmarks.append(path.parent / "bench.tsv")
            runs.append(f"{run.method}:{run.seed}")
    out = tmp_path / "out"
    board = out / "board.csv"
    out.mkdir()
    build_leaderboard(make_metrics(), SCENARIO).to_csv(board, index=False)
    common = ["--scenario", SCENARIO, "--out"]
    kinds = {
        "samples": [
            *("--data", str(store), "--metrics", *map(str, metrics)),
            *("--samples", *map(str, samples)),
        ],
        "distributions": ["--data", str(store), "--metrics", *map(str, metrics)],
        "curves": ["--train-logs", *map(str, logs), "--runs", *runs],
        "published": ["--table", str(board)],
        "cost": ["--benchmarks", *map(str, benchmarks), "--runs", *runs],
    }
    for kind, arguments in kinds.items():
        outputs = [str(out / f"{kind}.pdf"), str(out / f"{kind}.png")]
        assert main(["figures", kind, *arguments, *common, *outputs]) == 0, kind
        assert (out / f"{kind}.pdf").read_bytes()[:5] == b"%PDF-"
        pdf = (out / f"{kind}.pdf").read_bytes()  # TrueType, no Type 3 (IEEE PDF eXpress)
        assert b"/Type3" not in pdf
        assert b"/FontFile2" in pdf
        assert (out / f"{kind}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_reports_user_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "store.h5"
    metrics = write_metrics(tmp_path / "runs", with_provenance(make_metrics(), write_store(store)))
    samples = write_samples(metrics)
    out = tmp_path / "out.png"
    args = ["figures", "samples", "--data", str(store), "--metrics", *map(str, metrics)]
    args += ["--samples", *map(str, samples)]
    assert main([*args, "--scenario", SCENARIO, "--out", str(out), "--sample-index", "3"]) == 2
    assert "--sample-index 3" in capsys.readouterr().err
    assert main([*args, "--scenario", "multicoil", "--out", str(out)]) == 2
    assert "expected only 'multicoil'" in capsys.readouterr().err
    assert (
        main([*args, "--scenario", SCENARIO, "--out", str(out), "--zoom", "0.9", "0", "0.5"]) == 2
    )
    assert "--zoom: zoom region" in capsys.readouterr().err
    curves = ["figures", "curves", "--train-logs", str(metrics[0]), "--runs", "ei", "--scenario"]
    assert main([*curves, SCENARIO, "--out", str(out)]) == 2
    assert "METHOD:SEED" in capsys.readouterr().err
    assert not out.exists()


def test_curves_keep_negative_loss_values_on_a_linear_axis() -> None:
    logs = {("ensure", 0): _log({"loss_ensure": [0.02, -0.01, -0.03]}, [17.0, 17.2, 17.4])}
    figure = curves_figure(logs, SCENARIO)
    panel = next(ax for ax in figure.axes if ax.get_label() == "ensure")
    assert panel.get_yscale() == "linear"
    np.testing.assert_allclose(panel.lines[0].get_ydata(), [0.02, -0.01, -0.03])


def test_cost_time_unit_follows_the_longest_run() -> None:
    from ssibench.report.fig_cost import _time_unit

    assert _time_unit(90.0) == ("s", 1.0)
    assert _time_unit(120.0) == ("min", 60.0)
    assert _time_unit(5 * 3600.0) == ("h", 3600.0)
