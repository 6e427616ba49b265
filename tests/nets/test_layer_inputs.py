"""Layer sizes are ints or pairs of ints, refused by name otherwise (they were truncated by int())."""

from __future__ import annotations

import pytest

from nets.layers import AvgPool2d, Conv2d, MaxPool2d


@pytest.mark.parametrize(("make", "message"), [
    (lambda: Conv2d(1, 2, 2.5), r"^Conv2d: kernel=2.5 must be an int or a pair of ints$"),
    (lambda: Conv2d(1, 2, 3, stride=1.5), r"^Conv2d: stride=1.5 must be an int or a pair of ints$"),
    (lambda: Conv2d(1, 2, (3, 3, 3)), r"^Conv2d: kernel=\(3, 3, 3\) must be an int or a pair of ints$"),
    (lambda: Conv2d(1, 2, 3, padding=True), r"^Conv2d: padding=True must be an int or a pair of ints$"),
    (lambda: MaxPool2d(2.7), r"^MaxPool2d: kernel=2.7 must be an int or a pair of ints$"),
    (lambda: AvgPool2d(2, stride=(1, 1.0)), r"^AvgPool2d: stride=\(1, 1.0\) must be an int or a pair"),
])
def test_a_size_that_is_not_an_int_or_a_pair_of_ints_is_refused(make, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        make()
    assert (Conv2d(1, 2, (3, 1), stride=2).kernel, MaxPool2d(2).stride) == ((3, 1), (2, 2))
