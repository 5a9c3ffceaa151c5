// dsl/dtypes.ts's f16 conversion of f32 arrays (integer rounding on the f32 bits) against the
// reference rounding from the double, f16Bits.
import { describe, expect, it } from "vitest";
import {
  f16Bits,
  f16BitsOfF32Bits,
  f16FromBits,
  f32FromBits,
  fromF16Array,
  toF16Array,
} from "../dsl/dtypes.ts";

describe("f16 from f32 bits", () => {
  it("rounds every f32 exponent as f16Bits does: ties, subnormals, overflow, infinities, NaN, -0", () => {
    const mantissas = [
      0, 1, 0xfff, 0x1000, 0x1001, 0x1fff, 0x2000, 0x3000, 0x5000, 0x7fe000, 0x7ff000, 0x7fffff,
    ];
    let s = 7;
    for (let e = 0; e < 256; e++)
      for (let j = 0; j < mantissas.length + 64; j++) {
        s = (s * 1103515245 + 12345) % 2 ** 31;
        const m = j < mantissas.length ? mantissas[j]! : s & 0x7fffff;
        for (const sign of [0, 0x80000000]) {
          const bits = (sign | (e << 23) | m) >>> 0;
          expect(f16BitsOfF32Bits(bits), bits.toString(16)).toBe(f16Bits(f32FromBits(bits)));
        }
      }
  });

  it("takes the fast path for Float32Array and the double path otherwise, with the same results", () => {
    const values = [0.1, -2.5e-6, 65519, 65520, -0, 3e-8, 1 + 2 ** -11, Infinity, NaN, 5.960464477539063e-8];
    const fast = toF16Array(Float32Array.from(values));
    const slow = toF16Array(Array.from(Float32Array.from(values)));
    expect(Array.from(fast)).toEqual(Array.from(slow));
    // A view into a larger buffer reads its own elements.
    const big = Float32Array.from([9, 1.5, -1.5, 9]);
    expect(Array.from(toF16Array(big.subarray(1, 3)))).toEqual([0x3e00, 0xbe00]);
  });
});

describe("f32 from f16 bits", () => {
  it("reads every bit pattern as f16FromBits does (through its table)", () => {
    const all = Uint16Array.from({ length: 0x10000 }, (_, b) => b);
    const got = fromF16Array(all);
    for (let b = 0; b < 0x10000; b++) {
      const want = f16FromBits(b);
      if (Number.isNaN(want)) expect(got[b]).toBeNaN();
      else expect(Object.is(got[b], want), b.toString(16)).toBe(true);
    }
  });
});
