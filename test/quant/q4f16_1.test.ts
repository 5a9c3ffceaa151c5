import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { f16Bits, f16FromBits, roundF16 } from "../../dsl/dtypes.ts";
import {
  dequantizeQ4f16_1,
  dequantizeQ4f16_1ToF16Bits,
  f16BitsFast,
  q4Code,
  quantizeQ4f16_1,
  quantizeQ4f16_1FromF16Bits,
  roundF16Fast,
  toF16Checked,
} from "../../llama/quant/q4f16_1.ts";

interface VectorCase {
  shape: [number, number];
  weight_f16_bits: number[];
  q_values: number[];
  packed_u32: number[];
  scale_f16_bits: number[];
  dequantized_f16_bits: number[];
}

const vectorsPath = fileURLToPath(new URL("../../../shared/vectors/q4f16_1.json", import.meta.url));
const vectors = JSON.parse(readFileSync(vectorsPath, "utf8")) as { format: string; cases: VectorCase[] };

/** Deterministic PRNG (mulberry32), so a failing random case can be reproduced. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("fast f16 rounding agrees with dsl/dtypes.ts", () => {
  it("on every f16 value, every midpoint between neighbours, and just either side of it", () => {
    const bad: string[] = [];
    const check = (x: number) => {
      const want = f16Bits(x);
      const got = f16BitsFast(x);
      if (want !== got || !Object.is(roundF16Fast(x), roundF16(x))) bad.push(`${x}: ${got} != ${want}`);
    };
    for (let b = 0; b < 0x7c00; b++) {
      for (const sign of [1, -1]) {
        const v = sign * f16FromBits(b);
        check(v);
        const up = sign * f16FromBits(b + 1); // b + 1 = 0x7c00 is infinity: midpoint 65520 overflows
        const mid = b + 1 === 0x7c00 ? sign * 65520 : (v + up) / 2;
        check(mid);
        check(mid * (1 + 2 ** -40));
        check(mid * (1 - 2 ** -40));
      }
    }
    for (const x of [Infinity, -Infinity, NaN, 1e30, -1e-30, 2 ** -26, -0, 0]) check(x);
    expect(bad.slice(0, 5)).toEqual([]);
  });
  it("on random f32 values across the exponent range", () => {
    const next = rng(7);
    const u = new Uint32Array(1);
    const f = new Float32Array(u.buffer);
    const bad: number[] = [];
    for (let i = 0; i < 200_000; i++) {
      u[0] = Math.floor(next() * 2 ** 32);
      const x = f[0]!;
      if (f16BitsFast(x) !== f16Bits(x) && !Number.isNaN(x)) bad.push(x);
    }
    expect(bad.slice(0, 5)).toEqual([]);
  });
});

describe("q4f16_1 against the shared MLC vectors", () => {
  it("has cases in the expected format", () => {
    expect(vectors.format).toBe("q4f16_1");
    expect(vectors.cases.length).toBeGreaterThan(0);
  });
  for (const c of vectors.cases) {
    const [n, k] = c.shape;
    it(`reproduces case [${n}, ${k}] bit for bit`, () => {
      const q = quantizeQ4f16_1FromF16Bits(c.weight_f16_bits, n, k);
      expect(Array.from(q.scales)).toEqual(c.scale_f16_bits);
      expect(Array.from(q.packed)).toEqual(c.packed_u32);
      const codes: number[] = [];
      for (let r = 0; r < n; r++) for (let col = 0; col < k; col++) codes.push(q4Code(q.packed, k, r, col));
      expect(codes).toEqual(c.q_values);
      expect(Array.from(dequantizeQ4f16_1ToF16Bits(q, n, k))).toEqual(c.dequantized_f16_bits);
      // The f32 entry point rounds to f16 first; f16 values in f32 are exact, so it must agree.
      const viaF32 = quantizeQ4f16_1(Float32Array.from(c.weight_f16_bits, f16FromBits), n, k);
      expect(Array.from(viaF32.packed)).toEqual(c.packed_u32);
    });
  }
});

describe("q4f16_1 packing, computed by hand", () => {
  // Row 0: max|w| = 7, so scale = 1 and q = round_half_even(f16(w + 7)).
  const row0 = [
    ...[0, 1, 2, 3, 4, 5, 6, 7], // q 7..14 -> nibbles (high to low) E D C B A 9 8 7
    ...[-1, -2, -3, -4, -5, -6, -7, 0], // q 6 5 4 3 2 1 0 7 -> 0x70123456
    // ties go to even: 7.5->8, 8.5->8, 9.5->10, 6.5->6, 5.5->6, 4.5->4; 10.25->10, 3.25->3
    ...[0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 3.25, -3.75],
    // 6.9 -> f16 6.8984375, +7 = 13.898 -> 14; -6.9 -> 0.1016 -> 0; 0.49 -> 7.488 -> 7;
    // -0.51 -> f16 0.509765625, 7 - that = 6.4902 rounds in f16 to 6.4921875 -> 6;
    // 2.499 -> f16 2.498046875, +7 = 9.498046875 rounds in f16 to 9.5 -> ties to even -> 10
    // (exact arithmetic would give 9: this is the f16 arithmetic MLC does).
    ...[6.9, -6.9, 0.49, -0.51, 2.499, 0, -7, 7],
  ];
  // Row 1: max|w| = 1, scale = f16(1/7) = 1170/8192 (bits 0x3092); 1/scale = 7.0017 -> f16 7 -> q 14.
  const row1 = [1, ...new Array<number>(31).fill(0)];
  // Row 2: all zero (negative zeros too): scale 0, q = 7, no NaN.
  const row2 = new Array<number>(32).fill(0).map((_, i) => (i % 2 ? -0 : 0));
  const w = Float32Array.from([...row0, ...row1, ...row2]);

  it("packs element r of each word at bits 4r", () => {
    const q = quantizeQ4f16_1(w, 3, 32);
    expect(Array.from(q.packed, (x) => x.toString(16))).toEqual(
      [0xedcba987, 0x70123456, 0x3a466a88, 0xe07a670e, 0x7777777e, 0x77777777, 0x77777777, 0x77777777]
        .concat([0x77777777, 0x77777777, 0x77777777, 0x77777777])
        .map((x) => x.toString(16)),
    );
    expect(Array.from(q.scales)).toEqual([0x3c00, 0x3092, 0x0000]);
    expect(f16FromBits(0x3092)).toBe(1170 / 8192);
  });

  it("dequantizes to (q - 7) * scale", () => {
    const q = quantizeQ4f16_1(w, 3, 32);
    const d = dequantizeQ4f16_1(q, 3, 32);
    expect(Array.from(d.subarray(0, 16))).toEqual([0, 1, 2, 3, 4, 5, 6, 7, -1, -2, -3, -4, -5, -6, -7, 0]);
    expect(Array.from(d.subarray(16, 32))).toEqual([1, 1, 3, -1, -1, -3, 3, -4, 7, -7, 0, -1, 3, 0, -7, 7]);
    // 7 * 1170/8192 = 8190/8192 is not an f16 value (ulp 2^-11 there): it is a tie and rounds to even, 1.0.
    expect(d[32]).toBe(1);
    expect(roundF16((7 * 1170) / 8192)).toBe(1);
    for (let i = 33; i < 96; i++) expect(Object.is(d[i], 0) || Object.is(d[i], -0)).toBe(true);
    expect(d.every((x) => !Number.isNaN(x))).toBe(true);
  });
});

describe("q4f16_1 round-trip error", () => {
  it("stays within half a step, plus f16 rounding, on random weights", () => {
    const next = rng(1234);
    const n = 24;
    const k = 256;
    const w = new Float32Array(n * k);
    for (let i = 0; i < w.length; i++) {
      // Mix of scales per row, and an occasional outlier that sets a group's scale.
      const rowScale = 10 ** (Math.floor(i / k) % 6) * 1e-3;
      w[i] = (next() * 2 - 1) * rowScale * (next() < 0.02 ? 20 : 1);
    }
    const q = quantizeQ4f16_1(w, n, k);
    const d = dequantizeQ4f16_1(q, n, k);
    let worst = 0;
    let beyondHalf = 0;
    for (let i = 0; i < w.length; i++) {
      const scale = f16FromBits(q.scales[Math.floor(i / 32)]!);
      expect(scale).toBeGreaterThan(0);
      const w16 = roundF16(w[i]!);
      const err = Math.abs(w16 - d[i]!);
      // Exact arithmetic gives |w - deq| <= scale/2 (and less at the clamp, since max|w|/scale ~ 7).
      // f16 rounding adds: w/scale (< 2^-9 at |x| < 8), + 7 (<= 2^-8 at [8, 16)), and the final
      // product (<= 7 * scale * 2^-11): all below scale * 2^-6 together.
      expect(err).toBeLessThanOrEqual(scale * (0.5 + 2 ** -6));
      worst = Math.max(worst, err / scale);
      if (err > scale / 2) beyondHalf++;
      // Against the f32 source, f16 rounding of w itself adds at most |w| * 2^-11 <= 7.01 * scale * 2^-11.
      expect(Math.abs(w[i]! - d[i]!)).toBeLessThanOrEqual(scale * (0.5 + 2 ** -6 + 8 * 2 ** -11));
    }
    // The bound is nearly reached: uniform inputs land anywhere within a step.
    expect(worst).toBeGreaterThan(0.45);
    // f16 rounding pushes only a few elements beyond scale/2.
    expect(beyondHalf).toBeLessThan(w.length / 20);
  });

  it("stores each group's max|w| at the clamp ends 0 or 14", () => {
    const next = rng(99);
    const w = Float32Array.from({ length: 64 * 32 }, () => next() * 2 - 1);
    const q = quantizeQ4f16_1(w, 64, 32);
    for (let r = 0; r < 64; r++) {
      let arg = 0;
      for (let c = 1; c < 32; c++) if (Math.abs(w[r * 32 + c]!) > Math.abs(w[r * 32 + arg]!)) arg = c;
      expect(q4Code(q.packed, 32, r, arg)).toBe(w[r * 32 + arg]! > 0 ? 14 : 0);
    }
  });

  it("treats a group whose scale underflows f16 as zero", () => {
    const w = new Float32Array(32);
    w[5] = 2 ** -24; // smallest f16 subnormal: / 7 rounds to 0
    const q = quantizeQ4f16_1(w, 1, 32);
    expect(q.scales[0]).toBe(0);
    expect(Array.from(q.packed)).toEqual([0x77777777, 0x77777777, 0x77777777, 0x77777777]);
  });
});

describe("q4f16_1 and f16 errors", () => {
  it("rejects K not a multiple of 32", () => {
    expect(() => quantizeQ4f16_1(new Float32Array(48), 1, 48, { name: "w1" })).toThrow(
      /w1: .*multiple of 32, got K = 48/,
    );
  });
  it("rejects a length that does not match the shape", () => {
    expect(() => quantizeQ4f16_1(new Float32Array(60), 2, 32)).toThrow(
      /expected 2 x 32 = 64 elements, got 60/,
    );
  });
  it("rejects weights beyond the f16 range and NaN", () => {
    const w = new Float32Array(64);
    w[40] = 1e6;
    expect(() => quantizeQ4f16_1(w, 2, 32, { name: "wq" })).toThrow(/wq: element \[1, 8\] is Infinity/);
    w[40] = NaN;
    expect(() => quantizeQ4f16_1(w, 2, 32)).toThrow(/element \[1, 8\] is NaN/);
  });
  it("rejects mismatched packed data when dequantizing", () => {
    const q = quantizeQ4f16_1(new Float32Array(64), 2, 32);
    expect(() => dequantizeQ4f16_1(q, 1, 32)).toThrow(/packed has 8 words, \[1, 32\] needs 4/);
  });
  it("converts to f16 with rounding to nearest even, refusing overflow", () => {
    const bits = toF16Checked([1, -2, 65504, 1 + 2 ** -11, 1 + 3 * 2 ** -11]);
    // 1 + 2^-11 is a tie between 1 and 1 + 2^-10: even mantissa is 1; 1 + 3*2^-11 rounds up to 1 + 2^-9.
    expect(Array.from(bits)).toEqual([0x3c00, 0xc000, 0x7bff, 0x3c00, 0x3c02]);
    expect(f16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(() => toF16Checked([0, 70000], { name: "norm" })).toThrow(/norm: element 1 = 70000 does not fit/);
  });
});
