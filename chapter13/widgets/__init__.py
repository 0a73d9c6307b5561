"""ipywidgets builders, one module per section, each a thin layer over a pure function.

The pure function (returning numbers or a matplotlib figure) lives beside its widget and has unit
tests; the widget only wires controls to it. A notebook cell that shows a widget also calls its pure
function once directly, so that nbval exercises the code path.
"""
