"""Golden vectors (`emu.golden`): the file's records checked against independent computations (Python
integers for fixed point, Fractions rounded by hand for floats and fused matrix-unit steps), round trips
through `compare`, wrong dumps located at the altered step, malformed dumps and refused datapaths."""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

import emu
from emu import golden

# -- an independent reader of the file and independent arithmetic ----------------------------------


def parse(path: Path) -> dict[tuple[int, int], dict]:
    """The records of a golden file, by dot product: operand codes, start code, steps, output."""
    dots: dict[tuple[int, int], dict] = {}
    for line in path.read_text().splitlines():
        f = line.split(" ")
        if f[0] == "dot":
            kv = dict(x.split("=") for x in f[3:])
            dots[int(f[1]), int(f[2])] = {"a": [int(x, 16) for x in kv["a"].split(",")],
                                          "w": [int(x, 16) for x in kv["w"].split(",")],
                                          "c": int(kv["c"], 16), "steps": [], "ovf": [], "povf": []}
        elif f[0] == "step":
            d = dots[int(f[1]), int(f[2])]
            assert int(f[3]) == len(d["steps"]) + 1
            kv = dict(x.split("=") for x in f[4:])
            d["steps"].append(int(kv["acc"], 16))
            d["ovf"].append(int(kv["ovf"]))
            d["povf"].append(int(kv["povf"]))
        elif f[0] == "out":
            d = dots[int(f[1]), int(f[2])]
            d["out"] = int(f[3], 16)
            d["out_ovf"] = int(f[4].split("=")[1])
    return dots


def signed(code: int, bits: int) -> int:
    return code - (1 << bits) if code >> (bits - 1) else code


def fixed_chain(terms: list[int], start: int, bits: int, mode: str) -> tuple[list[int], list[int]]:
    """Codes of the accumulator after every addition of integer terms, and the overflow flags."""
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    acc, states, flags = start, [], []
    for t in terms:
        s = acc + t
        flags.append(int(not lo <= s <= hi))
        if mode == "wrap":
            acc = (s - lo) % (1 << bits) + lo
        else:
            acc = min(max(s, lo), hi)
        states.append(acc & ((1 << bits) - 1))
    return states, flags


def floor_log2(x: Fraction) -> int:
    e = x.numerator.bit_length() - x.denominator.bit_length()
    return e - 1 if Fraction(2) ** e > x else e


def round_float(x: Fraction, p: int, emin: int, emax: int, mode: str, overflow: str) -> tuple[Fraction, bool]:
    """x rounded to a binary float of p significand bits (nearest even or toward zero); (value,
    overflowed); an overflow gives the largest finite value (saturate) or None (inf)."""
    if x == 0:
        return Fraction(0), False
    ax = abs(x)
    ulp = Fraction(2) ** (max(floor_log2(ax), emin) - p + 1)
    q = ax / ulp
    n = q.numerator // q.denominator
    r = q - n
    if mode == "even" and (r > Fraction(1, 2) or (r == Fraction(1, 2) and n % 2)):
        n += 1
    v = n * ulp
    big = (2 - Fraction(2) ** (1 - p)) * Fraction(2) ** emax
    if v > big:
        return (big if overflow == "saturate" else None), True  # type: ignore[return-value]
    return (v if x > 0 else -v), False


def fp32_code(v: Fraction | None) -> int:
    x = np.float32(np.inf) if v is None else np.float32(float(v))
    assert v is None or Fraction(float(x)) == v
    return int(np.array(x).view(np.uint32))


def bf16_code(v: Fraction | None) -> int:
    return fp32_code(v) >> 16


def fp16_value(code: int) -> Fraction:
    return Fraction(float(np.array(code, np.uint16).view(np.float16)))


def bf16_value(code: int) -> Fraction:
    return Fraction(float(np.array(code << 16, np.uint32).view(np.float32)))


def fp32_value(code: int) -> Fraction:
    return Fraction(float(np.array(code, np.uint32).view(np.float32)))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261202)


# -- round trips, states checked independently ------------------------------------------------------


@pytest.mark.parametrize("mode", ["wrap", "saturate"])
def test_fixed_states_are_python_integer_sums(tmp_path: Path, rng: np.random.Generator, mode: str) -> None:
    mac = emu.MAC(act="int8", weight="int8", acc="fx<12,0>", acc_overflow=mode)
    a, w = rng.integers(-128, 128, size=(3, 20)), rng.integers(-128, 128, size=(20, 4))
    bias = rng.integers(-2000, 2000, size=4)
    path = tmp_path / "fixed.golden"
    assert golden.write(mac, a, w, path, bias=bias) == 3 * 4 * 22
    dots = parse(path)
    assert sorted(dots) == [(i, j) for i in range(3) for j in range(4)]
    total_ovf = 0
    for (i, j), d in dots.items():
        assert d["a"] == [int(x) & 0xFF for x in a[i]]
        assert d["w"] == [int(x) & 0xFF for x in w[:, j]]
        assert d["c"] == int(bias[j]) & 0xFFF
        terms = [int(x) * int(y) for x, y in zip(a[i], w[:, j], strict=True)]
        states, flags = fixed_chain(terms, int(bias[j]), 12, mode)
        assert d["steps"] == states
        assert d["ovf"] == flags
        assert d["povf"] == [0] * 20
        assert d["out"] == states[-1]
        assert d["out_ovf"] == 0
        total_ovf += sum(flags)
    assert total_ovf > 10  # the overflow events are exercised
    assert golden.compare(path, path).ok


def test_fixed_alignment_and_output_conversion(tmp_path: Path, rng: np.random.Generator) -> None:
    """fx<1,7> x fx<1,7> products (14 fraction bits) floored to fx<4,8>, output rounded to fx<2,6>."""
    mac = emu.MAC(act="fx<1,7>", weight="fx<1,7>", acc="fx<4,8>", acc_overflow="saturate",
                  output="fx<2,6>", output_overflow="saturate")
    a, w = rng.integers(-128, 128, size=(2, 16)) / 128, rng.integers(-128, 128, size=(16, 3)) / 128
    path = tmp_path / "align.golden"
    golden.write(mac, a, w, path, c=0.75)
    for (i, _j), d in parse(path).items():
        terms = [(signed(x, 8) * signed(y, 8)) >> 6 for x, y in zip(d["a"], d["w"], strict=True)]
        assert d["c"] == 0.75 * 256
        states, flags = fixed_chain(terms, 192, 12, "saturate")
        assert d["steps"] == states
        assert d["ovf"] == flags
        q = Fraction(signed(states[-1], 12), 4)  # fx<4,8> -> fx<2,6>: round to nearest even, saturate
        n = round(q)
        assert d["out"] == min(max(n, -128), 127) & 0xFF
        assert d["out_ovf"] == int(not -128 <= n <= 127)
        assert d["a"] == [int(x * 128) & 0xFF for x in a[i]]


def test_docstring_example_wraps(tmp_path: Path) -> None:
    path = tmp_path / "wrap.golden"
    golden.write("int8 x int8 -> int16 sat", [120, 120, 120, -128], [120, 120, 120, 127], path,
                 steps=True)
    assert parse(path)[0, 0]["steps"] == [0x3840, 0x7080, 0x7FFF, 0x407F]
    mac = emu.mac_preset("int8 x int8 -> int16 sat", acc_overflow="wrap")
    golden.write(mac, [120, 120, 120, -128], [120, 120, 120, 127], path)
    d = parse(path)[0, 0]
    assert d["steps"] == [0x3840, 0x7080, 0xA8C0, 0x6940]
    assert d["ovf"] == [0, 0, 1, 1]


def test_fp16_fma_into_fp32_rounds_every_addition(tmp_path: Path, rng: np.random.Generator) -> None:
    mac = emu.mac_preset("fp16 x fp16 -> fp32")  # fused=True: exact products, one rounding per addition
    a, w = rng.normal(size=(2, 24)), rng.normal(size=(24, 2)) * 2.0 ** rng.integers(-8, 8, size=(24, 2))
    path = tmp_path / "fp16.golden"
    golden.write(mac, a, w, path, c=[[0.1, -3.0], [1e-3, 7.0]])
    for d in parse(path).values():
        acc = fp32_value(d["c"])
        want = []
        for x, y in zip(d["a"], d["w"], strict=True):
            acc, ovf = round_float(acc + fp16_value(x) * fp16_value(y), 24, -126, 127, "even", "inf")
            assert not ovf
            want.append(fp32_code(acc))
        assert d["steps"] == want
        assert d["out"] == want[-1]


def test_bf16_accumulator_rounds_products_then_sums(tmp_path: Path, rng: np.random.Generator) -> None:
    mac = emu.MAC(act="bf16", weight="bf16", acc="bf16")
    a, w = rng.normal(size=(3, 30)), rng.normal(size=(30, 2))
    path = tmp_path / "bf16.golden"
    golden.write(mac, a, w, path)
    for d in parse(path).values():
        acc = Fraction(0)
        want = []
        for x, y in zip(d["a"], d["w"], strict=True):
            p, _ = round_float(bf16_value(x) * bf16_value(y), 8, -126, 127, "even", "inf")
            acc, _ = round_float(acc + p, 8, -126, 127, "even", "inf")
            want.append(bf16_code(acc))
        assert d["steps"] == want


def test_bf16_overflow_events_are_at_their_steps(tmp_path: Path) -> None:
    """Saturating bf16: a product overflow at step 2 (1e20 * 1e20), an addition overflow at step 4."""
    mac = emu.MAC(act="bf16", weight="bf16", acc="bf16", acc_overflow="saturate")
    a, w = [1.0, 1e20, -1.0, 2e38, 1.0], [1.0, 1e20, 1.0, 1.0, -1e38]
    path = tmp_path / "bf16ovf.golden"
    golden.write(mac, a, w, path)
    d = parse(path)[0, 0]
    assert d["povf"] == [0, 1, 0, 0, 0]
    assert d["ovf"] == [0, 0, 0, 1, 0]
    assert d["steps"][1] == d["steps"][3] == 0x7F7F  # bf16's largest finite value
    assert golden.compare(path, path).ok


def fused_step(terms: list[tuple[Fraction, int]], c: Fraction, F: int) -> Fraction:
    """One H100 fp16 -> fp32 step by hand: align to the largest exponent, truncate to 2^(E - F), sum
    exactly, round toward zero into fp32."""
    live = [(v, e) for v, e in terms if v != 0] + ([(c, max(floor_log2(abs(c)), -126))] if c else [])
    if not live:
        return Fraction(0)
    unit = Fraction(2) ** (max(e for _, e in live) - F)
    total = sum(int(v / unit) for v, _ in live)  # int() truncates toward zero
    v, _ = round_float(total * unit, 24, -126, 127, "zero", "inf")
    return v


def test_h100_fused_steps_match_a_hand_computation(tmp_path: Path, rng: np.random.Generator) -> None:
    mac = emu.mac_preset("H100 fp16 -> fp32")
    n, F = mac.order.n, mac.align_bits
    K = 3 * n + 5  # three full steps and a short one
    a = rng.normal(size=(2, K)) * 2.0 ** rng.integers(-10, 10, size=(2, K))
    w = rng.normal(size=(K, 2))
    path = tmp_path / "h100.golden"
    golden.write(mac, a, w, path, c=2.0**-20)
    for d in parse(path).values():
        assert len(d["steps"]) == 4
        acc = fp32_value(d["c"])
        want = []
        for k0 in range(0, K, n):
            terms = []
            for x, y in zip(d["a"][k0:k0 + n], d["w"][k0:k0 + n], strict=True):
                vx, vy = fp16_value(x), fp16_value(y)
                ex = max(floor_log2(abs(vx)), -14) if vx else 0
                ey = max(floor_log2(abs(vy)), -14) if vy else 0
                terms.append((vx * vy, ex + ey))
            acc = fused_step(terms, acc, F)
            want.append(fp32_code(acc))
        assert d["steps"] == want
        assert d["out"] == want[-1]
    assert golden.compare(path, path).ok


def e4m3_value(code: int) -> Fraction:
    """An OCP e4m3 code's value (finite codes): sign, 4 exponent bits (bias 7), 3 fraction bits."""
    e, f = (code >> 3) & 0xF, code & 7
    v = Fraction(f, 8) * Fraction(2) ** -6 if e == 0 else (1 + Fraction(f, 8)) * Fraction(2) ** (e - 7)
    return -v if code & 0x80 else v


def fp16_step(terms: list[tuple[Fraction, int]], c: Fraction, F: int) -> Fraction:
    """One binary16 fused step by hand: align to the largest exponent, truncate to 2^(E - F), sum exactly,
    round to nearest even into binary16."""
    live = [(v, e) for v, e in terms if v != 0] + ([(c, max(floor_log2(abs(c)), -14))] if c else [])
    if not live:
        return Fraction(0)
    unit = Fraction(2) ** (max(e for _, e in live) - F)
    v, _ = round_float(sum(int(v / unit) for v, _ in live) * unit, 11, -14, 15, "even", "inf")
    return v


def fp16_code(v: Fraction) -> int:
    x = np.float16(float(v))
    assert Fraction(float(x)) == v
    return int(np.array(x).view(np.uint16))


def test_an_instruction_writes_its_own_steps(tmp_path: Path, rng: np.random.Generator) -> None:
    """H100 e4m3 -> fp16 (`emu.Instruction`: 32 products as two binary16 steps over the low and the high
    byte pairs of the fp8 registers, C added last), K = 40: two instructions (the second padded with
    zeros), each with its two steps' sums from +0 and the accumulator after its C, by hand."""
    mac = emu.mac_preset("H100 e4m3 -> fp16")
    order, F = mac.instruction.k_order, mac.align_bits
    a = rng.normal(size=(2, 40))
    w = rng.normal(size=(40, 2))
    path = tmp_path / "fp8.golden"
    golden.write(mac, a, w, path, c=[[0.75, -3.0]])
    assert "// steps S 6 n 16" in path.read_text()
    for d in parse(path).values():
        av = [e4m3_value(x) for x in d["a"]] + [Fraction(0)] * 24
        wv = [e4m3_value(x) for x in d["w"]] + [Fraction(0)] * 24
        acc, want, flags = fp16_value(d["c"]), [], []
        for k0 in (0, 32):
            s = Fraction(0)
            for half in (order[:16], order[16:]):
                terms = [(av[k0 + k] * wv[k0 + k], max(floor_log2(abs(av[k0 + k])), -6)
                          + max(floor_log2(abs(wv[k0 + k])), -6)) for k in half if av[k0 + k] * wv[k0 + k]]
                s = fp16_step(terms, s, F)
                want.append(fp16_code(s))
            acc, over = round_float(acc + s, 11, -14, 15, "even", "inf")
            want.append(fp16_code(acc))
            flags += [0, 0, int(over)]
        assert d["steps"] == want
        assert d["ovf"] == flags
        assert d["out"] == want[-1]
    assert golden.compare(path, path).ok
    rtl = tmp_path / "rtl.txt"
    rtl.write_text("\n".join(altered(records(path), "step 1 1 5", "acc", "3c00")))
    (m,) = golden.compare(path, rtl)
    assert (m.i, m.j, m.step, m.got) == (1, 1, 5, "3c00")


def test_an_instruction_with_its_addend_first_chains_through_its_order(tmp_path: Path,
                                                                       rng: np.random.Generator) -> None:
    """An instruction of 4 products in the order (3, 1, 0, 2), 2 per step, C first, K = 6 (padded to 8):
    step s is the fused chain over the first 2 s products in that order, by the twin `emu._ref.fused`."""
    from emu._ref.fused import fused_dot_ref

    mac = emu.MAC(act="fp16", weight="fp16", acc="fp16", order="fused(2)", align_bits=12,
                  align_rounding="toward_zero", instruction=emu.Instruction(4, (3, 1, 0, 2)))
    plain = emu.MAC(act="fp16", weight="fp16", acc="fp16", order="fused(2)", align_bits=12,
                    align_rounding="toward_zero")
    path = tmp_path / "ins.golden"
    golden.write(mac, rng.normal(size=(2, 6)) * 8, rng.normal(size=(6, 3)), path, bias=[0.5, -1.0, 3.0])
    assert "// steps S 4 n 2" in path.read_text()
    for d in parse(path).values():
        av = [float(fp16_value(x)) for x in d["a"]] + [0.0, 0.0]
        wv = [float(fp16_value(x)) for x in d["w"]] + [0.0, 0.0]
        pos = [k0 + k for k0 in (0, 4) for k in (3, 1, 0, 2)]
        c = float(fp16_value(d["c"]))
        want = [fp16_code(Fraction(fused_dot_ref([av[k] for k in pos[:t]], [wv[k] for k in pos[:t]], c,
                                                 plain)[0])) for t in (2, 4, 6, 8)]
        assert d["steps"] == want
        assert d["out"] == want[-1]
    assert golden.compare(path, path).ok


def test_vectors_dot_and_steps_false(tmp_path: Path) -> None:
    path = tmp_path / "dot.golden"
    assert golden.write("int8 x int8 -> int32", [1, 2, 3], [4, 5, 6], path, steps=False) == 2
    lines = [x for x in path.read_text().splitlines() if not x.startswith("//")]
    assert lines == ["dot 0 0 a=01,02,03 w=04,05,06 c=00000000", "out 0 0 00000020 ovf=0"]
    assert "// shape M 1 K 3 N 1" in path.read_text()
    assert golden.compare(path, path).compared == ("dot", "out")


# -- wrong dumps ------------------------------------------------------------------------------------


def records(path: Path) -> list[str]:
    return path.read_text().splitlines()


def altered(lines: list[str], start: str, field: str, value: str) -> list[str]:
    """The lines with ``field=<hex>`` (or the out code) of the record starting ``start`` replaced."""
    out = []
    for line in lines:
        if line.startswith(start + " "):
            line = (re.sub(rf"{field}=\w+", f"{field}={value}", line) if field
                    else " ".join([*line.split(" ")[:3], value, *line.split(" ")[4:]]))
        out.append(line)
    return out


@pytest.fixture
def written(tmp_path: Path, rng: np.random.Generator) -> Path:
    mac = emu.MAC(act="int8", weight="int8", acc="fx<16,0>", acc_overflow="wrap")
    path = tmp_path / "mac.golden"
    golden.write(mac, rng.integers(-128, 128, size=(3, 10)), rng.integers(-128, 128, size=(10, 4)), path)
    return path


def test_a_wrong_step_is_found_at_that_step(written: Path, tmp_path: Path) -> None:
    lines = records(written)
    d = parse(written)[1, 2]
    bad = (d["steps"][6] + 1) & 0xFFFF
    dump = altered(lines, "step 1 2 7", "acc", f"{bad:04x}")
    # the RTL's later steps and output diverge too; the first divergence is step 7
    dump = altered(dump, "step 1 2 9", "acc", "0000")
    dump = altered(dump, "out 1 2", "", "beef")
    rtl = tmp_path / "rtl.txt"
    rtl.write_text("\n".join(dump) + "\n")
    report = golden.compare(written, rtl)
    assert len(report) == 1
    assert not report.ok
    (m,) = report
    assert (m.i, m.j, m.where, m.step, m.field) == (1, 2, "step", 7, "acc")
    assert m.expected == f"{d['steps'][6]:04x}"
    assert m.got == f"{bad:04x}"
    assert dump[m.line - 1].startswith("step 1 2 7 ")
    assert str(m) == f"(1, 2) step 7: acc expected {d['steps'][6]:04x}, got {bad:04x} (line {m.line})"
    assert "1 mismatching" in str(report).splitlines()[0]


def test_a_wrong_output_in_an_output_only_dump(written: Path, tmp_path: Path) -> None:
    outs = [x for x in records(written) if x.startswith("out ")]
    dump = altered(outs, "out 2 0", "", "1234")
    rtl = tmp_path / "rtl_out.txt"
    rtl.write_text("// RTL run 1\n\n" + "\n".join(dump) + "\n")
    report = golden.compare(written, rtl)
    assert report.compared == ("out",)
    (m,) = report
    assert (m.i, m.j, m.where, m.step, m.field) == (2, 0, "output only", None, "out")
    assert (m.got, m.line) == ("1234", 11)
    assert m.expected == f"{parse(written)[2, 0]['out']:04x}"
    assert "(2, 0) output only: out expected" in str(report)


def test_matching_steps_and_a_wrong_output_blame_the_output(written: Path, tmp_path: Path) -> None:
    dump = altered(records(written), "out 0 3", "ovf", "1")
    rtl = tmp_path / "rtl_ovf.txt"
    rtl.write_text("\n".join(dump))
    (m,) = golden.compare(written, rtl)
    assert (m.i, m.j, m.where, m.field, m.expected, m.got) == (0, 3, "output", "ovf", "0", "1")


def test_overflow_flags_missing_records_and_unknown_bits(written: Path, tmp_path: Path) -> None:
    lines = [x for x in records(written) if x.startswith(("step", "out"))]
    dump = altered(lines, "step 0 0 4", "ovf", "7")
    dump = [x for x in dump if not x.startswith("step 2 1 5 ")]
    dump = altered(dump, "step 2 3 2", "acc", "xxxx")
    dump = [re.sub(r" povf=\d+", "", x) for x in dump]  # the RTL reports no product overflows
    rtl = tmp_path / "rtl_steps.txt"
    rtl.write_text("\n".join(dump))
    report = golden.compare(written, rtl)
    found = {(m.i, m.j): m for m in report}
    assert sorted(found) == [(0, 0), (2, 1), (2, 3)]
    assert (found[0, 0].step, found[0, 0].field, found[0, 0].got) == (4, "ovf", "7")
    assert (found[2, 1].step, found[2, 1].got, found[2, 1].line) == (5, None, None)
    assert "record missing" in str(found[2, 1])
    assert (found[2, 3].step, found[2, 3].got) == (2, "xxxx")


def test_wrong_operands_are_reported_before_steps(written: Path, tmp_path: Path) -> None:
    lines = records(written)
    dump = [re.sub(r"w=(\w+),(\w+),", r"w=\1,00,", x) if x.startswith("dot 1 1 ") else x for x in lines]
    rtl = tmp_path / "rtl_dot.txt"
    rtl.write_text("\n".join(dump))
    assert parse(written)[1, 1]["w"][1] != 0  # the seeded weight differs from the dump's
    (m,) = golden.compare(written, rtl)
    assert (m.where, m.field, m.got) == ("operands", "w[1]", "00")
    rtl.write_text("\n".join(x for x in lines if not x.startswith("dot 1 1 ")))  # the record missing
    (m,) = golden.compare(written, rtl)
    assert (m.i, m.j, m.where, m.field, m.expected, m.got) == (1, 1, "operands", "dot", "1 1", None)


def test_the_fused_preset_round_trips_and_locates_a_step(tmp_path: Path, rng: np.random.Generator) -> None:
    mac = emu.mac_preset("H100 fp16 -> fp32")
    path = tmp_path / "h100.golden"
    golden.write(mac, rng.normal(size=(2, 40)), rng.normal(size=(40, 2)), path)
    assert "// steps S 3 n 16" in path.read_text()
    rtl = tmp_path / "rtl.txt"
    rtl.write_text("\n".join(altered(records(path), "step 1 0 2", "acc", "3f800000")))
    (m,) = golden.compare(path, rtl)
    assert (m.i, m.j, m.step, m.got) == (1, 0, 2, "3f800000")


# -- malformed dumps --------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "message"), [
    ("out 0 0 12g4 ovf=0\n", r"line 1: malformed out record"),
    ("\nstep 0 0 1 acc=00\nstap 0 0 2 acc=00\n", r"line 3: unknown record kind 'stap'"),
    ("out 0 0 0001\nout 0 0 0002\n", r"line 2: duplicate out record for \(0, 0\) \(first on line 1\)"),
    ("out 5 0 0001\n", r"line 1: out record 5 0 is outside the golden shape M=3 N=4 S=10"),
    ("step 0 0 11 acc=0001\n", r"line 1: step record 0 0 11 is outside the golden shape"),
    ("step 0 0 0 acc=0001\n", r"line 1: step record 0 0 0 is outside the golden shape"),
    ("// nothing\n", r"has no dot, step or out record"),
])
def test_malformed_dumps_name_file_and_line(written: Path, tmp_path: Path, text: str, message: str) -> None:
    rtl = tmp_path / "bad_dump.txt"
    rtl.write_text(text)
    with pytest.raises(ValueError, match=r"golden\.compare: .*bad_dump\.txt.*" + message):
        golden.compare(written, rtl)


def test_a_file_that_is_not_golden_is_refused(written: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.txt"
    other.write_text("out 0 0 0001\n")
    with pytest.raises(ValueError, match=r"other\.txt line 1: not an emu golden file of format version 1"):
        golden.compare(other, written)


def test_a_dump_with_steps_against_a_file_without(tmp_path: Path) -> None:
    path, full = tmp_path / "nosteps.golden", tmp_path / "full.golden"
    golden.write("int8 x int8 -> int32", [1, 2], [3, 4], path, steps=False)
    golden.write("int8 x int8 -> int32", [1, 2], [3, 4], full)
    with pytest.raises(ValueError, match=r"has step records but .*nosteps\.golden was written with steps="):
        golden.compare(path, full)
    assert golden.compare(full, path).ok  # dot and out records only: compared without steps


# -- refused datapaths and sizes --------------------------------------------------------------------


@pytest.mark.parametrize(("mac", "message"), [
    (emu.MAC(act="int8", weight="int8", acc="fx<32,0>", order="pairwise"),
     r"order=pairwise has no single chain of states; allowed: sequential, fused\(n\), tree\(n\),"
     r" exact\(n\)"),
    (emu.MAC(act="int8", weight="int8", acc="fx<32,0>", order="lanes(4)"), r"order=lanes\(4\)"),
    (emu.MAC(act="e4m3", weight="e4m3", acc="fp32", order="blocks(8)"), r"order=blocks\(8\)"),
    (emu.MAC(act="int8", weight="int8", acc="exact"), r"acc=exact has no fixed width"),
    (emu.mac_preset("mxfp8"), r"mac=mxfp8_e4m3 x mxfp8_e4m3 -> fp32 has block-scaled operands; allowed:"),
    (emu.MAC(act="int8", weight="ternary", acc="fx<16,0>"), r"weight=ternary has a data scale"),
    (emu.MAC(act="int8", weight="int8", acc="fx<16,0>", input_rounding="stochastic"),
     r"input_rounding=stochastic draws bits indexed by K"),
    (emu.MAC(act="fp16", weight="fp16", acc="fp32", output="e4m3", output_rounding="stochastic"),
     r"output_rounding=stochastic"),
])
def test_datapaths_without_a_chain_of_states_are_refused(tmp_path: Path, mac: emu.MAC, message: str) -> None:
    with pytest.raises(ValueError, match=r"^golden\.write: " + message):
        golden.write(mac, [[1.0, 2.0]], [[1.0], [2.0]], tmp_path / "x.golden")
    assert not (tmp_path / "x.golden").exists()


def test_large_writes_need_a_limit(tmp_path: Path) -> None:
    a, w = np.ones((4, 50)), np.ones((50, 5))
    path = tmp_path / "big.golden"
    with pytest.raises(ValueError, match=r"golden\.write: 1000 step records \(M=4, N=5, S=50\) exceed"
                                         r" limit=999; pass a larger limit="):
        golden.write("int8 x int8 -> int32", a, w, path, limit=999)
    assert golden.write("int8 x int8 -> int32", a, w, path, limit=1000) == 20 * 52
    assert golden.write("int8 x int8 -> int32", a, w, path, limit=0, steps=False) == 40
    with pytest.raises(ValueError, match=r"exceed limit=1000000"):
        golden.write("int8 x int8 -> int32", np.ones((100, 100)), np.ones((100, 101)), path)


def test_bad_arguments(tmp_path: Path) -> None:
    path = tmp_path / "x.golden"
    with pytest.raises(ValueError, match=r"golden\.write: give bias= .* or c= .*, not both"):
        golden.write("int8 x int8 -> int32", [1], [1], path, bias=1, c=1)
    with pytest.raises(ValueError, match=r"golden\.write: a has K=2 but w has K=3"):
        golden.write("int8 x int8 -> int32", [1, 2], [1, 2, 3], path)
    with pytest.raises(ValueError, match=r"golden\.write: a and w must be"):
        golden.write("int8 x int8 -> int32", np.ones((1, 1, 2)), [1, 2], path)
    with pytest.raises(TypeError, match=r"golden\.write: mac=3 must be a MAC"):
        golden.write(3, [1], [1], path)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"golden\.write: c has shape \(3,\)"):
        golden.write("int8 x int8 -> int32", [[1, 2]], [[1, 2], [3, 4]], path, c=[1, 2, 3])


def test_an_error_overflow_leaves_no_file(tmp_path: Path) -> None:
    path = tmp_path / "err.golden"
    path.write_text("an earlier file\n")
    mac = emu.MAC(act="int8", weight="int8", acc="fx<16,0>", acc_overflow="error")
    with pytest.raises(OverflowError, match=r"overflow"):
        golden.write(mac, [127, 127, 127], [127, 127, 127], path)
    assert path.read_text() == "an earlier file\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["err.golden"]


def test_binary_popcount_states(tmp_path: Path, rng: np.random.Generator) -> None:
    """binary x binary: codes 1 for +1, 0 for -1; the 32-bit accumulator sums the +-1 products."""
    a, w = rng.choice([-1.0, 1.0], size=(2, 12)), rng.choice([-1.0, 1.0], size=(12, 3))
    path = tmp_path / "bin.golden"
    golden.write("binary x binary -> popcount", a, w, path)
    for (i, j), d in parse(path).items():
        assert d["a"] == [int(x > 0) for x in a[i]]
        terms = [int(x * y) for x, y in zip(a[i], w[:, j], strict=True)]
        assert d["steps"] == fixed_chain(terms, 0, 32, "wrap")[0]


@pytest.mark.parametrize("name", ["MI100 fp16 -> fp32", "MI250 bf16 -> fp32", "MI250 fp16 -> fp32"])
def test_amd_step_orders_write_one_state_per_step(tmp_path: Path, rng: np.random.Generator,
                                                    name: str) -> None:
    """exact(n) and tree(n) units: a step record per n products, each the exact twin's result on that
    prefix (`emu._ref.steps`), decoded from the file; the out record is the whole dot product."""
    from emu._ref.steps import exact_dot_ref, tree_dot_ref

    mac = emu.mac_preset(name)
    n = mac.order.n
    K = 3 * n + 1
    a = emu.quantize(rng.normal(size=(2, K)) * np.exp2(rng.integers(-8, 8, (2, K))), mac.act)
    w = emu.quantize(rng.normal(size=(K, 2)), mac.weight)
    path = tmp_path / "amd.golden"
    golden.write(mac, a, w, path)
    assert f"// steps S 4 n {n}" in path.read_text()
    states = {}
    for line in records(path):
        if line.startswith(("step", "out")):
            parts = line.split()
            code = parts[4].split("=")[1] if parts[0] == "step" else parts[3]
            key = (int(parts[1]), int(parts[2]), int(parts[3]) if parts[0] == "step" else "out")
            states[key] = float(emu.decode(np.uint64(int(code, 16)), mac.acc))
    twin = exact_dot_ref if mac.order.kind == "exact" else tree_dot_ref
    for i in range(2):
        for j in range(2):
            for k in range(1, 5):
                t = min(k * n, K)
                want = twin(list(a[i, :t]), list(w[:t, j]), 0.0, mac)[0]
                assert states[(i, j, k)] == want, (i, j, k)
            assert states[(i, j, "out")] == states[(i, j, 4)]
    rtl = tmp_path / "rtl.txt"
    rtl.write_text("\n".join(altered(records(path), "step 0 1 3", "acc", "3f800000")))
    (m,) = golden.compare(path, rtl)
    assert (m.i, m.j, m.step) == (0, 1, 3)
