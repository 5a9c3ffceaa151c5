/**
 * MLC-LLM's `q4f16_1` group quantization, on the host, bit for bit.
 *
 * Layout: a weight [N, K] (row-major, PyTorch's [out, in]) is cut into groups of 32 consecutive
 * elements along K. Each group gets one f16 scale, max|w| / 7, and each element a 4-bit code
 * q = clamp(round(w / scale + 7), 0, 14), packed 8 to a u32 word with element r of the word at
 * bits 4r. Dequantized: (q - 7) * scale. Outputs: packed u32 [N, K/8], scales f16 bits [N, K/32].
 *
 * MLC evaluates these expressions in float16 (the weight is f16 before quantization), so every
 * intermediate is rounded to f16 here too: scale = f16(max|w| / 7), t = f16(f16(w / scale) + 7),
 * q = clamp(roundHalfEven(t), 0, 14) (TVM lowers `round` to LLVM's nearbyint: ties to even), and
 * dequantized = f16((q - 7) * scale). Products and quotients of two f16 values computed in double
 * and then rounded once to f16 equal the correctly rounded f16 operation (f16 has 11 significant
 * bits, a double 53 >= 2*11+2), so double arithmetic + roundF16 reproduces IEEE f16 arithmetic.
 *
 * An all-zero group has scale 0, where MLC's w / scale is 0/0; we store q = 7 there, which
 * dequantizes to exactly 0 (the shared test vectors do the same). A group whose max|w| is so small
 * that max|w| / 7 rounds to f16 zero (max|w| < 2^-22.2, subnormal f16) is treated the same way.
 */
import { f16Values } from "../../dsl/dtypes.ts";

export const Q4_GROUP_SIZE = 32;
/** 4-bit codes per packed u32 word. */
export const Q4_PER_WORD = 8;
/** The stored code for zero: codes are offset by 7 so that [0, 14] holds -7..7. */
export const Q4_ZERO = 7;
const Q4_MAX = 14;

// dsl/dtypes.ts's roundF16 is the reference but costs ~100 ns a call; a 7B model has 6.7e9 weights.
// These do the same rounding with the magic-number trick: adding M = 2^(e+42) to a value in
// [2^e, 2^(e+1)) leaves f16's ulp 2^(e-10) as the ulp of the sum, so the double addition itself
// rounds to nearest even at f16 precision. test/quant checks them against the reference.
const scratch = new Float64Array(1);
const scratchHi = new Uint32Array(scratch.buffer, 4, 1); // the high word (sign, exponent) on little-endian hosts
const MAGIC = Float64Array.from({ length: 30 }, (_, i) => 2 ** (i - 14 + 42)); // e in [-14, 15]
const MIN_NORMAL = 2 ** -14;
const SUBNORMAL_MAGIC = 2 ** 28; // ulp 2^-24: f16's subnormal quantum

/** Rounds a double to the nearest f16 value, ties to even; +-Infinity past 65504, NaN stays NaN. */
export function roundF16Fast(x: number): number {
  if (x === 0) return x; // keeps -0
  const a = x < 0 ? -x : x;
  if (!(a < 65520)) return a === a ? x * Infinity : NaN;
  let r: number;
  if (a < MIN_NORMAL) r = a + SUBNORMAL_MAGIC - SUBNORMAL_MAGIC;
  else {
    scratch[0] = a;
    const m = MAGIC[(scratchHi[0]! >>> 20) - 1023 + 14]!;
    r = a + m - m;
  }
  return x < 0 ? -r : r;
}

/** f16 bit pattern of a double (ties to even): as dsl's f16Bits, faster. */
export function f16BitsFast(x: number): number {
  const r = roundF16Fast(x);
  const sign = r < 0 || Object.is(r, -0) ? 0x8000 : 0;
  const a = r < 0 ? -r : r;
  if (a === 0) return sign;
  if (a !== a) return 0x7e00;
  if (a === Infinity) return sign | 0x7c00;
  if (a < MIN_NORMAL) return sign | (a * 2 ** 24); // exact: a is a multiple of 2^-24 below 2^-14
  scratch[0] = a;
  const hi = scratchHi[0]!;
  return sign | ((((hi >>> 20) - 1023 + 15) << 10) | ((hi >>> 10) & 0x3ff));
}

/** Rounds to the nearest integer, ties to even, for |x| < 2^51 (the q codes here are within [-1, 16]). */
function roundHalfEvenSmall(x: number): number {
  const TWO52 = 4503599627370496;
  return x >= 0 ? x + TWO52 - TWO52 : -(-x + TWO52 - TWO52);
}

// Every f16 bit pattern's value, so f16 inputs and scales decode by a table look-up.
const F16_VALUES = f16Values();

export interface Q4f16_1 {
  /** [N, K/8]: element r of each word at bits 4r. */
  readonly packed: Uint32Array;
  /** [N, K/32]: f16 bit patterns. */
  readonly scales: Uint16Array;
}

/** Where a quantizer error is reported: the tensor's name, so a failed conversion says which tensor. */
export interface QuantOptions {
  readonly name?: string;
}

function checkShape(n: number, k: number, len: number, what: string): void {
  if (!Number.isInteger(n) || n <= 0 || !Number.isInteger(k) || k <= 0)
    throw new Error(`${what}: shape [${n}, ${k}] must be positive integers`);
  if (k % Q4_GROUP_SIZE !== 0)
    throw new Error(
      `${what}: q4f16_1 needs K (the last dimension) to be a multiple of ${Q4_GROUP_SIZE}, got K = ${k}`,
    );
  if (len !== n * k) throw new Error(`${what}: expected ${n} x ${k} = ${n * k} elements, got ${len}`);
}

/**
 * Quantizes a weight given as f16 values (doubles already exactly representable in f16; the callers
 * below guarantee that). `fill(group, start)` writes the 32 elements from `start` of the row-major
 * [N, K] weight into `group`.
 */
function quantizeF16Values(
  fill: (group: Float64Array, start: number) => void,
  n: number,
  k: number,
  what: string,
): Q4f16_1 {
  const groupsPerRow = k / Q4_GROUP_SIZE;
  const packed = new Uint32Array((n * k) / Q4_PER_WORD);
  const scales = new Uint16Array(n * groupsPerRow);
  const group = new Float64Array(Q4_GROUP_SIZE);
  for (let g = 0; g < n * groupsPerRow; g++) {
    const base = g * Q4_GROUP_SIZE;
    let maxAbs = 0;
    fill(group, base);
    for (let j = 0; j < Q4_GROUP_SIZE; j++) {
      const w = group[j]!;
      if (!Number.isFinite(w)) {
        const row = Math.floor((base + j) / k);
        throw new Error(
          `${what}: element [${row}, ${(base + j) % k}] is ${w} after rounding to f16 (outside the f16 range); q4f16_1 needs finite weights`,
        );
      }
      const a = Math.abs(w);
      if (a > maxAbs) maxAbs = a;
    }
    // max|w| is an f16 value already (max is exact), so only the division rounds.
    const scale = roundF16Fast(maxAbs / 7);
    scales[g] = f16BitsFast(scale);
    const wordBase = base / Q4_PER_WORD;
    for (let wd = 0; wd < Q4_GROUP_SIZE / Q4_PER_WORD; wd++) {
      let word = 0;
      for (let r = 0; r < Q4_PER_WORD; r++) {
        let q = Q4_ZERO;
        if (scale !== 0) {
          const t = roundF16Fast(roundF16Fast(group[wd * Q4_PER_WORD + r]! / scale) + 7);
          q = Math.min(Math.max(roundHalfEvenSmall(t), 0), Q4_MAX);
        }
        word |= q << (4 * r);
      }
      packed[wordBase + wd] = word >>> 0;
    }
  }
  return { packed, scales };
}

/**
 * Quantizes f32 (or any double) weights: each value is first rounded to f16, as MLC converts the
 * model to float16 before it quantizes. `w` is row-major [n, k].
 */
export function quantizeQ4f16_1(
  w: ArrayLike<number>,
  n: number,
  k: number,
  opts: QuantOptions = {},
): Q4f16_1 {
  const what = opts.name ?? "q4f16_1 quantize";
  checkShape(n, k, w.length, what);
  return quantizeF16Values(
    (group, start) => {
      for (let j = 0; j < Q4_GROUP_SIZE; j++) group[j] = roundF16Fast(w[start + j]!);
    },
    n,
    k,
    what,
  );
}

/** Quantizes weights given as f16 bit patterns (row-major [n, k]). */
export function quantizeQ4f16_1FromF16Bits(
  bits: ArrayLike<number>,
  n: number,
  k: number,
  opts: QuantOptions = {},
): Q4f16_1 {
  const what = opts.name ?? "q4f16_1 quantize";
  checkShape(n, k, bits.length, what);
  return quantizeF16Values(
    (group, start) => {
      for (let j = 0; j < Q4_GROUP_SIZE; j++) group[j] = F16_VALUES[bits[start + j]! & 0xffff]!;
    },
    n,
    k,
    what,
  );
}

/** The 4-bit code of element (row, col) of a packed [n, k] weight. */
export function q4Code(packed: Uint32Array, k: number, row: number, col: number): number {
  const idx = row * k + col;
  return (packed[idx >>> 3]! >>> (4 * (idx & 7))) & 0xf;
}

function checkQuantized(q: Q4f16_1, n: number, k: number, what: string): void {
  checkShape(n, k, n * k, what);
  if (q.packed.length !== (n * k) / Q4_PER_WORD)
    throw new Error(
      `${what}: packed has ${q.packed.length} words, [${n}, ${k}] needs ${(n * k) / Q4_PER_WORD}`,
    );
  if (q.scales.length !== (n * k) / Q4_GROUP_SIZE)
    throw new Error(
      `${what}: scales has ${q.scales.length} entries, [${n}, ${k}] needs ${(n * k) / Q4_GROUP_SIZE}`,
    );
}

/** Dequantizes to f16 bit patterns, f16((q - 7) * scale), exactly as MLC's decode kernels compute it. */
export function dequantizeQ4f16_1ToF16Bits(
  q: Q4f16_1,
  n: number,
  k: number,
  opts: QuantOptions = {},
): Uint16Array {
  checkQuantized(q, n, k, opts.name ?? "q4f16_1 dequantize");
  const out = new Uint16Array(n * k);
  for (let g = 0; g < q.scales.length; g++) {
    const scale = F16_VALUES[q.scales[g]!]!;
    for (let j = 0; j < Q4_GROUP_SIZE; j++) {
      const i = g * Q4_GROUP_SIZE + j;
      const code = (q.packed[i >>> 3]! >>> (4 * (i & 7))) & 0xf;
      out[i] = f16BitsFast((code - Q4_ZERO) * scale);
    }
  }
  return out;
}

/** Dequantizes to f32 values (each one an f16 value: the f16 result widened). */
export function dequantizeQ4f16_1(q: Q4f16_1, n: number, k: number, opts: QuantOptions = {}): Float32Array {
  const bits = dequantizeQ4f16_1ToF16Bits(q, n, k, opts);
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = F16_VALUES[bits[i]!]!;
  return out;
}

/**
 * Converts f32 values to f16 bit patterns (round to nearest even). Values beyond the f16 range
 * (|x| >= 65520 rounds to infinity) or NaN are an error rather than a silent inf/NaN in a weight.
 */
export function toF16Checked(w: ArrayLike<number>, opts: QuantOptions = {}): Uint16Array {
  const out = new Uint16Array(w.length);
  for (let i = 0; i < w.length; i++) {
    const b = f16BitsFast(w[i]!);
    if ((b & 0x7c00) === 0x7c00)
      throw new Error(
        `${opts.name ?? "f16 convert"}: element ${i} = ${w[i]} does not fit in f16 (max 65504)`,
      );
    out[i] = b;
  }
  return out;
}
