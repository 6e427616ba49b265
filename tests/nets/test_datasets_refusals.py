"""Data loaders refuse what they would otherwise drop or ignore: an .npz array they do not read, a test
share beside a test set, splits that leave no training example, MNIST test images of another size; and
evaluate's progress, stream and quant arguments are checked."""

from __future__ import annotations

import struct

import numpy as np
import pytest

import nets
from nets import datasets


def _idx(path, array: np.ndarray) -> None:
    path.write_bytes(bytes([0, 0, 8, array.ndim]) + b"".join(struct.pack(">I", s) for s in array.shape)
                     + array.astype(np.uint8).tobytes())


def test_an_npz_array_that_is_not_read_is_refused(tmp_path) -> None:
    x, y = np.random.default_rng(0).normal(size=(40, 3)), np.arange(40) % 4
    f = tmp_path / "e.npz"
    np.savez(f, x=x, y=y, x_tset=x[:5], y_tset=y[:5])  # a misspelt test set was dropped
    with pytest.raises(ValueError, match=r"^datasets.npz: .*e\.npz holds array 'x_tset'; only x, y, x_test"
                                         r" and y_test are read$"):
        datasets.npz(f)


def test_a_test_share_beside_a_test_set_is_refused(tmp_path) -> None:
    x, y = np.random.default_rng(0).normal(size=(40, 3)), np.arange(40) % 4
    f = tmp_path / "w.npz"
    np.savez(f, x=x, y=y, x_test=x[:5], y_test=y[:5])
    for test in (0.5, 5):
        with pytest.raises(ValueError, match=rf"test={test!r} is given but the test split is x_test"):
            datasets.npz(f, test=test)
    d = datasets.npz(f)
    assert (len(d.train) + len(d.valid), len(d.test)) == (40, 5)
    with pytest.raises(ValueError, match=r"^from_arrays: test=0.2 is given but the test split is x_test"):
        datasets.from_arrays(x, y, test=0.2, x_test=x[:5], y_test=y[:5])
    assert len(datasets.from_arrays(x, y).test) == 6  # the default share, 0.15 of 40


def test_splits_that_leave_no_training_example_are_refused() -> None:
    """Rounded shares could leave the training split empty, and standardize was then skipped."""
    with pytest.raises(ValueError, match=r"^from_arrays: valid=0.5 and test=0.45 of 3 example\(s\) leave no"
                                         r" training example once rounded"):
        datasets.from_arrays(np.arange(6.0).reshape(3, 2), [0, 1, 0], valid=0.5, test=0.45)


def test_mnist_training_and_test_images_of_different_sizes_are_refused(tmp_path) -> None:
    u = np.zeros
    _idx(tmp_path / "train-images-idx3-ubyte", u((5, 28, 28)))
    _idx(tmp_path / "train-labels-idx1-ubyte", u(5))
    _idx(tmp_path / "t10k-images-idx3-ubyte", u((3, 14, 56)))  # the same 784 pixels, another shape
    _idx(tmp_path / "t10k-labels-idx1-ubyte", u(3))
    with pytest.raises(ValueError, match=r"^mnist: .*train-images-idx3-ubyte holds images of 28x28 pixels and"
                                         r" .*t10k-images-idx3-ubyte of 14x56"):
        datasets.mnist(tmp_path)


def test_evaluate_checks_progress_stream_and_quant() -> None:
    model, data = nets.mlp([64, 8, 10], seed=0), datasets.digits(seed=0)
    for kw, msg in ((dict(progress="no"), r"progress='no' must be True or False"),
                    (dict(progress=True, stream=5), r"stream=5 must be None \(stderr\) or a text stream"),
                    (dict(quant="x"), r"quant='x' must be None or the training run's nets.Quantizer")):
        with pytest.raises(TypeError, match=rf"^evaluate: {msg}"):
            nets.evaluate(model, data, **kw)


@pytest.mark.parametrize(("call", "message"), [
    (lambda: datasets.digits(images="False"), r"^digits: images='False' must be True or False$"),
    (lambda: datasets.digits(standardize="no"), r"^digits: standardize='no' must be True or False$"),
    (lambda: datasets.by_name("digits", images="False"), r"^datasets: images='False' must be True or False$"),
    (lambda: datasets.digits_folds(3, images=1), r"^digits_folds: images=1 must be True or False$"),
    (lambda: datasets.from_arrays(np.arange(20.0)[:, None], np.arange(20) % 2, standardize="False"),
     r"^from_arrays: standardize='False' must be True or False$"),
    (lambda: datasets.cross_validation(np.arange(20.0)[:, None], np.arange(20) % 2, 2, 0,
                                       standardize="False"),
     r"^cross_validation: standardize='False' must be True or False$"),
    (lambda: datasets.mnist("/nonexistent", images="False"), r"^mnist: images='False' must be True or"),
    (lambda: datasets.cifar10("/nonexistent", images=0), r"^cifar10: images=0 must be True or False$"),
    (lambda: datasets.npz("/nonexistent.npz", standardize="no"),
     r"^datasets.npz: standardize='no' must be True or False$"),
], ids=str)
def test_a_flag_that_is_not_a_bool_is_refused_by_name(call, message: str) -> None:
    """images="False" gave images and standardize="False" standardised (truthy strings)."""
    with pytest.raises(TypeError, match=message):
        call()
