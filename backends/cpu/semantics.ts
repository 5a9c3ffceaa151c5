/**
 * The arithmetic the CPU backend runs, written once: these rules define what every backend must
 * compute (GPU results are checked against them).
 *
 * - Floats: every operation rounds its exact result to the dtype, ties to even (f32 via Math.fround;
 *   f16/bf16 via exact rounding from the double). Transcendentals are computed in double and rounded,
 *   so GPU approximations differ by a few ulp: tests compare those with a tolerance.
 * - min/max on floats return the non-NaN operand (IEEE minNum/maxNum, LLVM's minnum/maxnum).
 * - Integers wrap modulo 2^bits. Integer division truncates toward zero; division or remainder by
 *   zero is unspecified (the CPU gives 0; GPUs give other values). Shift amounts must be in
 *   [0, bits); others are unspecified. i64 is exact up to 2^53 (indexing only).
 * - Float to integer conversion truncates toward zero and saturates; NaN gives 0.
 * - `select`/`?:` evaluates only the chosen side, so a guarded out-of-bounds load is safe.
 */
import {
  bf16Bits,
  bf16FromBits,
  f16Bits,
  f16Values,
  f32Bits,
  f32FromBits,
  roundHalfEven,
} from "../../dsl/dtypes.ts";

const F16_TABLE = f16Values();
const BF16_TABLE = Float64Array.from({ length: 65536 }, (_, i) => bf16FromBits(i));

const INT_RANGE: Record<string, [number, number]> = {
  i32: [-2147483648, 2147483647],
  u32: [0, 4294967295],
  i8: [-128, 127],
  u8: [0, 255],
  i64: [-(2 ** 53), 2 ** 53],
};

/** erf to about 1e-15 relative: Abramowitz-Stegun 7.1.26 is too coarse for f32, so use a series/continued fraction. */
function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const ax = Math.abs(x);
  if (ax > 6) return Math.sign(x);
  if (ax < 2.5) {
    // Maclaurin series: erf(x) = 2/sqrt(pi) * sum (-1)^n x^(2n+1) / (n! (2n+1)).
    let term = ax;
    let sum = ax;
    const x2 = ax * ax;
    for (let n = 1; n < 100; n++) {
      term *= -x2 / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc continued fraction (Lentz) for larger |x|.
  const tiny = 1e-300;
  let f = ax;
  let c = ax;
  let d = 0;
  for (let n = 1; n < 200; n++) {
    const an = n / 2;
    d = ax + an * d;
    d = d === 0 ? tiny : d;
    c = ax + an / c;
    c = c === 0 ? tiny : c;
    d = 1 / d;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / f;
  return Math.sign(x) * (1 - erfc);
}

export const runtime = {
  F16: F16_TABLE,
  BF16: BF16_TABLE,
  r16: (x: number): number => F16_TABLE[f16Bits(x)]!,
  rb16: (x: number): number => BF16_TABLE[bf16Bits(x)]!,
  f16b: f16Bits,
  bf16b: bf16Bits,
  rne: roundHalfEven,
  f32FromBits: (x: number): number => f32FromBits(x),
  bitsOfF32: (x: number): number => f32Bits(x),
  erf,
  packF16x2: (lo: number, hi: number): number => (f16Bits(lo) | (f16Bits(hi) << 16)) >>> 0,
  unpackF16x2: (v: number, element: number): number => F16_TABLE[(v >>> (16 * element)) & 0xffff]!,
  /**
   * a * b + c per f16 element. The product of two f16 is exact in a double; the sum rounds in the
   * double only where the operands' exponents lie more than 30 apart, so the result is the exactly
   * rounded f16 except in those (far out of any kernel's range) cases.
   */
  fmaF16x2(a: number, b: number, c: number): number {
    const el = (v: number, e: number) => F16_TABLE[(v >>> (16 * e)) & 0xffff]!;
    const lo = f16Bits(el(a, 0) * el(b, 0) + el(c, 0));
    const hi = f16Bits(el(a, 1) * el(b, 1) + el(c, 1));
    return (lo | (hi << 16)) >>> 0;
  },
  fmin: (a: number, b: number): number => (a !== a ? b : b !== b ? a : a < b ? a : b),
  fmax: (a: number, b: number): number => (a !== a ? b : b !== b ? a : a > b ? a : b),
  f2i(x: number, dtype: string): number {
    if (x !== x) return 0;
    const [lo, hi] = INT_RANGE[dtype]!;
    const t = Math.trunc(x);
    return t < lo ? lo : t > hi ? hi : t;
  },
  oob(buffer: string, dim: number, index: number, extent: number): never {
    throw new RangeError(
      `tkc: out-of-bounds access ${buffer}: index ${index} in dimension ${dim} is outside [0, ${extent})`,
    );
  },
};

export type CpuRuntime = typeof runtime;
