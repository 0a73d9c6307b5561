"""How every widget of the chapter draws: one :class:`View`, one PNG encoder, one latency timer.

A widget's figure is a matplotlib ``Figure`` rendered off-screen with Agg and sent to the browser as
a PNG in an ``ipywidgets.Image`` (no pyplot figure, no ``Output`` area, nothing left for the inline
backend to show a second time). Drawing axes, ticks and labels is most of matplotlib's cost and they
do not change between updates, so a :class:`View` draws everything but its *layer* once into a cached
background and, on each update, restores that background and draws only the layer (matplotlib
blitting). The layer is the artists a view lists in ``dynamic`` (the ones its ``update`` changes),
every static artist of the same axes stacked above the lowest of them (tick labels excepted) and any
static artist drawn later that touches one of those, all drawn in the order of a full draw, so that a
blit gives the pixels of a full draw (the tests check it, pixel for pixel, for every widget). When
blitting is unavailable (a canvas that cannot copy regions, ``blit=False``) or the layout the
background was drawn for has changed (figure size or resolution, an axes' position, the limits of an
axes whose static ticks or artists are in the background, the list of dynamic artists) the view draws
the whole figure instead, and caches a new background.

- :class:`View`: the figure, its ``dynamic`` artists, :meth:`View.pixels` / :meth:`View.png` /
  :meth:`View.show`, the ``ipywidgets.Image`` it shows into (:attr:`View.image_widget`) and its
  :class:`LatencyTimer` (:attr:`View.timer`);
- :func:`png_bytes`: a figure (drawn in full) or an RGB(A) array as PNG bytes, the only PNG encoder of
  the widgets;
- :class:`LatencyTimer`: wall-clock and CPU milliseconds per update and their :class:`LatencySummary`
  (median, 95th percentile, worst); every widget times its updates with its view's timer and
  ``benchmarks/bench_latency.py`` times the widgets with the same class;
- :func:`interactive`: controls above a view's image; moving a control runs the widget's update,
  timed, and shows the new PNG. The returned :class:`ViewBox` has ``.controls`` (name -> control),
  ``.image``, ``.view``, ``.timer`` and ``.update()`` so that tests and benchmarks can drive it.
"""

from __future__ import annotations

import html
import io
import math
import statistics
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NamedTuple

import ipywidgets
import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from matplotlib.spines import Spine
from matplotlib.transforms import Bbox
from PIL import Image

__all__ = [
    "PNG_COMPRESS_LEVEL",
    "LatencySummary",
    "LatencyTimer",
    "View",
    "ViewBox",
    "describe_figure",
    "interactive",
    "png_bytes",
]

PNG_COMPRESS_LEVEL = 1
"""zlib level of every widget PNG: the image only travels from the kernel to this machine's browser,
where level 1 is several times faster to encode than the default and hardly larger."""


# --- PNG -----------------------------------------------------------------------------------------------


def _agg_canvas(figure: Figure) -> FigureCanvasAgg:
    """The figure's canvas, made an Agg canvas when it is not one (a bare ``Figure``'s base canvas).

    A pyplot figure under Agg or the inline backend already has one and keeps it."""
    canvas = figure.canvas
    if not isinstance(canvas, FigureCanvasAgg):
        canvas = FigureCanvasAgg(figure)
    return canvas


def png_bytes(source: Figure | np.ndarray, compress_level: int = PNG_COMPRESS_LEVEL) -> bytes:
    """``source`` as PNG bytes: a ``Figure`` is drawn in full with Agg first (at its own dpi, the
    whole canvas); an array is (H, W), (H, W, 3) or (H, W, 4) ``uint8`` pixels (alpha is dropped)."""
    if isinstance(source, Figure):
        canvas = _agg_canvas(source)
        canvas.draw()
        source = np.asarray(canvas.buffer_rgba())
    pixels = np.asarray(source)
    if pixels.dtype != np.uint8:
        raise ValueError(f"png_bytes takes uint8 pixels, got dtype {pixels.dtype}")
    if pixels.ndim == 3 and pixels.shape[-1] == 4:
        pixels = pixels[..., :3]
    elif not (pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[-1] == 3)):
        raise ValueError(f"png_bytes takes (H, W), (H, W, 3) or (H, W, 4) pixels, got {pixels.shape}")
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, format="png", compress_level=compress_level)
    return buffer.getvalue()


# --- latency -------------------------------------------------------------------------------------------


def _nearest_rank(sorted_values: Sequence[float], q: float) -> float:
    """The ``q``-quantile by nearest rank: the smallest value with at least ``q`` of them at or below it."""
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


@dataclass(frozen=True)
class LatencySummary:
    """Milliseconds of ``count`` updates: wall-clock median, 95th percentile (nearest rank) and worst,
    and the median CPU time of this process (which moves less when others load the machine)."""

    count: int
    median_ms: float
    p95_ms: float
    worst_ms: float
    cpu_median_ms: float

    def __str__(self) -> str:
        if not self.count:
            return "no updates timed"
        return (
            f"median {self.median_ms:.0f} ms, p95 {self.p95_ms:.0f} ms, worst {self.worst_ms:.0f} ms "
            f"(CPU median {self.cpu_median_ms:.0f} ms) over {self.count} updates"
        )


class LatencyTimer:
    """Wall-clock and CPU milliseconds of each timed update.

        timer = LatencyTimer()
        with timer.measure():
            view.update(...)
            view.show()
        timer.last_ms, timer.summary().median_ms

    Only blocks that finish are recorded (an update that raises is not an update shown). The newest
    ``keep`` updates are kept (a widget left open for a lecture does not grow without bound).
    """

    def __init__(self, keep: int = 10_000) -> None:
        if keep < 1:
            raise ValueError(f"keep must be at least 1, got {keep}")
        self.keep = keep
        self.wall_ms: list[float] = []
        self.cpu_ms: list[float] = []

    @contextmanager
    def measure(self) -> Iterator[None]:
        """Time the block and record it (wall clock with ``perf_counter``, CPU with ``process_time``)."""
        wall, cpu = time.perf_counter(), time.process_time()
        yield
        self.record(1000 * (time.perf_counter() - wall), 1000 * (time.process_time() - cpu))

    def time(self, fn: Callable[..., object], *args: object, **kwargs: object) -> object:
        """``fn(*args, **kwargs)``, timed and recorded; returns what it returns."""
        with self.measure():
            return fn(*args, **kwargs)

    def record(self, wall_ms: float, cpu_ms: float = float("nan")) -> None:
        """Add one update measured elsewhere."""
        self.wall_ms.append(float(wall_ms))
        self.cpu_ms.append(float(cpu_ms))
        if len(self.wall_ms) > self.keep:
            del self.wall_ms[: -self.keep], self.cpu_ms[: -self.keep]

    def reset(self) -> None:
        self.wall_ms.clear()
        self.cpu_ms.clear()

    def __len__(self) -> int:
        return len(self.wall_ms)

    @property
    def last_ms(self) -> float:
        """The latest update's wall-clock milliseconds (NaN before the first)."""
        return self.wall_ms[-1] if self.wall_ms else float("nan")

    def summary(self, skip_first: int = 0) -> LatencySummary:
        """Median, 95th percentile and worst of the recorded updates, the first ``skip_first`` left out
        (a widget's first update pays for cold caches and model loading); NaN when there are none."""
        wall = self.wall_ms[skip_first:]
        cpu = [c for c in self.cpu_ms[skip_first:] if not math.isnan(c)]
        if not wall:
            nan = float("nan")
            return LatencySummary(0, nan, nan, nan, nan)
        ordered = sorted(wall)
        return LatencySummary(
            count=len(wall),
            median_ms=statistics.median(ordered),
            p95_ms=_nearest_rank(ordered, 0.95),
            worst_ms=ordered[-1],
            cpu_median_ms=statistics.median(cpu) if cpu else float("nan"),
        )


# --- what a full draw draws, in order ------------------------------------------------------------------


def _drawn_children(ax: Axes) -> list[Artist]:
    """What ``Axes.draw`` draws of ``ax``'s children (in ``get_children`` order): not the patch, no
    spines without the frame or the axis, no axes when the axis is off, nothing animated."""
    skip = {id(ax.patch)}
    if not (ax.axison and ax.get_frame_on()):
        skip |= {id(spine) for spine in ax.spines.values()}
    if not ax.axison:
        skip |= {id(ax.xaxis), id(ax.yaxis)}
    return [child for child in ax.get_children() if id(child) not in skip and not child.get_animated()]


class _Unit(NamedTuple):
    """One thing a full draw draws: the artist, its axes (None for a figure-level artist), the zorder
    it is drawn at, and its kind: "artist", or a static axis's "tick" (grid line, tick mark) or "text"."""

    artist: Artist
    ax: Axes | None
    zorder: float
    kind: str


def _axis_parts(axis: Axis) -> list[tuple[Artist, str]]:
    """What ``Axis.draw`` draws, in order, with its kind: per tick inside the view interval (the
    ticks ``Axis.draw`` selects) its grid line and tick marks ("tick") and labels ("text"), then the
    axis label and the offset text."""
    transform = axis.get_transform()
    low, high = sorted(transform.transform(np.asarray(axis.get_view_interval(), dtype=float)))
    slack = 1e-10 * max(abs(high - low), 1e-300)
    ticks = []
    for locs, get in ((axis.get_majorticklocs(), axis.get_major_ticks),
                      (axis.get_minorticklocs(), axis.get_minor_ticks)):  # fmt: skip
        if len(locs):
            where = transform.transform(np.asarray(locs, dtype=float))
            ticks += [
                t for t, x in zip(get(len(locs)), where, strict=False) if low - slack <= x <= high + slack
            ]
    parts: list[tuple[Artist, str]] = []
    for tick in ticks:
        if tick.get_visible():
            parts += [(tick.gridline, "tick"), (tick.tick1line, "tick"), (tick.tick2line, "tick"),
                      (tick.label1, "text"), (tick.label2, "text")]  # fmt: skip
    return [*parts, (axis.label, "text"), (axis.offsetText, "text")]


def _extent(artist: Artist, renderer, whole_clip: bool = False) -> Bbox | None:
    """Where ``artist`` draws, in display pixels (None where it draws nothing); a clipped artist
    within its clip box, or the whole clip box (``whole_clip``)."""
    clip = artist.get_clip_box() if artist.get_clip_on() else None
    if whole_clip and clip is not None:
        return clip.frozen()
    try:
        box = (
            artist.get_tightbbox(renderer) if isinstance(artist, Axis) else artist.get_window_extent(renderer)
        )
    except Exception:  # an artist that cannot say where it draws: assume everywhere
        return artist.get_figure(root=True).bbox.frozen()
    if clip is not None:
        box = Bbox.intersection(box, clip)
    if box is None or not np.isfinite(box.get_points()).all():
        return None
    return box


def _touch(a: Bbox, b: Bbox, pad: float = 1.0) -> bool:
    """Whether two pixel boxes overlap or come within ``pad`` pixels (antialiasing bleeds)."""
    return a.x0 - pad < b.x1 and b.x0 - pad < a.x1 and a.y0 - pad < b.y1 and b.y0 - pad < a.y1


# --- the view ------------------------------------------------------------------------------------------


class View:
    """A figure rendered off-screen with Agg, updated by blitting its ``dynamic`` artists.

    Subclasses build their artists on :attr:`figure` and list the ones their ``update`` changes in
    :attr:`dynamic` (an ``Axis`` may be listed when its limits move with the settings; a figure-level
    text such as a suptitle too). Then:

    - :meth:`pixels` renders and returns the canvas (H, W, 4): blitted onto the cached background, or
      drawn in full (``blit = False``, a canvas without blitting, a changed layout, or the first
      render, which also caches the background);
    - :meth:`png` is those pixels as PNG bytes (:func:`png_bytes`);
    - :meth:`show` puts the PNG into :attr:`image_widget` (an ``ipywidgets.Image`` made on first use)
      and returns it.

    Call :meth:`invalidate` after changing what the figure holds in a way the layout check does not
    see (a new static artist, say); the next render then draws in full and caches a new background. ``full_draws`` and
    ``blits`` count the renders of each kind. State lives on the view, never on the figure.

    Args:
        figure: the figure to draw on (e.g. a pyplot figure a pure function returns); by default a
            new ``matplotlib.figure.Figure``, which pyplot never sees.
        figsize, dpi: of the new figure.
        blit: False draws the whole figure on every render.
    """

    def __init__(
        self,
        figure: Figure | None = None,
        *,
        figsize: tuple[float, float] = (6.4, 4.8),
        dpi: float = 72,
        blit: bool = True,
    ) -> None:
        self.figure = Figure(figsize=figsize, dpi=dpi) if figure is None else figure
        self.dynamic: list[Artist] = []
        self.blit = blit
        self.timer = LatencyTimer()
        self.full_draws = 0
        self.blits = 0
        self._image_widget: ipywidgets.Image | None = None
        self._background = None
        self._layer: list[Artist] = []
        self._watched: list[tuple[Axes, str]] = []
        self._layout: tuple | None = None

    @property
    def fig(self) -> Figure:
        """Short name of :attr:`figure`."""
        return self.figure

    @property
    def canvas(self) -> FigureCanvasAgg:
        return _agg_canvas(self.figure)

    @property
    def image_widget(self) -> ipywidgets.Image:
        """The ``ipywidgets.Image`` that :meth:`show` fills (made on first use, so that a pure function
        building a view opens no widget)."""
        if self._image_widget is None:
            self._image_widget = ipywidgets.Image(format="png")
        return self._image_widget

    def invalidate(self) -> None:
        """Forget the cached background: the next render draws the whole figure."""
        self._background = None

    # -- rendering --

    def _can_blit(self, canvas: FigureCanvasAgg) -> bool:
        return bool(self.blit and self.dynamic and getattr(type(canvas), "supports_blit", False))

    def _owner(self, artist: Artist) -> Axes | None:
        if isinstance(artist, Axis):
            return artist.axes
        for ax in self.figure.axes:
            if artist in (ax.xaxis.label, ax.yaxis.label):
                return ax
        return artist.axes

    def _sequence(self) -> list[_Unit]:
        """What a full draw draws, in its order: the figure's children by zorder, an axes expanded
        into its drawn children by zorder and a static ``Axis`` into what ``Axis.draw`` draws (per
        tick in the view interval: grid line, tick marks, tick labels; then the axis label and the
        offset text), each at the axis's zorder. A dynamic axis stays whole."""
        dynamic = {id(a) for a in self.dynamic}
        top = [c for c in self.figure.get_children() if c is not self.figure.patch and not c.get_animated()]
        units: list[_Unit] = []
        for child in sorted(top, key=lambda a: a.get_zorder()):
            if not isinstance(child, Axes):
                units.append(_Unit(child, None, child.get_zorder(), "artist"))
            elif child.get_visible():
                for part in sorted(_drawn_children(child), key=lambda a: a.get_zorder()):
                    if isinstance(part, Axis) and id(part) not in dynamic:
                        units += [
                            _Unit(piece, child, part.get_zorder(), kind) for piece, kind in _axis_parts(part)
                        ]
                    else:
                        units.append(_Unit(part, child, part.get_zorder(), "artist"))
        return units

    def _compute_layer(self) -> None:
        """The artists drawn on every blit, in full-draw order, and the axes limits the background
        depends on (an axis with static ticks; an axes with static artists under the layer).

        The layer holds the dynamic artists and, in each axes holding one, everything drawn at or
        above the zorder of the lowest of them, except a static axis's tick labels and axis label
        (drawing text is most of a figure's cost: they stay in the background; the axis's grid lines
        and tick marks, which may overlap the dynamic artists, are redrawn). Then any static artist
        drawn after a layer artist whose extent it touches (a neighbouring axes' label beside a
        spine, say) joins the layer, so that a blit stacks the pixels as a full draw does. Extents
        are those at the capture; a clipped dynamic artist counts as its whole clip box, so that
        moving inside it changes nothing."""
        renderer = self.canvas.get_renderer()
        dynamic = {id(a) for a in self.dynamic}
        lowest: dict[int, float] = {}
        for artist in self.dynamic:
            ax = self._owner(artist)
            if ax is not None:
                lowest[id(ax)] = min(lowest.get(id(ax), math.inf), artist.get_zorder())
        units = self._sequence()
        in_layer = [
            id(u.artist) in dynamic
            or (u.ax is not None and u.kind != "text" and u.artist.get_visible()
                and u.zorder >= lowest.get(id(u.ax), math.inf))
            for u in units
        ]  # fmt: skip
        placed = [i for i, yes in enumerate(in_layer) if yes]
        extents = {
            i: _extent(units[i].artist, renderer, whole_clip=id(units[i].artist) in dynamic) for i in placed
        }
        for i in range(placed[0] + 1 if placed else len(units), len(units)):
            if in_layer[i] or not units[i].artist.get_visible():
                continue
            box = _extent(units[i].artist, renderer)
            if box is not None and any(
                j < i and extents[j] is not None and _touch(box, extents[j]) for j in placed
            ):
                in_layer[i], extents[i] = True, box
                placed.append(i)
        self._layer = [u.artist for u, yes in zip(units, in_layer, strict=True) if yes]
        drawn = {id(u.artist) for u in units}
        self._layer += [a for a in self.dynamic if id(a) not in drawn]  # e.g. hidden for now: drawn last
        self._watched = []
        for ax in self.figure.axes:
            below = any(
                u.ax is ax and not yes and u.kind == "artist" and not isinstance(u.artist, Spine)
                for u, yes in zip(units, in_layer, strict=True)
            )
            for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
                ticked = ax.axison and axis.get_visible() and len(axis.get_majorticklocs()) > 0
                if below or (id(axis) not in dynamic and ticked):
                    self._watched.append((ax, name))

    def _layout_key(self, canvas: FigureCanvasAgg) -> tuple:
        limits = tuple(tuple(ax.get_xlim() if name == "x" else ax.get_ylim()) for ax, name in self._watched)
        return (
            canvas.get_width_height(),
            self.figure.dpi,
            tuple(id(a) for a in self.dynamic),
            tuple(id(ax) for ax in self.figure.axes),
            tuple(tuple(ax.get_position().bounds) for ax in self.figure.axes),
            limits,
        )

    def _capture(self, canvas: FigureCanvasAgg) -> None:
        """Draw everything but the layer, keep it as the background, then draw the whole figure.

        A full draw comes first: it settles what the layer depends on (limits autoscaled on the first
        draw, an aspect-locked axes' box and with it the number of ticks an axis draws)."""
        canvas.draw()
        self._compute_layer()
        shown = [(a, a.get_visible()) for a in self._layer]
        for artist, _ in shown:
            artist.set_visible(False)
        try:
            canvas.draw()
            self._background = canvas.copy_from_bbox(self.figure.bbox)
        finally:
            for artist, visible in shown:
                artist.set_visible(visible)
        canvas.draw()  # in full once more: a hidden title is placed as if it had no height
        self._layout = self._layout_key(canvas)

    def pixels(self) -> np.ndarray:
        """Render the figure and return the canvas's pixels (H, W, 4) ``uint8`` (a view, not a copy)."""
        canvas = self.canvas
        if not self._can_blit(canvas):
            canvas.draw()
            self._background = None
            self.full_draws += 1
        elif self._background is None or self._layout_key(canvas) != self._layout:
            self._capture(canvas)
            self.full_draws += 1
        else:
            canvas.restore_region(self._background)
            for artist in self._layer:
                self.figure.draw_artist(artist)
            self.blits += 1
        return np.asarray(canvas.buffer_rgba())

    def png(self) -> bytes:
        """The figure rendered by :meth:`pixels`, as PNG bytes."""
        return png_bytes(self.pixels())

    def show(self) -> bytes:
        """Render, encode and put the PNG into :attr:`image_widget`; returns the PNG."""
        png = self.png()
        self.image_widget.value = png
        return png


# --- a text alternative for the image ------------------------------------------------------------------


def _label(text: str) -> str:
    return " ".join(text.split())


def describe_figure(figure: Figure) -> str:
    """A plain-text description of ``figure`` for readers who cannot see the image: each panel's
    title, its axes (label and range), its legend and its visible text, in reading order.

    Built from the figure's own artists (no drawing), so it follows every update; a widget shows it
    under its image (:func:`interactive`).
    """
    if not isinstance(figure, Figure):
        raise TypeError(f"describe_figure expects a matplotlib Figure, got {type(figure).__name__}")
    parts = []
    suptitle = getattr(figure, "_suptitle", None)
    if suptitle is not None and suptitle.get_visible() and suptitle.get_text().strip():
        parts.append(_label(suptitle.get_text()) + ".")
    panels = [ax for ax in figure.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]
    for number, ax in enumerate(panels, 1):
        bits = []
        if ax.get_title():
            bits.append(f"'{_label(ax.get_title())}'")
        for name, label, limits in (
            ("x", ax.get_xlabel(), ax.get_xlim()),
            ("y", ax.get_ylabel(), ax.get_ylim()),
        ):
            if ax.axison and (label or ax.has_data()):
                what = f"{name}: {_label(label)}" if label else name
                bits.append(f"{what} from {limits[0]:.3g} to {limits[1]:.3g}")
        legend = ax.get_legend()
        if legend is not None:
            names = [_label(t.get_text()) for t in legend.get_texts() if t.get_text().strip()]
            if names:
                bits.append("legend: " + ", ".join(names))
        for container in ax.containers:
            if isinstance(container, BarContainer) and len(container) <= 12:
                sizes = [
                    p.get_width() if container.orientation == "horizontal" else p.get_height()
                    for p in container
                ]
                name = (
                    f"bars '{_label(container.get_label())}'"
                    if not container.get_label().startswith("_")
                    else "bars"
                )
                bits.append(f"{name}: " + ", ".join(f"{v:.3g}" for v in sizes))
        texts = [_label(t.get_text()) for t in ax.texts if t.get_visible() and t.get_text().strip()]
        if texts:
            bits.append("text: " + "; ".join(texts[:8]) + (" ..." if len(texts) > 8 else ""))
        if bits:
            parts.append(f"Panel {number} of {len(panels)}: " + "; ".join(bits) + ".")
    return " ".join(parts) or "An empty figure."


def _description_html(figure: Figure) -> str:
    return (
        "<details class='ch13-description'><summary style='font-size:8pt;color:#555'>"
        f"Text description of the figure</summary><p style='font-size:9pt'>{html.escape(describe_figure(figure))}"
        "</p></details>"
    )


# --- controls over a view ------------------------------------------------------------------------------


class ViewBox(ipywidgets.VBox):
    """The box :func:`interactive` returns: rows of controls above a view's image.

    Attributes: ``controls`` (name -> control), ``image`` (the ``ipywidgets.Image``), ``view``,
    ``timer`` (the view's :class:`LatencyTimer`, one entry per update shown), ``message`` (the line
    under the image for errors and timings, or None), ``description`` (the image's text alternative,
    :func:`describe_figure`, refreshed with every update) and ``update()`` (redraw for the current
    values).
    """

    controls: dict[str, ipywidgets.Widget]
    view: View
    message: ipywidgets.HTML | None
    description: ipywidgets.HTML

    @property
    def image(self) -> ipywidgets.Image:
        return self.view.image_widget

    @property
    def timer(self) -> LatencyTimer:
        return self.view.timer

    def update(self, _change: object = None) -> None:
        """Run the widget's update for the controls' current values and show it."""
        self._redraw()


def interactive(
    view: View,
    controls: Mapping[str, ipywidgets.Widget],
    rows: Sequence[Sequence[str]],
    update: Callable[..., object] | None = None,
    *,
    errors: tuple[type[BaseException], ...] = (),
    show_latency: bool = False,
    continuous_update: bool | None = None,
    wide_descriptions: bool = False,
) -> ViewBox:
    """Controls laid out in ``rows`` above ``view``'s image; any control's change runs
    ``update(**values)`` (default ``view.update``; ``values`` maps each control's name to its value)
    and shows the view, timed by ``view.timer``. The first update runs now.

    A row of one name is the control itself, a longer row an ``HBox``. Under the image, a collapsed
    text description of the figure (:func:`describe_figure`) follows every update. An exception of a
    type in ``errors`` (a bad setting, an unknown word) is shown in red under the image, which keeps the last
    good picture; ``show_latency`` writes each update's time there. ``continuous_update`` (when not
    None) is set on every control that has it; ``wide_descriptions`` gives descriptions their own width.
    """
    controls = dict(controls)
    missing = [name for row in rows for name in row if name not in controls]
    if missing:
        raise ValueError(f"rows name controls that do not exist: {missing}; controls: {list(controls)}")
    for control in controls.values():
        if continuous_update is not None and hasattr(control, "continuous_update"):
            control.continuous_update = continuous_update
        if wide_descriptions:
            control.style = {"description_width": "initial"}
    run = view.update if update is None else update
    message = ipywidgets.HTML() if errors or show_latency else None
    description = ipywidgets.HTML()

    def redraw(_change: object = None) -> None:
        values = {name: control.value for name, control in controls.items()}
        try:
            with view.timer.measure():
                run(**values)
                view.show()
            description.value = _description_html(view.figure)
        except errors as error:
            message.value = f"<span style='color:#b00'>⚠ {html.escape(str(error))}</span>"
            return
        if message is not None:
            message.value = f"updated in {view.timer.last_ms:.0f} ms" if show_latency else ""

    lines = [
        controls[row[0]] if len(row) == 1 else ipywidgets.HBox([controls[n] for n in row]) for row in rows
    ]
    box = ViewBox([*lines, view.image_widget, *([message] if message is not None else []), description])
    box.controls, box.view, box.message, box.description = controls, view, message, description
    box._redraw = redraw
    for control in controls.values():
        control.observe(redraw, names="value")
    redraw()
    return box
