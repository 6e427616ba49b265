"""Model compression on the digits data: accuracy, compression rate, weight storage and energy per inference.

Trains a 64-300-100-10 MLP (LeNet-300-100 on the 8x8 digits) in float64 and
compresses copies of it with each method of `nets.compress` alone and
chained: magnitude pruning (iterative, 90 %), weight sharing (k = 16),
a low-rank first layer (rank 16), Deep Compression (pruning + 4-bit shared
weights + relative indices + Huffman) and the same with fixed-point
activations and a 16-bit accumulator. Prints one row per configuration:

- accuracy on the held-out examples (validation and test splits together,
  540 digits; nothing is tuned on them), evaluated under the row's policy;
- compression rate: 32-bit parameters of the uncompressed model over every
  stored bit (`nets.compress.storage_bits`: values or codes, relative
  indices, codebooks, Huffman tables, biases);
- weight storage: the bits of the weight matrices only (no biases);
- energy per inference (batch 1) at 45 nm: weight memory + activation
  memory (from the figures below) + arithmetic (`hwmodel.cost` of the row's
  MAC datapath on the Horowitz 45 nm table when `hwmodel` provides it, else
  the figures below).

With ``--seeds N`` the whole run (data split, initialisation, training,
compression) is repeated for seeds 0 .. N-1 and the accuracy column gives the
mean and its 95 % Student-t interval over them (`nets.stats.mean_ci`), the
next column each row's paired difference to the baseline on the same seeds, in
points (`nets.stats.paired_difference`); the other columns are seed 0's.

Usage: ``python benchmarks/compression.py [--epochs E] [--seed S | --seeds N] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import copy
import json
from typing import Any

import numpy as np

import emu
import hwmodel
import nets
from nets import compress as C
from nets.datasets import Split
from nets.stats import mean_ci, paired_difference


def energy_pj(model: nets.Model, storage: C.StorageReport, policy: nets.PrecisionPolicy) -> dict[str, Any]:
    """Energy of one inference in pJ from `hwmodel.network_cost` at 45 nm (Horowitz 2014).

    weights: every stored parameter bit of a layer (values or codes, indices, codebooks, Huffman tables,
    biases: ``storage``) read once, from the smallest SRAM of the table that holds them all, else DRAM;
    activations: each weighted layer reads its input and writes its output through a 32 KB SRAM, in the
    widths of its datapath; arithmetic: one MAC per product with a nonzero weight (a sparse datapath skips
    pruned weights) at `hwmodel.cost` of the layer's datapath. Codebook look-ups and index decoding are
    not charged.
    """
    nonzero = C.multiplications(model, (64,), nonzero_only=True)
    nonzero.pop("total")
    weight_bits = {name: d["total"] for name, d in storage.layers.items()}
    nc = hwmodel.network_cost(model, policy, input_shape=(64,), weight_memory="auto",
                              weight_bits=weight_bits, macs=nonzero)
    return {"weights_pj": sum(r.weight_memory_pj for r in nc.layers),
            "acts_pj": sum(r.activation_memory_pj for r in nc.layers), "compute_pj": nc.compute_pj,
            "total_pj": nc.energy_pj, "weights_in": nc.weight_memory, "macs": sum(nonzero.values())}


def run(seed: int, epochs: int) -> tuple[list[dict[str, Any]], nets.Model, int]:
    """The rows of one seed: (rows, the trained baseline, the number of held-out digits)."""
    data = nets.datasets.digits(seed=seed)
    held_out = Split(np.concatenate([data.valid.x, data.test.x]), np.concatenate([data.valid.y, data.test.y]))
    base = nets.mlp([64, 300, 100, 10], seed=seed)
    nets.train(base, data, None, nets.SGD(lr=0.05, momentum=0.9), epochs=epochs, seed=seed, progress=False)

    fp32 = nets.PrecisionPolicy.preset("fp32")
    mac32 = emu.MAC(act="fx<2,6>", weight="fx<1,7>", acc="fx<8,24>")
    mac16 = emu.MAC(act="fx<2,6>", weight="fx<1,7>", acc="fx<6,10>")
    int8 = nets.PrecisionPolicy(nets.LayerPolicy(weights="fx<1,7>", biases="fx<8,24>", activations="fx<2,6>",
                                                 fwd_mac=mac32), name="int8, 32-bit accumulator")
    fx16 = nets.PrecisionPolicy(nets.LayerPolicy(weights="fx<1,7>", biases="fx<6,10>", activations="fx<2,6>",
                                                 fwd_mac=mac16), name="fx<2,6> x fx<1,7>, 16-bit acc")
    prune90 = {"method": "iterative_prune", "schedule": [0.5, 0.7, 0.8, 0.9], "epochs": 2,
               "optimizer": nets.SGD(lr=0.02, momentum=0.9), "retrain_epochs": 4}

    configs: list[tuple[str, list[dict[str, Any]], nets.PrecisionPolicy, dict[str, Any]]] = [
        # label, compression steps, policy (evaluation and datapath), storage options
        ("fp32 baseline", [], fp32, {}),
        ("int8 weights + activations", [], int8, {"weight_bits": 8}),
        ("pruned 90% (5-bit indices)", [prune90], fp32, {"index_bits": 5}),
        ("shared k=16", [{"method": "share_weights", "k": 16, "retrain_epochs": 2}], fp32, {}),
        ("low-rank linear1 r=16",
         [{"method": "low_rank", "layer": "linear1", "rank": 16, "retrain_epochs": 4}],
         fp32, {}),
        ("pruned 90% + k=15 + Huffman", [prune90, {"method": "share_weights", "k": 15, "retrain_epochs": 2}],
         fp32, {"index_bits": 5, "huffman": True}),
        ("  same, fx<1,7> centroids, fx<2,6> acts, 16-bit acc",
         [prune90, {"method": "share_weights", "k": 15, "fmt": "fx<1,7>", "retrain_epochs": 2}],
         fx16, {"index_bits": 5, "huffman": True}),
        ("low-rank r=16 + pruned 80% + k=15 + Huffman",
         [{"method": "low_rank", "layer": "linear1", "rank": 16, "retrain_epochs": 4},
          {**prune90, "schedule": [0.5, 0.7, 0.8]},
          {"method": "share_weights", "k": 15, "retrain_epochs": 2}],
         fp32, {"index_bits": 5, "huffman": True}),
    ]
    rows = []
    for label, steps, policy, store in configs:
        model = copy.deepcopy(base)
        # fresh copies of the steps' optimisers: no state carries from one configuration to the next
        comp = C.compress(model, data, copy.deepcopy(steps), optimizer=nets.SGD(lr=0.01, momentum=0.9),
                          seed=seed)
        rep = C.storage_bits(model, comp, **store)
        acc = nets.evaluate(model, held_out, policy)[1]
        e = energy_pj(model, rep, policy)
        rows.append({"config": label, "policy": policy.name, "accuracy": acc, "rate": rep.rate,
                     "weight_bits": rep.weight_storage_bits, "total_bits": rep.total_bits, **e,
                     "storage": rep.to_dict(), "record": comp.to_dict()})
    return rows, base, len(held_out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=20, help="training epochs of the baseline")
    ap.add_argument("--seed", type=int, default=0, help="the one seed of a run without --seeds")
    ap.add_argument("--seeds", type=int, default=None, help="seeds 0 .. N-1 (accuracy: mean and 95 %% CI)")
    ap.add_argument("--json", default=None, help="also write every row and compression record to this file")
    args = ap.parse_args()
    seeds = [args.seed] if args.seeds is None else list(range(args.seeds))
    runs = [run(seed, args.epochs) for seed in seeds]
    rows, base, n_held = runs[0]
    for i, r in enumerate(rows):
        r["seeds"] = seeds
        r["accuracies"] = [rs[i]["accuracy"] for rs, _, _ in runs]
        r["accuracy_ci"] = mean_ci(r["accuracies"])
        r["paired_vs_baseline"] = paired_difference(r["accuracies"], rows[0]["accuracies"]) if i else None

    over = (f"seeds {seeds[0]}-{seeds[-1]} (mean [95 % CI] over seeds; the other columns seed {seeds[0]}'s)"
            if len(seeds) > 1 else f"seed {seeds[0]} (n=1, no interval: --seeds N gives one over N seeds)")
    print(f"digits, MLP 64-300-100-10 ({base.n_parameters():,} parameters), accuracy on"
          f" {n_held} held-out digits, {over}; energy per inference at 45 nm (Horowitz 2014)")
    print("hwmodel.network_cost (horowitz45): memory from the compressed bit counts,"
          " arithmetic per nonzero MAC")
    head = (f"{'configuration':<52} {'accuracy':>26} {'vs baseline (paired)':>24} {'rate':>7}"
            f" {'stored bits':>12} {'weights in':>10}"
            f" {'E weights':>10} {'E acts':>8} {'E compute':>10} {'E total':>10}")
    print(head)
    print("-" * len(head))
    for r in rows:
        ci = r["accuracy_ci"]
        acc = (f"{100 * ci.mean:.2f} % [{100 * ci.lo:.2f}, {100 * ci.hi:.2f}]" if ci.n > 1
               else f"{100 * ci.mean:.2f} % (n=1, no interval)")  # as `nets.stats.Estimate.percent`
        d = r["paired_vs_baseline"]
        vs = ("" if d is None else f"{100 * d.mean:+.2f} [{100 * d.lo:+.2f}, {100 * d.hi:+.2f}]" if d.n > 1
              else f"{100 * d.mean:+.2f} (n=1, no interval)")
        print(f"{r['config']:<52} {acc:>26} {vs:>24} {r['rate']:>6.1f}x {r['total_bits']:>12,}"
              f" {r['weights_in']:>10} {r['weights_pj'] / 1e3:>8.2f}nJ"
              f" {r['acts_pj'] / 1e3:>6.2f}nJ {r['compute_pj'] / 1e3:>8.2f}nJ {r['total_pj'] / 1e3:>8.2f}nJ")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1, default=str)


if __name__ == "__main__":
    emu.use_threading_layer()
    main()
