/**
 * softmax, siluMul, residualAdd, the q4 embedding lookup and argmax on the CPU against plain
 * TypeScript; argmax's GPU schedule on the device emulation against the CPU.
 */
import { describe, expect, test } from "vitest";
import { cpuKernel } from "../../backends/cpu/runtime.ts";
import { roundF16 } from "../../dsl/dtypes.ts";
import { fromStorage, ndarray, toNumbers, zeros } from "../../dsl/ndarray.ts";
import { dequantizeQ4f16_1ToF16Bits } from "../../llama/quant/q4f16_1.ts";
import { residualAdd, siluMul } from "../../stdlib/elementwise.ts";
import { q4Embedding } from "../../stdlib/embedding.ts";
import { argmax } from "../../stdlib/sampling.ts";
import { softmax } from "../../stdlib/softmax.ts";
import { GPU_SCHEDULES } from "../../stdlib/gpu/schedules.ts";
import { cpuDeviceKernel } from "../../backends/cpu/device.ts";
import { lowerKernel } from "../../lower/frontend/lower.ts";
import { specialize } from "../../lower/ir/specialize.ts";
import { lowerToDevice } from "../../lower/passes/pipeline.ts";
import { TARGETS } from "../../lower/passes/target.ts";
import { Schedule } from "../../lower/schedule/index.ts";
import { F16_EPS, F32_EPS, SEED, expectWithin, randomArray, randomF16, randomQ4, rng } from "./helpers.ts";

describe(`small kernels on the CPU (seed ${SEED})`, () => {
  test("softmax over rows, including large and equal logits", () => {
    const run = cpuKernel(softmax);
    for (const [m, n, spread] of [
      [1, 1, 1],
      [3, 17, 1],
      [2, 32000, 30], // a vocabulary of logits; exp(30) would overflow f32 without the max
      [1, 5, 0], // all equal
    ] as const) {
      const r = rng(SEED + m * n);
      const x = ndarray(
        "f32",
        [m, n],
        Array.from({ length: m * n }, () => (r() * 2 - 1) * spread + 60),
      );
      const y = zeros("f32", [m, n]);
      run({ x, y });
      const ref = new Float64Array(m * n);
      for (let i = 0; i < m; i++) {
        const row = Array.from(x.data.subarray(i * n, (i + 1) * n));
        const mx = Math.max(...row);
        const sum = row.reduce((a, v) => a + Math.exp(v - mx), 0);
        row.forEach((v, j) => (ref[i * n + j] = Math.exp(v - mx) / sum));
      }
      // f32 exp and division per element, and the f32 sum of n terms (relative to the row total 1).
      const bound = ref.map((v) => 8 * F32_EPS * v + n * F32_EPS * v + 1e-30);
      expectWithin(y.data as Float32Array, ref, bound, `softmax ${m}x${n}`);
    }
  });

  test("siluMul and residualAdd", () => {
    for (const [m, d] of [
      [1, 1],
      [2, 300],
      [1, 11008],
    ] as const) {
      const r = rng(SEED + d);
      const a = randomF16([m, d], r);
      const b = randomF16([m, d], r);
      const out = zeros("f16", [m, d]);
      cpuKernel(siluMul)({ gate: a, up: b, out });
      const [as, bs] = [toNumbers(a), toNumbers(b)];
      const ref = as.map((g, i) => (g / (1 + Math.exp(-g))) * bs[i]!);
      expectWithin(
        toNumbers(out),
        ref,
        ref.map((v) => (F16_EPS + 8 * F32_EPS) * Math.abs(v) + 2 ** -25),
        `siluMul ${m}x${d}`,
      );
      const sum = zeros("f16", [m, d]);
      cpuKernel(residualAdd)({ a, b, y: sum });
      // An f16 addition: exactly the rounded sum.
      expect(Array.from(toNumbers(sum))).toEqual(Array.from(as.map((v, i) => roundF16(v + bs[i]!))));
    }
  });

  test("q4Embedding reproduces llama/quant's dequantized rows bit for bit", () => {
    const run = cpuKernel(q4Embedding);
    for (const [vocab, dim, ids] of [
      [1, 32, [0]],
      [50, 96, [3, 49, 0, 3]],
      [1000, 288, [999, 1, 500]],
    ] as const) {
      const r = rng(SEED + vocab + dim);
      const w = randomQ4(vocab, dim, r);
      const out = zeros("f16", [ids.length, dim]);
      run({ ids: ndarray("i32", [ids.length], ids), packed: w.packed, scales: w.scales, out });
      const table = dequantizeQ4f16_1ToF16Bits(
        { packed: w.packed.data as Uint32Array, scales: w.scales.data as Uint16Array },
        vocab,
        dim,
      );
      const expected = ids.flatMap((id) => Array.from(table.subarray(id * dim, (id + 1) * dim)));
      expect(Array.from(out.data)).toEqual(expected);
    }
  });

  test("q4Embedding refuses a token id outside the table (bounds-checked CPU)", () => {
    const w = randomQ4(4, 32, rng(SEED));
    const out = zeros("f16", [1, 32]);
    const ids = ndarray("i32", [1], [4]);
    expect(() => cpuKernel(q4Embedding)({ ids, packed: w.packed, scales: w.scales, out })).toThrow(
      /out-of-bounds access packed/,
    );
  });

  test("argmax: the first index of the maximum, per row", () => {
    const run = cpuKernel(argmax);
    for (const [m, n] of [
      [1, 1],
      [4, 7],
      [2, 32000],
    ] as const) {
      const x = randomArray("f32", [m, n], rng(SEED + n));
      const out = zeros("i32", [m]);
      run({ logits: x, out });
      for (let i = 0; i < m; i++) {
        const row = Array.from(x.data.subarray(i * n, (i + 1) * n));
        expect(out.data[i], `row ${i}`).toBe(row.indexOf(Math.max(...row)));
      }
    }
    // Ties go to the first index; -Infinity rows give 0.
    const ties = fromStorage(
      "f32",
      [3, 4],
      Float32Array.from([1, 3, 3, 2, 5, 5, 5, 5, -Infinity, -Infinity, -Infinity, -Infinity]),
    );
    const out = zeros("i32", [3]);
    run({ logits: ties, out });
    expect(Array.from(out.data)).toEqual([1, 0, 0]);
    // A NaN anywhere in a row gives -1.
    const nan = fromStorage("f32", [2, 3], Float32Array.from([1, NaN, 2, NaN, NaN, NaN]));
    const nanOut = zeros("i32", [2]);
    run({ logits: nan, out: nanOut });
    expect(Array.from(nanOut.data)).toEqual([-1, -1]);
  });

  test("argmax scheduled for sm_90 and Vulkan (a block per row, both passes across its threads) equals the CPU's", () => {
    for (const target of ["sm_90", "vulkan"] as const) {
      for (const [m, n] of [
        [1, 32000],
        [3, 1000],
        [2, 5],
      ] as const) {
        const r = rng(SEED + 7 * n);
        // Few distinct values: ties across threads' slices.
        const x = ndarray(
          "f32",
          [m, n],
          Array.from({ length: m * n }, () => Math.floor(r() * 50)),
        );
        if (m === 3) x.data[1 * n + 777] = NaN;
        const want = zeros("i32", [m]);
        cpuKernel(argmax)({ logits: x, out: want });
        const s = new Schedule(specialize(lowerKernel(argmax), { m, v: n }));
        GPU_SCHEDULES.argmax!(s, target);
        const got = zeros("i32", [m]);
        cpuDeviceKernel(lowerToDevice(s.func, TARGETS[target]))({ logits: x, out: got });
        expect(Array.from(got.data), `${target} ${m}x${n}`).toEqual(Array.from(want.data));
        if (m === 3) expect(got.data[1]).toBe(-1);
      }
    }
  });
});
