"""Data: the embedded digits set and loaders for files the user already has.

Nothing is downloaded. `digits` wraps scikit-learn's copy of the UCI handwritten
digits (1,797 8x8 images, pixels 0..16); `mnist` reads the IDX files of MNIST
(optionally gzipped) and `cifar10` the binary version of CIFAR-10 (never the
pickled one), from paths the user gives. Every loader returns a `Dataset` of
train/valid/test `Split`s with float64 features, int64 labels, a deterministic
shuffle from a seed and optional standardisation with the training split's
statistics. `cross_validation` and `digits_folds` give the k datasets of
stratified k-fold cross-validation (each example in exactly one test split),
with the input scaling an `Inputs` names. Imports numpy, `nets.stats` and,
for `digits` and `digits_folds` only, scikit-learn.
"""

from __future__ import annotations

import gzip
import os
import zipfile
import zlib
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from emu.checks import check_bool, check_int, parse_choice, real_array

from .stats import stratified_folds

__all__ = ["Dataset", "Inputs", "Split", "by_name", "cifar10", "cross_validation", "data_name", "digits",
           "digits_folds", "from_arrays", "mnist", "npz", "read_idx"]


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


def _share(v: object, func: str, name: str) -> None:
    """A share of the examples: a number in [0, 1)."""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise TypeError(f"{func}: {name}={v!r} must be a number in the allowed range [0, 1)")
    if not 0.0 <= v < 1.0:
        raise ValueError(f"{func}: {name}={v!r} outside the allowed range [0, 1)")


DEFAULT_TEST = 0.15  # the share of x held out for testing when no test set is given


def _fractions(valid: float, test: float, func: str) -> None:
    for name, v in (("valid", valid), ("test", test)):
        _share(v, func, name)
    if valid + test >= 1.0:
        raise ValueError(f"{func}: valid + test = {valid + test!r} leaves no training data;"
                         " keep it below 1")


def _seed(seed: object, func: str) -> int:
    """``seed`` as an int >= 0 (the seed of numpy's PCG64); anything else is refused by name."""
    try:
        return check_int(seed, func, "seed", 0)
    except TypeError:
        raise TypeError(f"{func}: seed={seed!r} must be an int in the allowed range [0, inf)") from None


def _limit(limit: object, func: str) -> int | None:
    """None, or ``limit`` as an int >= 1 (how many examples of each file to keep)."""
    if limit is None:
        return None
    try:
        return check_int(limit, func, "limit", 1)
    except TypeError:
        raise TypeError(f"{func}: limit={limit!r} must be None or an int in the allowed range [1, inf)"
                        ) from None


def _features(x: object, func: str, name: str) -> np.ndarray:
    """``x`` as float64 (n, ...): real numbers with at least one dimension, all finite (the index of the
    first non-finite value is named)."""
    values = real_array(x, func, name)
    if values.ndim == 0:
        raise ValueError(f"{func}: {name} is a scalar; it must be an array of examples (n, ...)")
    values = values.astype(np.float64)
    if not np.isfinite(values).all():
        bad = np.unravel_index(int(np.flatnonzero(~np.isfinite(values))[0]), values.shape)
        raise ValueError(f"{func}: {name} holds a non-finite value ({float(values[bad])}) at"
                         f" index {tuple(int(i) for i in bad)}; only finite features are allowed")
    return values


def _labels(y: object, n: int, func: str, name: str, x_name: str) -> np.ndarray:
    """``y`` as int64 (n,): integer class labels >= 0, one per row of ``x_name``."""
    labels = np.asarray(y)
    if labels.ndim != 1 or labels.shape[0] != n:
        raise ValueError(f"{func}: {x_name} has {n} examples but {name} has shape {labels.shape}; it needs"
                         f" shape ({n},)")
    if labels.dtype.kind not in "iu":
        raise ValueError(f"{func}: {name} must hold integer class labels >= 0; it has dtype {labels.dtype}")
    if labels.size and labels.min() < 0:
        i = int(np.flatnonzero(labels < 0)[0])
        raise ValueError(f"{func}: {name} must hold integer class labels >= 0; it holds {int(labels[i])} at"
                         f" index {i}")
    top = np.iinfo(np.int64).max
    if labels.dtype.kind == "u" and labels.size and labels.max() > top:
        i = int(np.flatnonzero(labels > top)[0])
        raise ValueError(f"{func}: {name} holds label {int(labels[i])} at index {i}, beyond int64; labels"
                         f" must be in [0, {top}]")
    return labels.astype(np.int64)


def _examples(x: np.ndarray, func: str, name: str) -> None:
    """Refuse an array ``name`` of no examples (its first dimension 0)."""
    if x.shape[0] == 0:
        raise ValueError(f"{func}: {name} holds no examples (shape {x.shape}); it needs at least 1")


def _n_classes(n_classes: object, func: str, labels: dict[str, np.ndarray | None]) -> int | None:
    """None, or ``n_classes`` as an int >= 1 above every label in ``labels`` (by name; None skipped)."""
    if n_classes is None:
        return None
    k = check_int(n_classes, func, "n_classes", 1)
    for y_name, y in labels.items():
        if y is not None and y.size and y.max() >= k:
            i = int(np.flatnonzero(y >= k)[0])
            raise ValueError(f"{func}: {y_name} holds label {int(y[i])} at index {i}; with n_classes={k}"
                             f" labels must be in [0, {k - 1}]")
    return k


def _standardize(func: str, train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """``train`` and ``others`` minus ``train``'s per-feature mean, divided by its standard deviation.

    A feature whose training values are all equal gets mean that value and scale 1 (its training
    values become exactly 0, whatever rounding does to the mean and standard deviation); a feature
    whose standard deviation is 0 otherwise (it underflowed) keeps scale 1 too. A mean, scale or
    standardised value that is not finite (features so large that float64 overflows) is a ValueError
    naming the feature.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        mean = train.mean(axis=0)
        std = train.std(axis=0)
        constant = (train == train[0]).all(axis=0)
        mean = np.where(constant, train[0], mean)
        scale = np.where(constant | (std == 0), 1.0, std)
        out = [(a - mean) / scale for a in (train, *others)]

    def refuse(j: tuple[int, ...], what: str) -> ValueError:
        name = "the feature" if not j else f"feature {j[0]}" if len(j) == 1 else f"feature {j}"
        largest = max(float(np.max(np.abs(a))) for a in (train, *others) if a.size)
        return ValueError(f"{func}: standardising overflows: {name} {what}; the features are too large for"
                          f" float64 (largest |value| {largest:.3g}); rescale them or pass standardize=False")

    def first_bad(a: np.ndarray) -> tuple[int, ...]:
        return tuple(int(i) for i in np.unravel_index(int(np.flatnonzero(~np.isfinite(a))[0]), a.shape))

    for what, v in (("mean", mean), ("standard deviation", scale)):
        if not np.isfinite(v).all():
            j = first_bad(v)
            raise refuse(j, f"has training {what} {float(v[j])}")
    for split, a in zip(("training", "validation", "test"), out, strict=False):
        if not np.isfinite(a).all():
            j = first_bad(a)
            raise refuse(j[1:], f"of {split} example {j[0]} becomes {float(a[j])}")
    return out


def from_arrays(x: np.ndarray, y: np.ndarray, *, valid: float = 0.15, test: float | None = None,
                seed: int = 0, standardize: bool = True, name: str = "arrays", n_classes: int | None = None,
                x_test: np.ndarray | None = None, y_test: np.ndarray | None = None) -> Dataset:
    """Split arrays into train/valid/test with a deterministic shuffle.

    Args:
        x, y: features (n, ...) and integer labels (n,).
        valid, test: fractions of the examples for validation and test (test: default 0.15;
            refused beside ``x_test``, the test split then).
        seed: the shuffle's seed (numpy PCG64).
        standardize: subtract the training mean and divide by the training standard deviation per
            feature (a constant feature keeps scale 1: its training values become 0).
        n_classes: the number of classes (default: max label + 1).

    ``x_test`` and ``y_test`` (both or neither) are checked as ``x`` and ``y`` are, and
    ``x_test`` must have the feature shape of ``x``.

    Raises:
        ValueError: mismatched lengths or feature shapes, bad fractions (or fractions that leave no
            training example once rounded, or a test fraction beside x_test), labels not integers in
            [0, 2**63 - 1] (or not below ``n_classes``), a NaN or infinite feature (the index of the
            first is named), an x or x_test of no examples, features so large that standardising
            overflows float64 (rescale them or pass ``standardize=False``), a seed below 0, only one
            of x_test and y_test.
        TypeError: features that are not real numbers (complex, str, bool, object), a seed that is
            not an int, a ``standardize`` other than True or False.
    """
    return _from_arrays(x, y, valid=valid, test=test, seed=seed, standardize=standardize, name=name,
                        n_classes=n_classes, x_test=x_test, y_test=y_test, func="from_arrays")


def _from_arrays(x: object, y: object, *, valid: float, test: float | None, seed: int, standardize: bool,
                 name: str, n_classes: int | None, x_test: object, y_test: object, func: str) -> Dataset:
    """`from_arrays`, its messages prefixed with ``func`` (the public function the caller called)."""
    seed, standardize = _seed(seed, func), check_bool(standardize, func, "standardize")
    x = _features(x, func, "x")
    _examples(x, func, "x")
    y = _labels(y, x.shape[0], func, "y", "x")
    if (x_test is None) != (y_test is None):
        given, missing = ("x_test", "y_test") if y_test is None else ("y_test", "x_test")
        raise ValueError(f"{func}: {given} is given but {missing} is not; give both or neither")
    if x_test is not None:
        x_test = _features(x_test, func, "x_test")
        _examples(x_test, func, "x_test")
        if x_test.shape[1:] != x.shape[1:]:
            raise ValueError(f"{func}: x_test has examples of shape {x_test.shape[1:]} but x has"
                             f" {x.shape[1:]}; they must match")
        y_test = _labels(y_test, x_test.shape[0], func, "y_test", "x_test")
    n_classes = _n_classes(n_classes, func, {"y": y, "y_test": y_test})
    if x_test is not None and test is not None:
        raise ValueError(f"{func}: test={test!r} is given but the test split is x_test (nothing of x is held"
                         " out for testing); leave test out")
    test = 0.0 if x_test is not None else DEFAULT_TEST if test is None else test
    _fractions(valid, test, func)
    order = np.random.default_rng(seed).permutation(x.shape[0])
    x, y = x[order], y[order]
    n = x.shape[0]
    n_valid = int(round(valid * n))
    if x_test is None:
        n_test = int(round(test * n))
        xt, yt = x[:n_test], y[:n_test]
        x, y = x[n_test:], y[n_test:]
    else:
        xt, yt = x_test, y_test
    xv, yv = x[:n_valid], y[:n_valid]
    xtr, ytr = x[n_valid:], y[n_valid:]
    if not len(xtr):
        raise ValueError(f"{func}: valid={valid!r} and test={test!r} of {n} example(s) leave no training"
                         " example once rounded; give more examples or smaller shares")
    if standardize:
        xtr, xv, xt = _standardize(func, xtr, xv, xt)
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

    seed, images = _seed(seed, "digits"), check_bool(images, "digits", "images")
    bunch = load_digits()
    x = bunch.data.astype(np.float64) / 16.0
    if images:
        x = x.reshape(-1, 1, 8, 8)
    return _from_arrays(x, bunch.target, valid=valid, test=test, seed=seed, standardize=standardize,
                        name="digits", n_classes=10, x_test=None, y_test=None, func="digits")


class Inputs(StrEnum):
    """How `digits_folds` scales the pixels (0..16) of the digits images.

    >>> Inputs("unit") is Inputs.UNIT, str(Inputs.SYMMETRIC)
    (True, 'symmetric')
    """

    #: pixels / 16, then minus the training split's mean and divided by its standard deviation, per pixel
    STANDARDIZE = "standardize"
    #: pixels / 16, in [0, 1] (Gupta et al. 2015's MNIST inputs)
    UNIT = "unit"
    #: 2 pixels / 16 - 1, in [-1, 1] (BinaryConnect's MNIST inputs)
    SYMMETRIC = "symmetric"


def cross_validation(x: np.ndarray, y: np.ndarray, k: int, seed: int, *, valid: float = 0.0,
                     standardize: bool = True, name: str = "arrays",
                     n_classes: int | None = None) -> list[Dataset]:
    """The k datasets of stratified k-fold cross-validation: dataset f tests on fold f, trains on the rest.

    The folds are `nets.stats.stratified_folds` of ``y`` from ``seed``: disjoint,
    covering every example once, each class spread as evenly as its count
    allows. ``valid`` (a fraction of the training folds, taken by a seeded
    shuffle from the same ``seed``) becomes the validation split; the rest
    is the training split, whose per-feature mean and standard deviation
    standardise all three splits when ``standardize`` (a constant feature
    keeps scale 1: its training values become 0).

    >>> ds = cross_validation(np.arange(12.0)[:, None], np.arange(12) % 2, 3, seed=0, standardize=False)
    >>> [(len(d.train), len(d.valid), len(d.test)) for d in ds]
    [(8, 0, 4), (8, 0, 4), (8, 0, 4)]
    >>> sorted(int(v) for d in ds for v in d.test.x[:, 0])  # every example tested once
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]

    Raises:
        ValueError: k outside [2, number of examples], ``valid`` outside [0, 1), mismatched lengths,
            labels that are not integers in [0, 2**63 - 1] (or not below ``n_classes``), a NaN or
            infinite feature, features so large that standardising overflows float64 (rescale them
            or pass ``standardize=False``), a seed below 0.
        TypeError: features that are not real numbers (complex, str, bool, object), a seed or
            ``n_classes`` that is not an int, a ``standardize`` other than True or False.
    """
    seed = _seed(seed, "cross_validation")
    standardize = check_bool(standardize, "cross_validation", "standardize")
    x = _features(x, "cross_validation", "x")
    y = _labels(y, x.shape[0], "cross_validation", "y", "x")
    _share(valid, "cross_validation", "valid")
    k_given = _n_classes(n_classes, "cross_validation", {"y": y})
    n_cls = k_given if k_given is not None else int(y.max(initial=-1)) + 1
    rng = np.random.default_rng(seed)
    out = []
    for f, (train_idx, test_idx) in enumerate(stratified_folds(y, k, seed)):
        train_idx = train_idx[rng.permutation(train_idx.size)]
        n_valid = int(round(valid * train_idx.size))
        valid_idx, train_idx = train_idx[:n_valid], train_idx[n_valid:]
        xtr, xv, xt = x[train_idx], x[valid_idx], x[test_idx]
        if standardize and len(xtr):
            xtr, xv, xt = _standardize("cross_validation", xtr, xv, xt)
        out.append(Dataset(Split(xtr, y[train_idx]), Split(xv, y[valid_idx]), Split(xt, y[test_idx]), n_cls,
                           f"{name} fold {f + 1}/{k}"))
    return out


def digits_folds(k: int = 5, seed: int = 0, *, inputs: Inputs | str = Inputs.STANDARDIZE, valid: float = 0.0,
                 images: bool = False, limit: int | None = None) -> list[Dataset]:
    """Stratified k-fold cross-validation on the 1,797 digits images (`cross_validation`).

    ``inputs`` scales the pixels (`Inputs`); ``images=True`` keeps (n, 1, 8, 8).
    ``limit`` keeps a stratified subset of that many images for quick runs:
    each class shuffled by ``seed``, the images ordered by their quantile
    within their class (the (i + 1/2) / n_c of the i-th of n_c), the first
    ``limit`` kept; None uses them all.

    >>> ds = digits_folds(5, seed=0)
    >>> sum(len(d.test) for d in ds), len(ds[0].train) + len(ds[0].test), ds[0].name
    (1797, 1797, 'digits fold 1/5')

    Raises:
        ValueError: an unknown ``inputs``, k outside [2, images], ``limit`` below k, a seed below 0.
        TypeError: a seed or ``limit`` that is not an int, an ``images`` other than True or False.
    """
    from sklearn.datasets import load_digits

    seed, images = _seed(seed, "digits_folds"), check_bool(images, "digits_folds", "images")
    how = parse_choice(Inputs, inputs, "digits_folds", "inputs")
    bunch = load_digits()
    x, y = bunch.data.astype(np.float64) / 16.0, bunch.target.astype(np.int64)
    if limit is not None:
        limit = check_int(limit, "digits_folds", "limit", check_int(k, "digits_folds", "k", 2), y.size)
        rng = np.random.default_rng(seed)
        quantile = np.empty(y.size)
        for c in np.unique(y):
            idx = np.flatnonzero(y == c)
            quantile[idx[rng.permutation(idx.size)]] = (np.arange(idx.size) + 0.5) / idx.size
        keep = np.sort(np.argsort(quantile, kind="stable")[:limit])
        x, y = x[keep], y[keep]
    if how is Inputs.SYMMETRIC:
        x = 2.0 * x - 1.0
    if images:
        x = x.reshape(-1, 1, 8, 8)
    return cross_validation(x, y, k, seed, valid=valid, standardize=how is Inputs.STANDARDIZE, name="digits",
                            n_classes=10)


_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
              0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def _read_bytes(path: str | os.PathLike[str], func: str) -> bytes:
    """The bytes of ``path``, gunzipped when its name ends in .gz; a corrupt or truncated gzip stream is a
    ValueError naming the file."""
    if str(path).endswith(".gz"):
        try:
            with gzip.open(path, "rb") as f:
                return f.read()
        except (gzip.BadGzipFile, EOFError, zlib.error) as e:
            raise ValueError(f"{func}: {path} is not a readable gzip file ({e}); is it corrupt or"
                             " truncated?") from None
    with open(path, "rb") as f:
        return f.read()


def _parse_idx(raw: bytes, path: str | os.PathLike[str]) -> np.ndarray:
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        magic = f"0x{raw[:4].hex()}" if raw else "empty"
        raise ValueError(f"read_idx: {path} is not an IDX file (magic {magic}); an IDX file starts with"
                         " 0x0000TTDD: two zero bytes, a type byte TT (08, 09, 0b, 0c, 0d or 0e) and the"
                         " number of dimensions DD")
    dt = np.dtype(_IDX_TYPES[raw[2]])
    ndim = raw[3]
    head = 4 + 4 * ndim
    if len(raw) < head:
        raise ValueError(f"read_idx: {path} is truncated: it ends inside its header ({len(raw)} bytes; a"
                         f" header of {ndim} dimensions takes {head})")
    shape = tuple(int(v) for v in np.frombuffer(raw[4:head], dtype=">u4"))
    need = int(np.prod(shape, dtype=object)) * dt.itemsize
    have = len(raw) - head
    if have != need:
        why = "is truncated" if have < need else "has bytes after its data"
        raise ValueError(f"read_idx: {path} {why}: it holds {have} data bytes; its header (shape {shape},"
                         f" {dt.itemsize}-byte values) needs {need}")
    return np.frombuffer(raw, dtype=dt, offset=head).reshape(shape).astype(dt.newbyteorder("="))


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzipped or not (a name ending in .gz is gunzipped).

    Layout: two zero bytes, a type byte (0x08 uint8, 0x09 int8, 0x0B int16,
    0x0C int32, 0x0D float32, 0x0E float64), a byte with the number of
    dimensions d, d big-endian uint32 sizes, then the data in C order.
    The first four bytes are the magic number: MNIST's image files start
    with 0x00000803 (uint8, 3 dimensions), its label files with 0x00000801.

    Raises:
        ValueError: a corrupt or truncated gzip stream, a malformed header (the
            magic number found is named) or a data size that does not match the
            header (truncated, or bytes after the data); each names the file.
        OSError: the file cannot be opened (FileNotFoundError when it does not exist).
    """
    return _parse_idx(_read_bytes(path, "read_idx"), path)


#: The magic number (first four bytes) of MNIST's image and label files.
_MNIST_MAGIC = {"images": 0x00000803, "labels": 0x00000801}


def _find(folder: str | os.PathLike[str], stem: str) -> str:
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"mnist: folder {folder} (for {stem}[.gz]) does not exist; give the folder"
                                " that holds the four MNIST IDX files (nothing is downloaded)")
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        p = os.path.join(folder, name)
        if os.path.exists(p):
            return p
    raise FileNotFoundError(f"mnist: no {stem}[.gz] in {folder}; nothing is downloaded, give the folder that"
                            " holds the four MNIST IDX files")


def _mnist_file(folder: str | os.PathLike[str], stem: str) -> tuple[str, np.ndarray]:
    """The path of MNIST file ``stem`` in ``folder`` and its array (at least one example)."""
    path = _find(folder, stem)
    raw = _read_bytes(path, "mnist")
    kind = "images" if "images" in stem else "labels"
    expect = _MNIST_MAGIC[kind]
    if raw[:4] != expect.to_bytes(4, "big"):
        found = f"0x{raw[:4].hex()}" if raw else "nothing (an empty file)"
        raise ValueError(f"mnist: {path} starts with magic number {found}; an MNIST {kind} file starts"
                         f" with 0x{expect:08x}")
    data = _parse_idx(raw, path)
    if data.shape[0] == 0:
        raise ValueError(f"mnist: {path} holds no examples (its header declares shape {data.shape}); it needs"
                         " at least 1")
    if kind == "labels" and data.size and data.max() > 9:
        i = int(np.flatnonzero(data > 9)[0])
        raise ValueError(f"mnist: {path} holds label {int(data[i])} at index {i}; MNIST labels are 0..9")
    return path, data


def mnist(folder: str | os.PathLike[str], *, valid: float = 0.1, seed: int = 0, standardize: bool = True,
          images: bool = False, limit: int | None = None) -> Dataset:
    """MNIST from the four IDX files in ``folder`` (train/t10k images and labels, .gz allowed).

    Pixels are scaled to [0, 1]; the official test set is the test split and
    ``valid`` of the training set is held out. ``limit`` (an int >= 1, or
    None for all) keeps the first ``limit`` examples of each file (for quick runs).

    Raises:
        FileNotFoundError: ``folder`` does not exist or lacks one of the files.
        ValueError: a file that is not what its name says, naming it: a corrupt
            gzip stream, a magic number other than MNIST's (0x00000803 for
            images, 0x00000801 for labels), a truncated file, a header of 0
            examples, a label above 9 (its index is named); an image file and
            its label file of different numbers of examples (both named, with
            their counts, whatever ``limit``); a ``limit`` below 1 or a seed below 0.
        TypeError: a ``limit`` or seed that is not an int, ``images`` or ``standardize`` not True or False.
    """
    seed, images = _seed(seed, "mnist"), check_bool(images, "mnist", "images")
    limit = _limit(limit, "mnist")
    arrays, paths = [], []
    for part in ("train", "t10k"):
        x_path, x = _mnist_file(folder, f"{part}-images-idx3-ubyte")
        y_path, y = _mnist_file(folder, f"{part}-labels-idx1-ubyte")
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"mnist: {x_path} holds {x.shape[0]} images but {y_path} holds {y.shape[0]}"
                             " labels; the two files must hold the same number of examples")
        arrays, paths = [*arrays, x, y], [*paths, x_path]
    xs, ys, xt, yt = arrays
    if xs.shape[1:] != xt.shape[1:] or 0 in xs.shape:  # the test images' pixels would be rearranged
        sizes = ["x".join(map(str, a.shape[1:])) for a in (xs, xt)]
        raise ValueError(f"mnist: {paths[0]} holds images of {sizes[0]} pixels and {paths[1]} of {sizes[1]};"
                         " both need one size of at least 1x1")
    if limit is not None:
        xs, ys, xt, yt = xs[:limit], ys[:limit], xt[:limit], yt[:limit]
    shape = (-1, 1, *xs.shape[1:]) if images else (xs.shape[0], -1)
    return _from_arrays(xs.reshape(shape) / 255.0, ys, valid=valid, test=None, seed=seed,
                        standardize=standardize, name="mnist", n_classes=10,
                        x_test=xt.reshape((xt.shape[0],) + tuple(shape[1:])) / 255.0, y_test=yt, func="mnist")


def cifar10(folder: str | os.PathLike[str], *, valid: float = 0.1, seed: int = 0, standardize: bool = True,
            images: bool = True, limit: int | None = None) -> Dataset:
    """CIFAR-10 from its binary version: data_batch_1..5.bin and test_batch.bin in ``folder``.

    Each record is 1 label byte and 3072 pixel bytes (1024 red, 1024 green,
    1024 blue, rows of 32); images come as (n, 3, 32, 32) scaled to [0, 1].
    The pickled "python version" is never read. ``limit`` (an int >= 1, or
    None for all) keeps the first ``limit`` records of each file (for quick runs).

    Raises:
        FileNotFoundError: ``folder`` does not exist or lacks one of the files.
        ValueError: a file that is empty, is not a whole number of records (truncated) or holds a
            label byte above 9, naming it; a ``limit`` below 1 or a seed below 0.
        TypeError: a ``limit`` or seed that is not an int, ``images`` or ``standardize`` not True or False.
    """
    seed, images = _seed(seed, "cifar10"), check_bool(images, "cifar10", "images")
    limit = _limit(limit, "cifar10")
    rec = 1 + 3 * 32 * 32
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"cifar10: folder {folder} does not exist; give the folder of the binary"
                                " version (cifar-10-batches-bin); nothing is downloaded")

    def load(name: str) -> tuple[np.ndarray, np.ndarray]:
        p = os.path.join(folder, name)
        if not os.path.exists(p):
            raise FileNotFoundError(f"cifar10: {p} not found; give the folder of the binary version"
                                    " (cifar-10-batches-bin); nothing is downloaded")
        raw = np.fromfile(p, dtype=np.uint8)
        if raw.size == 0:
            raise ValueError(f"cifar10: {p} is empty (0 bytes); a CIFAR-10 batch holds at least one"
                             f" {rec}-byte record")
        if raw.size % rec:
            raise ValueError(f"cifar10: {p} holds {raw.size} bytes, not a whole number of {rec}-byte records;"
                             " is it truncated?")
        r = raw.reshape(-1, rec)
        if r.shape[0] and r[:, 0].max() > 9:
            i = int(np.flatnonzero(r[:, 0] > 9)[0])
            raise ValueError(f"cifar10: {p} record {i} has label byte {int(r[i, 0])}; CIFAR-10 labels are"
                             " 0..9 (is this the binary version?)")
        if limit is not None:
            r = r[:limit]
        return r[:, 1:].reshape(-1, 3, 32, 32), r[:, 0].astype(np.int64)

    parts = [load(f"data_batch_{i}.bin") for i in range(1, 6)]
    xs = np.concatenate([p[0] for p in parts])
    ys = np.concatenate([p[1] for p in parts])
    xt, yt = load("test_batch.bin")
    if not images:
        xs, xt = xs.reshape(xs.shape[0], -1), xt.reshape(xt.shape[0], -1)
    return _from_arrays(xs / 255.0, ys, valid=valid, test=None, seed=seed, standardize=standardize,
                        name="cifar10", n_classes=10, x_test=xt / 255.0, y_test=yt, func="cifar10")


def npz(path: str | os.PathLike[str], *, valid: float = 0.15, test: float | None = None, seed: int = 0,
        standardize: bool = True) -> Dataset:
    """A data set from a NumPy ``.npz`` file the user has: arrays ``x`` (n, ...) of features and ``y``
    (n,) of integer labels >= 0, and optionally ``x_test``, ``y_test`` (the test split: then ``test``,
    a share of x held out for testing, default 0.15, is refused); any other array is refused. Split and
    standardised as `from_arrays` does. Read without pickle (an object array is refused).

    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "d.npz"
    >>> np.savez(f, x=np.arange(40.0).reshape(20, 2), y=np.arange(20) % 2)
    >>> d = npz(f, valid=0.1, test=0.2)
    >>> len(d.train), len(d.valid), len(d.test), d.n_classes
    (14, 2, 4, 2)

    Raises:
        ValueError: a file that cannot be read (``datasets.npz: cannot read <path>: <reason>``: missing,
            not a zip archive, a truncated or corrupt archive, an object array, a member that is not a
            .npy array), a .npy array (named as such), a missing array, an x or x_test of no examples,
            only one of x_test and y_test, and whatever `from_arrays` refuses (its messages prefixed
            ``datasets.npz <path>``).
        TypeError: arrays that are not real numbers, a seed that is not an int, a ``standardize`` not a bool.
    """
    seed, standardize = _seed(seed, "datasets.npz"), check_bool(standardize, "datasets.npz", "standardize")

    def unreadable(e: BaseException, what: str = "") -> ValueError:
        reason = " ".join(str(e).split()) or type(e).__name__
        if isinstance(e, (zipfile.BadZipFile, EOFError, zlib.error)):
            reason = f"not a readable .npz (zip) archive ({reason}); is it truncated or corrupt?"
        return ValueError(f"datasets.npz: cannot read {path}: {what}{reason}")

    try:
        f = open(path, "rb")  # closed below (np.load would leave its own open on a bad archive)
    except OSError as e:
        raise unreadable(e) from None
    with f:
        head = f.read(6)
        if not head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"\x93NUMPY")):
            # neither a zip archive nor a .npy file: numpy would try to unpickle it and say so
            found = f"starts with {head!r}" if head else "is empty (0 bytes)"
            raise ValueError(f"datasets.npz: cannot read {path}: it {found}; an .npz archive is a zip file"
                             " (numpy.savez)")
        f.seek(0)
        try:
            loaded = np.load(f, allow_pickle=False)
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
            raise unreadable(e) from None
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ValueError(f"datasets.npz: {path} holds a single .npy array (shape {loaded.shape}), not an"
                             " .npz archive; save x and y (and optionally x_test, y_test) with numpy.savez")
        with loaded as z:
            missing = [k for k in ("x", "y") if k not in z.files]
            if missing:
                raise ValueError(f"datasets.npz: {path} has no array {missing[0]!r} (arrays: "
                                 f"{', '.join(z.files) or 'none'}); it needs x (features) and y (labels)")
            if ("x_test" in z.files) != ("y_test" in z.files):
                raise ValueError(f"datasets.npz: {path} holds only one of x_test and y_test; give both or"
                                 " neither")
            extra = [k for k in z.files if k not in ("x", "y", "x_test", "y_test")]
            if extra:  # a misspelt test set would otherwise be dropped and the test split drawn from x
                raise ValueError(f"datasets.npz: {path} holds array {extra[0]!r}; only x, y, x_test and"
                                 " y_test are read")
            arrays = {}
            for k in z.files:
                try:
                    arrays[k] = z[k]
                except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
                    raise unreadable(e, f"array {k!r}: ") from None
                if not isinstance(arrays[k], np.ndarray):  # a member without the .npy header: its raw bytes
                    raise ValueError(f"datasets.npz: cannot read {path}: its member {k!r} is not a .npy array"
                                     " (numpy.savez writes each array as one)")
    for k in ("x", "x_test"):
        a = arrays.get(k)
        if a is not None and a.ndim and a.shape[0] == 0:
            raise ValueError(f"datasets.npz: {path} holds no examples in {k} (shape {a.shape}); it needs at"
                             " least 1")
    return _from_arrays(arrays["x"], arrays["y"], valid=valid, test=test, seed=seed, standardize=standardize,
                        name=f"npz:{path}", n_classes=None, x_test=arrays.get("x_test"),
                        y_test=arrays.get("y_test"), func=f"datasets.npz {path}")


def by_name(text: str, *, images: bool = False, seed: int = 0) -> Dataset:
    """A dataset named as the command line and sweep files name it: ``digits``,
    ``mnist:<folder>``, ``cifar10:<folder>`` or ``npz:<file>`` (`npz`; its x keeps the shape it is
    stored in, so ``images`` does not apply to it).

    >>> by_name("digits").n_classes
    10
    """
    seed, images = _seed(seed, "datasets"), check_bool(images, "datasets", "images")
    kind, _, path = data_name(text).partition(":")
    if kind == "digits":
        return digits(seed=seed, images=images)
    if kind == "mnist":
        return mnist(path, seed=seed, images=images)
    if kind == "cifar10":
        return cifar10(path, seed=seed, images=images)
    return npz(path, seed=seed)


def data_name(text: object, where: str = "datasets", name: str = "data") -> str:
    """A data set's name checked as `by_name` reads it, without opening anything (the data may live where
    a sweep's workers run): ``digits``, or ``mnist``, ``cifar10`` or ``npz`` with a path after a colon, the
    kind's case and surrounding spaces ignored (given back in lower case); else a ValueError naming
    ``where``'s ``name`` (how the caller's user spelt the setting).

    >>> data_name("MNIST:/data/mnist")
    'mnist:/data/mnist'
    """
    kind, colon, path = text.strip().partition(":") if isinstance(text, str) else ("", "", "")
    kind = kind.lower()
    if kind in ("mnist", "cifar10", "npz") and not path.strip():
        what = "file" if kind == "npz" else "folder"
        raise ValueError(f"{where}: {name}={text!r} names no {what}; give {kind}:<{what}>")
    if kind == "digits" and colon:
        raise ValueError(f"{where}: {name}={text!r}: digits is embedded and takes no path; give digits")
    if kind not in ("digits", "mnist", "cifar10", "npz"):
        raise ValueError(f"{where}: {name}={text!r} is not digits, mnist:<folder>, cifar10:<folder> or"
                         " npz:<file>")
    return kind + colon + path
