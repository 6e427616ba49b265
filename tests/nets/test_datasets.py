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
    with pytest.raises(ValueError, match=r"^from_arrays: valid=1.5 outside"):
        datasets.from_arrays(np.zeros((10, 2)), np.zeros(10, int), valid=1.5)
    with pytest.raises(ValueError, match="^from_arrays: valid \\+ test = 1.0 leaves no training data"):
        datasets.from_arrays(np.zeros((10, 2)), np.zeros(10, int), valid=0.5, test=0.5)
    with pytest.raises(ValueError, match="examples"):
        datasets.from_arrays(np.zeros((10, 2)), np.zeros(9, int))
    with pytest.raises(ValueError, match="integer class labels"):
        datasets.from_arrays(np.zeros((3, 2)), np.array([0.5, 1.0, 2.0]))


def test_digits_folds_test_every_image_once_with_every_class_spread() -> None:
    folds = datasets.digits_folds(5, seed=2)
    assert [d.name for d in folds] == [f"digits fold {f}/5" for f in range(1, 6)]
    assert sum(len(d.test) for d in folds) == 1797
    counts = np.array([np.bincount(d.test.y, minlength=10) for d in folds])
    assert (counts.max(axis=0) - counts.min(axis=0) <= 1).all()  # stratified
    for d in folds:
        assert len(d.train) + len(d.test) == 1797
        assert len(d.valid) == 0
        assert abs(d.train.x.mean(axis=0)).max() < 1e-12  # standardised with the training folds' statistics
    # each image is tested exactly once: the test rows are the 1,797 images, as a multiset
    from sklearn.datasets import load_digits

    seen = np.concatenate([d.test.x for d in datasets.digits_folds(5, seed=2, inputs="unit")])
    assert sorted(r.tobytes() for r in seen) == sorted(r.tobytes() for r in load_digits().data / 16.0)
    assert np.array_equal(datasets.digits_folds(5, seed=2)[3].test.y, folds[3].test.y)
    assert not np.array_equal(datasets.digits_folds(5, seed=3)[0].test.y, folds[0].test.y)


@pytest.mark.parametrize(("inputs", "lo", "hi"), [("unit", 0.0, 1.0), ("symmetric", -1.0, 1.0)])
def test_digits_folds_scale_the_pixels_as_asked(inputs: str, lo: float, hi: float) -> None:
    d = datasets.digits_folds(3, seed=0, inputs=inputs, images=True)[0]
    assert d.input_shape == (1, 8, 8)
    assert d.train.x.min() == lo
    assert d.train.x.max() == hi
    assert np.array_equal(np.unique((d.train.x - lo) / (hi - lo) * 16), np.arange(17))


def test_digits_folds_carve_validation_and_keep_stratified_subsets() -> None:
    folds = datasets.digits_folds(3, seed=1, valid=0.1, limit=300)
    assert [(len(d.train), len(d.valid), len(d.test)) for d in folds] == [(180, 20, 100)] * 3
    y = np.concatenate([d.test.y for d in folds])
    assert np.bincount(y).min() >= 29  # 300 images, 10 classes
    assert np.bincount(y).max() <= 31
    tr, va, te = (folds[0].train.x, folds[0].valid.x, folds[0].test.x)
    assert not ({r.tobytes() for r in va} & {r.tobytes() for r in te})
    assert tr.shape[0] + va.shape[0] + te.shape[0] == 300
    with pytest.raises(ValueError, match="^digits_folds: inputs=.raw. is not one of standardize, unit, "):
        datasets.digits_folds(3, inputs="raw")
    with pytest.raises(ValueError, match=r"^digits_folds: limit=2 outside the allowed range \[3, 1797\]$"):
        datasets.digits_folds(3, limit=2)
    with pytest.raises(ValueError, match=r"^stratified_folds: k=1 outside the allowed range \[2, 1797\]"):
        datasets.digits_folds(1)
    with pytest.raises(ValueError, match=r"^cross_validation: valid=1.0 outside the allowed range \[0, 1\)$"):
        datasets.cross_validation(np.zeros((6, 1)), np.arange(6) % 2, 2, seed=0, valid=1.0)
    with pytest.raises(ValueError, match="^cross_validation: x has 6 examples but y has shape"):
        datasets.cross_validation(np.zeros((6, 1)), np.arange(5) % 2, 2, seed=0)


def test_npz_files_load_without_pickle_and_bad_ones_are_named(tmp_path) -> None:
    x = np.arange(60.0).reshape(30, 2)
    y = np.arange(30) % 3
    f = tmp_path / "d.npz"
    np.savez(f, x=x, y=y)
    d = datasets.npz(f, valid=0.2, test=0.2, seed=1)
    assert (len(d.train), len(d.valid), len(d.test), d.n_classes) == (18, 6, 6, 3)
    ref = datasets.from_arrays(x, y, valid=0.2, test=0.2, seed=1)
    assert np.array_equal(d.train.x, ref.train.x)
    assert np.array_equal(d.test.y, ref.test.y)
    assert datasets.by_name(f"npz:{f}", seed=1).n_classes == 3
    with_test = tmp_path / "t.npz"
    np.savez(with_test, x=x, y=y, x_test=x[:5], y_test=y[:5])
    assert len(datasets.npz(with_test).test) == 5
    only_x = tmp_path / "x.npz"
    np.savez(only_x, x=x)
    with pytest.raises(ValueError, match=r"x\.npz has no array 'y'"):
        datasets.npz(only_x)
    objects = tmp_path / "o.npz"
    np.savez(objects, x=np.array([None] * 3, dtype=object), y=np.zeros(3, int))
    with pytest.raises(ValueError, match="Object arrays cannot be loaded when allow_pickle=False"):
        datasets.npz(objects)
    with pytest.raises(ValueError, match="cannot read"):
        datasets.npz(tmp_path / "missing.npz")
    bad = x.copy()
    bad[7, 1] = np.nan
    with pytest.raises(ValueError, match=r"x holds a non-finite value \(nan\) at index \(7, 1\)"):
        datasets.from_arrays(bad, y)


def _mnist_folder(tmp_path, compress: bool = False):
    folder = tmp_path / "mnist"
    folder.mkdir()
    sfx = ".gz" if compress else ""
    x = np.arange(5 * 28 * 28, dtype=np.uint8).reshape(5, 28, 28)
    for stem, a in (("train-images-idx3-ubyte", x), ("train-labels-idx1-ubyte", np.arange(5, dtype=np.uint8)),
                    ("t10k-images-idx3-ubyte", x), ("t10k-labels-idx1-ubyte", np.arange(5, dtype=np.uint8))):
        _idx(folder / (stem + sfx), a, 0x08, compress)
    return folder


def test_file_problems_name_the_file(tmp_path) -> None:
    folder = _mnist_folder(tmp_path)
    assert len(datasets.mnist(folder, valid=0.0).train) == 5
    with pytest.raises(FileNotFoundError, match=r"^mnist: folder \S*nowhere \(for train-images-idx3-ubyte"
                                                r"\[\.gz\]\) does not exist; .*nothing is downloaded"):
        datasets.mnist(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match=r"^cifar10: folder \S*nowhere does not exist"):
        datasets.cifar10(tmp_path / "nowhere")
    with pytest.raises(ValueError, match=r"^datasets: data='mnist' names no folder; give mnist:<folder>$"):
        datasets.by_name("mnist")
    # labels where the images should be: the magic number says so before any size is computed
    labels = folder / "train-labels-idx1-ubyte"
    (folder / "train-images-idx3-ubyte").write_bytes(labels.read_bytes())
    with pytest.raises(ValueError, match=r"^mnist: \S*train-images-idx3-ubyte starts with magic number"
                                         r" 0x00000801; an MNIST images file starts with 0x00000803$"):
        datasets.mnist(folder)
    # a header whose sizes make no sense (the old message said it needed 5.1e18 bytes)
    (folder / "train-images-idx3-ubyte").write_bytes(bytes([0, 0, 8, 3]) + b"\xff" * 12 + b"\x00" * 10)
    with pytest.raises(ValueError, match=r"^read_idx: \S*train-images-idx3-ubyte is truncated: it holds 10"
                                         r" data bytes"):
        datasets.mnist(folder)
    (folder / "train-images-idx3-ubyte").write_bytes(b"\x1f\x8b\x08\x00")  # gzip bytes without .gz
    with pytest.raises(ValueError, match=r"^mnist: \S*train-images-idx3-ubyte starts with magic number"
                                         r" 0x1f8b0800; an MNIST images file starts with 0x00000803$"):
        datasets.mnist(folder)


def test_a_corrupt_or_truncated_gzip_names_the_file(tmp_path) -> None:
    folder = _mnist_folder(tmp_path, compress=True)
    assert len(datasets.mnist(folder, valid=0.0).test) == 5
    p = folder / "t10k-labels-idx1-ubyte.gz"
    good = p.read_bytes()
    p.write_bytes(good[:-6])  # truncated stream
    with pytest.raises(ValueError, match=r"^mnist: \S*t10k-labels-idx1-ubyte\.gz is not a readable gzip"):
        datasets.mnist(folder)
    p.write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match=r"^read_idx: \S*t10k-labels-idx1-ubyte\.gz is not a readable gzip"):
        datasets.read_idx(p)
    q = tmp_path / "x.idx"
    q.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 3, 4]))
    with pytest.raises(ValueError, match=r"x\.idx has bytes after its data: it holds 4 data bytes; its header"
                                         r" \(shape \(3,\), 1-byte values\) needs 3$"):
        datasets.read_idx(q)
    q.write_bytes(bytes([0, 0, 8, 2, 0, 0]))
    with pytest.raises(ValueError, match=r"x\.idx is truncated: it ends inside its header"):
        datasets.read_idx(q)


def test_test_arrays_are_checked_as_the_training_arrays_are(tmp_path) -> None:
    x, y = np.arange(40.0).reshape(20, 2), np.arange(20) % 2
    xt = x[:3]
    with pytest.raises(ValueError, match=r"^from_arrays: y_test must hold integer class labels >= 0; it has"
                                         r" dtype float64$"):
        datasets.from_arrays(x, y, x_test=xt, y_test=np.array([0.5, 1.7, 1.0]))
    with pytest.raises(ValueError, match=r"^from_arrays: y_test must hold integer class labels >= 0; it holds"
                                         r" -1 at index 1$"):
        datasets.from_arrays(x, y, x_test=xt, y_test=np.array([0, -1, 1]))
    with pytest.raises(ValueError, match=r"^from_arrays: x_test has 3 examples but y_test has shape \(2,\);"
                                         r" it needs shape \(3,\)$"):
        datasets.from_arrays(x, y, x_test=xt, y_test=np.array([0, 1]))
    with pytest.raises(ValueError, match=r"^from_arrays: x_test has examples of shape \(5,\) but x has"
                                         r" \(2,\); they must match$"):
        datasets.from_arrays(x, y, x_test=np.zeros((3, 5)), y_test=np.array([0, 1, 1]))
    with pytest.raises(ValueError, match=r"^from_arrays: x_test is given but y_test is not; give both or"
                                         r" neither$"):
        datasets.from_arrays(x, y, x_test=xt)
    with pytest.raises(ValueError, match=r"^from_arrays: y_test is given but x_test is not"):
        datasets.from_arrays(x, y, y_test=np.array([0, 1, 1]))
    with pytest.raises(ValueError, match=r"^from_arrays: y_test holds label 4 at index 2; with n_classes=3"
                                         r" labels must be in \[0, 2\]$"):
        datasets.from_arrays(x, y, x_test=xt, y_test=np.array([0, 1, 4]), n_classes=3)
    # the same checks, named after the loader, for an .npz file
    f = tmp_path / "bad_test.npz"
    np.savez(f, x=x, y=y, x_test=xt, y_test=np.array([0.5, 1.7, 1.0]))
    with pytest.raises(ValueError, match=r"^datasets\.npz \S+\.npz: "
                                         r"y_test must hold integer class labels >= 0"):
        datasets.npz(f)
    np.savez(f, x=x, y=y, x_test=xt, y_test=np.array([0, 1]))
    with pytest.raises(ValueError, match=r"^datasets\.npz \S+\.npz: "
                                         r"x_test has 3 examples but y_test has shape"):
        datasets.npz(f)
    np.savez(f, x=x, y=y, x_test=np.zeros((3, 5)), y_test=np.array([0, 1, 1]))
    with pytest.raises(ValueError, match=r"^datasets\.npz \S+\.npz: "
                                         r"x_test has examples of shape \(5,\) but x has"):
        datasets.npz(f)
    np.savez(f, x=x, y=y, x_test=xt, y_test=np.array([0, 1, 1]))
    d = datasets.npz(f, standardize=False)
    assert np.array_equal(d.test.y, [0, 1, 1])
    assert np.array_equal(d.test.x, xt)


def test_an_npy_file_is_not_taken_for_an_npz_archive(tmp_path) -> None:
    f = tmp_path / "x.npy"
    np.save(f, np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"^datasets\.npz: \S*x\.npy holds a single \.npy array \(shape"
                                         r" \(4, 2\)\), not an \.npz archive; save x and y"):
        datasets.npz(f)


def test_mnist_labels_above_9_name_the_file_and_the_index(tmp_path) -> None:
    folder = _mnist_folder(tmp_path)
    _idx(folder / "t10k-labels-idx1-ubyte", np.array([0, 1, 2, 10, 3], np.uint8), 0x08, False)
    with pytest.raises(ValueError, match=r"^mnist: \S*t10k-labels-idx1-ubyte holds label 10 at index 3;"
                                         r" MNIST labels are 0\.\.9$"):
        datasets.mnist(folder)


def _cifar_folder(tmp_path, n: int = 3):
    folder = tmp_path / "cifar"
    folder.mkdir()
    rec = np.zeros((n, 3073), np.uint8)
    rec[:, 0] = np.arange(n) % 10
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        (folder / name).write_bytes(rec.tobytes())
    return folder


def test_cifar10_labels_above_9_name_the_file_and_the_record(tmp_path) -> None:
    folder = _cifar_folder(tmp_path)
    rec = np.zeros((3, 3073), np.uint8)
    rec[2, 0] = 11
    (folder / "data_batch_4.bin").write_bytes(rec.tobytes())
    with pytest.raises(ValueError, match=r"^cifar10: \S*data_batch_4\.bin record 2 has label byte 11;"
                                         r" CIFAR-10 labels are 0\.\.9"):
        datasets.cifar10(folder)


@pytest.mark.parametrize("loader", ["mnist", "cifar10"])
def test_limit_must_be_none_or_an_int_of_at_least_1(tmp_path, loader: str) -> None:
    folder = _mnist_folder(tmp_path) if loader == "mnist" else _cifar_folder(tmp_path)
    load = getattr(datasets, loader)
    d = load(folder, limit=2, valid=0.0)
    assert (len(d.train), len(d.test)) == ((2, 2) if loader == "mnist" else (10, 2))
    for bad in (-1, 0):
        with pytest.raises(ValueError, match=rf"^{loader}: limit={bad} outside the allowed range"
                                             r" \[1, inf\)$"):
            load(folder, limit=bad)
    for bad in (2.0, True, "2"):
        with pytest.raises(TypeError, match=rf"^{loader}: limit={bad!r} must be None or an int in the allowed"
                                            r" range \[1, inf\)$"):
            load(folder, limit=bad)


def test_seeds_must_be_ints_of_at_least_0(tmp_path) -> None:
    x, y = np.arange(40.0).reshape(20, 2), np.arange(20) % 2
    f = tmp_path / "d.npz"
    np.savez(f, x=x, y=y)
    mnist_folder, cifar_folder = _mnist_folder(tmp_path), _cifar_folder(tmp_path)
    calls = {"from_arrays": lambda s: datasets.from_arrays(x, y, seed=s),
             "cross_validation": lambda s: datasets.cross_validation(x, y, 2, seed=s),
             "digits": lambda s: datasets.digits(seed=s),
             "digits_folds": lambda s: datasets.digits_folds(3, seed=s, limit=30),
             "mnist": lambda s: datasets.mnist(mnist_folder, seed=s),
             "cifar10": lambda s: datasets.cifar10(cifar_folder, seed=s),
             r"datasets\.npz": lambda s: datasets.npz(f, seed=s),
             "datasets": lambda s: datasets.by_name("digits", seed=s)}
    for func, call in calls.items():
        with pytest.raises(ValueError, match=rf"^{func}: seed=-1 outside the allowed range \[0, inf\)$"):
            call(-1)
        for bad in (1.5, True, "3"):
            with pytest.raises(TypeError, match=rf"^{func}: seed={bad!r} must be an int in the allowed range"
                                                r" \[0, inf\)$"):
                call(bad)


def test_features_must_be_real_numbers() -> None:
    x, y = np.arange(40.0).reshape(20, 2), np.arange(20) % 2
    for bad, kind in ((x + 1j, "complex"), (x.astype(str), "str"), (x > 3, "bool")):
        with pytest.raises(TypeError, match=rf"^from_arrays: x has dtype {kind}; expected real numbers"):
            datasets.from_arrays(bad, y)
        with pytest.raises(TypeError, match=rf"^from_arrays: x_test has dtype {kind}; expected real numbers"):
            datasets.from_arrays(x, y, x_test=bad[:3], y_test=y[:3])
        with pytest.raises(TypeError, match=rf"^cross_validation: x has dtype {kind}; expected real numbers"):
            datasets.cross_validation(bad, y, 2, seed=0)
    assert datasets.from_arrays(x.astype(np.int16), y).input_shape == (2,)


def test_a_constant_feature_keeps_scale_1_and_its_training_values_become_0() -> None:
    # 28 copies of 0.1 have np.std 1.4e-17, not 0: the old scale turned them into -1 and 0.2 into 7.2e15
    x, y = np.c_[np.full(28, 0.1), np.arange(28.0)], np.arange(28) % 2
    d = datasets.from_arrays(x, y, valid=0.25, seed=0, x_test=np.array([[0.2, 3.0]]), y_test=np.array([1]))
    assert np.array_equal(d.train.x[:, 0], np.zeros(len(d.train)))
    assert np.array_equal(d.valid.x[:, 0], np.zeros(len(d.valid)))
    assert d.test.x[0, 0] == 0.2 - 0.1  # minus the constant, scale 1
    assert abs(d.train.x[:, 1].mean()) < 1e-12  # the other feature is standardised as before
    for fold in datasets.cross_validation(x, y, 4, seed=0, valid=0.2):
        assert np.array_equal(np.unique(fold.train.x[:, 0]), [0.0])
        assert np.array_equal(np.unique(fold.test.x[:, 0]), [0.0])
    # the digits' constant pixels are 0: their standardised values stay 0
    d = datasets.digits(seed=0)
    raw = datasets.digits(seed=0, standardize=False)
    constant = (raw.train.x == raw.train.x[0]).all(axis=0)
    assert constant.any()
    assert np.array_equal(d.test.x[:, constant], raw.test.x[:, constant])


def test_labels_beyond_int64_are_refused_not_wrapped(tmp_path) -> None:
    x, y = np.arange(6.0).reshape(3, 2), np.array([0, 1, 2**63], np.uint64)
    f = tmp_path / "u.npz"
    np.savez(f, x=x, y=y)
    with pytest.raises(ValueError, match=r"^datasets\.npz \S+\.npz: "
                                         r"y holds label 9223372036854775808 at index 2,"
                                         r" beyond int64; labels must be in \[0, 9223372036854775807\]$"):
        datasets.npz(f, valid=0.0, test=0.0, standardize=False)
    with pytest.raises(ValueError, match=r"^from_arrays: y_test holds label 18446744073709551615 at index 0,"
                                         r" beyond int64"):
        datasets.from_arrays(x, y[:3] % 2, x_test=x[:1], y_test=np.array([2**64 - 1], np.uint64))
    assert datasets.from_arrays(x, np.array([0, 1, 2], np.uint64), valid=0.0, test=0.0).n_classes == 3


def test_features_too_large_to_standardise_are_refused(tmp_path) -> None:
    x, y = np.full((20, 2), 1e308), np.arange(20) % 2
    x[::2, 0] = -1e308  # the mean's sum overflows
    with pytest.raises(ValueError, match=r"^from_arrays: standardising overflows: feature 0 has training mean"
                                         r" (inf|-inf|nan); the features are too large for float64 \(largest"
                                         r" \|value\| 1e\+308\); rescale them or pass standardize=False$"):
        datasets.from_arrays(x, y, valid=0.0, test=0.2, seed=0)
    assert np.array_equal(datasets.from_arrays(x, y, standardize=False).train.x[:, 1], np.full(14, 1e308))
    # a finite mean (0) but squares that overflow: the old scale inf turned every value into 0
    x = np.c_[np.arange(20.0), np.where(np.arange(20) % 2, 1e200, -1e200)]
    with pytest.raises(ValueError, match=r"^cross_validation: standardising overflows: feature 1 has training"
                                         r" standard deviation inf; .* pass standardize=False$"):
        datasets.cross_validation(x, y, 2, seed=0)
    f = tmp_path / "huge.npz"
    np.savez(f, x=x[:, None, :], y=y)
    with pytest.raises(ValueError, match=r"^datasets\.npz \S+\.npz: "
                                         r"standardising overflows: feature \(0, 1\) has"):
        datasets.npz(f)
    # finite statistics (scale 5e-11), but a test value that overflows once divided by the scale
    x = np.c_[np.arange(20.0), np.where(np.arange(20) % 2, 1e-10, 0.0)]
    with pytest.raises(ValueError, match=r"^from_arrays: standardising overflows: feature 1 of test example 0"
                                         r" becomes -inf; "):
        datasets.from_arrays(x, y, valid=0.0, x_test=np.array([[0.0, -1e300]]), y_test=np.array([0]))


def test_malformed_npz_files_name_the_file(tmp_path) -> None:
    good = tmp_path / "good.npz"
    np.savez(good, x=np.zeros((4, 2)), y=np.arange(4) % 2)
    raw = good.read_bytes()
    cut = tmp_path / "cut.npz"
    cut.write_bytes(raw[:len(raw) // 2])
    with pytest.raises(ValueError, match=r"^datasets\.npz: cannot read \S*cut\.npz: not a readable \.npz"
                                         r" \(zip\) archive \(File is not a zip file\); is it truncated or"
                                         r" corrupt\?$"):
        datasets.npz(cut)
    text = tmp_path / "text.npz"
    text.write_text("hello")
    with pytest.raises(ValueError, match=r"^datasets\.npz: cannot read \S*text\.npz: it starts with b'hello';"
                                         r" an \.npz archive is a zip file \(numpy\.savez\)$"):
        datasets.npz(text)
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=r"^datasets\.npz: cannot read \S*empty\.npz: it is empty \(0"
                                         r" bytes\); an \.npz archive is a zip file"):
        datasets.npz(empty)
    objects = tmp_path / "objects.npz"
    np.savez(objects, x=np.array([[1, 2], [3, 4]], dtype=object), y=np.array([0, 1]))
    with pytest.raises(ValueError, match=r"^datasets\.npz: cannot read \S*objects\.npz: array 'x': Object"
                                         r" arrays cannot be loaded when allow_pickle=False$"):
        datasets.npz(objects)


def test_empty_data_is_refused_naming_the_file(tmp_path) -> None:
    f = tmp_path / "none.npz"
    np.savez(f, x=np.zeros((0, 3)), y=np.zeros(0, np.int64))
    with pytest.raises(ValueError, match=r"^datasets\.npz: \S*none\.npz holds no examples in x \(shape"
                                         r" \(0, 3\)\); it needs at least 1$"):
        datasets.npz(f)
    np.savez(f, x=np.zeros((4, 3)), y=np.arange(4) % 2, x_test=np.zeros((0, 3)), y_test=np.zeros(0, int))
    with pytest.raises(ValueError, match=r"^datasets\.npz: \S*none\.npz holds no examples in x_test"):
        datasets.npz(f)
    with pytest.raises(ValueError, match=r"^from_arrays: x holds no examples \(shape \(0, 3\)\); it needs at"
                                         r" least 1$"):
        datasets.from_arrays(np.zeros((0, 3)), np.zeros(0, int))
    with pytest.raises(ValueError, match=r"^from_arrays: x_test holds no examples \(shape \(0, 3\)\)"):
        datasets.from_arrays(np.zeros((4, 3)), np.arange(4) % 2, x_test=np.zeros((0, 3)),
                             y_test=np.zeros(0, int))
    cifar = _cifar_folder(tmp_path)
    for name in ("data_batch_2.bin", "test_batch.bin"):
        good = (cifar / name).read_bytes()
        (cifar / name).write_bytes(b"")
        with pytest.raises(ValueError, match=rf"^cifar10: \S*{name.replace('.', '[.]')} is empty \(0"
                                             r" bytes\); a CIFAR-10 batch holds at least one 3073-byte"
                                             r" record$"):
            datasets.cifar10(cifar)
        (cifar / name).write_bytes(good)
    mnist = _mnist_folder(tmp_path)
    _idx(mnist / "t10k-labels-idx1-ubyte", np.zeros(0, np.uint8), 0x08, False)
    _idx(mnist / "t10k-images-idx3-ubyte", np.zeros((0, 28, 28), np.uint8), 0x08, False)
    with pytest.raises(ValueError, match=r"^mnist: \S*t10k-images-idx3-ubyte holds no examples \(its header"
                                         r" declares shape \(0, 28, 28\)\); it needs at least 1$"):
        datasets.mnist(mnist)


def test_cross_validation_checks_labels_against_n_classes_as_from_arrays_does() -> None:
    x, y = np.arange(20.0)[:, None], np.arange(20) % 5
    calls = {"from_arrays": lambda k: datasets.from_arrays(x, y, n_classes=k),
             "cross_validation": lambda k: datasets.cross_validation(x, y, 2, seed=0, n_classes=k)}
    for func, call in calls.items():
        with pytest.raises(ValueError, match=rf"^{func}: y holds label 2 at index 2; with n_classes=2 labels"
                                             r" must be in \[0, 1\]$"):
            call(2)
        with pytest.raises(ValueError, match=rf"^{func}: n_classes=0 outside the allowed range \[1, inf\)$"):
            call(0)
    assert datasets.cross_validation(x, y, 2, seed=0, n_classes=7)[0].n_classes == 7


@pytest.mark.parametrize("limit", [None, 10])
def test_mnist_image_and_label_counts_must_match_whatever_the_limit(tmp_path, limit: int | None) -> None:
    folder = _mnist_folder(tmp_path)
    _idx(folder / "train-images-idx3-ubyte", np.zeros((50, 28, 28), np.uint8), 0x08, False)
    _idx(folder / "train-labels-idx1-ubyte", np.arange(49, dtype=np.uint8) % 10, 0x08, False)
    with pytest.raises(ValueError, match=r"^mnist: \S*train-images-idx3-ubyte holds 50 images but"
                                         r" \S*train-labels-idx1-ubyte holds 49 labels; the two files must"
                                         r" hold the same number of examples$"):
        datasets.mnist(folder, limit=limit)
