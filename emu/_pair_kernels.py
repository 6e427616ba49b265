"""Exact int16 x int16 -> int32 sums by the CPU's pair multiply-add (`pair_sums`), for exact-sum convolutions.

x86 has an instruction that multiplies 16-bit integers lane by lane and adds each adjacent pair of
products into one 32-bit lane (pmaddwd; AVX-512 VNNI fuses the following addition as vpdpwssd): 2 x 16
multiply-adds per 512-bit instruction, more than twice a float32 FMA's 16. LLVM does not find it in a
plain loop (numba's integer loops widen to 32-bit multiplies), so the inner loop here is written in LLVM
IR (a numba intrinsic) calling the instruction's LLVM intrinsic: ``llvm.x86.avx512.pmaddw.d.512`` where
the host has AVX-512BW (16 int32 lanes), ``llvm.x86.avx2.pmadd.wd`` where it has AVX2 (8 lanes);
`PAIR_LANES` is 0 elsewhere (or where numba is told to compile for another CPU than the host, or not to
compile at all), and the callers keep their float32 BLAS route.

Layout (k runs in pairs kp = 0, 1, ...; each pair's two entries side by side):

- X: int16, the pair kp of column j at ``offs[kp] + 2 j`` (and ``+ 1``): the caller lays its operand out
  so that the two entries of a pair are adjacent (the planes of two channels interleaved, `pair_planes`);
- W: int16 (R / MR, KP, MR, 2), row r's pair kp at [r // MR, kp, r % MR] (`pack_pair_weights`);
- S: int32 (R, C), S[r, j] = sum over kp of W pair . X pair, for the columns j < C (C a multiple of the
  column block `pair_block`, which the caller's X must cover: reads reach column C - 1 at every offset).

Every product of two int16 codes is at most 2^30 in magnitude, and each pair's sum fits an int32 unless
both products are (-2^15)^2 = 2^30 (the instruction then gives -2^31); the lanes' additions wrap modulo
2^32. Sums are exact where the caller has proved every partial sum below 2^31 in magnitude (the
exact-sum convolutions prove 2^24, for float32), in any order, so the result is the sum the float32
route gives, bit for bit.

Worked example: W row 0 = pairs (1, 2), (3, -1); column 0 of X holds pairs (5, 6) and (7, 8); S[0, 0] =
1*5 + 2*6 + 3*7 - 1*8 = 30.
"""

from __future__ import annotations

from types import FunctionType

import numba
import numpy as np
from llvmlite import binding as llvm_binding
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

__all__ = ["MR", "NV", "PAIR_LANES", "compile_pair_sums", "pack_pair_weights", "pair_block", "pair_planes",
           "pair_sums"]


def _host_lanes() -> int:
    """int32 lanes of the pair multiply-add numba's code may use here: 16 (AVX-512BW), 8 (AVX2) or 0."""
    if numba.config.DISABLE_JIT:
        return 0  # the loop is LLVM IR: nothing to run it without the compiler
    if numba.config.CPU_NAME is not None or numba.config.CPU_FEATURES is not None:
        return 0  # code compiled for another CPU than the host: no instruction is assumed
    try:
        feats = llvm_binding.get_host_cpu_features()
    except RuntimeError:
        return 0
    if feats.get("avx512bw", False):
        return 16
    return 8 if feats.get("avx2", False) else 0


#: int32 lanes of `pair_sums`' vectors on this host; 0: `pair_sums` is not available
PAIR_LANES = _host_lanes()
#: rows of S per call of the inner loop, each row's pairs broadcast from W: one accumulator register per
#: row, with the column vector and the broadcast pair beside them (32 vector registers with AVX-512, 16
#: with AVX2). Measured on ResNet-20's sums (16 to 64 rows, K = 144 to 576) on one thread: 16 rows of 16
#: lanes 108 to 116 GMAC/s, 8 rows 72 to 116, 4 rows 56 to 86; float32 BLAS 23 to 49
MR = 16 if PAIR_LANES == 16 else 8
#: vectors of columns per call of the inner loop (each read once from X for the MR rows)
NV = 1
#: the pairs of one call of the inner loop: a row block's weights for them (K_CHUNK MR 4 bytes, 16 KB with
#: AVX-512) stay in the L1 cache while the loop walks the columns, and each call adds its chunk's sums to
#: the previous chunks'. Measured on a 512-channel 3x3 convolution (K = 4608, 7x7 maps, 4 images):
#: 29.2 ms in one chunk, against 27.7 ms for float32 BLAS
K_CHUNK = 256
_INTRINSIC = {16: "llvm.x86.avx512.pmaddw.d.512", 8: "llvm.x86.avx2.pmadd.wd"}


def pair_block() -> int:
    """The columns of S one call of the inner loop writes: C must be a multiple of it."""
    return NV * max(PAIR_LANES, 1)


def _micro(lanes: int, mr: int):
    """The inner loop for ``lanes`` int32 lanes and ``mr`` rows: micro(X, x0, offs, W, w0, kp, S, s0,
    s_stride, add) sets the mr x NV*lanes block S[s0 + r s_stride + j] (r < mr, j < NV lanes) to the sums
    over kp' < kp (added to the block's values where ``add`` is not 0) of the pair products of
    W[w0 + 2 (kp' mr + r) + t] and X[x0 + offs[kp'] + 2 j + t] (t = 0, 1)."""
    i16, i32, i64 = ir.IntType(16), ir.IntType(32), ir.IntType(64)
    vx, vacc = ir.VectorType(i16, 2 * lanes), ir.VectorType(i32, lanes)
    name = _INTRINSIC[lanes]

    @intrinsic
    def micro(typingctx, X, x0, offs, W, w0, kp, S, s0, s_stride, add):
        want = ((X, types.int16), (offs, types.int64), (W, types.int16), (S, types.int32))
        if any(not isinstance(a, types.Array) or a.dtype != d for a, d in want):
            return None  # (numba then refuses the call's types)
        sig = types.void(X, x0, offs, W, w0, kp, S, s0, s_stride, add)

        def codegen(context, builder, signature, args):
            arrays = [context.make_array(signature.args[i])(context, builder, args[i]) for i in (0, 2, 3, 6)]
            xd, od, wd, sd = (a.data for a in arrays)

            def wide(v):
                return v if v.type == i64 else builder.sext(v, i64)
            x0v, w0v, kpv, s0v, ssv = (wide(args[i]) for i in (1, 4, 5, 7, 8))
            try:
                pmadd = builder.module.get_global(name)
            except KeyError:
                pmadd = ir.Function(builder.module, ir.FunctionType(vacc, [vx, vx]), name=name)
            zero = ir.Constant(vacc, None)
            splat = ir.Constant(ir.VectorType(i32, lanes), [0] * lanes)
            adding = builder.icmp_signed("!=", wide(args[9]), ir.Constant(i64, 0))
            dsts = []  # each accumulator's place in S, and its start: S's values (add) or 0
            for r in range(mr):
                row = builder.gep(sd, [builder.add(s0v, builder.mul(ssv, ir.Constant(i64, r)))])
                for v in range(NV):
                    dsts.append(builder.bitcast(builder.gep(row, [ir.Constant(i64, lanes * v)]),
                                                vacc.as_pointer()))
            starts = [builder.select(adding, builder.load(d, align=4), zero) for d in dsts]
            pre = builder.block
            loop = builder.function.append_basic_block("pair_loop")
            after = builder.function.append_basic_block("pair_after")
            builder.cbranch(builder.icmp_signed("<=", kpv, ir.Constant(i64, 0)), after, loop)
            builder.position_at_end(loop)
            k = builder.phi(i64)
            k.add_incoming(ir.Constant(i64, 0), pre)
            accs = []
            for start in starts:
                p = builder.phi(vacc)
                p.add_incoming(start, pre)
                accs.append(p)
            xbase = builder.gep(xd, [builder.add(x0v, builder.load(builder.gep(od, [k])))])
            xs = [builder.load(builder.bitcast(builder.gep(xbase, [ir.Constant(i64, 2 * lanes * v)]),
                                               vx.as_pointer()), align=2) for v in range(NV)]
            wrow = builder.gep(wd, [builder.add(w0v, builder.mul(k, ir.Constant(i64, 2 * mr)))])
            new = []
            for r in range(mr):
                pair = builder.load(builder.bitcast(builder.gep(wrow, [ir.Constant(i64, 2 * r)]),
                                                    i32.as_pointer()), align=2)
                one = builder.insert_element(ir.Constant(vacc, None), pair, ir.Constant(i32, 0))
                wb = builder.bitcast(builder.shuffle_vector(one, one, splat), vx)
                for v in range(NV):
                    new.append(builder.add(accs[r * NV + v], builder.call(pmadd, [xs[v], wb])))
            k1 = builder.add(k, ir.Constant(i64, 1))
            end = builder.block
            k.add_incoming(k1, end)
            for acc, value in zip(accs, new, strict=True):
                acc.add_incoming(value, end)
            builder.cbranch(builder.icmp_signed(">=", k1, kpv), after, loop)
            builder.position_at_end(after)
            results = []
            for start, value in zip(starts, new, strict=True):
                res = builder.phi(vacc)
                res.add_incoming(start, pre)
                res.add_incoming(value, end)
                results.append(res)
            for res, dst in zip(results, dsts, strict=True):
                builder.store(res, dst, align=4)
            return context.get_dummy_value()
        return sig, codegen
    return micro


#: the host's inner loop (an 8-lane one, never called, where the host has none)
_pair_micro = _micro(PAIR_LANES or 8, MR)


def _loop(X, offs, W, S, j0, j1):
    """The loop of `pair_sums` over blocks of MR rows and NV PAIR_LANES columns j0 <= j < j1, through
    ``_pair_micro`` (module globals: `compile_pair_sums` runs the same code with others)."""
    kp = offs.size
    for rb in range(S.shape[0] // MR):
        for k0 in range(0, max(kp, 1), K_CHUNK):  # this row block's chunk of W stays in the L1 cache
            kc = min(K_CHUNK, kp - k0)  # (0 for K = 0: the sums are set to 0)
            for j in range(j0, j1, NV * PAIR_LANES):
                _pair_micro(X, 2 * j, offs[k0:], W, (rb * kp + k0) * MR * 2, kc, S, rb * MR * S.shape[1] + j,
                            S.shape[1], k0)


_pair_sums = njit(cache=True, nogil=True)(_loop)


def compile_pair_sums(lanes: int, mr: int):
    """`pair_sums`' loop for ``lanes`` (16 or 8) int32 lanes and ``mr`` rows a block, whatever the host's
    (the tests build the AVX2 loop on an AVX-512 host too): the same code with those globals, compiled at
    its first call and not cached; run(X, offs, W, S, j0, j1)."""
    scope = {**globals(), "_pair_micro": _micro(lanes, mr), "MR": mr, "PAIR_LANES": lanes}
    return njit(nogil=True)(FunctionType(_loop.__code__, scope, "_loop_" + str(lanes)))


def pair_sums(X: np.ndarray, offs: np.ndarray, W: np.ndarray, S: np.ndarray,
              cols: tuple[int, int] | None = None) -> None:
    """S = the pair sums of W (R / MR, KP, MR, 2) and X (flat int16) at the pair offsets ``offs`` (KP,
    int64), on the calling thread without the GIL (see the module docstring for the layout); ``cols``
    (j0, j1): only those columns (both multiples of `pair_block`), so threads can share S. S (R, C)
    int32 C-ordered, R a multiple of `MR`, C of `pair_block`; X must hold every entry read:
    offs[kp] + 2 C <= X.size for every kp. RuntimeError where `PAIR_LANES` is 0."""
    if not PAIR_LANES:
        raise RuntimeError("pair_sums: this CPU (or numba's target) has no 16-bit pair multiply-add")
    j0, j1 = (0, S.shape[1]) if cols is None else cols
    _pair_sums(X, offs, W, S, j0, j1)


def pack_pair_weights(w: np.ndarray, mr: int = MR) -> np.ndarray:
    """The int16 (R' / mr, KP, mr, 2) pair layout of codes w (R, K), R' = R rounded up to a multiple of ``mr``
    (rows of zeros), K padded with a zero to an even count: pair kp of row r holds w[r, 2 kp], w[r, 2 kp + 1].

    >>> w = pack_pair_weights(np.array([[1, 2, 3]]), 4)
    >>> w.shape, w[0, 0, 0].tolist(), w[0, 1, 0].tolist(), w[0, 1, 1].tolist()
    ((1, 2, 4, 2), [1, 2], [3, 0], [0, 0])
    """
    r, k = w.shape
    rp, kp = -(-r // mr) * mr, -(-k // 2)
    full = np.zeros((rp, 2 * kp), np.int16)
    full[:r, :k] = w
    pairs = full.view(np.int32).reshape(rp // mr, mr, kp)  # each pair one 4-byte item: a faster transpose
    return np.ascontiguousarray(pairs.transpose(0, 2, 1)).view(np.int16).reshape(rp // mr, kp, mr, 2)


@njit(cache=True, nogil=True)
def pair_planes(x, top, left, sh, sw, kh, kw, hp2, wp2, block, row, out) -> None:
    """The images of x (B, C, H, W) (integer codes), zero-padded by ``top`` rows and ``left`` columns, in
    planes split by the stride into sh x sw phases, two channels interleaved: the padded entry (Y, X) of
    channel ch, image b goes to phase (Y % sh, X % sw) at (Y // sh, X // sw) of an hp2 x wp2 plane, that
    is to pair index (Y % sh * sw + X % sw) block + b hp2 wp2 + (Y // sh) wp2 + X // sw of channel pair
    ch // 2's row of ``row`` pairs, entry ch % 2 (the int16 low half of ``out``'s int32 for an even ch, the
    high half for an odd one: out is the pairs' int32 view, little-endian). Entries no tap of a kh x kw
    kernel reads (past the planes, or in a phase that no tap's offset i % sh, j % sw reaches) are left
    out, and only the entries that hold x are written: the caller zeroes ``out`` once, and its borders
    (and an odd C's missing channel) stay zero from block to block.

    Tap (i, j) of channel pair cp for output (r, q) of image b is then pair (i % sh * sw + j % sw) block +
    (i // sh) wp2 + j // sw + cp row + column b hp2 wp2 + r wp2 + q: for every tap, the columns of the
    outputs one after the other (`pair_sums` with one offset per channel pair and tap; columns with
    q or r past the outputs are sums nobody reads)."""
    n, c, h, w = x.shape
    ps = hp2 * wp2
    for cp in range((c + 1) // 2):
        two = 2 * cp + 1 < c
        for b in range(n):
            for y in range(h):
                yy = y + top
                y2 = yy // sh
                if y2 >= hp2 or yy % sh >= kh:
                    continue
                lo = x[b, 2 * cp, y]
                hi = x[b, 2 * cp + 1 if two else 2 * cp, y]
                at = cp * row + (yy % sh) * sw * block + b * ps + y2 * wp2
                for px in range(min(sw, kw)):  # phase px's columns: q = q0, q0 + sw, ... (no division each)
                    q0 = (px - left % sw + sw) % sw
                    x0 = (q0 + left) // sw
                    count = min((w - q0 + sw - 1) // sw, wp2 - x0)
                    d = out[at + px * block + x0:]
                    a, e = lo[q0:], hi[q0:]  # loops from index 0, contiguous at stride 1: they vectorise
                    if sw == 1 and two:
                        for t in range(count):
                            d[t] = (np.int32(a[t]) & 0xFFFF) | (np.int32(e[t]) << 16)
                    elif sw == 2 and two:  # (the common stride, as a constant)
                        for t in range(count):
                            d[t] = (np.int32(a[2 * t]) & 0xFFFF) | (np.int32(e[2 * t]) << 16)
                    elif two:
                        for t in range(count):
                            d[t] = (np.int32(a[sw * t]) & 0xFFFF) | (np.int32(e[sw * t]) << 16)
                    else:
                        for t in range(count):
                            d[t] = np.int32(a[sw * t]) & 0xFFFF
