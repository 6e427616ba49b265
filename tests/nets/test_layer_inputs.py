"""Layer sizes are ints or pairs of ints, refused by name otherwise (they were truncated by int()); model
builders refuse settings they would ignore."""

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


def test_model_builders_refuse_settings_they_would_ignore() -> None:
    """Dropout, batch norm and maxout act on hidden layers: an MLP without one built without them; a
    truthy string turned batch norm on; a third channel count was dropped."""
    import nets

    with pytest.raises(ValueError, match=r"^mlp: dropout=0.5 applies to hidden layers; sizes=\[4, 3\] has"):
        nets.mlp([4, 3], dropout=0.5)
    with pytest.raises(ValueError, match=r"^mlp: maxout=2 applies to hidden layers"):
        nets.mlp([4, 3], maxout=2)
    with pytest.raises(TypeError, match=r"^mlp: batchnorm='no' must be True or False$"):
        nets.mlp([4, 5, 3], batchnorm="no")
    with pytest.raises(ValueError, match=r"^lenet5: input_shape=\(1, 8, 8\) must be \(C, H, W\), channels="
                                         r"\(2, 3, 4\) and hidden=\(120, 84\) two sizes each$"):
        nets.lenet5((1, 8, 8), channels=(2, 3, 4))
    assert [layer.name for layer in nets.mlp([4, 5, 3], dropout=0.5).layers()] == [
        "linear1", "relu1", "dropout1", "linear2"]
