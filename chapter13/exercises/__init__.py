"""Self-checks for the notebooks' exercises, one module per section.

A checker prints what is wrong (or "not attempted yet" for ``None``) and returns False, or prints a
confirmation and returns True. It never raises on a student's answer, so notebooks run top to bottom.
"""
