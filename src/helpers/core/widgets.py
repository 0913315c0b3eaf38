"""Widgets that work both live in JupyterLab and in the exported HTML, where no kernel runs.

A widget whose answer comes from a Python callback goes blank in static HTML: the page has the
saved widget state but nothing to run the callback. These explorers precompute every answer
and switch between them in the browser: each control's ``index`` is tied to a ``Stack``'s
``selected_index`` with :func:`ipywidgets.jslink`, a link the widget renderer runs in JavaScript.
The number of precomputed panels is capped so the page stays small.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable, Sequence

MAX_PANELS = 150  # product of all option counts; every panel's HTML is stored in the page


def figure_html(fig, alt: str, caption: str = "", dpi: int = 80) -> str:
    """A matplotlib figure as an inline PNG with alt text and a caption (closing the figure), for a panel."""
    from helpers.core.plotting import figure_html as _figure

    return _figure(fig, caption or alt, dpi=dpi, alt=alt)


def _control(description: str, options: Sequence[str], kind: str):
    import ipywidgets as widgets

    common = dict(options=list(options), description=description, style={"description_width": "initial"})
    if kind == "slider":
        return widgets.SelectionSlider(**common, continuous_update=True, layout=widgets.Layout(width="420px"))
    if kind == "buttons":
        return widgets.ToggleButtons(**common)
    return widgets.Dropdown(**common)


def choice_explorer(description: str, panels: dict[str, str], kind: str = "dropdown"):
    """A control listing ``panels``' keys that shows the HTML stored under the chosen key.

    >>> box = choice_explorer("Persona", {"A": "<p>a</p>", "B": "<p>b</p>"})
    >>> [type(w).__name__ for w in box.children]
    ['Dropdown', 'Stack']
    """
    return what_if([(description, list(panels))], lambda choice: panels[choice[0]], kind=kind)


def what_if(controls: list[tuple[str, Sequence[str]]], render: Callable[[tuple[str, ...]], str],
            kind: str = "dropdown", start: Sequence[str] | None = None):
    """One control per ``(description, option labels)``; shows ``render(chosen labels)`` for the current choice.

    Nested stacks, one level per control: level ``i`` holds a stack per choice of the controls before it,
    and control ``i`` is linked to every stack on its level. The links are in ``box.links``. ``start`` names the
    option each control opens at (default: the first), so the explorer can open at the report's headline.

    >>> box = what_if([("Rate", ["5%", "10%"]), ("Margin", ["20%", "40%", "60%"])], lambda c: " / ".join(c))
    >>> len(box.children[-1].children), len(box.children[-1].children[0].children)
    (2, 3)
    """
    import ipywidgets as widgets

    if not controls:
        raise ValueError("what_if needs at least one control")
    sizes = [len(options) for _, options in controls]
    if any(n == 0 for n in sizes):
        raise ValueError(f"every control needs options; got {dict(zip([d for d, _ in controls], sizes))}")
    n_panels = 1
    for n in sizes:
        n_panels *= n
    if n_panels > MAX_PANELS:
        raise ValueError(f"{n_panels} precomputed panels exceed the limit of {MAX_PANELS}; offer fewer options")

    stacks_by_level: list[list] = [[] for _ in controls]

    first = [list(options).index(s) if start and s in list(options) else 0
             for (_, options), s in zip(controls, list(start or []) + [None] * len(controls))]

    def build(level: int, chosen: tuple[str, ...]):
        if level == len(controls):
            return widgets.HTML(render(chosen))
        children = [build(level + 1, chosen + (option,)) for option in controls[level][1]]
        stack = widgets.Stack(children=children, selected_index=first[level])
        stacks_by_level[level].append(stack)
        return stack

    root = build(0, ())
    inputs = [_control(description, options, kind) for description, options in controls]
    for control, index in zip(inputs, first):
        control.index = index
    links = [widgets.jslink((control, "index"), (stack, "selected_index"))
             for control, stacks in zip(inputs, stacks_by_level) for stack in stacks]
    box = widgets.VBox([*inputs, root])
    box.add_class("wb-explorer")
    box.links = links  # the browser-side links, kept for inspection (tests)
    opening = tuple(list(options)[i] for (_, options), i in zip(controls, first))
    box.default_panel = render(opening)  # what the page shows when no widget renderer is available
    box.default_choice = dict(zip([d for d, _ in controls], opening))
    box._ipython_display_ = lambda: _display_with_fallback(box)
    return box


FALLBACK_CLASS = "wb-widget-fallback"


def fallback_html(box) -> str:
    """The static stand-in of an explorer: its prepared default panel and one sentence saying which choice it
    shows. The report's stylesheet hides it as soon as the live widget has been drawn in the same cell, so a
    reader sees exactly one of the two."""
    choice = ", ".join(f"{html.escape(str(k))}: {html.escape(str(v))}" for k, v in box.default_choice.items())
    return (f'<div class="{FALLBACK_CLASS}"><p class="chart-caption">The interactive explorer needs the widget '
            f"renderer (reports/assets), which is missing here; this is its default view ({choice}).</p>"
            f"{box.default_panel}</div>")


def _display_with_fallback(box) -> None:
    from IPython.display import HTML, display

    display(HTML(fallback_html(box)))
    # the widget's own mime bundle, so display does not come back through _ipython_display_
    display(box._repr_mimebundle_(), raw=True)

