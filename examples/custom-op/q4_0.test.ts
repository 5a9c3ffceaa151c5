/**
 * The Q4_0 custom op on the CPU against plain TypeScript: llama.cpp's reference quantizer
 * (quantize_row_q4_0_ref) makes the blocks, its dequantizer's arithmetic ((q - 8) * d) and a
 * float64 product give the expected y.
 */
import { describe, expect, test } from "vitest";
import { cpuKernel } from "../../backends/cpu/runtime.ts";
import { f16Bits, f16FromBits } from "../../dsl/dtypes.ts";
import {
  kernel,
  fromStorage,
  ndarray,
  toNumbers,
  zeros,
  type f32,
  type i32,
  type Sym,
  type Tensor,
} from "../../dsl/index.ts";
import { rng } from "../../backends/check.ts";
import { Q4_0_BLOCK, Q4_0_BLOCK_BYTES, f16FromBits as kernelF16FromBits, q4_0Gemv } from "./q4_0.ts";

const SEED = Number(process.env.TKC_SEED ?? Date.now() % 100000);
const f = Math.fround;

/** llama.cpp's quantize_row_q4_0_ref for a row-major [n, k] weight: bytes [n, k/32 * 18]. */
function quantizeQ4_0(w: ArrayLike<number>, n: number, k: number): Uint8Array {
  const out = new Uint8Array((n * k * Q4_0_BLOCK_BYTES) / Q4_0_BLOCK);
  for (let blk = 0; blk < (n * k) / Q4_0_BLOCK; blk++) {
    const x = (j: number) => f(w[blk * Q4_0_BLOCK + j]!);
    let amax = 0;
    let max = 0;
    for (let j = 0; j < Q4_0_BLOCK; j++)
      if (amax < Math.abs(x(j))) {
        amax = Math.abs(x(j));
        max = x(j);
      }
    const d = f(max / -8);
    const id = d ? f(1 / d) : 0;
    const at = blk * Q4_0_BLOCK_BYTES;
    const dBits = f16Bits(d);
    out[at] = dBits & 0xff;
    out[at + 1] = dBits >> 8;
    // (int8_t)(x * id + 8.5f) truncates toward zero, then MIN(15, ...).
    const code = (v: number) => Math.min(15, Math.trunc(f(f(v * id) + 8.5)));
    for (let j = 0; j < 16; j++) out[at + 2 + j] = code(x(j)) | (code(x(j + 16)) << 4);
  }
  return out;
}

/** ggml's dequantize_row_q4_0, then y = W x in float64; also sum |W x| per row for the bound. */
function reference(bytes: Uint8Array, n: number, k: number, x: Float64Array) {
  const y = new Float64Array(n);
  const abs = new Float64Array(n);
  const rowBytes = (k / Q4_0_BLOCK) * Q4_0_BLOCK_BYTES;
  for (let i = 0; i < n; i++)
    for (let b = 0; b < k / Q4_0_BLOCK; b++) {
      const at = i * rowBytes + b * Q4_0_BLOCK_BYTES;
      const d = f16FromBits(bytes[at]! | (bytes[at + 1]! << 8));
      for (let j = 0; j < 16; j++) {
        const byte = bytes[at + 2 + j]!;
        for (const [q, col] of [
          [byte & 0x0f, j],
          [byte >> 4, j + 16],
        ] as const) {
          const p = (q - 8) * d * x[b * Q4_0_BLOCK + col]!;
          y[i] += p;
          abs[i] += Math.abs(p);
        }
      }
    }
  return { y, abs };
}

function check(n: number, k: number, boundsCheck: boolean): void {
  const r = rng(SEED + n + k);
  const w = Float64Array.from({ length: n * k }, () => (r() * 2 - 1) * 0.05);
  const bytes = quantizeQ4_0(w, n, k);
  const x = ndarray(
    "f16",
    [k],
    Array.from({ length: k }, () => r() * 2 - 1),
  );
  const y = zeros("f16", [n]);
  const blocks = fromStorage("u8", [n, (k / Q4_0_BLOCK) * Q4_0_BLOCK_BYTES], bytes);
  cpuKernel(q4_0Gemv, { boundsCheck })({ x, blocks, y });
  const ref = reference(bytes, n, k, toNumbers(x));
  const got = toNumbers(y);
  for (let i = 0; i < n; i++) {
    // f16 rounding of y, plus k f32 roundings of the running sum (the weights are exact in f32).
    const bound = 2 ** -11 * Math.abs(ref.y[i]!) + 2 ** -25 + k * 2 ** -24 * ref.abs[i]!;
    if (!(Math.abs(got[i]! - ref.y[i]!) <= bound))
      expect.fail(
        `q4_0Gemv ${n}x${k}: y[${i}] = ${got[i]}, expected ${ref.y[i]} within ${bound} (seed ${SEED})`,
      );
  }
}

// A test-only kernel: the scale decoder on its own, over every f16 bit pattern.
const decodeScales = kernel(function decodeScales(
  bits: Tensor<i32, [Sym<"n">]>,
  out: Tensor<f32, [Sym<"n">]>,
) {
  for (let i = 0; i < bits.shape[0]; i++) out[i] = kernelF16FromBits(bits[i]);
});

describe(`Q4_0 GEMV custom op on the CPU (seed ${SEED})`, () => {
  test("f16FromBits decodes every finite f16 exactly", () => {
    const finite = Array.from({ length: 65536 }, (_, b) => b).filter((b) => (b & 0x7c00) !== 0x7c00);
    const out = zeros("f32", [finite.length]);
    cpuKernel(decodeScales)({ bits: ndarray("i32", [finite.length], finite), out });
    expect(Array.from(out.data)).toEqual(finite.map(f16FromBits));
  });

  test("low nibbles hold elements 0..15, high nibbles 16..31, value (q - 8) * d", () => {
    // One block, d = 0.5, all codes 8 (zero) but byte 3: low nibble 15 (element 3, +7 * 0.5) and
    // high nibble 0 (element 19, -8 * 0.5).
    const bytes = new Uint8Array(Q4_0_BLOCK_BYTES).fill(0x88);
    const d = f16Bits(0.5);
    [bytes[0], bytes[1]] = [d & 0xff, d >> 8];
    bytes[2 + 3] = 0x0f;
    const x = ndarray(
      "f16",
      [32],
      Array.from({ length: 32 }, (_, i) => i + 1),
    );
    const y = zeros("f16", [1]);
    cpuKernel(q4_0Gemv)({ x, blocks: fromStorage("u8", [1, Q4_0_BLOCK_BYTES], bytes), y });
    expect(toNumbers(y)[0]).toBe(3.5 * 4 - 4 * 20);
  });

  test("small shapes", () => {
    check(1, 32, true);
    check(7, 64, true);
    check(33, 288, true);
  });

  test("Llama-2-7B's 4096 x 4096", () => check(4096, 4096, false));
});

describe("Q4_0 GEMV scheduled for a GPU", () => {
  test("its GPU schedule computes the same on the CPU emulation of the device", async () => {
    const { Schedule } = await import("../../lower/schedule/index.ts");
    const { lowerKernel } = await import("../../lower/frontend/lower.ts");
    const { specialize } = await import("../../lower/ir/specialize.ts");
    const { lowerToDevice } = await import("../../lower/passes/pipeline.ts");
    const { TARGETS } = await import("../../lower/passes/target.ts");
    const { cpuDeviceKernel } = await import("../../backends/cpu/device.ts");
    const { randomArgs, cloneArgs, compareResults } = await import("../../backends/check.ts");
    const { q4_0GemvSchedule } = await import("./q4_0.ts");
    const f = specialize(lowerKernel(q4_0Gemv), {
      n: 10,
      k: 256,
      rowBytes: (256 / Q4_0_BLOCK) * Q4_0_BLOCK_BYTES,
    });
    const s = new Schedule(f);
    q4_0GemvSchedule(s, { rows: 4, lanes: 8 });
    const device = lowerToDevice(s.func, TARGETS.sm_90);
    const args = randomArgs(f, {}, SEED);
    const want = cloneArgs(args);
    cpuKernel(f)(want);
    const got = cloneArgs(args);
    cpuDeviceKernel(device)(got as never);
    // The summation order changes (lanes, then shuffles): compare with a tolerance.
    expect(compareResults(want, got, 1e-3).mismatches).toEqual([]);
  });
});
