"""The helpers every section's self-checks share (chapter13.exercises)."""

import math

from chapter13.exercises import as_number, not_attempted


def test_not_attempted_speaks_only_for_none(capsys):
    assert not_attempted(None, "set x.") and "Not attempted yet: set x." in capsys.readouterr().out
    assert not not_attempted(0, "set x.") and capsys.readouterr().out == ""


def test_as_number_accepts_finite_numbers_and_explains_the_rest(capsys):
    assert as_number("2.5") == 2.5 and as_number(3) == 3.0
    assert as_number("three") is None and "Expected a number" in capsys.readouterr().out
    assert as_number(math.nan) is None and "finite" in capsys.readouterr().out
