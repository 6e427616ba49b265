"""nets: training and inference with every multiply-accumulate going through `emu`.

Layers with explicit forward and backward passes (`nets.layers`), models
(`mlp`, `lenet5`, `resnet_small`, `from_spec`), a `PrecisionPolicy` naming the
format of every tensor role and the `emu.MAC` datapath of every product (its
settings the enums `Granularity`, `STE`, `EvaluateWith` and `EvalRounding`;
the papers' presets in `nets.presets`, batch normalisation in `nets.norm`),
optimisers (`SGD`, `Adam`, both `Optimizer`) whose updates are stored in the master format, and
`train`; model compression (pruning, weight sharing, sparse and Huffman
storage, low-rank layers) in `nets.compress`; design-space sweeps in
`nets.explore`; a user's own ONNX model through `from_onnx`, and any model back to ONNX with its
weights converted under a policy through `to_onnx` (`nets.onnx`, which needs the ``onnx`` extra
when it runs). `Model.predict` gives a network's outputs under a policy and `evaluate` its loss and
accuracy, in seeded batches that may be sharded over processes or Dask workers. `nets` imports
`emu`; only `nets.explore` imports `hwmodel`.
"""

from . import compress, datasets
from .layers import (
    AvgPool2d,
    Context,
    Conv2d,
    Dropout,
    Flatten,
    Linear,
    Maxout,
    MaxPool2d,
    ReLU,
    Residual,
    Sequential,
    Sigmoid,
    Sign,
    Tanh,
)
from .models import Model, from_spec, lenet5, mlp, resnet_small
from .norm import BatchNorm
from .onnx import from_onnx, to_onnx
from .optim import SGD, Adam, Optimizer, constant, exponential, linear_momentum, schedule_at, steps
from .policy import (
    POLICY_PRESETS,
    STE,
    DynamicFixed,
    EvalRounding,
    EvaluateWith,
    Granularity,
    LayerPolicy,
    PrecisionPolicy,
    RoleFormat,
)
from .quant import Quantizer
from .train import EvalPolicy, History, evaluate, train, train_full_batch

__all__ = [
    "POLICY_PRESETS", "SGD", "STE", "Adam", "AvgPool2d", "BatchNorm", "Context", "Conv2d", "Dropout",
    "DynamicFixed", "EvalPolicy", "EvalRounding", "EvaluateWith", "Flatten", "Granularity", "History",
    "LayerPolicy", "Linear", "MaxPool2d", "Maxout", "Model", "Optimizer", "PrecisionPolicy", "Quantizer",
    "ReLU", "Residual", "RoleFormat", "Sequential", "Sigmoid", "Sign", "Tanh", "compress", "constant",
    "datasets", "evaluate", "exponential", "from_onnx", "from_spec", "lenet5", "linear_momentum", "mlp",
    "resnet_small", "schedule_at", "steps", "to_onnx", "train", "train_full_batch",
]
