"""One chart style for every report, and the rule that each chart comes with a sentence.

Notebooks call :func:`set_theme` once in their setup cell and display every
figure through :func:`show`, which renders it as an embedded PNG and prints the
one-sentence caption under it.
"""

from __future__ import annotations

import io

import matplotlib.pyplot as plt
from cycler import cycler
from matplotlib.ticker import FuncFormatter

# Okabe & Ito's colour-blind-safe palette (blue, orange, bluish green, vermillion, reddish purple, sky blue,
# yellow, grey). Meaning is never carried by red against green alone: "good"/"bad" pairs use blue and orange.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#7F7F7F"]
GOOD, BAD, NEUTRAL = PALETTE[0], PALETTE[3], PALETTE[7]
DIVERGING = "PuOr_r"  # colour-blind-safe diverging map (orange = low/negative, purple = high/positive)
SEQUENTIAL = "Blues"


def categorical(n: int) -> list[str]:
    """``n`` distinct colour-blind-safe colours (the palette, repeated in darker shades beyond eight)."""
    import matplotlib.colors as mcolors

    out = []
    for i in range(n):
        base = mcolors.to_rgb(PALETTE[i % len(PALETTE)])
        shade = 0.65 ** (i // len(PALETTE))
        out.append(mcolors.to_hex(tuple(c * shade for c in base)))
    return out


# What seaborn's set_theme(style="whitegrid", context="notebook", font_scale=1.05, palette=PALETTE) sets, written
# out so that a kernel need not import seaborn (and scipy.stats with it: 0.8 CPU s per notebook) to draw a chart;
# tests/test_widgets.py checks it against seaborn itself. The default colour map stays matplotlib's viridis
# (seaborn's "rocket" exists only once seaborn is imported); every heatmap names its own.
SEABORN_WHITEGRID_NOTEBOOK = {
    "axes.axisbelow": True, "axes.edgecolor": ".8", "axes.grid": True, "axes.labelcolor": ".15",
    "axes.labelsize": 12.6, "axes.linewidth": 1.25, "axes.titlesize": 12.6,
    "font.sans-serif": ["Arial", "DejaVu Sans", "Liberation Sans", "Bitstream Vera Sans", "sans-serif"],
    "font.size": 12.6, "grid.color": ".8", "grid.linewidth": 1.0, "legend.fontsize": 11.55,
    "legend.title_fontsize": 12.6, "lines.solid_capstyle": "round", "patch.edgecolor": "w",
    "patch.force_edgecolor": True, "text.color": ".15", "xtick.bottom": False, "xtick.color": ".15",
    "xtick.labelsize": 11.55, "xtick.major.size": 6.0, "xtick.major.width": 1.25, "xtick.minor.size": 4.0,
    "xtick.minor.width": 1.0, "ytick.color": ".15", "ytick.labelsize": 11.55, "ytick.left": False,
    "ytick.major.size": 6.0, "ytick.major.width": 1.25, "ytick.minor.size": 4.0, "ytick.minor.width": 1.0,
}


# The workbench's own settings on top of that theme.
WORKBENCH_RC = {
    "figure.dpi": 100, "savefig.dpi": 100, "figure.figsize": (9, 4.2), "axes.titlesize": 13,
    "axes.titleweight": "bold", "axes.labelsize": 11, "axes.spines.top": False, "axes.spines.right": False,
    "legend.frameon": False, "figure.autolayout": True,
}


def set_theme() -> None:
    """Apply the workbench theme: white grid, readable fonts, PNG output at a sharp DPI."""
    plt.rcParams.update({**SEABORN_WHITEGRID_NOTEBOOK, "axes.prop_cycle": cycler(color=PALETTE), **WORKBENCH_RC})


def label(ax: plt.Axes, title: str, xlabel: str, ylabel: str) -> plt.Axes:
    """Set title and axis labels (with units) in one call."""
    ax.set_title(title, loc="left")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return ax


def thousands(ax: plt.Axes, axis: str = "y") -> None:
    """Format an axis with thousands separators."""
    fmt = FuncFormatter(lambda v, _: f"{v:,.0f}")
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(fmt)


def percent(ax: plt.Axes, axis: str = "y", decimals: int = 0) -> None:
    """Format an axis holding shares (0–1) as percentages."""
    fmt = FuncFormatter(lambda v, _: f"{v * 100:.{decimals}f}%")
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(fmt)


def figure_html(fig: plt.Figure, caption: str, dpi: int | None = None, alt: str | None = None) -> str:
    """A figure as an embedded PNG with alt text (default: its title and caption) and a visible one-sentence
    caption."""
    import base64

    from helpers.core.safety import html_text, inline_markup

    if not caption or not caption.strip():
        raise ValueError("every chart needs a one-sentence caption saying what it shows")
    # Rendered to PNG bytes here rather than left to the backend, so that every report embeds the same raster
    # image whatever backend the kernel runs.
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", dpi=dpi)
    plt.close(fig)
    title = fig.axes[0].get_title() if fig.axes else ""
    alt = alt or (f"{title}. {caption}" if title else caption)
    src = base64.b64encode(buf.getvalue()).decode()
    return (f'<figure class="wb-figure"><img src="data:image/png;base64,{src}" alt="{html_text(alt.strip())}">'
            f'<figcaption class="chart-caption">{inline_markup(caption.strip())}</figcaption></figure>')


def show(fig: plt.Figure, caption: str) -> None:
    """Display ``fig`` as a PNG followed by its one-sentence ``caption`` (also its alt text), then close it."""
    from IPython.display import HTML, display

    display(HTML(figure_html(fig, caption)))
