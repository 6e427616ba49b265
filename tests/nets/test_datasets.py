"""Data loaders: the embedded digits, MNIST IDX files and CIFAR-10 binary files
written by the tests themselves (nothing is downloaded)."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from nets import datasets


def test_digits_splits_are_deterministic_and_complete() -> None:
    a = datasets.digits(seed=3)
    b = datasets.digits(seed=3)
    c = datasets.digits(seed=4)
    assert len(a.train) + len(a.valid) + len(a.test) == 1797
    assert a.n_classes == 10
    assert a.input_shape == (64,)
    assert np.array_equal(a.train.x, b.train.x)
    assert np.array_equal(a.test.y, b.test.y)
    assert not np.array_equal(a.train.y, c.train.y)
    assert abs(a.train.x.mean()) < 1e-12  # standardised with the training statistics
    raw = datasets.digits(seed=3, standardize=False, images=True)
    assert raw.input_shape == (1, 8, 8)
    assert raw.train.x.min() == 0.0
    assert raw.train.x.max() == 1.0


def _idx(path, array: np.ndarray, code: int, compress: bool) -> None:
    head = bytes([0, 0, code, array.ndim]) + b"".join(struct.pack(">I", s) for s in array.shape)
    data = head + array.astype(array.dtype.newbyteorder(">")).tobytes()
    if compress:
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_reads_idx_files(tmp_path, compress: bool) -> None:
    rng = np.random.default_rng(0)
    sfx = ".gz" if compress else ""
    tr = rng.integers(0, 256, (20, 28, 28)).astype(np.uint8)
    te = rng.integers(0, 256, (7, 28, 28)).astype(np.uint8)
    _idx(tmp_path / f"train-images-idx3-ubyte{sfx}", tr, 0x08, compress)
    _idx(tmp_path / f"train-labels-idx1-ubyte{sfx}", np.arange(20, dtype=np.uint8) % 10, 0x08, compress)
    _idx(tmp_path / f"t10k-images-idx3-ubyte{sfx}", te, 0x08, compress)
    _idx(tmp_path / f"t10k-labels-idx1-ubyte{sfx}", np.arange(7, dtype=np.uint8), 0x08, compress)
    d = datasets.mnist(tmp_path, valid=0.1, standardize=False, images=True)
    assert d.input_shape == (1, 28, 28)
    assert len(d.test) == 7
    assert len(d.train) + len(d.valid) == 20
    assert np.array_equal(d.test.x[:, 0] * 255, te)
    assert np.array_equal(d.test.y, np.arange(7))
    flat = datasets.mnist(tmp_path, standardize=False)
    assert flat.input_shape == (784,)


def test_read_idx_checks_its_header(tmp_path) -> None:
    p = tmp_path / "x.idx"
    _idx(p, np.arange(6, dtype=np.int32).reshape(2, 3), 0x0C, False)
    assert np.array_equal(datasets.read_idx(p), np.arange(6).reshape(2, 3))
    p.write_bytes(p.read_bytes()[:-1])
    with pytest.raises(ValueError, match="data bytes"):
        datasets.read_idx(p)
    p.write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="not an IDX file"):
        datasets.read_idx(p)
    with pytest.raises(FileNotFoundError, match="nothing is downloaded"):
        datasets.mnist(tmp_path / "missing")


def test_cifar10_reads_the_binary_version(tmp_path) -> None:
    rng = np.random.default_rng(1)

    def batch(n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.integers(0, 10, n).astype(np.uint8)
        pix = rng.integers(0, 256, (n, 3072)).astype(np.uint8)
        return labels, pix

    want = None
    for i in range(1, 6):
        lab, pix = batch(4)
        (tmp_path / f"data_batch_{i}.bin").write_bytes(np.column_stack([lab, pix]).tobytes())
    lab, pix = batch(5)
    (tmp_path / "test_batch.bin").write_bytes(np.column_stack([lab, pix]).tobytes())
    want = pix.reshape(5, 3, 32, 32)
    d = datasets.cifar10(tmp_path, standardize=False)
    assert d.input_shape == (3, 32, 32)
    assert len(d.test) == 5
    assert len(d.train) + len(d.valid) == 20
    assert np.array_equal(d.test.x * 255, want)
    assert np.array_equal(d.test.y, lab)
    (tmp_path / "test_batch.bin").write_bytes(b"\x00" * 100)
    with pytest.raises(ValueError, match="whole number"):
        datasets.cifar10(tmp_path)


def test_from_arrays_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="valid"):
        datasets.from_arrays(np.zeros((10, 2)), np.zeros(10, int), valid=1.5)
    with pytest.raises(ValueError, match="leaves no training data"):
        datasets.from_arrays(np.zeros((10, 2)), np.zeros(10, int), valid=0.5, test=0.5)
    with pytest.raises(ValueError, match="examples"):
        datasets.from_arrays(np.zeros((10, 2)), np.zeros(9, int))
    with pytest.raises(ValueError, match="integer class labels"):
        datasets.from_arrays(np.zeros((3, 2)), np.array([0.5, 1.0, 2.0]))
