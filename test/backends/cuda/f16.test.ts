// Half-precision conversion used for f16 kernel arguments and host-side checks.
import { describe, expect, it } from "vitest";
import { f16BitsToNumber, toF16Bits } from "../../../backends/gpu-common/f16.ts";

describe("f16", () => {
  it("round-trips every non-NaN bit pattern", () => {
    for (let b = 0; b < 0x10000; b++) {
      if ((b & 0x7c00) === 0x7c00 && b & 0x3ff) continue;
      expect(toF16Bits(f16BitsToNumber(b))).toBe(b);
    }
  });

  it("rounds to nearest, ties to even", () => {
    expect(toF16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie, 1.0 is even
    expect(toF16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie, rounds up to even
    expect(toF16Bits(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01);
    expect(toF16Bits(2 ** -25)).toBe(0); // half of the smallest subnormal: tie to zero
    expect(toF16Bits(3 * 2 ** -25)).toBe(2); // 1.5 subnormal steps -> 2
    expect(toF16Bits(2047 * 2 ** -24 + 2 ** -25)).toBe(0x0800); // rounds up across the binade
  });

  it("rounds once, from the double: no double rounding through f32", () => {
    // Through f32 this would lose the 2^-40 and become a tie that rounds down to 1.0.
    expect(toF16Bits(1 + 2 ** -11 + 2 ** -40)).toBe(0x3c01);
    expect(toF16Bits(-(1 + 2 ** -11 + 2 ** -40))).toBe(0xbc01);
  });

  it("agrees with nearest-even on a sweep of random doubles", () => {
    let s = 12345;
    for (let i = 0; i < 20000; i++) {
      s = (s * 1103515245 + 12345) % 2 ** 31;
      const v = (s / 2 ** 31 - 0.5) * 2 ** ((i % 40) - 26); // up to 2^13: no overflow to inf
      const h = toF16Bits(v);
      const back = f16BitsToNumber(h);
      // No other half is closer, and on a tie the chosen one is even.
      for (const nb of [h - 1, h + 1]) {
        if ((nb & 0x7fff) > 0x7bff || (nb & 0x8000) !== (h & 0x8000)) continue;
        const other = f16BitsToNumber(nb);
        const dh = Math.abs(back - v);
        const dn = Math.abs(other - v);
        expect(dh <= dn).toBe(true);
        if (dh === dn) expect(h & 1).toBe(0);
      }
    }
  });

  it("handles overflow, infinities, NaN and signed zero", () => {
    expect(toF16Bits(65504)).toBe(0x7bff);
    expect(toF16Bits(65520)).toBe(0x7c00); // rounds up past the largest finite
    expect(toF16Bits(-Infinity)).toBe(0xfc00);
    expect(toF16Bits(-0)).toBe(0x8000);
    expect(Number.isNaN(f16BitsToNumber(toF16Bits(NaN)))).toBe(true);
  });
});
