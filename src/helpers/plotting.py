"""One chart style for every report, and the rule that each chart comes with a sentence.

Notebooks call :func:`set_theme` once in their setup cell and display every
figure through :func:`show`, which renders it as an embedded PNG and prints the
one-sentence caption under it.
"""

from __future__ import annotations

import io

import matplotlib.pyplot as plt
import seaborn as sns
from matplotlib.ticker import FuncFormatter

PALETTE = ["#1f5fa8", "#e07b39", "#3a9a5b", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c"]


def set_theme() -> None:
    """Apply the workbench theme: white grid, readable fonts, PNG output at a sharp DPI."""
    sns.set_theme(style="whitegrid", context="notebook", palette=PALETTE, font_scale=1.05)
    plt.rcParams.update({
        "figure.dpi": 100, "savefig.dpi": 100, "figure.figsize": (9, 4.2), "axes.titlesize": 13,
        "axes.titleweight": "bold", "axes.labelsize": 11, "axes.spines.top": False, "axes.spines.right": False,
        "legend.frameon": False, "figure.autolayout": True,
    })


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


def show(fig: plt.Figure, caption: str) -> None:
    """Display ``fig`` as a PNG followed by its one-sentence ``caption``, then close it."""
    from IPython.display import Image, Markdown, display

    if not caption or not caption.strip():
        raise ValueError("every chart needs a one-sentence caption saying what it shows")
    # Rendered to PNG bytes here rather than left to the backend, so that every report
    # embeds the same raster image whatever backend the kernel runs.
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    display(Image(data=buf.getvalue()))
    display(Markdown(f'<p class="chart-caption">{caption.strip()}</p>'))
