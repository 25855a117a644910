"""One look for every figure: a colour-blind-safe palette, journal-column sizes, PDF + PNG output.

The palette is Okabe & Ito's (2008), distinguishable under the common colour-vision
deficiencies; images use grey (magnitudes) and ``magma`` (errors), both perceptually uniform.
Sizes are in inches for a 3.5-inch journal column and a 7.16-inch page width, with 7-pt text.
PDF and PostScript files embed TrueType (Type 42) fonts, never Type 3 (refused by IEEE PDF
eXpress). Loss terms are named by :func:`loss_label`; tick labels without an offset or a
×10ⁿ corner label come from :class:`CompactFormatter`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import matplotlib as mpl
from matplotlib.figure import Figure
from matplotlib.ticker import Formatter

from ssibench.io import atomic_path
from ssibench.methods import METHODS, MethodSpec

__all__ = [
    "COLUMN_WIDTH",
    "ERROR_CMAP",
    "EXTERNAL_SUFFIX",
    "GROUP_COLOURS",
    "LOSS_LABELS",
    "OKABE_ITO",
    "PAGE_WIDTH",
    "CompactFormatter",
    "figure_style",
    "loss_label",
    "method_group",
    "save_figure",
]

#: Appended to an external run's label in figures (tables mark it § with a footnote instead).
EXTERNAL_SUFFIX = " (external)"
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
    # TrueType (Type 42) fonts, editable and accepted by IEEE PDF eXpress (Type 3 is not);
    # read when a file is written, so save_figure applies them too
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
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
    """Write ``figure`` to each path (format from the suffix: .pdf, .png, .svg), atomically.

    The rc settings are applied again while writing: the font type of PDF and PostScript files
    is read at save time, not when the figure is built.
    """
    with figure_style():
        for path in paths:
            with atomic_path(path) as tmp:
                figure.savefig(tmp, format=path.suffix.lstrip(".").lower(), dpi=PNG_DPI)


#: Legend label of each loss term of ``train_log.csv``, by column name without ``loss_`` (the
#: class name lower-cased without ``Loss``, see ``ssibench.training.loop``): every loss class of
#: ``ssibench.losses``.
LOSS_LABELS = {
    "total": "Total",
    "sup": "Supervised",
    "mc": "MC",
    "adjointmc": "MC (adjoint)",
    "splitting": "Splitting",
    "weightedsplitting": "Weighted splitting",
    "robustsplitting": "Robust splitting",
    "equivariantsplitting": "Equivariant splitting",
    "splittingconsistency": "Splitting consistency",
    "moconsistency": "MO consistency",
    "augmentconsistency": "Augment. consistency",
    "ei": "EI",
    "moi": "MOI",
    "moei": "MO-EI",
    "suregaussian": "SURE (Gaussian)",
    "surepoisson": "SURE (Poisson)",
    "surepg": "SURE (Poisson-Gaussian)",
    "ensure": "ENSURE",
    "r2r": "R2R",
    "neighbor2neighbor": "Neighbor2Neighbor",
    "score": "Score",
    "tv": "TV",
    "phase2phase": "Phase2Phase",
    "artifact2artifact": "Artifact2Artifact",
    "supadversarialgenerator": "Sup. adversarial (G)",
    "supadversarialdiscriminator": "Sup. adversarial (D)",
    "unsupadversarialgenerator": "Unsup. adversarial (G)",
    "unsupadversarialdiscriminator": "Unsup. adversarial (D)",
    "multioperatorunsupadversarialgenerator": "Adversarial (G)",
    "multioperatorunsupadversarialdiscriminator": "Adversarial (D)",
    "uairgenerator": "UAIR (G)",
    "uairdiscriminator": "UAIR (D)",
    "randomlossscheduler": "Scheduled (random)",
    "interleavedlossscheduler": "Scheduled (interleaved)",
    "interleavedepochlossscheduler": "Scheduled (by epoch)",
    "steplossscheduler": "Scheduled (step)",
}
#: Longest loss label; unknown (plugin) terms are cut to it with an ellipsis.
MAX_LOSS_LABEL = 24


def loss_label(column: str) -> str:
    """Readable name of a loss term: ``loss_weightedsplitting`` → ``Weighted splitting``.

    Terms not in :data:`LOSS_LABELS` (a plugin's loss) are capitalised and cut to
    :data:`MAX_LOSS_LABEL` characters with an ellipsis; the log holds lower-cased class names,
    so word boundaries cannot be recovered.
    """
    name = column.removeprefix("loss_")
    if name in LOSS_LABELS:
        return LOSS_LABELS[name]
    label = (name[:1].upper() + name[1:]).replace("_", " ")
    return label if len(label) <= MAX_LOSS_LABEL else label[: MAX_LOSS_LABEL - 1] + "…"


#: Magnitudes outside [1e-3, 1e5) are written as mantissa and exponent (``2.5e−5``).
_PLAIN_RANGE = (1e-3, 1e5)


class CompactFormatter(Formatter):
    """Tick labels with as few digits as the ticks need: no offset, no ×10ⁿ corner label.

    Plain decimals (at most ``max_decimals``) for magnitudes in [0.001, 100 000), otherwise a
    short mantissa and exponent such as ``2.5e−5``; every label stands on its own.
    """

    def __init__(self, max_decimals: int = 6) -> None:
        self.max_decimals = max_decimals

    def __call__(self, x: float, pos: int | None = None) -> str:
        """The label of one value (the cursor read-out; ticks go through format_ticks)."""
        return self.format_ticks([x])[0]

    def format_ticks(self, values: Sequence[float]) -> list[str]:
        """Labels of all ticks of an axis, with one number of digits for all of them."""
        finite = [float(v) for v in values if math.isfinite(v)]
        largest = max((abs(v) for v in finite), default=0.0)
        if largest == 0.0 or _PLAIN_RANGE[0] <= largest < _PLAIN_RANGE[1]:
            decimals = self.max_decimals
            for candidate in range(self.max_decimals + 1):
                if all(abs(round(v, candidate) - v) <= 1e-9 * largest for v in finite):
                    decimals = candidate
                    break
            labels = [f"{v:.{decimals}f}" for v in values]
        else:
            digits = 4
            for candidate in range(1, 5):
                if all(abs(float(f"{v:.{candidate - 1}e}") - v) <= 1e-9 * largest for v in finite):
                    digits = candidate
                    break
            labels = [_exponent(f"{v:.{digits - 1}e}") for v in values]
        return [_minus(label) for label in labels]


def _exponent(text: str) -> str:
    """``2.5e-05`` → ``2.5e-5``; ``0.0e+00`` → ``0``."""
    mantissa, _, exponent = text.partition("e")
    if float(mantissa) == 0.0:
        return "0"
    return f"{mantissa}e{int(exponent)}"


def _minus(label: str) -> str:
    """A typographic minus sign (U+2212), as matplotlib's own labels; ``-0`` → ``0``."""
    if label.startswith("-") and float(label) == 0.0:
        label = label[1:]
    return label.replace("-", "\u2212")
