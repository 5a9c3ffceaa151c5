// Kernel arguments: packed into one buffer with each field at its natural alignment, which is
// both the CUDA parameter layout and the AMDGPU kernarg layout for the IR types the LLVM renderer
// emits (see backends/llvm/ABI.md). cuLaunchKernel / hipModuleLaunchKernel take `void **`: the
// address of each field, so the runtime adds the buffer's address to each offset.
import { toF16Bits } from "./f16.ts";

export type ArgType =
  "i8" | "u8" | "i16" | "u16" | "i32" | "u32" | "i64" | "u64" | "f16" | "f32" | "f64" | "ptr";

/** A bigint on its own is a device pointer; every other argument says its type. */
export type KernelArg = bigint | { readonly type: ArgType; readonly value: number | bigint };

export const i32 = (value: number) => ({ type: "i32", value }) as const;
export const u32 = (value: number) => ({ type: "u32", value }) as const;
export const i64 = (value: number | bigint) => ({ type: "i64", value }) as const;
export const u64 = (value: number | bigint) => ({ type: "u64", value }) as const;
export const f16 = (value: number) => ({ type: "f16", value }) as const;
export const f32 = (value: number) => ({ type: "f32", value }) as const;
export const f64 = (value: number) => ({ type: "f64", value }) as const;
export const ptr = (value: bigint) => ({ type: "ptr", value }) as const;

const SIZE: Record<ArgType, number> = {
  i8: 1,
  u8: 1,
  i16: 2,
  u16: 2,
  f16: 2,
  i32: 4,
  u32: 4,
  f32: 4,
  i64: 8,
  u64: 8,
  f64: 8,
  ptr: 8,
};

/** CUDA's classic limit on kernel parameter bytes (newer GPUs allow more; we don't need it). */
export const MAX_PARAM_BYTES = 4096;

export interface PackedArgs {
  /** The parameter block, `size` bytes long. */
  bytes: Uint8Array;
  /** Byte offset of each argument in `bytes`. */
  offsets: number[];
  size: number;
}

export function packArgs(args: readonly KernelArg[]): PackedArgs {
  const offsets: number[] = [];
  let size = 0;
  const norm = args.map((a, i) => normalize(a, i));
  for (const a of norm) {
    const n = SIZE[a.type];
    size = Math.ceil(size / n) * n;
    offsets.push(size);
    size += n;
  }
  if (size > MAX_PARAM_BYTES)
    throw new Error(`kernel arguments take ${size} bytes, more than ${MAX_PARAM_BYTES}`);
  const bytes = new Uint8Array(Math.max(size, 1));
  const view = new DataView(bytes.buffer);
  norm.forEach((a, i) => write(view, offsets[i]!, a, i));
  return { bytes: bytes.subarray(0, size), offsets, size };
}

function normalize(a: KernelArg, i: number): { type: ArgType; value: number | bigint } {
  if (typeof a === "bigint") return { type: "ptr", value: a };
  if (a === null || typeof a !== "object" || !(a.type in SIZE)) {
    throw new Error(
      `kernel argument ${i}: expected a bigint device pointer or {type, value}, got ${String(a)}`,
    );
  }
  return a;
}

function write(view: DataView, off: number, a: { type: ArgType; value: number | bigint }, i: number): void {
  const { type, value } = a;
  const int = (lo: number, hi: number): number => {
    const v = Number(value);
    if (!Number.isInteger(v) || v < lo || v > hi)
      throw new Error(`kernel argument ${i}: ${String(value)} is not a valid ${type}`);
    return v;
  };
  const big = (signed: boolean): bigint => {
    const v = typeof value === "bigint" ? value : BigInt(int(-(2 ** 53), 2 ** 53));
    const ok = signed ? v >= -(1n << 63n) && v < 1n << 63n : v >= 0n && v < 1n << 64n;
    if (!ok) throw new Error(`kernel argument ${i}: ${String(value)} is not a valid ${type}`);
    return v;
  };
  switch (type) {
    case "i8":
      return view.setInt8(off, int(-128, 127));
    case "u8":
      return view.setUint8(off, int(0, 255));
    case "i16":
      return view.setInt16(off, int(-32768, 32767), true);
    case "u16":
      return view.setUint16(off, int(0, 65535), true);
    case "i32":
      return view.setInt32(off, int(-(2 ** 31), 2 ** 31 - 1), true);
    case "u32":
      return view.setUint32(off, int(0, 2 ** 32 - 1), true);
    case "i64":
      return view.setBigInt64(off, big(true), true);
    case "u64":
    case "ptr":
      return view.setBigUint64(off, big(false), true);
    case "f16":
      return view.setUint16(off, toF16Bits(Number(value)), true);
    case "f32":
      return view.setFloat32(off, Number(value), true);
    case "f64":
      return view.setFloat64(off, Number(value), true);
  }
}
