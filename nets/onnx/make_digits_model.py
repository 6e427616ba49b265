"""Make the shipped ONNX model ``nets/data/digits_mlp.onnx``: an MLP trained on the digits with fixed seeds.

Run ``python -m nets.onnx.make_digits_model`` (optionally with an output path)
to write it again. The recipe (`train_digits_mlp`): `nets.mlp` [64, 32, 10]
(ReLU, Glorot initialisation from seed 0), trained in float64 for 30 epochs
of SGD (lr 0.1, batches of 32, `nets.train` seed 0) on the training split of
``nets.datasets.digits(seed=0, standardize=False)`` (pixels / 16, in [0, 1]),
exported with `nets.onnx.to_onnx` without a policy (float32 weights, input
``x`` of shape (N, 64), output ``y``: ten logits). The same numpy and BLAS
give the same file; `nets.onnx.zoo.digits_mlp` loads the shipped one.
Imports `nets`; `onnx` when it runs.
"""

from __future__ import annotations

import os
import sys

from ..datasets import digits
from ..models import Model, mlp
from ..optim import SGD
from ..train import train
from .export import to_onnx

__all__ = ["train_digits_mlp"]


def train_digits_mlp(seed: int = 0, epochs: int = 30) -> Model:
    """The shipped model's recipe (module docstring); returns the trained `Model`."""
    data = digits(seed=0, standardize=False)
    model = mlp([64, 32, 10], seed=seed)
    train(model, data, None, SGD(lr=0.1), epochs=epochs, batch_size=32, seed=seed, progress=False)
    return model


def main(argv: list[str]) -> None:  # pragma: no cover - the command line
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = argv[0] if argv else os.path.join(here, "data", "digits_mlp.onnx")
    to_onnx(train_digits_mlp(), path=path, input_shape=(64,))
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
