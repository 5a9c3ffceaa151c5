// IEEE half precision <-> number, for kernel arguments and for checking f16 results on the host
// (Node 20 has no Float16Array). Rounds straight from the double to the nearest half, ties to
// even, as hardware does: going through f32 first would round twice and sometimes differ.

/** Rounds x (>= 0, < 2^52) to an integer, ties to even. */
function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

export function toF16Bits(value: number): number {
  if (Number.isNaN(value)) return 0x7e00;
  const sign = value < 0 || Object.is(value, -0) ? 0x8000 : 0;
  const a = Math.abs(value);
  if (a >= 65520) return sign | 0x7c00; // 65520 is halfway to 2^16 and rounds (to even) up
  if (a < 2 ** -14) return sign | roundHalfEven(a * 2 ** 24); // subnormal; 1024 becomes the smallest normal
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--; // log2 may be off by one near powers of two
  if (2 ** (e + 1) <= a) e++;
  let m = roundHalfEven(a * 2 ** (10 - e)); // scaling by a power of two is exact
  if (m === 2048) {
    m = 1024;
    e++;
  }
  if (e > 15) return sign | 0x7c00;
  return sign | ((e + 15) << 10) | (m - 1024);
}

export function f16BitsToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >>> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}
