"""The chapter's code as printed, made runnable and nothing else changed.

One module per section (``sec13_2``, ``sec13_3``, ...). Each function's docstring says what is wrong
with it and which function of the package does it correctly; the notebooks put the two side by side.
"""
