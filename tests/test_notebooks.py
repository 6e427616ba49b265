"""The notebooks run top to bottom in a Jupyter kernel (nbclient and ipykernel, on the interpreter that runs
the tests) at small sizes: right after the cell tagged "parameters" a cell sets SMALL = True and an output
folder under the test's tmp_path, as papermill injects parameters. Each test then reads key numbers from the
executed notebook's outputs and checks them against figures computed here, from the formats' and the cost
model's definitions (numpy and the published tables, not the code under test), or against the notebook's
own claims (stochastic rounding beats nearest at short fractions, more accumulators are faster)."""

from __future__ import annotations

import ast
import math
import re
import sqlite3
import sys
from fractions import Fraction
from pathlib import Path

import nbformat
import numpy as np
import pytest
from ipykernel.kernelspec import write_kernel_spec
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

import emu
from tests.hwmodel.test_hwmodel import H_ADD_A, H_ADD_E, H, fp_mac_levels, law_fmul, law_fp_mac, law_int_adder

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
KERNEL = "numfmt-emu-tests"
FP32_MAC = (H["mult_fp32"][0] + H["add_fp32"][0], H["mult_fp32"][1] + H["add_fp32"][1])  # 4.6 pJ, 11884 um^2


@pytest.fixture(scope="module")
def kernel_specs(tmp_path_factory: pytest.TempPathFactory) -> KernelSpecManager:
    """A kernel spec of our own, written by ipykernel for sys.executable, and nothing else: a user's or the
    system's "python3" spec (possibly another interpreter) is never picked."""
    d = tmp_path_factory.mktemp("kernels")
    write_kernel_spec(str(d / KERNEL))
    return KernelSpecManager(kernel_dirs=[str(d)], ensure_native_kernel=False)


def execute(path: Path, out: Path, specs: KernelSpecManager) -> nbformat.NotebookNode:
    """The notebook run in a fresh kernel in the folder ``out``, with SMALL = True and OUT under ``out``."""
    nb = nbformat.read(path, as_version=4)
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: {len(tagged)} cells tagged 'parameters'"
    params = nbformat.v4.new_code_cell(f"SMALL = True\nOUT = {str(out / 'out')!r}")
    params.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(tagged[0] + 1, params)
    km = KernelManager(kernel_name=KERNEL, kernel_spec_manager=specs)
    try:
        NotebookClient(nb, km=km, timeout=900, resources={"metadata": {"path": str(out)}},
                       extra_arguments=["--InteractiveShell.colors=nocolor"]).execute()  # plain tracebacks
    finally:
        if km.has_kernel:
            km.shutdown_kernel(now=True)
    return nb


def stdout(nb: nbformat.NotebookNode, marker: str) -> str:
    """What the one code cell whose source contains ``marker`` printed."""
    cells = [c for c in nb.cells if c.cell_type == "code" and marker in c.source]
    assert len(cells) == 1, f"{len(cells)} code cells contain {marker!r}"
    return "".join(o.text for o in cells[0].outputs if o.output_type == "stream" and o.name == "stdout")


def numbers(text: str) -> list[float]:
    return [float(t) for t in text.replace("[", " ").replace("]", " ").split()]


def g(x: float, digits: int) -> float:
    """x as the notebooks print it with the format spec .<digits>g."""
    return float(f"{x:.{digits}g}")


@pytest.fixture(scope="module")
def run(kernel_specs: KernelSpecManager, tmp_path_factory: pytest.TempPathFactory):
    def _run(stem: str) -> tuple[nbformat.NotebookNode, Path]:
        out = tmp_path_factory.mktemp(stem)
        return execute(next(p for p in NOTEBOOKS if p.stem == stem), out, kernel_specs), out / "out"
    return _run


def test_there_are_six_notebooks() -> None:
    assert [p.name[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04", "05", "06"]


def test_kernel_is_this_interpreter(kernel_specs: KernelSpecManager) -> None:
    assert kernel_specs.get_kernel_spec(KERNEL).argv[0] == sys.executable
    assert list(kernel_specs.find_kernel_specs()) == [KERNEL]


# --- 01: formats ------------------------------------------------------------------------------------------


def float_limits(e: int, m: int, special: str) -> tuple[float, float]:
    """Largest value and smallest subnormal of a float with e exponent and m fraction bits: IEEE (top exponent
    for inf/NaN), OCP fn (only all-ones is NaN) or fnuz (bias 2^(e-1), one NaN code)."""
    bias = 2 ** (e - 1) if special == "fnuz" else 2 ** (e - 1) - 1
    top_exp = 2**e - 2 if special == "ieee" else 2**e - 1
    top_sig = 2 - 2.0 ** (1 - m) if special == "fn" else 2 - 2.0**-m
    return top_sig * 2.0 ** (top_exp - bias), 2.0 ** (1 - bias - m)


def round_float(x: np.ndarray, m: int, emin: int) -> np.ndarray:
    """Round to nearest even onto a float grid with m fraction bits (no overflow in these inputs)."""
    ex = np.maximum(np.floor(np.log2(np.abs(x))), emin)
    step = 2.0 ** (ex - m)
    return np.round(x / step) * step


def float_bits(q: float, e: int, m: int, bias: int) -> str:
    ex = math.floor(math.log2(abs(q)))
    frac = round((abs(q) / 2.0**ex - 1) * 2**m)
    return f"{int(q < 0)}|{ex + bias:0{e}b}|{frac:0{m}b}"


def test_01_formats(run) -> None:
    nb, _ = run("01_formats")

    # the table of ranges: bits, codes, min, max, smallest > 0, step at 1
    lines = stdout(nb, "smallest > 0").splitlines()[1:]
    rows = {ln.split()[0]: numbers(ln.split(None, 1)[1]) for ln in lines}
    expect = {"fx<2,14>": (16, -2.0, 2 - 2.0**-14, 2.0**-14, 2.0**-14),
              "ufx<0,8>": (8, 0.0, 1 - 2.0**-8, 2.0**-8, 2.0**-8)}
    for name, e, m, special in [("e4m3", 4, 3, "fn"), ("e5m2", 5, 2, "ieee"), ("e4m3fnuz", 4, 3, "fnuz"),
                                ("bf16", 8, 7, "ieee"), ("fp16", 5, 10, "ieee"), ("fp<6,7>", 6, 7, "ieee")]:
        mx, tiny = float_limits(e, m, special)
        expect[name] = (1 + e + m, -mx, mx, tiny, 2.0**-m)
    assert set(rows) == set(expect) | {"pow2<-8,0>", "ternary"}
    for name, (bits, lo, hi, tiny, step) in expect.items():
        got = rows[name]
        assert got[:2] == [bits, 2**bits], name
        assert got[2:] == [g(lo, 5), g(hi, 5), g(tiny, 5), g(step, 5)], name
    assert [rows[n][3] for n in ("e4m3", "fp16", "e4m3fnuz")] == [448, 65504, 240]
    # 2^-8 .. 2^0 with either sign, and zero: 19 codes in 5 bits; ternary: 3 codes in 2 bits
    assert rows["pow2<-8,0>"][:5] == [5, 19, -1, 1, g(2.0**-8, 5)]
    assert rows["ternary"][:4] == [2, 3, -1, 1]

    # the values and bit patterns of 0.1, -1/3, 2.5, 300
    x = np.array([0.1, -1.0 / 3, 2.5, 300.0])
    lines = dict(re.findall(r"^(\S+) (\[.*?\] \[.*?\])", stdout(nb, "emu.bits(x, f)"), re.M | re.S))
    fx = np.clip(np.round(x * 64), -128, 127) / 64  # fx<2,6>: step 1/64, saturate to [-2, 2 - 1/64]
    e4m3 = round_float(x, 3, -6)
    bf16 = round_float(x, 7, -126)
    for name, q, pattern in [
        ("fx<2,6>", fx, [f"{int(v * 64) & 0xFF:08b}" for v in fx]),
        ("e4m3", e4m3, [float_bits(v, 4, 3, 7) for v in e4m3]),
        ("bf16", bf16, [float_bits(v, 8, 7, 127) for v in bf16]),
    ]:
        vals, codes = lines[name].split("] [")
        assert numbers(vals) == pytest.approx(q, rel=1e-8), name
        got = re.findall(r"'([01|]+)'", codes)
        if name == "fx<2,6>":
            pattern = [p[:2] + "|" + p[2:] for p in pattern]
        assert got == pattern, name
    assert (e4m3[3], fx[3]) == (288, 1.984375)

    # every rounding mode on fx<4,2> (step 0.25)
    t = np.array([0.125, 0.375, -0.125, -0.375, 0.3]) * 4
    modes = {"nearest_even": np.round(t), "nearest_away": np.sign(t) * np.floor(np.abs(t) + 0.5),
             "nearest_up": np.floor(t + 0.5), "nearest_down": np.ceil(t - 0.5), "floor": np.floor(t),
             "ceil": np.ceil(t), "toward_zero": np.trunc(t)}
    got = {ln.split()[0]: numbers(ln.split(None, 1)[1]) for ln in stdout(nb, "nearest_away").splitlines()}
    assert got == {k: list(v / 4) for k, v in modes.items()}

    # stochastic rounding: the largest bias of the mean over n = 2000 roundings against its standard error
    err, se = re.search(r"largest \|mean - x\|: (\S+) \(standard error about (\S+)\)",
                        stdout(nb, "stochastic")).groups()
    assert se == f"{0.125 / math.sqrt(2000):.1e}"
    assert 0 < float(err) < 6 * 0.125 / math.sqrt(2000)


# --- 02: the accumulator ------------------------------------------------------------------------------------


def fx26(v: np.ndarray) -> np.ndarray:
    return np.clip(np.round(v * 64), -128, 127) / 64


def a2q(k: int, m: int, n: int, signed: bool) -> int:
    """A2Q: the fewest accumulator bits P whose bound ||w||_1 <= (2^(P-1) - 1) 2^(sgn(x) - N) admits every
    K-term vector of M-bit integer weights (||w||_1 up to K 2^(M-1))."""
    return next(p for p in range(2, 64) if k * 2 ** (m - 1) <= (2 ** (p - 1) - 1) * 2.0 ** (int(signed) - n))


def test_02_accumulator(run) -> None:
    nb, _ = run("02_accumulator")

    # 100 + 100 - 100 in an 8-bit integer accumulator, added in sequence
    def sequential(terms: list[int], mode: str) -> tuple[int, int]:
        acc = overflows = 0
        for t in terms:
            acc += t
            if not -128 <= acc <= 127:
                overflows += 1
                acc = (acc + 128) % 256 - 128 if mode == "wrap" else min(max(acc, -128), 127)
        return acc, overflows

    text = stdout(nb, "order in")
    got = {(m, o): (float(y), int(n)) for m, o, y, n in
           re.findall(r"^(\w+)\s+(\w+)\s+y =\s+(\S+)\s+accumulator overflows: (\d+)", text, re.M)}
    assert len(got) == 4
    for mode in ("wrap", "saturate"):
        assert got[mode, "sequential"] == sequential([100, 100, -100], mode)
    assert got["wrap", "pairwise"][0] == 100  # modular: exact whenever the final sum fits, in any order
    assert sequential([100, 100, -100], "saturate") == (27, 1)
    assert re.search(r"^exact: (\S+)$", text, re.M)[1] == "100.0"

    # the share of wrong outputs against the accumulator's integer bits, recomputed with numpy
    rng = np.random.default_rng(0)
    K = 64
    x = fx26(rng.uniform(-1, 1, (128, K)))
    W = fx26(rng.normal(0, 0.3, (K, 32)))
    exact = x @ W  # products have 12 fraction bits: every sum here is exact in float64
    rows = {int(il): (a, b) for il, a, b in re.findall(r"^fx<(\d+),12>\s+(\S+)\s+(\S+)$",
                                                        stdout(nb, "wrap wrong"), re.M)}
    assert sorted(rows) == list(range(2, 10))
    for il, (wrap_wrong, clip_wrong) in rows.items():
        lo, hi = -(2.0 ** (il - 1)), 2.0 ** (il - 1) - 2.0**-12
        assert wrap_wrong == f"{np.mean((exact < lo) | (exact > hi)):.3f}", il
        acc = np.zeros_like(exact)
        for k in range(K):  # saturate after every addition, in sequence
            acc = np.clip(acc + x[:, k, None] * W[None, k, :], lo, hi)
        assert clip_wrong == f"{np.mean(acc != exact):.3f}", il
    assert float(rows[2][1]) > float(rows[2][0]) > 0  # clipping loses more than wrapping

    # sizing: the worst case, A2Q and the actual weights
    text = stdout(nb, "a2q_min_acc_bits")
    prod, k, lossless = re.search(r"product format: (\S+) ; lossless accumulator for K = (\d+) : (\S+)",
                                  text).groups()
    assert (prod, int(k)) == ("fx<4,12>", K)  # 2 + 2 integer bits, 6 + 6 fraction bits
    worst = K * 4 * 2**12  # K products of magnitude up to 2 x 2, in steps of 2^-12
    assert lossless == f"fx<{1 + worst.bit_length() - 12},12>"

    assert [int(v) for v in re.search(r"signed inputs: (\d+) (\d+)", text).groups()] == \
        [a2q(512, 8, 8, False), a2q(512, 8, 8, True)]
    pat = r"AccBound\(int_bits=(\d+), frac_bits=(\d+), n_outputs=(\d+), bound=(\S+)\)"
    il, fl, n_out, bound = re.search(pat, text).groups()
    s = max(sum(Fraction(float(w)) for w in np.abs(W[:, n])) for n in range(32)) * 2  # max|a| = 2
    assert Fraction(bound) == s
    assert (int(il), int(fl), int(n_out)) == (1 + int(s * 2**12).bit_length() - 12, 12, 32)
    assert all(rows[i] == ("0.000", "0.000") for i in rows if i >= int(il))  # that width never overflows


# --- 03: training ---------------------------------------------------------------------------------------


def test_03_training(run) -> None:
    nb, _ = run("03_training")

    est = r"(\S+) % \[(\S+), (\S+)\] \(n=2\)"
    pat = rf"^(float64|fx<4,\d+> \(\d+ bits\))\s+{est}\s+{est}\s+(?:-|{est})\s+(?:-|{est})\s*$"
    found = re.findall(pat, stdout(nb, "fraction_bits_table"), re.M)
    table = {r[0]: [float(v) if v else None for v in r[1:]] for r in found}
    assert list(table) == ["float64"] + [f"fx<4,{b}> ({4 + b} bits)" for b in (6, 10)]
    for row in table.values():  # every estimate is a mean inside its interval, in percent
        for mean, lo, hi in zip(row[0::3], row[1::3], row[2::3], strict=True):
            assert mean is None or lo <= mean <= hi, row
    flt = table["float64"]
    assert flt[0] == flt[3] < 20  # float64 has no rounding mode: the same runs, and they learn the digits
    assert flt[6] is None  # nothing rounds updates in float64
    assert flt[9] is None
    near, sto = table["fx<4,6> (10 bits)"], table["fx<4,10> (14 bits)"]
    assert near[3] < near[0]  # Gupta et al.: a short fraction needs stochastic rounding
    assert near[9] < near[6]  # because nearest rounds more of the small updates to zero
    assert all(abs(v - flt[0]) < 3 for v in (sto[0], sto[3]))  # 10 fraction bits: as float64
    assert "paired differences to float64:" in stdout(nb, "fraction_bits_table")

    text = stdout(nb, "model.describe(policy)")
    assert f"({64 * 32 + 32 + 32 * 10 + 10:,} parameters" in text
    for layer in ("linear1", "relu1", "linear2"):
        assert re.search(rf"^\s+{layer}\s.*\[all roles fx<4,12>/stochastic\]$", text, re.M), layer
    assert 0.85 <= float(re.search(r"^test accuracy \(seed 0, one run\) (\S+)$", text, re.M)[1]) <= 1
    rec = ast.literal_eval(text.strip().splitlines()[-1])
    assert rec["train_loss"] < math.log(10)  # below chance level
    assert 0.85 <= rec["valid_accuracy"] <= 1
    assert 0 < rec["zeroed_update_share"] < 1


# --- 04: hardware cost ----------------------------------------------------------------------------------


def test_04_hardware(run) -> None:
    nb, _ = run("04_hardware")

    table = {op: (float(e), float(a)) for op, e, a in
             re.findall(r"^\s+(\w+)\s+(\S+)\s+(\S+)\s+Horowitz", stdout(nb, 'get_table("horowitz45")'), re.M)}
    assert {op: v for op, v in table.items() if op in H} == {op: (e, a) for op, (e, a) in H.items()}

    # MAC breakdowns: fp32 from the table, bf16 -> fp32 through the float multiplier law
    text = stdout(nb, "costs[:2]")
    fp32, bf16 = text.split("MAC ")[1:]
    total = r"^\s+total\s+(\S+)\s+(\S+)"
    assert re.search(total, fp32, re.M).groups() == (f"{FP32_MAC[0]:.4g}", f"{FP32_MAC[1]:.4g}")
    mult = re.search(r"^\s+multiplier\s+(\S+)\s+(\S+)", bf16, re.M).groups()
    bf = emu.format("bf16")
    e_mul = law_fmul(bf, H["mult_fp16"][0], H["mult_fp32"][0])
    a_mul = law_fmul(bf, H["mult_fp16"][1], H["mult_fp32"][1])
    assert mult == (f"{e_mul:.4g}", f"{a_mul:.4g}")
    assert re.search(total, bf16, re.M).groups() == \
        (f"{e_mul + H['add_fp32'][0]:.4g}", f"{a_mul + H['add_fp32'][1]:.4g}")

    # block-scaled: energy, and storage per element: element bits + an 8-bit scale per block of 32 (16: nvfp4)
    pat = r"^(\w+)\s+(\S+) pJ/MAC.*?(\S+) bits per element$"
    found = re.findall(pat, stdout(nb, "bits_per_element"), re.M)
    blocks = {n: (float(e), float(b)) for n, e, b in found}
    assert {n: b for n, (_, b) in blocks.items()} == {"mxfp8": 8 + 8 / 32, "mxfp4": 4 + 8 / 32,
                                                      "nvfp4": 4 + 8 / 16}
    assert blocks["mxfp4"][0] < blocks["mxfp8"][0]
    assert blocks["nvfp4"][0] < blocks["mxfp8"][0]

    # accumulator sizing: the widths from their formulas, the cost from the add_int points
    rules = re.findall(r"^(.+?)\s+(\d+) bits\s+(\S+) pJ\s+(\S+) um\^2$", stdout(nb, "qtools_acc_bits"), re.M)
    qtools = math.ceil(math.log2(512)) + 8 + 8
    widths = {"QTools worst case": qtools, "A2Q (unsigned x)": a2q(512, 8, 8, False),
              "A2Q (signed x)": a2q(512, 8, 8, True), "fp32 accumulator width": 32}
    assert [r[0] for r in rules] == list(widths)
    for name, bits, e, a in rules:
        w = widths[name]
        assert int(bits) == w, name
        assert (e, a) == (f"{law_int_adder(w, H_ADD_E):.4f}", f"{law_int_adder(w, H_ADD_A):.0f}"), name

    # energy per inference of the 64-32-10 MLP: the float64 baseline priced as fp32 by hand; its 2410 x 32 =
    # 77120 weight bits exceed the 8 KB SRAM (65536 bits): weight_memory="auto" reads them from the 32 KB one
    macs, weights = 64 * 32 + 32 * 10, 64 * 32 + 32 + 32 * 10 + 10
    acts = 64 + 32 + 32 + 10  # each layer's inputs and outputs, once through the 32 KB SRAM
    base_pj = macs * FP32_MAC[0] + weights * 32 * 20 / 64 + acts * 32 * 20 / 64
    text = stdout(nb, "pareto_front")
    runs = {n: (float(acc), float(nj), float(s)) for n, acc, nj, s in
            re.findall(r"^(.+?)\s+accuracy (\S+)\s+(\S+) nJ\s+speedup\s+(\S+)x$", text, re.M)}
    assert list(runs) == ["float64 (fp32 hw)", "bf16", "mxfp4 / mxfp8_e5m2", "fx<4,12>", "fx<4,6> SR",
                          "fx<2,4> SR"]
    acc, nj, speedup = runs.pop("float64 (fp32 hw)")
    assert (nj, speedup) == (round(base_pj / 1e3, 2), 1.0)
    assert 0.7 <= acc <= 1  # one epoch
    for name, (acc, e, s) in runs.items():
        assert 0.7 <= acc <= 1, name
        assert e < nj, name
        assert s > 1, name
    assert re.search(r"^linear1\s+(\d+)", text, re.M)[1] == str(64 * 32)
    assert re.search(r"^linear2\s+(\d+)", text, re.M)[1] == str(32 * 10)
    assert f"; fp32: {base_pj / 1e3:.4g} nJ" in text

    # Hill et al.'s formats: both laws (multiplier and adder) against the fp32 MAC; area x delay with the
    # critical paths counted in gate levels from docs/hwmodel.md section 2
    pat = r"^(fp<6,\d>): speedup at equal area (\S+)x, area x delay (\S+)x, energy saving (\S+)x$"
    hill = re.findall(pat, stdout(nb, "energy saving"), re.M)
    assert [h[0] for h in hill] == ["fp<6,7>", "fp<6,8>"]
    for name, s, s_ad, saving in hill:
        e, a = law_fp_mac(emu.format(name))
        ad = FP32_MAC[1] * fp_mac_levels(emu.format("fp32")) / (a * fp_mac_levels(emu.format(name)))
        assert (s, s_ad, saving) == (f"{FP32_MAC[1] / a:.2f}", f"{ad:.2f}", f"{FP32_MAC[0] / e:.2f}")

    # SIMD kernels: the model's MACs per cycle and bound
    simd = {(k, isa, int(n)): (float(r), b) for k, isa, n, r, b in
            re.findall(r"^(f32|i8)\s+(\w+)\s+(\d+)\s+(\S+)\s+(\w+)", stdout(nb, "simd.compare"), re.M)}
    assert list(simd) == [("f32", "sse2", 1), ("f32", "sse2", 4), ("i8", "ssse3", 1), ("i8", "ssse3", 4)]
    # 4 lanes per addps, and one addps each 4 cycles on one chain (its latency on Skylake)
    assert simd["f32", "sse2", 1] == (4 / 4, "latency")
    for kernel, isa in (("f32", "sse2"), ("i8", "ssse3")):
        assert simd[kernel, isa, 4][0] > simd[kernel, isa, 1][0]  # independent accumulators help
    for n in (1, 4):
        assert simd["i8", "ssse3", n][0] > simd["f32", "sse2", n][0]  # Vanhoucke et al.: 8-bit is faster


# --- 05: the sweep ----------------------------------------------------------------------------------------


def test_05_sweep(run) -> None:
    import json

    from scipy import stats

    from tests.hwmodel.test_hwmodel import FP32_LEVELS, fadd_levels, fmul_levels

    nb, out = run("05_sweep")
    report = stdout(nb, "main_job")
    assert "8 points: 8 done, 0 diverged, 0 failed; 4 configurations at seeds 0-1." in report
    assert "8 points in the sweep, 0 taken from the store, 8 done now, 0 diverged now, 0 failed now" in report

    # the table: MLP 64-8-10, one row per configuration over seeds 0 and 1
    cols = ["seeds", "acc", "vs", "verdict", "energy", "compute", "memory", "wmem", "area", "speedup",
            "speedup_ad", "ovf", "zeroed"]
    rows = {}
    for ln in report.splitlines():
        cells = [c.strip() for c in ln.strip().strip("|").split("|")]
        if len(cells) == 14 and cells[1] == "0-1":
            rows[cells[0]] = dict(zip(cols, cells[1:], strict=True))
    assert set(rows) == {"float64", "fx<4,8> stochastic", "bf16", "fx<2,6> acc fx<4,12> wrap"}

    macs, weights, acts = 64 * 8 + 8 * 10, 64 * 8 + 8 + 8 * 10 + 10, [64, 8, 8, 10]
    # float64 counts as fp32: 4.6 pJ per MAC; 19520 weight bits fit the 8 KB SRAM (10 pJ per 64 bits)
    f = rows["float64"]
    compute, memory = macs * FP32_MAC[0], weights * 32 * 10 / 64 + sum(acts) * 32 * 20 / 64
    assert [float(f[c]) for c in ("energy", "compute", "memory", "area", "speedup", "speedup_ad")] == \
        [g(compute + memory, 4), g(compute, 4), g(memory, 4), g(256 * FP32_MAC[1], 4), 1.0, 1.0]
    assert {r["wmem"] for r in rows.values()} == {"sram_8kb"}
    # fx<2,6> x fx<2,6> into a 16-bit accumulator: the 8x8 multiplier and the 16-bit adder of the table;
    # 8-bit weights and inputs, outputs in the 16-bit accumulator's format
    w = rows["fx<2,6> acc fx<4,12> wrap"]
    compute = macs * (H["mult_int8"][0] + H["add_int16"][0])
    memory = weights * 8 * 10 / 64 + (64 * 8 + 8 * 16 + 8 * 8 + 10 * 16) * 20 / 64
    assert [float(w[c]) for c in ("energy", "compute", "memory")] == [g(compute + memory, 4), g(compute, 4),
                                                                       g(memory, 4)]
    # bf16 x bf16 -> fp32: the area law of the multiplier plus the fp32 adder; the critical path of the
    # bf16 multiplier and the fp32 adder
    bf = law_fmul(emu.format("bf16"), H["mult_fp16"][1], H["mult_fp32"][1]) + H["add_fp32"][1]
    assert rows["bf16"]["speedup"] == f"{FP32_MAC[1] / bf:.3g}"
    bf_levels = fmul_levels(8, 8) + fadd_levels(8, 23)
    assert rows["bf16"]["speedup_ad"] == f"{FP32_MAC[1] / bf * FP32_LEVELS / bf_levels:.3g}"

    # accuracy over the two seeds and the paired differences, from the store, with the t interval
    db = sqlite3.connect(out / "sweep.sqlite")
    try:
        status = db.execute("select status, count(*) from points group by status").fetchall()
        acc = {}
        for params, a in db.execute("select params, test_accuracy from points"):
            pm = json.loads(params)
            name = pm["format"] + (" stochastic" if pm["rounding"] == "stochastic" else "") + (
                f" acc {pm['acc']} {pm['acc_overflow']}" if pm["acc"] else "")
            acc.setdefault(name, {})[pm["seed"]] = a
    finally:
        db.close()
    assert status == [("done", 8)]
    t1 = stats.t.ppf(0.975, 1)

    def interval(values: list[float]) -> tuple[float, float, float]:
        m, half = np.mean(values), t1 * np.std(values, ddof=1) / np.sqrt(2)
        return m, m - half, m + half

    for name, r in rows.items():
        m, lo, hi = interval([acc[name][0], acc[name][1]])
        assert r["acc"] == f"{100 * m:.2f} % [{100 * lo:.2f}, {100 * hi:.2f}] (n=2)", name
        if name == "float64":
            assert (r["vs"], r["verdict"]) == ("", "baseline")
            continue
        m, lo, hi = interval([acc[name][s] - acc["float64"][s] for s in (0, 1)])
        pts = lambda x: f"{round(100 * x, 2) + 0.0:+.2f}"  # noqa: E731
        assert r["vs"] == f"{pts(m)} [{pts(lo)}, {pts(hi)}]", name
        assert r["verdict"] == ("within" if lo >= -0.01 else "outside" if hi < -0.01 else "cannot tell"), name

    # the baseline, and the cheapest configuration whose paired interval lies above -1 point
    pat = r"Baseline: \*\*float64\*\*, test accuracy (.+?), seeds 0-1, energy (\S+) pJ"
    base_acc, base_e = re.search(pat, report).groups()
    assert (base_acc, base_e) == (f["acc"], f["energy"])
    ok = [n for n, r in rows.items() if r["verdict"] in ("within", "baseline")]
    cheapest = min(ok, key=lambda n: float(rows[n]["energy"]))
    if cheapest == "float64":
        assert "**No configuration cheaper than the baseline is shown to be within 1 point(s)" in report
    else:
        pat = r"\*\*Cheapest within 1 point\(s\) of the baseline's accuracy: (.+?)\*\*"
        assert re.search(pat, report)[1] == cheapest
    undecided = sorted((n for n, r in rows.items() if r["verdict"] == "cannot tell"
                        and float(r["energy"]) < float(rows[cheapest]["energy"])),
                       key=lambda n: float(rows[n]["energy"]))
    if undecided:
        line = next(ln for ln in report.splitlines()
                    if ln.startswith("Cheaper, but the data cannot separate"))
        listed = line.split("more seeds would decide): ", 1)[1].split("; ")
        assert [re.sub(r" \([-+].*$", "", x) for x in listed] == undecided

    # accumulator bits per layer, fx<2,6> operands: the exactness bounds (a signed format holds v iff
    # 2^(IL-1) > v), then de Bruin et al.'s LB_wrap / LB_clip, whose accuracies keep 99 % of the float one
    # at LB and not at LB - 1 (accuracies are counts of the 270 test images, printed to 4 decimals)
    assert "| layer | K | exact_final_bits | exact_partial_bits | max final | max partial |" in report
    exact = {}
    for layer, k, final_bits, partial_bits, fin, part in re.findall(
            r"^\| (linear\d) \| (\d+) \| (\d+) \| (\d+) \| (\S+) \| (\S+) \|$", report, re.M):
        assert int(k) == {"linear1": 64, "linear2": 8}[layer]
        assert int(final_bits) == math.floor(math.log2(float(fin))) + 2, layer
        assert int(partial_bits) == math.floor(math.log2(float(part))) + 2, layer
        exact[layer] = (int(final_bits), int(partial_bits))
    assert list(exact) == ["linear1", "linear2"]
    from nets.datasets import digits
    from nets.stats import proportion_ci

    n = len(digits(seed=0).test)

    def count(text: str) -> int:
        """The images of an accuracy cell "0.9556 [0.9239, 0.9744]", its Wilson interval checked."""
        acc, lo, hi = re.fullmatch(r"(\S+) \[(\S+), (\S+)\]", text).groups()  # type: ignore[union-attr]
        k = round(float(acc) * n)
        e = proportion_ci(k, n)
        assert (lo, hi) == (f"{e.lo:.4f}", f"{e.hi:.4f}"), text
        return k

    acc, below = r"(\S+ \[\S+, \S+\])", r"(-|\S+ \[\S+, \S+\])"
    pat = (rf"^\| (linear\d) \| (\d+) \| (\d+) \| {acc} \| (-?\d+) \| {acc} / {below} \| (-?\d+) \| {acc} /"
           rf" {below} \|$")
    lbs = re.findall(pat, report, re.M)
    assert [r[0] for r in lbs] == ["linear1", "linear2"]
    for layer, k, fl, ref, lb_wrap, at_w, below_w, lb_clip, at_c, below_c in lbs:
        assert (int(k), int(fl)) == ({"linear1": 64, "linear2": 8}[layer], 6 + 6)
        ref_acc = count(ref) / n
        for lb, at, below, bound in ((lb_wrap, at_w, below_w, exact[layer][0]),
                                     (lb_clip, at_c, below_c, exact[layer][1])):
            assert 1 - int(fl) <= int(lb) <= bound, layer
            assert count(at) / n >= 0.99 * ref_acc, layer
            if below == "-":
                assert int(lb) == 1 - int(fl), layer  # the one-bit word: nothing narrower to try
            else:
                assert count(below) / n < 0.99 * ref_acc, layer

    # the figures that apply, under the injected output folder, and a sentence for each that does not
    figures = re.findall(r"!\[(\S+\.png)\]", report)
    assert figures == ["pareto_energy.png", "pareto_area.png", "training_curves.png",
                       "representation_error.png"]
    for fig in figures:
        assert (out / fig).stat().st_size > 1000, fig
    omitted = re.findall(r"^- (\S+\.png) omitted: (.+)$", report, re.M)
    assert [o[0] for o in omitted] == ["accuracy_vs_word_length.png", "accumulator_study.png"]
    assert "one word length per rounding (12 bits)" in omitted[0][1]  # fx<4,8>: the sweep's one fixed format
    assert "(wrap: 16 bits)" in omitted[1][1]  # fx<4,12>: its one accumulator
    for fig, _ in omitted:
        assert not (out / fig).exists(), fig
    # the figure cell draws inline (the module leaves the backend alone) and says what applies
    cell = next(c for c in nb.cells if c.cell_type == "code" and "figure_plan" in c.source)
    assert sum("image/png" in o.get("data", {}) for o in cell.outputs) == 2
    assert "accumulator_study.png does not apply" in stdout(nb, "figure_plan")


# --- 06: matrix units -------------------------------------------------------------------------------------


def test_06_matrix_units(run) -> None:
    """The printed errors are recomputed here with the exact twin of the fused unit (`emu._ref.fused`, Python
    integers) on the same operands, and fp32 additions for the promotion; the notebook's claims hold: the
    unit's error grows with K, the promoted one stays at a 128-term chunk's."""
    from emu._ref.fused import fused_dot_ref

    nb, out = run("06_matrix_units")
    assert (out / "fp8_accumulation.png").stat().st_size > 0
    text = stdout(nb, "def promoted(")
    table = [numbers(line) for line in text.splitlines()[2:]]
    assert [int(r[0]) for r in table] == [128, 512, 2048]
    unit = emu.mac_preset("H100 e4m3 -> fp32")
    rng = np.random.default_rng(0)
    for K, err_unit, err_prom in table:
        a = emu.quantize(rng.uniform(0, 1, (8, int(K))), "e4m3")
        w = emu.quantize(rng.uniform(0, 1, (int(K), 4)), "e4m3")
        exact = a @ w
        ref = np.array([[fused_dot_ref(list(a[i]), list(w[:, j]), 0.0, unit)[0] for j in range(4)]
                        for i in range(8)])
        prom = np.zeros((8, 4), np.float32)
        for c in range(0, int(K), 128):
            prom = prom + np.array([[fused_dot_ref(list(a[i, c:c + 128]), list(w[c:c + 128, j]), 0.0, unit)[0]
                                     for j in range(4)] for i in range(8)], np.float32)
        assert float(f"{np.mean(np.abs(ref - exact) / exact):.3e}") == err_unit
        assert float(f"{np.mean(np.abs(prom.astype(np.float64) - exact) / exact):.3e}") == err_prom
    unit_errs, prom_errs = [r[1] for r in table], [r[2] for r in table]
    assert unit_errs == sorted(unit_errs)
    assert unit_errs[-1] > 10 * unit_errs[0]
    assert max(prom_errs) < 2 * prom_errs[0] < unit_errs[-1]
    # the binary16-output mma.sync unit on the same operands: the twin again (with the instruction's order
    # and late C), and the claim that it beats the fp32-output unit at every K of the table
    text16 = stdout(nb, "fp16_unit = ")
    assert text16.splitlines()[0] == str(emu.mac_preset("H100 e4m3 -> fp16"))
    table16 = [numbers(line) for line in text16.splitlines()[2:]]
    fp16_unit = emu.mac_preset("H100 e4m3 -> fp16")
    rng = np.random.default_rng(0)
    for (K, err16, err32), (K0, err_unit, _) in zip(table16, table, strict=True):
        assert (K, err32) == (K0, err_unit)
        a = emu.quantize(rng.uniform(0, 1, (8, int(K))), "e4m3")
        w = emu.quantize(rng.uniform(0, 1, (int(K), 4)), "e4m3")
        exact = a @ w
        ref = np.array([[fused_dot_ref(list(a[i]), list(w[:, j]), 0.0, fp16_unit)[0] for j in range(4)]
                        for i in range(8)])
        assert float(f"{np.mean(np.abs(ref - exact) / exact):.3e}") == err16
        assert err16 < err32
