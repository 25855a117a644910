"""One look for every figure: a colour-blind-safe palette, journal-column sizes, PDF + PNG output.

The palette is Okabe & Ito's (2008), distinguishable under the common colour-vision
deficiencies; images use grey (magnitudes) and ``magma`` (errors), both perceptually uniform.
Sizes are in inches for a 3.5-inch journal column and a 7.16-inch page width, with 7-pt text.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import matplotlib as mpl
from matplotlib.figure import Figure

from ssibench.io import atomic_path
from ssibench.methods import METHODS, MethodSpec

__all__ = [
    "COLUMN_WIDTH",
    "ERROR_CMAP",
    "GROUP_COLOURS",
    "OKABE_ITO",
    "PAGE_WIDTH",
    "figure_style",
    "method_group",
    "save_figure",
]

#: Okabe–Ito colours in their usual order (black first).
OKABE_ITO = (
    "#000000",
    "#E69F00",
    "#56B4E9",
    "#009E73",
    "#F0E442",
    "#0072B2",
    "#D55E00",
    "#CC79A7",
)
#: Colour of each method group: untrained baselines, self-supervised, supervised.
GROUP_COLOURS = {"baseline": "#999999", "self-supervised": "#0072B2", "supervised": "#D55E00"}
#: Colour map of error images (dark = small error).
ERROR_CMAP = "magma"
COLUMN_WIDTH = 3.5
PAGE_WIDTH = 7.16
#: Resolution of PNG files (the report); PDFs are vector graphics.
PNG_DPI = 200
_RC = {
    "font.size": 7,
    "axes.titlesize": 7,
    "axes.labelsize": 7,
    "xtick.labelsize": 6,
    "ytick.labelsize": 6,
    "legend.fontsize": 6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": mpl.cycler(color=OKABE_ITO[1:] + OKABE_ITO[:1]),
    "pdf.fonttype": 42,  # TrueType fonts, editable in the PDF
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.02,
}


@contextmanager
def figure_style() -> Iterator[None]:
    """Apply the ssibench rc settings while figures are built (they are read at creation)."""
    with mpl.rc_context(_RC):
        yield


def method_group(method: str, methods: Mapping[str, MethodSpec] = METHODS) -> str:
    """``baseline`` (no training), ``supervised`` or ``self-supervised``."""
    spec = methods[method]
    if not spec.trains:
        return "baseline"
    return "supervised" if spec.supervised else "self-supervised"


def save_figure(figure: Figure, paths: Sequence[Path]) -> None:
    """Write ``figure`` to each path (format from the suffix: .pdf, .png, .svg), atomically."""
    for path in paths:
        with atomic_path(path) as tmp:
            figure.savefig(tmp, format=path.suffix.lstrip(".").lower(), dpi=PNG_DPI)
