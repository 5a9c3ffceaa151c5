/**
 * Data types: names, bit widths, and exact host-side conversions.
 *
 * f16 and bf16 values live on the host as their 16-bit patterns (Node 20 has no Float16Array).
 * Every conversion from a JavaScript number rounds to nearest, ties to even, as the GPU's
 * `cvt.rn` instructions do, so the CPU backend reproduces GPU rounding bit for bit.
 */

export type DType = "f32" | "f16" | "bf16" | "i64" | "i32" | "u32" | "i8" | "u8" | "bool";

export interface DTypeInfo {
  readonly name: DType;
  readonly bits: number;
  readonly kind: "float" | "int" | "uint" | "bool";
}

export const DTYPES: Readonly<Record<DType, DTypeInfo>> = {
  f32: { name: "f32", bits: 32, kind: "float" },
  f16: { name: "f16", bits: 16, kind: "float" },
  bf16: { name: "bf16", bits: 16, kind: "float" },
  i64: { name: "i64", bits: 64, kind: "int" },
  i32: { name: "i32", bits: 32, kind: "int" },
  u32: { name: "u32", bits: 32, kind: "uint" },
  i8: { name: "i8", bits: 8, kind: "int" },
  u8: { name: "u8", bits: 8, kind: "uint" },
  bool: { name: "bool", bits: 1, kind: "bool" },
};

export const isFloat = (d: DType): boolean => DTYPES[d].kind === "float";
export const isInt = (d: DType): boolean => DTYPES[d].kind === "int" || DTYPES[d].kind === "uint";
export const isSigned = (d: DType): boolean => DTYPES[d].kind === "int" || DTYPES[d].kind === "float";
export const bytesOf = (d: DType): number => (d === "bool" ? 1 : DTYPES[d].bits / 8);
export const isDType = (s: string): s is DType => Object.prototype.hasOwnProperty.call(DTYPES, s);

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);
const f64Scratch = new Float64Array(1);
const u32x2Scratch = new Uint32Array(f64Scratch.buffer);

/** f32 bit pattern of `x` (after rounding to f32). */
export function f32Bits(x: number): number {
  f32Scratch[0] = x;
  return u32Scratch[0]!;
}

export function f32FromBits(bits: number): number {
  u32Scratch[0] = bits >>> 0;
  return f32Scratch[0]!;
}

/**
 * Rounds a double to the nearest f16 (ties to even) and returns its bit pattern.
 * Works from the double directly, so there is no double rounding through f32.
 */
export function f16Bits(x: number): number {
  if (Number.isNaN(x)) return 0x7e00;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a === Infinity) return sign | 0x7c00;
  // 65520 is the midpoint between the largest f16 (65504) and 2^16: it and above round to infinity.
  if (a >= 65520) return sign | 0x7c00;
  if (a < 2 ** -25) {
    // Below half the smallest subnormal: rounds to zero; exactly half rounds to even (zero).
    return sign;
  }
  f64Scratch[0] = a;
  const hi = u32x2Scratch[1]!;
  const exp = ((hi >>> 20) & 0x7ff) - 1023;
  if (exp < -14) {
    // Subnormal f16: value = m * 2^-24, m in [0, 1024).
    const scaled = a * 2 ** 24;
    const m = roundHalfEven(scaled);
    return sign | m; // m may be 1024, which is the smallest normal: the bit pattern works out.
  }
  // Normal: 10 mantissa bits. Scale the mantissa to an integer and round.
  const scaled = a * 2 ** (10 - exp); // in [1024, 2048)
  let m = roundHalfEven(scaled);
  let e = exp + 15;
  if (m === 2048) {
    m = 1024;
    e += 1;
  }
  if (e >= 31) return sign | 0x7c00;
  return sign | (e << 10) | (m - 1024);
}

export function f16FromBits(bits: number): number {
  const b = bits & 0xffff;
  const sign = b & 0x8000 ? -1 : 1;
  const e = (b >>> 10) & 0x1f;
  const m = b & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m === 0 ? sign * Infinity : NaN;
  return sign * (1024 + m) * 2 ** (e - 25);
}

/** Rounds a double to the nearest bf16 (ties to even) via its f32 value, and returns the bit pattern. */
export function bf16Bits(x: number): number {
  if (Number.isNaN(x)) return 0x7fc0;
  // Round to f32 first only when that is exact for bf16 purposes: bf16 has 8 mantissa bits, f32 has 24,
  // so double -> f32 -> bf16 could double-round. Round from the double instead.
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a === Infinity) return sign | 0x7f80;
  if (a === 0) return sign;
  f64Scratch[0] = a;
  const exp = ((u32x2Scratch[1]! >>> 20) & 0x7ff) - 1023;
  if (exp < -126) {
    // Subnormal bf16: value = m * 2^-133, m in [0, 128).
    const m = roundHalfEven(a * 2 ** 133);
    return sign | m;
  }
  let m = roundHalfEven(a * 2 ** (7 - exp)); // in [128, 256]
  let e = exp + 127;
  if (m === 256) {
    m = 128;
    e += 1;
  }
  if (e >= 255) return sign | 0x7f80;
  return sign | (e << 7) | (m - 128);
}

export function bf16FromBits(bits: number): number {
  return f32FromBits((bits & 0xffff) << 16);
}

/** Rounds a double to the nearest f16 value (as a double). */
export const roundF16 = (x: number): number => f16FromBits(f16Bits(x));
/** Rounds a double to the nearest bf16 value (as a double). */
export const roundBF16 = (x: number): number => bf16FromBits(bf16Bits(x));

/** Rounds to the nearest integer, ties to even (IEEE roundeven; LLVM's nearbyint in the default mode). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x); // ties toward +infinity
  if (Math.abs(x - Math.trunc(x)) === 0.5) {
    const f = Math.floor(x);
    return f % 2 === 0 ? f : f + 1;
  }
  return r;
}

/** Converts an array of numbers to f16 bit patterns. */
export function toF16Array(values: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(values.length);
  if (values instanceof Float32Array) {
    // f32 inputs round in integer arithmetic on their bits (exact, no double rounding): about 30x
    // faster than f16Bits, which a 512-token prefill of an f16 model paid for 2 M activations.
    const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
    for (let i = 0; i < bits.length; i++) out[i] = f16BitsOfF32Bits(bits[i]!);
    return out;
  }
  for (let i = 0; i < values.length; i++) out[i] = f16Bits(values[i]!);
  return out;
}

/** The f16 nearest (ties to even) to the f32 with bit pattern `b`, as f16Bits rounds it. */
export function f16BitsOfF32Bits(b: number): number {
  const sign = (b >>> 16) & 0x8000;
  const biased = (b >>> 23) & 0xff;
  const m = b & 0x7fffff;
  if (biased === 0xff) return m ? 0x7e00 : sign | 0x7c00;
  const e = biased - 112; // the f16 exponent field: f32 bias 127, f16 bias 15
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal f16 (or zero): the significand with its implicit bit, shifted down by 14 - e.
    if (e < -10) return sign;
    const full = m | 0x800000;
    const shift = 14 - e;
    const h = full >>> shift;
    const rest = full & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    return sign | (rest > half || (rest === half && (h & 1) === 1) ? h + 1 : h);
  }
  const h = (e << 10) | (m >>> 13);
  const rest = m & 0x1fff;
  // A carry out of the mantissa bumps the exponent, which is the right value (up to infinity).
  return sign | (rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1) ? h + 1 : h);
}

export function fromF16Array(bits: ArrayLike<number>): Float32Array {
  const table = f16Values();
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = table[bits[i]! & 0xffff]!;
  return out;
}

let f16Table: Float64Array | undefined;
/**
 * Every f16 bit pattern's value, indexed by the pattern (made on first use): decoding f16 by a
 * look-up (f16 logits every step, the CPU backend's f16 rounding, q4f16_1 scales).
 */
export function f16Values(): Float64Array {
  if (!f16Table) {
    f16Table = new Float64Array(0x10000);
    for (let b = 0; b < 0x10000; b++) f16Table[b] = f16FromBits(b);
  }
  return f16Table;
}

export function toBF16Array(values: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = bf16Bits(values[i]!);
  return out;
}

export function fromBF16Array(bits: ArrayLike<number>): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = bf16FromBits(bits[i]!);
  return out;
}
