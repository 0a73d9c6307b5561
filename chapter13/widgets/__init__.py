"""ipywidgets builders, one module per section, each a thin layer over a pure function.

The pure function (returning numbers or a matplotlib figure) lives beside its widget and has unit
tests; the widget only wires controls to it. A notebook cell that shows a widget also calls its pure
function once directly, so that nbval exercises the code path.

Every widget draws, encodes and times the same way, through :mod:`chapter13.widgets.view`: a
:class:`~chapter13.widgets.view.View` (a figure rendered off-screen with Agg into an
``ipywidgets.Image``, updated by blitting, with a full draw when blitting cannot be used), one PNG
encoder (:func:`~chapter13.widgets.view.png_bytes`) and one latency timer
(:class:`~chapter13.widgets.view.LatencyTimer`, ``box.timer`` on every widget; the benchmarks use it).
"""
