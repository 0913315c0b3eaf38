"""Explorers that work without a kernel: every panel precomputed, controls linked in the browser."""

from __future__ import annotations

import pytest

from helpers.core import widgets as W


def test_each_panel_is_rendered_from_its_own_choice_and_linked_to_its_level():
    box = W.what_if([("Rate", ["5%", "10%"]), ("Margin", ["20%", "40%", "60%"])], lambda c: f"<p>{c[0]}|{c[1]}</p>")
    rate, margin, root = box.children
    # level 2: one stack per rate, each with the three margins in order
    assert [[leaf.value for leaf in stack.children] for stack in root.children] == [
        ["<p>5%|20%</p>", "<p>5%|40%</p>", "<p>5%|60%</p>"], ["<p>10%|20%</p>", "<p>10%|40%</p>", "<p>10%|60%</p>"]]
    assert [(link.source[0], link.target[0]) for link in box.links] == [
        (rate, root), (margin, root.children[0]), (margin, root.children[1])]
    assert all(link.source[1] == "index" and link.target[1] == "selected_index" for link in box.links)
    assert all(s.selected_index == 0 for s in [root, *root.children])


def test_too_many_panels_or_an_empty_control_are_refused():
    with pytest.raises(ValueError, match="exceed the limit"):
        W.what_if([("a", list("abcdefghijklm")), ("b", list("abcdefghijklm"))], str)
    with pytest.raises(ValueError, match="every control needs options"):
        W.what_if([("a", [])], str)


def test_figure_html_embeds_a_png_with_caption():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    out = W.figure_html(fig, 'Traits of "A"', "One sentence.")
    assert out.startswith('<figure class="wb-figure"><img src="data:image/png;base64,iVBOR')
    assert 'alt="Traits of &quot;A&quot;"' in out
    assert out.endswith('<figcaption class="chart-caption">One sentence.</figcaption></figure>')
    assert not plt.get_fignums(), "the figure is closed"


def test_theme_is_seaborns_whitegrid_notebook_theme_without_importing_seaborn():
    """The rcParams the workbench writes out are exactly those seaborn's set_theme sets (bar the default colour map,
    which only exists once seaborn is imported)."""
    import matplotlib as mpl
    import seaborn as sns

    from helpers.core import plotting as P

    with mpl.rc_context():
        mpl.rcdefaults()
        defaults = dict(mpl.rcParams)
        sns.set_theme(style="whitegrid", context="notebook", palette=P.PALETTE, font_scale=1.05)
        mpl.rcParams.update(P.WORKBENCH_RC)
        seaborn = {k: v for k, v in mpl.rcParams.items() if v != defaults[k] and k != "image.cmap"}
        mpl.rcdefaults()
        P.set_theme()
        ours = dict(mpl.rcParams)
    assert set(seaborn) == {k for k, v in ours.items() if v != defaults[k]}
    for key, value in seaborn.items():
        got = ours[key]
        if key == "axes.prop_cycle":  # seaborn stores the colours as RGB tuples, the workbench as hex codes
            assert [mpl.colors.to_hex(c) for c in got.by_key()["color"]] == \
                [mpl.colors.to_hex(c) for c in value.by_key()["color"]]
        elif isinstance(value, float):
            assert got == pytest.approx(value), key
        else:
            assert str(got) == str(value) or got == value, key
    assert "seaborn" not in P.__dict__
