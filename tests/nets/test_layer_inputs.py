"""Layer sizes are ints or pairs of ints, refused by name otherwise (they were truncated by int()); model
builders refuse settings they would ignore."""

from __future__ import annotations

import numpy as np
import pytest

import nets
from nets.layers import AvgPool2d, Context, Conv2d, MaxPool2d

#: the range of a layer size (nets.args.MAX_SIZE = 2**31)
SIZES = r"\[1, 2147483648\]"


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



@pytest.mark.parametrize(("builder", "kwargs", "shown"), [
    ("lenet5", {"n_classes": 0}, "n_classes=0"),
    ("lenet5", {"n_classes": -3}, "n_classes=-3"),
    ("lenet5", {"channels": (0, 16)}, r"channels\[0\]=0"),
    ("lenet5", {"channels": (6, -1)}, r"channels\[1\]=-1"),
    ("lenet5", {"hidden": (120, 0)}, r"hidden\[1\]=0"),
    ("lenet5", {"input_shape": (0, 8, 8)}, r"input_shape\[0\]=0"),
    ("resnet_small", {"n_classes": 0}, "n_classes=0"),
    ("resnet_small", {"n_classes": -2}, "n_classes=-2"),
    ("resnet_small", {"width": 0}, "width=0"),
    ("resnet_small", {"width": -4}, "width=-4"),
    ("resnet_small", {"input_shape": (0, 8, 8)}, r"input_shape\[0\]=0"),
], ids=str)
def test_cnn_builders_refuse_sizes_below_one_by_name(builder: str, kwargs: dict, shown: str) -> None:
    """lenet5 and resnet_small refuse a size below 1 naming the builder, the parameter and the range, as mlp
    does (a layer refused it without naming the builder's parameter)."""
    import nets

    with pytest.raises(ValueError, match=rf"^{builder}: {shown} outside the allowed range {SIZES}$"):
        getattr(nets, builder)(**{"input_shape": (1, 8, 8), **kwargs})


def test_cnn_builders_refuse_bad_shapes_and_sizes_that_are_not_ints() -> None:
    """A resnet_small input of another rank than (C, H, W), or one the 2x2 pooling leaves empty (a Linear
    of no inputs), is refused by name; so are sizes that are not ints."""
    import nets

    with pytest.raises(ValueError, match=r"^resnet_small: input_shape=\(8, 8\) must be \(C, H, W\)$"):
        nets.resnet_small((8, 8))
    with pytest.raises(ValueError, match=r"^resnet_small: input_shape=\(1, 1, 8\) is too small for the 2x2"
                                         r" pooling \(H and W >= 2\)$"):
        nets.resnet_small((1, 1, 8))
    with pytest.raises(TypeError, match=r"^lenet5: n_classes=2.5 must be an int$"):
        nets.lenet5((1, 8, 8), n_classes=2.5)
    with pytest.raises(TypeError, match=r"^resnet_small: width=8.0 must be an int$"):
        nets.resnet_small((1, 8, 8), width=8.0)
    smallest = (nets.resnet_small((1, 2, 2), 2, width=1, blocks=0), nets.lenet5((1, 8, 8), 2, channels=(1, 1),
                                                                               hidden=(1, 1)))
    for model, side in zip(smallest, (2, 8), strict=True):
        assert model.forward(np.ones((1, 1, side, side)), Context.float64(training=False)).shape == (1, 2)


@pytest.mark.parametrize(("make", "error", "message"), [
    (lambda: nets.Linear(4, 3, bias="False"), TypeError, r"^Linear: bias='False' must be True or False$"),
    (lambda: nets.Conv2d(1, 2, 3, bias=1), TypeError, r"^Conv2d: bias=1 must be True or False$"),
    (lambda: nets.Linear("3", 2), TypeError, r"^Linear: n_in='3' must be an int$"),
    (lambda: nets.Linear(2.0, 2), TypeError, r"^Linear: n_in=2.0 must be an int$"),
    (lambda: nets.Linear(True, 2), TypeError, r"^Linear: n_in=True must be an int$"),
    (lambda: nets.Linear(3, 0), ValueError, r"^Linear: n_out=0 outside the allowed range " + SIZES + "$"),
    (lambda: nets.Linear(2**70, 2), ValueError,
     r"^Linear: n_in=1180591620717411303424 outside the allowed range " + SIZES + "$"),
    (lambda: nets.Conv2d(None, 2, 3), TypeError, r"^Conv2d: c_in=None must be an int$"),
    (lambda: nets.Conv2d(1, 0, 3), ValueError, r"^Conv2d: c_out=0 outside the allowed range " + SIZES + "$"),
    (lambda: nets.Maxout(2.5), TypeError, r"^Maxout: k=2.5 must be an int$"),
    (lambda: nets.Maxout(float("nan")), TypeError, r"^Maxout: k=nan must be an int$"),
    (lambda: nets.Maxout(float("inf")), TypeError, r"^Maxout: k=inf must be an int$"),
    (lambda: nets.BatchNorm([3]), TypeError, r"^BatchNorm: n=\[3\] must be an int$"),
    (lambda: nets.BatchNorm(0), ValueError, r"^BatchNorm: n=0 outside the allowed range " + SIZES + "$"),
    (lambda: nets.Dropout("0.1"), TypeError, r"^Dropout: p='0.1' must be a finite real number$"),
    (lambda: nets.Residual(None), TypeError, r"^Residual: body=None must be a Sequential$"),
    (lambda: nets.Residual(nets.Sequential(), shortcut=5), TypeError,
     r"^Residual: shortcut=5 must be None or a Layer$"),
    (lambda: nets.Sequential(nets.ReLU(), 5), TypeError,
     r"^Sequential: layers\[1\]=5 must be a nets Layer \(Linear, ReLU, ...\)$"),
    (lambda: nets.Model(None), TypeError, r"^Model: root=None must be a Sequential of layers$"),
    (lambda: nets.Model(nets.Linear(4, 2)), TypeError, r"^Model: root=Linear\(4, 2\) must be a Sequential"),
    (lambda: nets.mlp([4, 2**70, 2]), ValueError,
     r"^mlp: sizes\[1\]=1180591620717411303424 outside the allowed range " + SIZES + "$"),
    (lambda: nets.mlp([4, 3, 2], dropout=None), TypeError, r"^mlp: dropout=None must be a finite real"),
    (lambda: nets.mlp([4, 3, 2], dropout={}), TypeError, r"^mlp: dropout=\{\} must be a finite real number$"),
    (lambda: nets.mlp([4, 3, 2], dropout="0.1"), TypeError, r"^mlp: dropout='0.1' must be a finite real"),
    (lambda: nets.mlp([4, 3, 2], dropout=1.0), ValueError, r"^mlp: dropout=1.0 outside the allowed"),
], ids=str)
def test_layer_and_model_constructors_refuse_bad_settings_by_name(make, error, message: str) -> None:
    """A truthy string turned a bias on; sizes that are not ints or too large to allocate were raw errors
    of numpy or of a comparison; Maxout took k=2.5 or nan, BatchNorm a list or 0, Residual and Sequential
    anything (predict then failed with an AttributeError); mlp built no Dropout for dropout=None or {}."""
    with pytest.raises(error, match=message):
        make()


@pytest.mark.parametrize(("item", "message"), [
    (("linear", 4, 3, 5, 6), r"^from_spec: \('linear', 4, 3, 5, 6\) gives 4 setting\(s\) by position;"
                             r" linear takes at most 2 \(n_in, n_out\); give the others by name in a dict"),
    (("relu", 5), r"^from_spec: \('relu', 5\) gives 1 setting\(s\) by position; relu takes at most 0"
                  r" \(none\)"),
])
def test_from_spec_refuses_settings_beyond_those_taken_by_position(item: tuple, message: str) -> None:
    """Extra positional settings became the layer's name and bias (a Linear named 5)."""
    with pytest.raises(ValueError, match=message):
        nets.from_spec([item])
    spec = [("conv2d", 1, 2, 3, 1, 1), {"kind": "linear", "n_in": 4, "n_out": 3, "name": "fc", "bias": False}]
    assert [la.name for la in nets.from_spec(spec[1:]).layers()] == ["fc"]
    assert nets.from_spec(spec[:1]).layers()[0].padding == (1, 1)


def test_predict_refuses_x_that_is_not_numbers_and_a_quant_that_is_not_a_quantizer() -> None:
    model = nets.mlp([2, 3, 2], seed=0)
    with pytest.raises(TypeError, match=r"^Model.predict: x has dtype str; expected real numbers"):
        model.predict("abc")
    with pytest.raises(TypeError, match=r"^Model.predict: quant=5 must be None or the training run's"):
        model.predict(np.ones((1, 2)), quant=5)
