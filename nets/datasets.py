"""Data: the embedded digits set and loaders for files the user already has.

Nothing is downloaded. `digits` wraps scikit-learn's copy of the UCI handwritten
digits (1,797 8x8 images, pixels 0..16); `mnist` reads the IDX files of MNIST
(optionally gzipped) and `cifar10` the binary version of CIFAR-10 (never the
pickled one), from paths the user gives. Every loader returns a `Dataset` of
train/valid/test `Split`s with float64 features, int64 labels, a deterministic
shuffle from a seed and optional standardisation with the training split's
statistics. Imports numpy and, for `digits` only, scikit-learn.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass

import numpy as np

__all__ = ["Dataset", "Split", "by_name", "cifar10", "digits", "from_arrays", "mnist", "read_idx"]


@dataclass(frozen=True)
class Split:
    """Features x (n, ...) float64 and labels y (n,) int64."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return int(self.y.shape[0])


@dataclass(frozen=True)
class Dataset:
    """Train, validation and test splits, the number of classes and a name."""

    train: Split
    valid: Split
    test: Split
    n_classes: int
    name: str

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one example."""
        return tuple(self.train.x.shape[1:])

    def __repr__(self) -> str:
        return (f"Dataset({self.name}: train {len(self.train)}, valid {len(self.valid)},"
                f" test {len(self.test)}, input {self.input_shape}, {self.n_classes} classes)")


def _fractions(valid: float, test: float) -> None:
    for name, v in (("valid", valid), ("test", test)):
        if not 0.0 <= v < 1.0:
            raise ValueError(f"datasets: {name}={v!r} outside the allowed range [0, 1)")
    if valid + test >= 1.0:
        raise ValueError(f"datasets: valid + test = {valid + test!r} leaves no training data;"
                         " keep it below 1")


def from_arrays(x: np.ndarray, y: np.ndarray, *, valid: float = 0.15, test: float = 0.15, seed: int = 0,
                standardize: bool = True, name: str = "arrays", n_classes: int | None = None,
                x_test: np.ndarray | None = None, y_test: np.ndarray | None = None) -> Dataset:
    """Split arrays into train/valid/test with a deterministic shuffle.

    Args:
        x, y: features (n, ...) and integer labels (n,).
        valid, test: fractions of the examples for validation and test (test
            is ignored when ``x_test`` is given).
        seed: the shuffle's seed (numpy PCG64).
        standardize: subtract the training mean and divide by the training
            standard deviation per feature (constant features keep scale 1).
        n_classes: the number of classes (default: max label + 1).

    Raises:
        ValueError: mismatched lengths, bad fractions, labels not integers >= 0.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y)
    if y.ndim != 1 or x.shape[0] != y.shape[0]:
        raise ValueError(f"from_arrays: x has {x.shape[0]} examples but y has shape {y.shape}")
    if y.size and (y.dtype.kind not in "iu" or y.min() < 0):
        raise ValueError("from_arrays: y must hold integer class labels >= 0")
    _fractions(valid, 0.0 if x_test is not None else test)
    order = np.random.default_rng(seed).permutation(x.shape[0])
    x, y = x[order], y[order].astype(np.int64)
    n = x.shape[0]
    n_valid = int(round(valid * n))
    if x_test is None:
        n_test = int(round(test * n))
        xt, yt = x[:n_test], y[:n_test]
        x, y = x[n_test:], y[n_test:]
    else:
        xt, yt = np.asarray(x_test, np.float64), np.asarray(y_test).astype(np.int64)
    xv, yv = x[:n_valid], y[:n_valid]
    xtr, ytr = x[n_valid:], y[n_valid:]
    if standardize and len(xtr):
        mean = xtr.mean(axis=0)
        std = xtr.std(axis=0)
        std = np.where(std > 0, std, 1.0)
        xtr, xv, xt = ((a - mean) / std for a in (xtr, xv, xt))
    k = int(n_classes if n_classes is not None else max(int(y.max(initial=-1)), int(yt.max(initial=-1))) + 1)
    return Dataset(Split(xtr, ytr), Split(xv, yv), Split(xt, yt), k, name)


def digits(*, valid: float = 0.15, test: float = 0.15, seed: int = 0, standardize: bool = True,
           images: bool = False) -> Dataset:
    """scikit-learn's handwritten digits: 1,797 images of 8x8 pixels (0..16), 10 classes.

    Features are 64 pixels scaled to [0, 1] (then standardised unless asked
    not to); ``images=True`` keeps them as (n, 1, 8, 8) for convolutions.

    >>> d = digits(seed=0)
    >>> len(d.train) + len(d.valid) + len(d.test), d.input_shape, d.n_classes
    (1797, (64,), 10)
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = bunch.data.astype(np.float64) / 16.0
    if images:
        x = x.reshape(-1, 1, 8, 8)
    return from_arrays(x, bunch.target, valid=valid, test=test, seed=seed, standardize=standardize,
                       name="digits", n_classes=10)


_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
              0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzipped or not.

    Layout: two zero bytes, a type byte (0x08 uint8, 0x09 int8, 0x0B int16,
    0x0C int32, 0x0D float32, 0x0E float64), a byte with the number of
    dimensions d, d big-endian uint32 sizes, then the data in C order.

    Raises:
        ValueError: a malformed header or a data size that does not match it.
    """
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise ValueError(f"read_idx: {path} is not an IDX file (magic {raw[:4].hex() if raw else 'empty'})")
    dt = np.dtype(_IDX_TYPES[raw[2]])
    ndim = raw[3]
    head = 4 + 4 * ndim
    if len(raw) < head:
        raise ValueError(f"read_idx: {path} ends inside its header")
    shape = tuple(int(v) for v in np.frombuffer(raw[4:head], dtype=">u4"))
    count = int(np.prod(shape, dtype=np.int64))
    if len(raw) - head != count * dt.itemsize:
        raise ValueError(f"read_idx: {path} holds {len(raw) - head} data bytes; its header {shape} needs"
                         f" {count * dt.itemsize}")
    return np.frombuffer(raw, dtype=dt, offset=head).reshape(shape).astype(dt.newbyteorder("="))


def _find(folder: str | os.PathLike[str], stem: str) -> str:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        p = os.path.join(folder, name)
        if os.path.exists(p):
            return p
    raise FileNotFoundError(f"mnist: no {stem}[.gz] in {folder}; nothing is downloaded, give the folder that"
                            " holds the four MNIST IDX files")


def mnist(folder: str | os.PathLike[str], *, valid: float = 0.1, seed: int = 0, standardize: bool = True,
          images: bool = False, limit: int | None = None) -> Dataset:
    """MNIST from the four IDX files in ``folder`` (train/t10k images and labels, .gz allowed).

    Pixels are scaled to [0, 1]; the official test set is the test split and
    ``valid`` of the training set is held out. ``limit`` keeps the first
    examples of each file (for quick runs).
    """
    xs = read_idx(_find(folder, "train-images-idx3-ubyte"))
    ys = read_idx(_find(folder, "train-labels-idx1-ubyte"))
    xt = read_idx(_find(folder, "t10k-images-idx3-ubyte"))
    yt = read_idx(_find(folder, "t10k-labels-idx1-ubyte"))
    if limit is not None:
        xs, ys, xt, yt = xs[:limit], ys[:limit], xt[:limit], yt[:limit]
    if xs.shape[0] != ys.shape[0] or xt.shape[0] != yt.shape[0]:
        raise ValueError("mnist: image and label files hold different numbers of examples")
    shape = (-1, 1, *xs.shape[1:]) if images else (xs.shape[0], -1)
    return from_arrays(xs.reshape(shape) / 255.0, ys, valid=valid, seed=seed, standardize=standardize,
                       name="mnist", n_classes=10,
                       x_test=xt.reshape((xt.shape[0],) + tuple(shape[1:])) / 255.0, y_test=yt)


def cifar10(folder: str | os.PathLike[str], *, valid: float = 0.1, seed: int = 0, standardize: bool = True,
            images: bool = True, limit: int | None = None) -> Dataset:
    """CIFAR-10 from its binary version: data_batch_1..5.bin and test_batch.bin in ``folder``.

    Each record is 1 label byte and 3072 pixel bytes (1024 red, 1024 green,
    1024 blue, rows of 32); images come as (n, 3, 32, 32) scaled to [0, 1].
    The pickled "python version" is never read.
    """
    rec = 1 + 3 * 32 * 32

    def load(name: str) -> tuple[np.ndarray, np.ndarray]:
        p = os.path.join(folder, name)
        if not os.path.exists(p):
            raise FileNotFoundError(f"cifar10: {p} not found; give the folder of the binary version"
                                    " (cifar-10-batches-bin); nothing is downloaded")
        raw = np.fromfile(p, dtype=np.uint8)
        if raw.size % rec:
            raise ValueError(f"cifar10: {p} holds {raw.size} bytes, not a whole number of {rec}-byte records")
        r = raw.reshape(-1, rec)
        if limit is not None:
            r = r[:limit]
        return r[:, 1:].reshape(-1, 3, 32, 32), r[:, 0].astype(np.int64)

    parts = [load(f"data_batch_{i}.bin") for i in range(1, 6)]
    xs = np.concatenate([p[0] for p in parts])
    ys = np.concatenate([p[1] for p in parts])
    xt, yt = load("test_batch.bin")
    if ys.size and ys.max() > 9 or yt.size and yt.max() > 9:
        raise ValueError("cifar10: a label byte above 9; is this the CIFAR-10 binary version?")
    if not images:
        xs, xt = xs.reshape(xs.shape[0], -1), xt.reshape(xt.shape[0], -1)
    return from_arrays(xs / 255.0, ys, valid=valid, seed=seed, standardize=standardize, name="cifar10",
                       n_classes=10, x_test=xt / 255.0, y_test=yt)


def by_name(text: str, *, images: bool = False, seed: int = 0) -> Dataset:
    """A dataset named as the command line and sweep files name it: ``digits``,
    ``mnist:<folder>`` or ``cifar10:<folder>``.

    >>> by_name("digits").n_classes
    10
    """
    kind, _, path = text.partition(":")
    if kind == "digits":
        return digits(seed=seed, images=images)
    if kind == "mnist":
        return mnist(path, seed=seed, images=images)
    if kind == "cifar10":
        return cifar10(path, seed=seed, images=images)
    raise ValueError(f"datasets: data={text!r} is not digits, mnist:<folder> or cifar10:<folder>")
