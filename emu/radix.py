"""Radix-point tracking and accumulator sizing, in exact integer arithmetic.

NUMERICS.md section 6 ("Radix-point tracking") asks the library to state, for
any formats, the exact product format, the smallest accumulator that can never
overflow for K terms, and the tighter bound from the actual weights. This module
does that, and adds two published accumulator-width rules: the constraints of
de Bruin et al. 2018 and the weight-norm bound of A2Q (Colbert et al. 2023).
Every answer is computed with Python integers (codes) and `fractions.Fraction`,
never with floating-point logarithms.

Result formats (apytypes documents its arithmetic the same way). ``a`` is
<ILa, FLa>, ``b`` is <ILb, FLb>, ``p`` is a product format <ILp, FLp>, signed
formats are two's complement and IL counts the sign bit (NUMERICS.md section 2):

==============================  ===================================  ==============  ==========
result                          int_bits                             frac_bits       signed
==============================  ===================================  ==============  ==========
``product_format(a, b)``        ILa + ILb                            FLa + FLb       sa or sb
``add_format(a, b)``, signed    max(ILa, ILb) + 1                    max(FLa, FLb)   yes
``add_format(a, b)``, other     smallest IL holding                  max(FLa, FLb)   sa or sb
                                [min_a + min_b, max_a + max_b]
``lossless_acc(p, K)``          ILp + ceil(log2 K)  (p signed)       FLp             sp
``lossless_acc(p, K, bias=p)``  ILp + ceil(log2 (K + 1))  (signed)   FLp             sp
``acc_bits_for_weights``        1 + bit_length(S / eps) - FL         FL (FLa + FLw)  yes
==============================  ===================================  ==============  ==========

Notes on the table:

- Powers of two, binary and ternary operands count as the fixed formats of
  their codes (`emu.operand_grid.fixed_view`): ``pow2<emin,emax>`` is <emax + 2, -emin>
  (``upow2``: <emax + 1, -emin> unsigned), binary and ternary are <2, 0>. Float
  formats are refused.
- For signed formats the sum rows are exact minima: K copies of the most
  negative product need exactly ceil(log2 K) more integer bits. For unsigned
  formats the tool computes the exact minimum from the code range; it equals
  ILp + ceil(log2 K) whenever 2^WLp >= K and is smaller otherwise.
- S is the largest sum_k |w_k| * max|a| over the outputs, eps = 2^-FL the
  accumulator's step (S / eps is an integer); with fewer accumulator fraction
  bits than the product's, each term counts as ceil(|w_k| max|a| / eps), its
  largest aligned magnitude.
- Word lengths above 62 bits (the `FixedFormat` limit) raise ValueError.

The accumulator-width rules (`admissible_widths`, `a2q_l1_bound`,
`a2q_min_acc_bits`) state their inequalities in their docstrings, with P the
accumulator width, wb / db (M / N in A2Q's symbols) the operand widths and K
the number of terms. Imports `emu.formats`, `emu.mac` and `emu.registry`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from .checks import check_int
from .formats import BinaryFormat, FixedFormat, Format, Pow2Format, TernaryFormat
from .operand_grid import fixed_view
from .registry import get_format

__all__ = [
    "AccBound",
    "a2q_l1_bound",
    "a2q_min_acc_bits",
    "acc_bits_for_weights",
    "add_format",
    "admissible_widths",
    "lossless_acc",
    "product_format",
]

_MAX_WL = 62  # FixedFormat's word-length limit
_MODES = ("worst", "weights", "outputs")


# --- validation helpers --------------------------------------------------------------------------


def _bool_arg(func: str, name: str, value: object) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{func}: {name}={value!r} must be a bool")
    return bool(value)


def _format_arg(func: str, name: str, value: object) -> Format:
    """A format or a format name, resolved; TypeError for anything else."""
    if not isinstance(value, (str, Format)):
        raise TypeError(f"{func}: {name}={value!r} must be a format or a format name")
    try:
        return get_format(value)
    except (KeyError, ValueError) as e:
        raise ValueError(f"{func}: {name}={value!r} is not a valid format: {e}") from None


def _fixed_arg(func: str, name: str, value: object) -> FixedFormat:
    """The fixed format of a fixed-like operand's codes; ValueError for float formats."""
    f = _format_arg(func, name, value)
    try:
        fx = fixed_view(f)
    except ValueError as e:  # a power-of-two range wider than a fixed-point word holds
        raise ValueError(f"{func}: {name}={f} has no fixed-point view: {e}") from None
    if fx is None:
        raise ValueError(
            f"{func}: {name}={f} is a {f.kind} format; radix-point tracking needs a fixed-point-like"
            " format (fixed, pow2, binary, ternary)"
        )
    return fx


def _make_fixed(func: str, what: str, int_bits: int, frac_bits: int, signed: bool) -> FixedFormat:
    wl = int_bits + frac_bits
    if not 1 <= wl <= _MAX_WL:
        raise ValueError(
            f"{func}: {what} needs a {wl}-bit word (<{int_bits},{frac_bits}>); a FixedFormat holds"
            f" 1 to {_MAX_WL} bits"
        )
    return FixedFormat(int_bits, frac_bits, signed=signed)


def _word_bits(lo: int, hi: int, signed: bool) -> int:
    """The fewest bits of a word whose codes include every integer in [lo, hi].

    Signed: -2^(W-1) <= lo and hi <= 2^(W-1) - 1, i.e. W = 1 + max(bit_length(hi),
    bit_length(-lo - 1)). Unsigned (lo >= 0): W = max(1, bit_length(hi)).
    """
    if signed:
        return 1 + max(max(hi, 0).bit_length(), max(-lo - 1, 0).bit_length())
    return max(1, hi.bit_length())


def _code_range(f: FixedFormat, frac_bits: int) -> tuple[int, int]:
    """(qmin, qmax) of f expressed in steps of 2^-frac_bits (frac_bits >= f.frac_bits)."""
    shift = frac_bits - f.frac_bits
    return f.qmin << shift, f.qmax << shift


def _real_array(func: str, name: str, x: object) -> np.ndarray:
    """float64 array holding exactly the given real numbers; refuses bool/complex/object/str."""
    arr = np.asarray(x)
    numeric = np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    if arr.dtype == np.bool_ or not numeric:
        raise TypeError(f"{func}: {name} has dtype {arr.dtype}; expected an integer or float array")
    if np.issubdtype(arr.dtype, np.integer):
        if arr.size and int(np.max(np.abs(arr.astype(object)))) > 1 << 53:
            raise ValueError(f"{func}: {name} holds integers beyond 2^53, which float64 cannot hold exactly")
        return arr.astype(np.float64)
    if arr.dtype.itemsize > 8:
        raise TypeError(f"{func}: {name} has dtype {arr.dtype}; use float64 or narrower")
    out = arr.astype(np.float64)
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{func}: {name} holds {int(np.sum(~np.isfinite(out)))} non-finite values")
    return out


def _significands(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split x exactly as m * 2^lo, m an odd int64 (0 for zeros); returns (m, lo, top), |x| < 2^top."""
    mant, top = np.frexp(x)
    m53 = np.ldexp(mant, 53).astype(np.int64)  # |m53| < 2^53, exact
    low = m53 & -m53  # lowest set bit (0 for zeros)
    tz = np.frexp(low.astype(np.float64))[1].astype(np.int64) - 1
    tz = np.where(m53 == 0, 0, tz)
    return m53 >> tz, top.astype(np.int64) - 53 + tz, top.astype(np.int64)


def _codes(x: np.ndarray, frac_bits: int) -> np.ndarray:
    """The integers x * 2^frac_bits, exactly (int64 when they fit, else Python ints in an object array).

    The caller guarantees that every x * 2^frac_bits is an integer.
    """
    m, lo, top = _significands(x)
    nz = m != 0
    if not np.any(nz) or int(np.max(top[nz])) + frac_bits <= 62:
        return np.asarray(np.ldexp(x, frac_bits), dtype=np.int64)
    shift = lo + frac_bits  # >= 0: the codes are integers
    return np.array([int(mi) << int(si) for mi, si in zip(m.ravel(), shift.ravel(), strict=True)],
                    dtype=object).reshape(x.shape)


def _needed_frac_bits(x: np.ndarray) -> int | None:
    """The fewest fraction bits (possibly negative) that hold every value exactly; None if all are 0."""
    m, lo, _ = _significands(x)
    nz = m != 0
    return None if not np.any(nz) else int(-np.min(lo[nz]))


def _act_max_code(f: Format) -> int:
    """The largest |value| of an operand format, as a code of its fixed view (`fixed_view`)."""
    if isinstance(f, FixedFormat):
        return max(-f.qmin, f.qmax)
    if isinstance(f, Pow2Format):
        return 1 << (f.emax - f.emin)
    if isinstance(f, (BinaryFormat, TernaryFormat)):
        return 1
    raise ValueError(f"{f} has no fixed view")  # pragma: no cover - callers check fixed_view first


# --- formats -------------------------------------------------------------------------------------


def product_format(fa: Format | str, fw: Format | str) -> FixedFormat:
    """The format that holds every exact product a * w of two fixed-point-like operands.

    Formula: <ILa + ILw, FLa + FLw>, signed if either operand is (NUMERICS.md
    section 6, step 2). The largest product magnitude of two signed operands,
    (-2^(ILa-1)) * (-2^(ILw-1)) = 2^(ILa+ILw-2), needs the full ILa + ILw
    integer bits. Powers of two, binary and ternary operands count as the fixed
    format of their codes (pow2<emin,emax> is <emax + 2, -emin>, binary and
    ternary <2, 0>), as `MAC.exact_product` does.

    Args:
        fa: the activation format (or its name).
        fw: the weight format (or its name).

    Returns:
        The exact product format.

    Raises:
        ValueError: a float format (naming ``fa`` or ``fw``), an unknown name, or
            a product wider than 62 bits.
        TypeError: an argument that is neither a format nor a name.

    >>> product_format("fx<1,7>", "fx<1,7>")
    FixedFormat(int_bits=2, frac_bits=14, signed=True)
    >>> str(product_format("ufx<0,8>", "fx<4,4>"))
    'fx<4,12>'
    """
    a = _fixed_arg("product_format", "fa", fa)
    w = _fixed_arg("product_format", "fw", fw)
    return _make_fixed("product_format", f"{a} x {w}", a.int_bits + w.int_bits, a.frac_bits + w.frac_bits,
                       a.signed or w.signed)


def add_format(fa: Format | str, fb: Format | str) -> FixedFormat:
    """The smallest fixed format that holds every exact sum a + b.

    Formula: frac_bits = max(FLa, FLb); signed if either is; int_bits is the
    smallest IL whose codes cover [min_a + min_b, max_a + max_b]. For two signed
    formats this is max(ILa, ILb) + 1 (the sum of the two most negative values
    needs the extra bit; apytypes' rule). Unsigned and mixed sums can need fewer
    bits than max(IL) + 1 (the sign bit of an unsigned operand is not counted in
    its IL, so ufx<4,0> + fx<4,0> spans [-8, 22] and needs 6 bits).

    Args:
        fa: first operand format (fixed, pow2, binary or ternary; or a name).
        fb: second operand format.

    Returns:
        The lossless sum format.

    Raises:
        ValueError: a float format (naming the parameter), an unknown name, or a
            sum wider than 62 bits.
        TypeError: an argument that is neither a format nor a name.

    >>> str(add_format("fx<2,14>", "fx<4,4>"))
    'fx<5,14>'
    >>> str(add_format("ufx<4,0>", "fx<4,0>")), str(add_format("ufx<0,8>", "ufx<0,8>"))
    ('fx<6,0>', 'ufx<1,8>')
    """
    a = _fixed_arg("add_format", "fa", fa)
    b = _fixed_arg("add_format", "fb", fb)
    fl = max(a.frac_bits, b.frac_bits)
    (alo, ahi), (blo, bhi) = _code_range(a, fl), _code_range(b, fl)
    signed = a.signed or b.signed
    wl = _word_bits(alo + blo, ahi + bhi, signed)
    return _make_fixed("add_format", f"{a} + {b}", wl - fl, fl, signed)


def lossless_acc(prod: Format | str, n_terms: int, bias: Format | str | bool | None = None) -> FixedFormat:
    """The smallest accumulator that can never overflow summing K products (plus a bias).

    Formula: for a signed product format <ILp, FLp>, <ILp + ceil(log2 K), FLp>:
    K copies of the most negative product, -K * 2^(ILp-1), need exactly
    ceil(log2 K) more integer bits, and every other sum of K products fits too
    (qtools' FixedPointAccumulator adds ceil(log2(number_of_adds)) bits the same
    way). A bias in the product's format adds one term: <ILp + ceil(log2(K+1)),
    FLp>. In general (unsigned products, a bias of another format) the result
    is the smallest format whose codes cover [K min_p + min_b, K max_p + max_b]
    at FL = max(FLp, FLb); for an unsigned product that is ILp + ceil(log2 K)
    whenever 2^WLp >= K. Order does not matter: every partial sum of any order
    lies in the same range.

    Args:
        prod: the product format (fixed-like, or a name), e.g. `product_format`'s result.
        n_terms: K >= 1, the number of products summed.
        bias: None or False (no bias); True for a bias in the product's format;
            or the bias's own format (fixed-like, or a name).

    Returns:
        The accumulator format.

    Raises:
        ValueError: K < 1, a float format, or an accumulator wider than 62 bits.
        TypeError: K not an int; a format argument of the wrong type.

    >>> [str(lossless_acc("fx<2,14>", k)) for k in (1, 2, 3, 4, 5, 1024)]
    ['fx<2,14>', 'fx<3,14>', 'fx<4,14>', 'fx<4,14>', 'fx<5,14>', 'fx<12,14>']
    >>> str(lossless_acc("fx<2,14>", 3, bias=True))  # 4 terms
    'fx<4,14>'
    """
    fn = "lossless_acc"
    p = _fixed_arg(fn, "prod", prod)
    k = check_int(n_terms, fn, "n_terms", 1)
    if bias is None or bias is False:
        b = None
    elif bias is True:
        b = p
    else:
        b = _fixed_arg(fn, "bias", bias)
    fl = p.frac_bits if b is None else max(p.frac_bits, b.frac_bits)
    plo, phi = _code_range(p, fl)
    lo, hi, signed = k * plo, k * phi, p.signed
    if b is not None:
        blo, bhi = _code_range(b, fl)
        lo, hi, signed = lo + blo, hi + bhi, signed or b.signed
    wl = _word_bits(lo, hi, signed)
    what = f"the sum of {k} terms of {p}" + (f" and a bias of {b}" if b is not None else "")
    return _make_fixed(fn, what, wl - fl, fl, signed)


# --- the bound from the actual weights ------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class AccBound:
    """The accumulator that the actual weights need (`acc_bits_for_weights`).

    Attributes:
        int_bits: IL of a signed accumulator in which no partial sum of any
            output can overflow (the largest of ``per_output``).
        frac_bits: FL of that accumulator (the product's, unless chosen).
        per_output: int64 array (N,): the IL each output needs on its own.
        bound: the largest S_n = sum_k |w_kn| * max|a| (per-term rounded up to
            the accumulator's step when it keeps fewer fraction bits), exact.
        per_output_bound: S_n for every output n, exact.
    """

    int_bits: int
    frac_bits: int
    per_output: np.ndarray
    bound: Fraction
    per_output_bound: tuple[Fraction, ...]

    @property
    def bits(self) -> int:
        """Word length int_bits + frac_bits."""
        return self.int_bits + self.frac_bits

    @property
    def format(self) -> FixedFormat:
        """The accumulator as a signed `FixedFormat` (ValueError beyond 62 bits)."""
        return _make_fixed("AccBound.format", "the accumulator", self.int_bits, self.frac_bits, True)

    def __repr__(self) -> str:
        """The scalar fields and the number of outputs (the arrays are long)."""
        return (f"AccBound(int_bits={self.int_bits}, frac_bits={self.frac_bits},"
                f" n_outputs={self.per_output.size}, bound={self.bound})")


def acc_bits_for_weights(w: object, act_fmt: Format | str, acc_frac_bits: int | None = None, *,
                         weight_fmt: Format | str | None = None) -> AccBound:
    """The accumulator integer bits that the actual weights need (NUMERICS.md section 6).

    For output n (column n of ``w``), every partial sum of a_k w_kn, in any
    order, is bounded by S_n = sum_k |w_kn| * max|a|, with max|a| the act
    format's largest magnitude (2^(IL-1) for a signed fixed format, 2^emax for
    powers of two, 1 for binary and ternary: their scales multiply the finished
    sum). In accumulator codes (step eps = 2^-FL) the bound is the integer
    C_n = sum_k T_kn with T_kn = |w_kn| max|a| / eps when the accumulator keeps
    every product bit (FL >= FLa + FLw), else T_kn = ceil(|w_kn| max|a| / eps)
    (an aligned product's magnitude under any rounding of `MAC.align_rounding`).
    A signed accumulator holds [-C_n, C_n] iff its word has 1 + bit_length(C_n)
    bits, so output n needs IL_n = 1 + bit_length(C_n) - FL and the layer needs
    IL = max_n IL_n. The bound is reached by a_k = max|a| sign(w_kn) when the
    activations can take both +max|a| and -max|a| (binary, ternary, powers of
    two); a two's complement activation lacks +2^(IL-1), so its true worst case
    may lie up to sum_k |w_kn| eps_a below S_n.

    Args:
        w: weights (K, N) (K terms for each of N outputs) or (K,) for one
            output; real values, each exactly a value of the weight grid.
        act_fmt: the activation format (fixed, pow2, binary, ternary; or a name).
        acc_frac_bits: FL of the accumulator; None for the product's fraction
            bits FLa + FLw.
        weight_fmt: the weight format (fixed-like). It fixes FLw, and every
            weight must be a multiple of its step. None: FLw is the fewest
            fraction bits (possibly negative) that hold every weight exactly.

    Returns:
        An `AccBound` (int_bits, frac_bits, per-output needs and exact bounds).

    Raises:
        ValueError: a float format, non-finite weights, an empty ``w``, weights
            off the ``weight_fmt`` grid, ``acc_frac_bits`` out of range.
        TypeError: bad argument types (bool, complex, object or str arrays).

    >>> r = acc_bits_for_weights([[0.5, -0.25], [-0.5, 0.125], [0.25, 0.0]], "fx<1,7>",
    ...                          weight_fmt="fx<1,7>")
    >>> r.int_bits, r.frac_bits, r.per_output.tolist(), r.bound, str(r.format)
    (2, 14, [2, 0], Fraction(5, 4), 'fx<2,14>')

    Output 0: S = (0.5 + 0.5 + 0.25) * 1 = 5/4, C = 5/4 * 2^14 = 20480 (15 bits),
    IL = 1 + 15 - 14 = 2; output 1: S = 3/8, C = 6144 (13 bits), IL = 0.
    """
    fn = "acc_bits_for_weights"
    fa = _format_arg(fn, "act_fmt", act_fmt)
    a = _fixed_arg(fn, "act_fmt", fa)
    W = _real_array(fn, "w", w)
    shape = W.shape
    if W.ndim == 1:
        W = W[:, None]
    if W.ndim != 2 or W.shape[0] == 0 or W.shape[1] == 0:
        raise ValueError(f"{fn}: w has shape {shape}; expected (K, N) or (K,) with K, N >= 1")
    need = _needed_frac_bits(W)
    if weight_fmt is not None:
        fw = _fixed_arg(fn, "weight_fmt", weight_fmt)
        flw = fw.frac_bits
        if need is not None and need > flw:
            raise ValueError(f"{fn}: w holds values off the grid of weight_fmt={weight_fmt} (some need {need}"
                             f" fraction bits, it has {flw}); quantize the weights first")
    else:
        flw = 0 if need is None else need
    flp = a.frac_bits + flw
    fl = flp if acc_frac_bits is None else check_int(acc_frac_bits, fn, "acc_frac_bits", -1000, 1000)
    m = _act_max_code(fa)  # max|a| = m * 2^-FLa
    c = _codes(np.abs(W), flw)  # |w| = c * 2^-FLw, exact
    s = fl - flp
    K = W.shape[0]
    wide = c.dtype == object or int(np.max(c)) * m * K >= 1 << 62
    if wide:
        c = c.astype(object)
    if s >= 0:
        sums = [int(v) for v in c.sum(axis=0)]
        C = [v * m << s for v in sums]
    else:
        t = -((-(c * m)) >> -s)  # ceil(|w| m / 2^-s), exact in int64 or Python ints
        C = [int(v) for v in t.sum(axis=0)]
    per = np.array([1 + v.bit_length() - fl for v in C], dtype=np.int64)
    bounds = tuple(Fraction(v, 1 << fl) if fl >= 0 else Fraction(v << -fl) for v in C)
    top = int(np.argmax(per))
    return AccBound(int(per[top]), fl, per, max(bounds), bounds)


# --- accumulator-width rules -----------------------------------------------------------------------


def _weight_codes(W: np.ndarray, wb: int, il_w: int, symmetric: bool) -> np.ndarray:
    """wb-bit codes of the weights on <il_w, wb - il_w>: round to nearest even, saturate."""
    hi = (1 << (wb - 1)) - 1
    lo = -hi if symmetric else -(1 << (wb - 1))
    return np.asarray(np.clip(np.rint(np.ldexp(W, wb - il_w)), lo, hi), dtype=np.int64)


def _int_bits_for(x: float) -> int:
    """ceil(log2 x) + 1: the IL of a signed format whose range reaches x > 0 (Ristretto's rule)."""
    mant, e = math.frexp(x)
    return int(e) + 1 if mant > 0.5 else int(e)


def admissible_widths(acc_bits: int, K: int, mode: str = "worst", weights: object = None,
                      outputs: object = None, max_bits: int = 16, *, weight_int_bits: int | None = None,
                      data_int_bits: int | None = None, symmetric: bool = False) -> list[tuple[int, int]]:
    """The (weight bits, data bits) pairs whose products sum into a P-bit accumulator.

    The constraints of B. de Bruin, Z. Zivkovic and Henk Corporaal, "Quantization
    of Constrained Processor Data Paths Applied to Convolutional Neural
    Networks", DSD 2018 (WC_w/WC_d, ACT_w/WC_d and ACT_y), as exact integer
    inequalities. Operands are two's complement: weights of wb bits on
    <IL_w, wb - IL_w>, data of db bits on <IL_d, db - IL_d>; the accumulator is a
    P-bit two's complement word at the product's step, so it holds the codes
    [-2^(P-1), 2^(P-1) - 1]. Let Mw = 2^(wb-1) and Md = 2^(db-1) be the largest
    code magnitudes (with ``symmetric=True``, operands never take the most
    negative code: Mw = 2^(wb-1) - 1, Md = 2^(db-1) - 1).

    - ``mode="worst"`` (WC_w/WC_d, any weights and data):
      ``wb + db + ceil(log2 K) <= P``; with ``symmetric=True``
      ``wb + db + ceil(log2 K) - 1 <= P``, which is de Bruin et al.'s
      BW_w + BW_d = BW_acc + 1 - ceil(log2 K) read as an inequality. Both are
      sufficient (K Mw Md <= 2^(P-1) - 1); the two's complement one is also
      necessary when K is a power of two (all operands at their most negative
      code reach K Mw Md), and otherwise at most one bit pessimistic (the
      exact condition is wb + db + floor(log2 K) <= P).
    - ``mode="weights"`` (ACT_w/WC_d, actual weights, worst-case data): the sum
      of |w| codes replaces K * Mw: ``R(wb) * Md <= 2^(P-1) - 1`` with
      R(wb) = max over outputs n of sum_k |q_kn| and q the weights quantized to
      wb bits on <IL_w, wb - IL_w> (round to nearest even, saturate; IL_w =
      ``weight_int_bits`` or ceil(log2 max|w|) + 1). This is the exact form of
      the paper's BW_w + BW_d = BW_acc - floor(log2 R_kernel) + IL_w, with
      R_kernel = max over kernels of sum |w_hat| = R(wb) 2^-(wb - IL_w).
    - ``mode="outputs"`` (ACT_y, observed outputs): the largest observed
      output must fit, ``max|y| * 2^(wb - IL_w + db - IL_d) <= 2^(P-1) - 1``,
      and one product must fit, ``Mw * Md <= 2^(P-1) - 1`` (the max(0, .) term
      of the paper's BW_w + BW_d = BW_acc + 1 - max(0, IL_y - (IL_w + IL_d))).
      Partial sums may still overflow; the final sum is right only with a
      wrapping accumulator (sums are exact modulo 2^P).

    Args:
        acc_bits: P, the accumulator width (1 to 256).
        K: the number of terms of each dot product (>= 1).
        mode: ``"worst"``, ``"weights"`` or ``"outputs"``.
        weights: real weights (K, N) or (K,); required for ``"weights"``.
        outputs: observed real outputs (any shape); required for ``"outputs"``.
        max_bits: the largest wb and db tried (1 to 32).
        weight_int_bits: IL_w; by default from ``weights``. ``"outputs"``
            needs it or ``weights`` (which it reads for IL_w only), not both.
        data_int_bits: IL_d; required for ``"outputs"``.
        symmetric: operands without their most negative code (see above).

    Returns:
        Every admissible (wb, db) with 1 <= wb, db <= max_bits, sorted.

    Raises:
        ValueError: a bad mode, K, acc_bits or max_bits; missing or misshapen
            weights/outputs, non-finite values; missing int bits for ``"outputs"``; weights,
            outputs or int bits the mode does not read (``"outputs"`` with both weights and
            weight_int_bits).
        TypeError: arguments of the wrong type.

    >>> pairs = admissible_widths(16, 5 * 5 * 16)  # ceil(log2 400) = 9: wb + db <= 7
    >>> max(wb + db for wb, db in pairs), (3, 4) in pairs, (4, 4) in pairs
    (7, True, False)
    >>> max(wb + db for wb, db in admissible_widths(16, 400, symmetric=True))  # the paper's 8
    8
    """
    fn = "admissible_widths"
    P = check_int(acc_bits, fn, "acc_bits", 1, 256)
    k = check_int(K, fn, "K", 1)
    nb = check_int(max_bits, fn, "max_bits", 1, 32)
    sym = _bool_arg(fn, "symmetric", symmetric)
    if not isinstance(mode, str) or mode not in _MODES:
        raise ValueError(f"{fn}: mode={mode!r} is not one of {', '.join(_MODES)}")
    uses = {"worst": (), "weights": ("weights", "weight_int_bits"),
            "outputs": ("weights", "outputs", "weight_int_bits", "data_int_bits")}[mode]
    given = {"weights": weights, "outputs": outputs, "weight_int_bits": weight_int_bits,
             "data_int_bits": data_int_bits}
    unused = [k for k, v in given.items() if v is not None and k not in uses]
    if mode == "outputs" and weights is not None and weight_int_bits is not None:
        raise ValueError(f"{fn}: weights= and weight_int_bits= both given; mode='outputs' reads weights only"
                         " to place their radix point, which weight_int_bits= sets: pass one of them")
    if unused:  # an option the mode does not read is refused, not ignored
        raise ValueError(f"{fn}: {unused[0]}= does not apply to mode={mode!r} (it reads"
                         f" {', '.join(uses) or 'none of weights, outputs, weight_int_bits, data_int_bits'})")
    cap = (1 << (P - 1)) - 1  # largest positive accumulator code

    def mag(b: int) -> int:
        return (1 << (b - 1)) - (1 if sym else 0)

    W = None
    if weights is not None:
        W = _real_array(fn, "weights", weights)
        shape = W.shape
        if W.ndim == 1:
            W = W[:, None]
        if W.ndim != 2 or W.shape[0] != k or W.shape[1] == 0:
            raise ValueError(f"{fn}: weights has shape {shape}; expected ({k}, N) or ({k},) for K={k}")
    il_w = (None if weight_int_bits is None
            else check_int(weight_int_bits, fn, "weight_int_bits", -1000, 1000))
    if il_w is None and W is not None:
        wmax = float(np.max(np.abs(W)))
        il_w = _int_bits_for(wmax) if wmax > 0 else 1
    pairs: list[tuple[int, int]] = []
    if mode == "worst":
        c = (k - 1).bit_length()  # ceil(log2 K), exact for K >= 1
        slack = 1 if sym else 0
        return [(wb, db) for wb in range(1, nb + 1) for db in range(1, nb + 1) if wb + db + c - slack <= P]
    if mode == "weights":
        if W is None or il_w is None:
            raise ValueError(f"{fn}: mode='weights' needs weights= (a (K, N) array)")
        for wb in range(1, nb + 1):
            R = int(np.max(np.abs(_weight_codes(W, wb, il_w, sym)).sum(axis=0)))
            pairs += [(wb, db) for db in range(1, nb + 1) if R * mag(db) <= cap]
        return pairs
    # mode == "outputs"
    if outputs is None:
        raise ValueError(f"{fn}: mode='outputs' needs outputs= (the observed outputs)")
    Y = _real_array(fn, "outputs", outputs)
    if Y.size == 0:
        raise ValueError(f"{fn}: outputs is empty")
    if il_w is None:
        raise ValueError(f"{fn}: mode='outputs' needs weight_int_bits= or weights= to place the"
                         " weights' radix point")
    if data_int_bits is None:
        raise ValueError(f"{fn}: mode='outputs' needs data_int_bits= (IL_d of the data format)")
    il_d = check_int(data_int_bits, fn, "data_int_bits", -1000, 1000)
    ymax = Fraction(float(np.max(np.abs(Y))))
    for wb in range(1, nb + 1):
        for db in range(1, nb + 1):
            fl = wb - il_w + db - il_d
            y_code = ymax * Fraction(2) ** fl
            if y_code <= cap and mag(wb) * mag(db) <= cap:
                pairs.append((wb, db))
    return pairs


def a2q_l1_bound(acc_bits: int, act_bits: int, act_signed: bool) -> float:
    """The largest weight L1 norm (in integer codes) that cannot overflow a P-bit accumulator (A2Q).

    Accumulator-aware quantization (I. Colbert, A. Pappalardo, J. Petri-Koenig,
    "A2Q: Accumulator-Aware Quantization with Guaranteed Overflow Avoidance",
    ICCV 2023): a dot product of N-bit integer inputs x with integer weights w
    never overflows a signed P-bit accumulator if

        ||w||_1 <= (2^(P-1) - 1) * 2^(sgn(x) - N),

    with sgn(x) = 1 for signed inputs (|x| <= 2^(N-1)) and 0 for unsigned ones
    (|x| <= 2^N - 1 < 2^N): then |sum_k w_k x_k| <= ||w||_1 max|x| <= 2^(P-1) - 1.

    Args:
        acc_bits: P (1 to 1024).
        act_bits: N, the input width (1 to 1024).
        act_signed: whether the inputs are signed.

    Returns:
        The bound as a float (exact for P <= 54).

    Raises:
        ValueError: widths out of range.
        TypeError: non-int widths, non-bool ``act_signed``.

    >>> a2q_l1_bound(16, 8, False), a2q_l1_bound(16, 8, True)
    (127.99609375, 255.9921875)
    """
    fn = "a2q_l1_bound"
    P = check_int(acc_bits, fn, "acc_bits", 1, 1024)
    N = check_int(act_bits, fn, "act_bits", 1, 1024)
    sgn = int(_bool_arg(fn, "act_signed", act_signed))
    return math.ldexp(float((1 << (P - 1)) - 1), sgn - N)


def a2q_min_acc_bits(K: int, weight_bits: int, act_bits: int, act_signed: bool, *,
                     narrow_range: bool = False) -> int:
    """The fewest accumulator bits P for which A2Q's bound admits every K-term M-bit weight vector.

    Weight-range assumption: M-bit signed integer weights, either full range
    [-2^(M-1), 2^(M-1) - 1] (``narrow_range=False``, the default: the largest
    magnitude is 2^(M-1)) or narrow range [-(2^(M-1) - 1), 2^(M-1) - 1]
    (``narrow_range=True``, as Brevitas quantises weights by default: the largest
    magnitude is 2^(M-1) - 1). Inputs are N-bit integers, signed or unsigned.

    Derived from `a2q_l1_bound`: the worst-case L1 norm of K weights is K * Wmax
    (every weight at the largest magnitude Wmax), so P must satisfy
    K * Wmax <= (2^(P-1) - 1) * 2^(sgn(x) - N), i.e. 2^(P-1) - 1 >= T with
    T = K * Wmax * 2^(N - sgn(x)), an integer (N >= 1), so P = 1 + bit_length(T).
    Full range, T = K * 2^(M + N - 1 - sgn(x)): for K a power of two
    P = log2 K + M + N + 1 - sgn(x), in general floor(log2 K) + M + N + 1 - sgn(x)
    (equivalently P >= alpha + phi(alpha) + 1 rounded up, with alpha = log2 K +
    N + M - 1 - sgn(x) and phi(alpha) = log2(1 + 2^-alpha)). Narrow range,
    T = K * (2^(M-1) - 1) * 2^(N - sgn(x)) (0 for M = 1: the only weight is 0,
    and P = 1).

    Worked example, K = 512 = 2^9 at M = N = 8: unsigned inputs give T = 2^(9+15)
    = 2^24 (25 bits), P = 26; signed inputs T = 2^23, P = 25. Narrow range,
    unsigned inputs: T = 512 * 127 * 2^8 = 16,646,144 < 2^24, P = 25.

    Args:
        K: the number of terms (>= 1).
        weight_bits: M, the signed weight width (>= 1).
        act_bits: N, the input width (>= 1).
        act_signed: whether the inputs are signed.
        narrow_range: whether the weights exclude -2^(M-1) (True or False).

    Returns:
        P.

    Raises:
        ValueError: K or a width < 1; ``narrow_range`` not a bool.
        TypeError: non-int arguments, non-bool ``act_signed``.

    >>> a2q_min_acc_bits(512, 8, 8, False), a2q_min_acc_bits(512, 8, 8, True)
    (26, 25)
    >>> a2q_min_acc_bits(512, 8, 8, False, narrow_range=True)
    25
    """
    fn = "a2q_min_acc_bits"
    k = check_int(K, fn, "K", 1)
    M = check_int(weight_bits, fn, "weight_bits", 1, 1024)
    N = check_int(act_bits, fn, "act_bits", 1, 1024)
    sgn = int(_bool_arg(fn, "act_signed", act_signed))
    if not isinstance(narrow_range, bool):
        raise ValueError(f"{fn}: narrow_range={narrow_range!r} must be True or False")
    w_max = (1 << (M - 1)) - int(narrow_range)
    t = (k * w_max) << (N - sgn)  # T, an integer: N >= 1
    return 1 + t.bit_length()

