// Kernel argument packing (backends/gpu-common/args.ts): natural alignment, the CUDA/AMDGPU
// parameter layout, and clear refusals.
import { describe, expect, it } from "vitest";
import {
  f16,
  f32,
  f64,
  i32,
  i64,
  packArgs,
  u32,
  u64,
  type KernelArg,
} from "../../../backends/gpu-common/args.ts";

describe("packArgs", () => {
  it("lays out (ptr, ptr, ptr, i32) like the vadd kernel's .param list", () => {
    const p = packArgs([0x1000n, 0x2000n, 0x3000n, i32(-5)]);
    expect(p.offsets).toEqual([0, 8, 16, 24]);
    expect(p.size).toBe(28);
    const v = new DataView(p.bytes.buffer, p.bytes.byteOffset, p.size);
    expect(v.getBigUint64(8, true)).toBe(0x2000n);
    expect(v.getInt32(24, true)).toBe(-5);
  });

  it("aligns each field to its own size", () => {
    const p = packArgs([i32(1), 0x10n, f16(1.5), f64(0.25), u32(7), f32(2.5)]);
    expect(p.offsets).toEqual([0, 8, 16, 24, 32, 36]);
    expect(p.size).toBe(40);
    const v = new DataView(p.bytes.buffer, p.bytes.byteOffset, p.size);
    expect(v.getUint16(16, true)).toBe(0x3e00); // 1.5 in half precision
    expect(v.getFloat64(24, true)).toBe(0.25);
    expect(v.getFloat32(36, true)).toBe(2.5);
  });

  it("writes 64-bit integers exactly, beyond 2^53", () => {
    const big = (1n << 60n) + 3n;
    const p = packArgs([i64(-2n), u64(big)]);
    const v = new DataView(p.bytes.buffer, p.bytes.byteOffset, p.size);
    expect(v.getBigInt64(0, true)).toBe(-2n);
    expect(v.getBigUint64(8, true)).toBe(big);
  });

  it("packs nothing for a kernel without arguments", () => {
    expect(packArgs([])).toMatchObject({ size: 0, offsets: [] });
  });

  it("refuses values that do not fit their type", () => {
    expect(() => packArgs([i32(2 ** 31)])).toThrow(/kernel argument 0: 2147483648 is not a valid i32/);
    expect(() => packArgs([0x1n, u32(-1)])).toThrow(/kernel argument 1: -1 is not a valid u32/);
    expect(() => packArgs([i32(1.5)])).toThrow(/not a valid i32/);
    expect(() => packArgs([-1n])).toThrow(/not a valid ptr/);
    expect(() => packArgs([5 as unknown as KernelArg])).toThrow(
      /expected a bigint device pointer or \{type, value\}/,
    );
  });

  it("refuses parameter blocks over 4 KB", () => {
    expect(() => packArgs(Array.from({ length: 513 }, () => 1n))).toThrow(/4104 bytes, more than 4096/);
  });
});
