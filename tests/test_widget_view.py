"""Tests of chapter13.widgets.view: the one View every widget draws with (blitting onto a cached
background, a full draw when blitting is off or the layout changed), the one PNG encoder and the one
latency timer; and that every widget module draws, encodes and times through it."""

from __future__ import annotations

import ast
import io
import time
from pathlib import Path

import ipywidgets
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from PIL import Image

from chapter13.widgets import gallery, neuro, schedule, temperature
from chapter13.widgets.view import LatencyTimer, View, interactive, png_bytes

WIDGETS = Path(__file__).resolve().parents[1] / "chapter13" / "widgets"


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


class Demo(View):
    """Two ticked axes: a line over a static band (ticks at fixed limits), and an image whose ticks
    touch its edges; a figure-level headline; ``update(k)`` moves the line, the image and the texts."""

    def __init__(self, blit: bool = True) -> None:
        super().__init__(figsize=(6, 3), dpi=60, blit=blit)
        self.ax1, self.ax2 = self.figure.subplots(1, 2)
        self.x = np.linspace(0, 1, 50)
        self.ax1.axvspan(0.2, 0.4, color="0.85")  # static, under the line
        (self.line,) = self.ax1.plot(self.x, self.x, lw=2, label="line")
        self.ax1.axhline(0.5, color="k", lw=3)  # static, stacked above the line
        self.ax1.legend(loc="upper left")
        self.ax1.set(xlim=(0, 1), ylim=(-1.2, 1.2))
        self.image = self.ax2.imshow(np.zeros((4, 5)), vmin=-1, vmax=1)
        self.headline = self.figure.text(0.5, 0.97, " ", ha="center", va="top")
        self.dynamic = [self.line, self.image, self.ax1.title, self.headline]

    def update(self, k: float) -> Figure:
        self.line.set_ydata(np.sin(2 * np.pi * (self.x + k)))
        self.image.set_data(np.cos(np.arange(20).reshape(4, 5) + k))
        self.ax1.set_title(f"k = {k:.2f}")
        self.headline.set_text(f"headline {k:.1f}")
        return self.figure


def full_draw(k: float, ylim: tuple[float, float] | None = None) -> np.ndarray:
    """A fresh view's full draw at ``k`` (left axes' y limits ``ylim``)."""
    fresh = Demo(blit=False)
    if ylim is not None:
        fresh.ax1.set_ylim(*ylim)
    fresh.update(k)
    return pixels(fresh.png())


def test_blitted_update_is_the_full_draw():
    view = Demo()
    view.update(0.0)
    first = pixels(view.png())
    view.update(0.3)
    blitted = pixels(view.png())
    assert (view.full_draws, view.blits) == (1, 1)
    np.testing.assert_array_equal(blitted, full_draw(0.3))  # not one pixel differs
    assert (blitted != first).any(axis=-1).mean() > 0.01  # and the update did change the picture


def test_full_draw_fallback_is_the_full_draw():
    view = Demo(blit=False)
    for k in (0.0, 0.3):
        view.update(k)
        shown = pixels(view.png())
    assert (view.full_draws, view.blits) == (2, 0)
    np.testing.assert_array_equal(shown, full_draw(0.3))


def test_a_changed_layout_draws_in_full_and_caches_a_new_background():
    view = Demo()
    view.update(0.0)
    view.png()
    view.ax1.set_ylim(-2, 2)  # the band's axes: its ticks and the band are in the background
    view.update(0.3)
    np.testing.assert_array_equal(pixels(view.png()), full_draw(0.3, ylim=(-2, 2)))
    assert (view.full_draws, view.blits) == (2, 0)
    view.update(0.6)
    np.testing.assert_array_equal(pixels(view.png()), full_draw(0.6, ylim=(-2, 2)))
    assert view.blits == 1  # the new background is blitted onto again
    view.figure.set_size_inches(5, 3)
    view.update(0.7)
    shown = pixels(view.png())
    assert shown.shape == (180, 300, 3) and view.full_draws == 3


def test_the_comparison_sees_a_stale_background(monkeypatch):
    """The check above can fail: with the layout check disabled the moved limits leave stale ticks."""
    monkeypatch.setattr(View, "_layout_key", lambda self, canvas: ())
    view = Demo()
    view.update(0.0)
    view.png()
    view.ax1.set_ylim(-2, 2)
    view.update(0.3)
    assert (pixels(view.png()) != full_draw(0.3, ylim=(-2, 2))).any()


def test_invalidate_and_a_canvas_without_blitting_draw_in_full(monkeypatch):
    view = Demo()
    view.update(0.1)
    view.png()
    view.invalidate()
    view.png()
    assert (view.full_draws, view.blits) == (2, 0)
    monkeypatch.setattr(type(view.canvas), "supports_blit", False)
    view.update(0.4)
    np.testing.assert_array_equal(pixels(view.png()), full_draw(0.4))
    assert (view.full_draws, view.blits) == (3, 0)


def _x0() -> torch.Tensor:
    return torch.linspace(-1, 1, 28 * 28).reshape(1, 28, 28)


DIGITS = (
    torch.arange(40).float().div(40).view(40, 1, 1, 1).expand(40, 1, 28, 28).clone(),
    torch.arange(40) % 10,
)
SIMILARITY = torch.eye(4) * 0.7 + 0.1

WIDGET_VIEWS = {
    "gallery": (lambda: gallery.GalleryView(n=4), (*DIGITS, 3, 0), (*DIGITS, 5, 1)),
    "schedule": (lambda: schedule.ScheduleView(_x0()), ("linear", 1000, 1e-4, 0.02), ("sigmoid", 300, 1e-3, 0.05)),
    "temperature": (lambda: temperature.TemperatureView(SIMILARITY, list("abcd")), (0.07,), (0.9,)),
    "mcgurk": (neuro.McGurkView, (), ("da", "ba", 0.8)),
    "ventriloquist": (neuro.VentriloquistView, (5.0,), (30.0, 8.0)),
    "tug-of-war": (neuro.TugOfWarView, (), (5.0, 6.0, 20.0)),
    "flash-beep": (neuro.FlashBeepView, (1, 0), (2, 3)),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(WIDGET_VIEWS))
def test_every_widget_view_blits_what_a_full_draw_shows(name):
    make, first, second = WIDGET_VIEWS[name]
    live = make()
    live.update(*first)
    before = pixels(live.png())
    live.update(*second)
    blitted = pixels(live.png())
    assert live.blits == 1, f"{name}: the update was not blitted"
    fresh = make()
    fresh.blit = False
    fresh.update(*second)
    np.testing.assert_array_equal(
        blitted, pixels(fresh.png()), err_msg=f"{name}: blit differs from a full draw"
    )
    assert (blitted != before).any()


# --- PNG -----------------------------------------------------------------------------------------------


def test_png_bytes_of_a_figure_and_of_pixels():
    fig = Figure(figsize=(2, 1), dpi=50)
    fig.add_subplot().plot([0, 1], [1, 0])
    png = png_bytes(fig)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    drawn = np.asarray(fig.canvas.buffer_rgba())
    np.testing.assert_array_equal(pixels(png), drawn[..., :3])
    assert pixels(png).shape == (50, 100, 3)
    rgba = np.zeros((3, 4, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 17  # alpha is dropped, not blended
    np.testing.assert_array_equal(pixels(png_bytes(rgba)), rgba[..., :3])
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert np.asarray(Image.open(io.BytesIO(png_bytes(grey)))).tolist() == grey.tolist()
    with pytest.raises(ValueError, match="uint8"):
        png_bytes(np.zeros((3, 4, 3)))
    with pytest.raises(ValueError, match="pixels"):
        png_bytes(np.zeros((3, 4, 2), np.uint8))


# --- latency -------------------------------------------------------------------------------------------


def test_latency_summary_by_hand():
    timer = LatencyTimer()
    assert timer.summary().count == 0 and np.isnan(timer.summary().median_ms) and np.isnan(timer.last_ms)
    for ms in [300.0, *range(1, 21)]:  # a slow first update, then 1..20 ms
        timer.record(ms, cpu_ms=ms / 2)
    every = timer.summary()
    assert (every.count, every.median_ms, every.worst_ms) == (21, 11.0, 300.0)
    assert every.p95_ms == 20.0  # nearest rank: the 20th of 21 sorted values
    warm = timer.summary(skip_first=1)
    assert (warm.count, warm.median_ms, warm.p95_ms, warm.worst_ms) == (20, 10.5, 19.0, 20.0)
    assert warm.cpu_median_ms == 5.25 and timer.last_ms == 20.0
    assert "median 10 ms, p95 19 ms" in str(warm)
    timer.reset()
    assert len(timer) == 0


def test_latency_timer_measures_blocks_and_skips_failures():
    timer = LatencyTimer(keep=3)
    with timer.measure():
        time.sleep(0.02)
    assert 15 <= timer.last_ms < 1000 and timer.cpu_ms[-1] < timer.last_ms
    assert timer.time(lambda a, b: a + b, 2, b=3) == 5 and len(timer) == 2
    with pytest.raises(RuntimeError), timer.measure():
        raise RuntimeError("the update failed")
    assert len(timer) == 2  # an update that raised is not recorded
    for _ in range(3):
        timer.record(1.0)
    assert timer.wall_ms == [1.0, 1.0, 1.0]  # only the newest `keep`


# --- controls over a view ------------------------------------------------------------------------------


def test_interactive_runs_the_update_times_it_and_shows_errors():
    view = Demo()
    seen = []

    def update(k: float) -> None:
        if k < 0:
            raise ValueError("k must not be negative")
        seen.append(k)
        view.update(k)

    slider = ipywidgets.FloatSlider(value=0.2, min=-1, max=1, description="k")
    box = interactive(view, {"k": slider}, [["k"]], update, errors=(ValueError,), show_latency=True)
    assert (
        box.children == (slider, view.image_widget, box.message, box.description)
        and box.image is view.image_widget
    )
    assert seen == [0.2] and len(box.timer) == 1 and box.timer is view.timer
    first = bytes(box.image.value)
    slider.value = 0.5
    assert seen == [0.2, 0.5] and bytes(box.image.value) != first and len(box.timer) == 2
    assert box.message.value.startswith("updated in")
    shown = bytes(box.image.value)
    slider.value = -0.5
    assert "must not be negative" in box.message.value and bytes(box.image.value) == shown
    assert len(box.timer) == 2
    with pytest.raises(ValueError, match="do not exist"):
        interactive(view, {"k": slider}, [["k", "j"]], update)


# --- every widget module draws through the view ----------------------------------------------------------


def _calls(tree: ast.Module) -> set[str]:
    return {ast.unparse(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}


@pytest.mark.parametrize(
    "path", sorted(p.name for p in WIDGETS.glob("*.py") if p.name not in {"__init__.py", "view.py"})
)
def test_widget_modules_draw_encode_and_time_only_through_the_view(path):
    source = (WIDGETS / path).read_text(encoding="utf-8")
    tree = ast.parse(source)
    calls = _calls(tree)
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    attributes = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    own = {"canvas.draw", "self.canvas.draw", "fig.canvas.draw", "Image.fromarray", "time.perf_counter",
           "time.process_time", "FigureCanvasAgg", "display", "widgets.Output", "ipywidgets.Output",
           "ipywidgets.Image", "copy_from_bbox", "restore_region"}  # fmt: skip
    assert not calls & own, f"{path} draws, encodes or times on its own: {sorted(calls & own)}"
    assert not {"copy_from_bbox", "restore_region", "draw_artist", "savefig"} & attributes, path
    assert "_ch13_artists" not in source and "FigureCanvasAgg" not in names, path
    assert "View" in names or "interactive" in names, f"{path} does not use chapter13.widgets.view"


def test_the_module_check_sees_what_it_guards():
    planted = ast.parse("import time\ndef f(fig):\n    t = time.perf_counter()\n    fig.canvas.draw()\n")
    assert {"time.perf_counter", "fig.canvas.draw"} <= _calls(planted)


# --- every control of every widget moves its picture (what tests/browser checks in Chromium) -----------


CONTROLS = {
    "digit browser": (lambda: gallery.digit_browser(*DIGITS, n=2), ["digit", "page"]),
    "temperature": (lambda: temperature.temperature_widget(SIMILARITY, list("abcd")), ["tau"]),
    "noise schedule": (lambda: schedule.schedule_widget(_x0()), ["family", "T", "β_start", "β_end"]),
    "McGurk": (neuro.mcgurk_widget, ["voice", "face", "congruence", "σ hearing", "σ lip-read", "p_common"]),
    "ventriloquist": (neuro.ventriloquist_widget, ["disparity°", "p_common", "strategy", "σ_V", "σ_A"]),
    "tug-of-war": (neuro.tug_of_war_widget, ["σ visual", "σ auditory", "conflict"]),
    "flash-beep": (neuro.flash_beep_widget, ["flashes", "beeps", "σ vision", "σ hearing", "p_common"]),
}
"""Each widget's controls by description, in layout order: the browser test finds them by these."""


def _descriptions(root) -> list[str]:
    found = []
    for child in getattr(root, "children", ()):
        if getattr(child, "description", "") and hasattr(child, "value"):
            found.append(child.description)
        found += _descriptions(child)
    return found


def _moved(control):
    """A value of ``control`` other than its current one."""
    if hasattr(control, "options"):
        labels = [o[1] if isinstance(o, tuple) else o for o in control.options]
        return labels[(labels.index(control.value) + 1) % len(labels)]
    low, high = control.min, control.max
    if isinstance(control, ipywidgets.FloatLogSlider):
        low, high = control.base**low, control.base**high
    target = high if control.value != high else low
    return type(control.value)(target)


@pytest.mark.parametrize("name", sorted(CONTROLS))
def test_every_control_moves_the_picture(name):
    make, descriptions = CONTROLS[name]
    assert _descriptions(make()) == descriptions
    for description in descriptions:
        box = make()  # fresh, so that no earlier move hides this one (the cosine family ignores β)
        control = next(c for c in box.controls.values() if c.description == description)
        before, timed = bytes(box.image.value), len(box.timer)
        control.value = _moved(control)
        assert bytes(box.image.value) != before, f"{name}: moving {description!r} left the picture as it was"
        assert len(box.timer) == timed + 1 and box.view.blits >= 1, f"{name}: {description!r} was not blitted"


def test_every_widget_image_has_a_text_description_that_follows_its_updates():
    from matplotlib.figure import Figure

    from chapter13.widgets import neuro as nw
    from chapter13.widgets.view import describe_figure

    fig = Figure()
    ax = fig.subplots()
    ax.plot([0, 1], [2, 3], label="a line")
    ax.bar([0, 1], [0.25, 0.75])
    ax.set(title="a title", xlabel="time (s)")
    ax.legend()
    ax.text(0.5, 0.5, "readout 1.0")
    text = describe_figure(fig)
    for part in (
        "Panel 1 of 1",
        "'a title'",
        "x: time (s) from",
        "legend: a line",
        "bars: 0.25, 0.75",
        "readout 1.0",
    ):
        assert part in text, (part, text)
    assert describe_figure(Figure()) == "An empty figure."
    with pytest.raises(TypeError, match="matplotlib Figure"):
        describe_figure("a figure")
    box = nw.mcgurk_widget()
    before = box.description.value
    assert box.description in box.children and "Text description" in before and "congruence 0.00" in before
    box.controls["congruence"].value = 0.5
    assert "congruence 0.50" in box.description.value and box.description.value != before
