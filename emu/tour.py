"""A printed tour of number formats: `python -m emu.tour`.

For a handful of formats it prints the range, the step, the codes and bit
patterns of a few values, and the representation error of two embedded data
sets: the pixels of scikit-learn's handwritten digits (scaled to [0, 1]) and
Glorot-initialised weights of a 64-100-10 network. Nothing is downloaded.
"""

from __future__ import annotations

import argparse

import numpy as np

from .convert import bits, encode, quantize
from .formats import FixedFormat, FloatFormat, Format
from .metrics import error_summary
from .registry import get_format

TOUR_FORMATS = ["fx<2,14>", "fx<1,7>", "fx<4,12>", "e4m3", "e5m2", "bf16", "fp16", "fp<6,7>", "pow2<-8,0>"]
SAMPLES = [1.0, -0.75, 0.1, 3.14159, -1000.0]


def _g(v: float) -> str:
    return f"{v:.6g}"


def _datasets(seed: int) -> dict[str, np.ndarray]:
    from sklearn.datasets import load_digits

    pixels = load_digits().data.astype(np.float64) / 16.0
    rng = np.random.default_rng(seed)
    w1 = rng.normal(0.0, np.sqrt(2.0 / (64 + 100)), size=(64, 100))
    w2 = rng.normal(0.0, np.sqrt(2.0 / (100 + 10)), size=(100, 10))
    return {"digits pixels": pixels.reshape(-1), "glorot weights": np.concatenate([w1.ravel(), w2.ravel()])}


def _describe(fmt: Format) -> str:
    step = f"eps {_g(fmt.eps)}" if isinstance(fmt, FixedFormat) else f"ulp(1) {_g(float(fmt.ulp(1.0)))}"
    extra = ""
    if isinstance(fmt, FloatFormat):
        normal = f"smallest normal {_g(fmt.smallest_normal)}" if fmt.has_normals else "no normal"
        extra = f", {normal}, subnormal {_g(fmt.smallest_subnormal)}"
        extra += ", inf" if fmt.has_inf else ""
        extra += ", NaN" if fmt.has_nan else ""
    return f"{fmt.bits:>2} bits, range [{_g(fmt.min)}, {_g(fmt.max)}], {step}{extra}, {fmt.n_codes} codes"


def _seed(text: str) -> int:
    """The --seed option: an int >= 0 (argparse reports anything else as a one-line usage error)."""
    try:
        seed = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"seed={text!r} must be an int in the allowed range [0, inf)"
                                         ) from None
    if seed < 0:
        raise argparse.ArgumentTypeError(f"seed={seed} outside the allowed range [0, inf)")
    return seed


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m emu.tour", description=__doc__)
    ap.add_argument("--seed", type=_seed, default=0,
                    help="seed of the stochastic rounding draws and of the Glorot weights (an int >= 0)")
    args = ap.parse_args(argv)
    formats = [get_format(n) for n in TOUR_FORMATS]

    print("== Formats ==")
    for f in formats:
        print(f"{f.name:<12} {_describe(f)}")

    print("\n== Codes and bits (nearest_even, default overflow) ==")
    print(f"{'format':<12}" + "".join(f"{_g(v):>26}" for v in SAMPLES))
    for f in formats:
        q = quantize(SAMPLES, f)
        c = encode(SAMPLES, f)
        b = bits(SAMPLES, f)
        print(f"{f.name:<12}"
              + "".join(f"{_g(v) + ' = ' + hex(int(k)):>26}" for v, k in zip(q, c, strict=True)))
        print(f"{'':<12}" + "".join(f"{s:>26}" for s in b))

    print(f"\n== Stochastic rounding of 0.1 to fx<1,7> (1000 draws, seed {args.seed}) ==")
    draws = quantize(np.full(1000, 0.1), "fx<1,7>", "stochastic", seed=args.seed)
    vals, counts = np.unique(draws, return_counts=True)
    nearest = _g(float(quantize(0.1, "fx<1,7>")))
    print("  " + ", ".join(f"{_g(v)}: {c}" for v, c in zip(vals, counts, strict=True))
          + f"; mean {draws.mean():.6f} (exact 0.1; nearest_even gives {nearest})")

    print("\n== Representation error (nearest_even; share of values with |relative error| above) ==")
    data = _datasets(args.seed)
    print(f"{'data':<16}{'format':<12}{'>4%':>8}{'>15%':>8}{'>100%':>8}{'mean |rel|':>12}"
          f"{'overflow':>10}{'underflow':>10}")
    for name, x in data.items():
        for f in formats:
            q, st = quantize(x, f, return_stats=True)
            s = error_summary(x, q)
            print(f"{name:<16}{f.name:<12}"
                  + "".join(f"{100 * s.share_above[t]:7.2f}%" for t in (0.04, 0.15, 1.0))
                  + f"{s.mean_rel:12.3g}{st.overflow:10d}{st.underflow:10d}")
    print("\n(zeros that stay zero count as exact; pixels are 0..16 scaled to [0, 1])")


if __name__ == "__main__":
    main()
