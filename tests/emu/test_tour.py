"""The printed tour of number formats (`python -m emu.tour`): its seed option."""

from __future__ import annotations

import re

import pytest

from emu import tour


@pytest.mark.parametrize(("arg", "message"), [
    ("-1", r"argument --seed: seed=-1 outside the allowed range \[0, inf\)"),
    ("1.5", r"argument --seed: seed='1\.5' must be an int in the allowed range \[0, inf\)"),
])
def test_a_bad_seed_is_a_one_line_usage_error(capsys, arg: str, message: str) -> None:
    with pytest.raises(SystemExit, match="^2$"):
        tour.main(["--seed", arg])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert re.fullmatch(rf"python -m emu\.tour: error: {message}", err.strip().splitlines()[-1])


def test_the_heading_names_the_seed_given(capsys) -> None:
    tour.main(["--seed", "7"])
    out = capsys.readouterr().out
    assert "(1000 draws, seed 7) ==" in out
    assert "seed 0" not in out
