"""ONNX import and export: a user's model as a nets `Model` whose layers are nets layers (`from_onnx`),
and a nets model back to ONNX with its weights converted under a policy (`to_onnx`).

`from_onnx(path_or_model_proto)` returns ``Model(Sequential(graph))`` with a
`nets.graph.Graph` of one layer per ONNX node (named after the node), so every
precision policy, datapath and statistic applies to it as to nets' own
models. The layers ONNX needs beyond nets' own are here, one concept per
module: `pointwise` (nonlinearities, softmax, arithmetic on two tensors),
`products` (grouped/dilated convolution, matrix products on N-d inputs and
of two activations), `pooling`, `layernorm`, `shape` (data movement); the
import itself is `importer` (with `translate`, one translation per
operator, and `fold`, constant folding). `to_onnx` (`export`, with `emit`, one
translation per layer) writes a model as ONNX, its parameters the values of
their formats and the formats in its metadata. docs/onnx.md lists the
operators and what each converts under a policy. The `onnx` package (the
extra ``pip install numfmt-emu[onnx]``) is imported only when `from_onnx` or
`to_onnx` runs.
"""

from .export import converted_parameters, to_onnx
from .importer import from_onnx

__all__ = ["converted_parameters", "from_onnx", "to_onnx"]
