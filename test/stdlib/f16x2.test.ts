/**
 * Pairs of f16 in a u32 (packF16x2, unpackF16x2, fmaF16x2) and the q4f16_1 pair decoding built on
 * them: on the CPU against values computed here from the f16 bit patterns, through LLVM to PTX
 * (one HFMA2 per pair, accepted by ptxas where it is installed) and to SPIR-V spirv-val accepts.
 */
import { describe, expect, it } from "vitest";
import { cpuKernel } from "../../backends/cpu/runtime.ts";
import { renderSpirv } from "../../backends/spirv/render.ts";
import { validate } from "../../backends/spirv/tools.ts";
import { f16Bits, f16FromBits } from "../../dsl/dtypes.ts";
import {
  f16,
  fmaF16x2,
  kernel,
  packF16x2,
  unpackF16x2,
  type Sym,
  type Tensor,
  type u32,
} from "../../dsl/index.ts";
import { ndarray, zeros } from "../../dsl/ndarray.ts";
import { compileOp } from "../../llama/device/compile.ts";
import { specializedFunc } from "../../llama/device/prepare.ts";
import type { OpSpec } from "../../llama/device/types.ts";
import { lowerToDevice } from "../../lower/passes/pipeline.ts";
import { TARGETS } from "../../lower/passes/target.ts";
import { Schedule } from "../../lower/schedule/index.ts";
import * as Q from "../../stdlib/q4_common.ts";
import { llvmMissing } from "../backends/llvm/helpers.ts";
import { rng } from "./helpers.ts";

const pairFma = kernel(function pairFma(
  a: Tensor<f16, [Sym<"n">]>,
  b: Tensor<f16, [Sym<"n">]>,
  c: Tensor<u32, [Sym<"n">]>,
  lo: Tensor<f16, [Sym<"n">]>,
  hi: Tensor<f16, [Sym<"n">]>,
) {
  for (let i = 0; i < a.shape[0]; i++) {
    const r = fmaF16x2(packF16x2(a[i], b[i]), packF16x2(b[i], a[i]), c[i]);
    lo[i] = unpackF16x2(r, 0);
    hi[i] = unpackF16x2(r, 1);
  }
});

const decodePairs = kernel(function decodePairs(
  words: Tensor<u32, [Sym<"n">]>,
  pairs: Tensor<u32, [Sym<"n">, 4]>,
) {
  for (let i = 0; i < words.shape[0]; i++)
    for (let p = 0; p < 4; p++) pairs[i][p] = Q.q4PairF16x2(words[i], p);
});

const threads = (s: Schedule) => {
  const [bo, ti] = s.split("i", [null, 64]);
  s.bind(bo!, "blockIdx.x");
  s.bind(ti!, "threadIdx.x");
  if (s.func.name.startsWith("decodePairs")) s.unroll("p");
};
const spec = (k: typeof pairFma, n: number): OpSpec => ({
  key: k.name,
  kernel: k,
  specialize: { n },
  schedule: threads,
});

describe("f16 pairs in a u32", () => {
  it("the decoding constants are the f16 bit patterns they name", () => {
    const pair = (v: number) => (f16Bits(v) * 0x10001) >>> 0;
    expect(Q.F16X2_1024).toBe(pair(1024));
    expect(Q.F16X2_ONE).toBe(pair(1));
    expect(Q.F16X2_SIXTEENTH).toBe(pair(1 / 16));
    expect(Q.F16X2_MINUS_71).toBe(pair(-71));
    expect(Q.F16X2_MINUS_1031).toBe(pair(-1031));
  });

  it("fmaF16x2 rounds a * b + c once to f16 per element; pack and unpack keep the order", () => {
    const n = 500;
    const r = rng(7);
    const half = () => f16FromBits(f16Bits((r() * 2 - 1) * 8));
    const av = Array.from({ length: n }, half);
    const bv = Array.from({ length: n }, half);
    const cl = Array.from({ length: n }, half);
    const ch = Array.from({ length: n }, half);
    const c = ndarray(
      "u32",
      [n],
      cl.map((v, i) => (f16Bits(v) | (f16Bits(ch[i]!) << 16)) >>> 0),
    );
    const lo = zeros("f16", [n]);
    const hi = zeros("f16", [n]);
    cpuKernel(pairFma)({ a: ndarray("f16", [n], av), b: ndarray("f16", [n], bv), c, lo, hi });
    // a * b is exact in a double (two 11-bit significands), + c rounds in the double only far
    // outside these magnitudes: f16Bits of the double is the once-rounded f16.
    expect(Array.from(lo.data)).toEqual(av.map((a, i) => f16Bits(a * bv[i]! + cl[i]!)));
    expect(Array.from(hi.data)).toEqual(bv.map((b, i) => f16Bits(b * av[i]! + ch[i]!)));
  });

  it("q4PairF16x2 gives codes p and p + 4 as q - 7, for every code in every position", () => {
    const r = rng(11);
    const words = Array.from({ length: 64 }, (_, i) =>
      i < 16 ? (i * 0x11111111) >>> 0 : Math.floor(r() * 2 ** 32) >>> 0,
    );
    const pairs = zeros("u32", [words.length, 4]);
    cpuKernel(decodePairs)({ words: ndarray("u32", [words.length], words), pairs });
    words.forEach((w, i) => {
      for (let p = 0; p < 4; p++) {
        const v = pairs.data[i * 4 + p]!;
        const code = (j: number) => ((w >>> (4 * j)) & 15) - 7;
        expect([f16FromBits(v & 0xffff), f16FromBits(v >>> 16)]).toEqual([code(p), code(p + 4)]);
      }
    });
  });

  it.skipIf(llvmMissing !== "")("compiles to one f16x2 instruction per pair on sm_90", () => {
    const ptx = compileOp(spec(pairFma, 256), "sm_90").image as string;
    expect(ptx.match(/fma\.rn\.f16x2/g)).toHaveLength(1);
    const dec = compileOp(spec(decodePairs as never, 256), "sm_90").image as string;
    // Even pairs multiply by 1: LLVM makes those an add.rn.f16x2.
    expect(dec.match(/(fma|add)\.rn\.f16x2/g)).toHaveLength(4);
    // The masks and the 1024 bias: AND-OR pairs that ptxas fuses into LOP3s.
    expect(dec).toMatch(/0x64006400|1677747200/);
  });

  it("renders to SPIR-V that spirv-val accepts (two-element half vectors)", () => {
    for (const k of [pairFma, decodePairs as never]) {
      const s = new Schedule(specializedFunc(spec(k, 256)));
      threads(s);
      const r = renderSpirv(lowerToDevice(s.func, TARGETS.vulkan!), { env: "vulkan1.2" });
      validate(r.words, "vulkan1.2");
      expect(r.text).toMatch(/OpTypeVector %half 2/);
    }
  });
});
