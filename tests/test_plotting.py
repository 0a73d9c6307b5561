"""chapter13.plotting: the notebooks' animation player needs no network (no browser needed, so it runs in make test)."""

import re

import torch

from chapter13.plotting import animate_frames, animation_html


def test_animation_html_has_no_cdn_link_and_text_buttons():
    anim = animate_frames([torch.zeros(2, 1, 4, 4), torch.ones(2, 1, 4, 4)], nrow=2)
    plain = anim.to_jshtml()
    # what the fix is for: matplotlib's player fetches its icon font from a CDN
    assert re.search(r"https://[^\"]*font-awesome", plain)
    html = animation_html(anim)
    assert "font-awesome" not in html and "<link" not in html
    assert not re.search(r"https?://", html), "the player must not fetch anything"
    assert '<i class="fa' not in html, "every icon must be replaced by a text glyph"
    assert html.count("&#9654;") >= 3 and "&#9664;" in html  # play / step / fast forward, reverse
    # the frames themselves are still embedded
    assert html.count("data:image/png;base64") == plain.count("data:image/png;base64") > 0


def test_animate_clips_has_one_frame_per_video_frame():
    import pytest

    from chapter13.plotting import animate_clips

    clips = torch.linspace(-1, 1, 5).view(1, 1, 5, 1, 1).expand(3, 1, 5, 4, 4).clone()  # (B, C, F, H, W)
    html = animation_html(animate_clips(clips, nrow=3))
    assert html.count("data:image/png;base64") == 5
    with pytest.raises(ValueError, match=r"\(B, C, F, H, W\)"):
        animate_clips(clips[:, :, 0])  # a batch of images is not a batch of clips


def test_the_accessible_style_pairs_every_colour_with_a_line_style():
    import matplotlib

    from chapter13.plotting import OKABE_ITO, accessible_style, use_accessible_style

    style = accessible_style()
    cycle = list(style["axes.prop_cycle"])
    assert len({c["color"] for c in cycle}) == len({str(c["linestyle"]) for c in cycle}) == len(cycle) == 8
    assert {c["color"] for c in cycle} == set(OKABE_ITO.values())
    assert min(v for k, v in style.items() if "size" in k) >= 8
    before = dict(matplotlib.rcParams)
    try:
        use_accessible_style()
        assert matplotlib.rcParams["axes.prop_cycle"] == style["axes.prop_cycle"]
    finally:
        matplotlib.rcParams.update(before)


TABLEAU = re.compile(r"""["']tab(?::[a-z]+|10|20[bc]?)\\?["']|\bcm\.tab(?:10|20)""")
"""A matplotlib Tableau colour ("tab:red") or colour map ("tab10", plt.cm.tab20), also JSON-escaped."""


def test_tableau_pattern_finds_colours_and_colour_maps():
    for hit in ['color="tab:red"', "cmap='tab10'", 'cmap=\\"tab20b\\"', "plt.cm.tab10(3)", '\\"tab:blue\\"']:
        assert TABLEAU.search(hit), hit
    for miss in ["matplotlib's ``tab10``", "table", 'cmap="viridis"', "DIGIT_CMAP"]:
        assert not TABLEAU.search(miss), miss


def test_no_package_figure_uses_matplotlibs_default_tableau_colours():
    """Figures draw with the Okabe-Ito palette (``plotting.OKABE_ITO``, ``plotting.DIGIT_CMAP``), not
    matplotlib's "tab:" colours or its ``tab10``/``tab20`` colour maps, whose red/green and blue/purple
    pairs colour-blind readers confuse. The printed listings of ``chapter13.book`` stay as the chapter
    has them."""
    from pathlib import Path

    import chapter13

    root = Path(chapter13.__file__).parent
    offenders = [
        f"{path.relative_to(root)}:{i}"
        for path in sorted(root.rglob("*.py"))
        if "book" not in path.relative_to(root).parts
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if TABLEAU.search(line)
    ]
    for folder in ("notebooks", "presenter"):
        for path in sorted((root.parent / folder).glob("*.ipynb")):
            offenders += [f"{folder}/{path.name}" for _ in TABLEAU.finditer(path.read_text(encoding="utf-8"))]
    assert offenders == []
