/** rmsNorm and both rotary-embedding layouts on the CPU against float64 references. */
import { describe, expect, test } from "vitest";
import { cpuKernel } from "../../backends/cpu/runtime.ts";
import { ndarray, toNumbers, zeros } from "../../dsl/ndarray.ts";
import { rmsNorm } from "../../stdlib/rmsnorm.ts";
import { ropeHalf, ropeHalfAppend, ropeInterleaved, ropeInterleavedAppend } from "../../stdlib/rope.ts";
import { kvAppend } from "../../stdlib/kv_cache.ts";
import { GPU_SCHEDULES } from "../../stdlib/gpu/schedules.ts";
import { tunedParams } from "../../stdlib/gpu/tuned.ts";
import { cloneArgs, compareResults, randomArgs } from "../../backends/check.ts";
import { cpuDeviceKernel } from "../../backends/cpu/device.ts";
import { lowerKernel } from "../../lower/frontend/lower.ts";
import { launchDims } from "../../lower/ir/launch.ts";
import type { PrimFunc } from "../../lower/ir/nodes.ts";
import { printExpr, printFunc } from "../../lower/ir/printer.ts";
import { specialize } from "../../lower/ir/specialize.ts";
import { lowerToDevice } from "../../lower/passes/pipeline.ts";
import { TARGETS } from "../../lower/passes/target.ts";
import { Schedule } from "../../lower/schedule/index.ts";
import { F16_EPS, F32_EPS, SEED, expectWithin, randomF16, rng } from "./helpers.ts";

describe(`rmsNorm on the CPU (seed ${SEED})`, () => {
  test("rows of 1 to Llama-2-7B's 4096 elements, with eps", () => {
    const run = cpuKernel(rmsNorm);
    for (const [m, d, eps] of [
      [1, 1, 1e-5],
      [3, 48, 1e-6],
      [2, 288, 1e-5],
      [1, 4096, 1e-5],
    ] as const) {
      const r = rng(SEED + m * d);
      const x = randomF16([m, d], r);
      const w = randomF16([d], r);
      const y = zeros("f16", [m, d]);
      run({ x, w, y, eps });
      const xs = toNumbers(x);
      const ws = toNumbers(w);
      const ref = new Float64Array(m * d);
      for (let i = 0; i < m; i++) {
        let ss = 0;
        for (let k = 0; k < d; k++) ss += xs[i * d + k]! ** 2;
        const s = 1 / Math.sqrt(ss / d + eps);
        for (let k = 0; k < d; k++) ref[i * d + k] = xs[i * d + k]! * s * ws[k]!;
      }
      // f16 output rounding, plus the f32 sum of d squares and a few f32 roundings after it.
      const bound = ref.map((v) => (F16_EPS + (d + 8) * F32_EPS) * Math.abs(v) + 2 ** -25);
      expectWithin(toNumbers(y), ref, bound, `rmsNorm ${m}x${d}`);
    }
  });

  test("eps matters: an all-zero row gives zeros, a tiny row is damped by eps", () => {
    const run = cpuKernel(rmsNorm);
    const d = 8;
    const x = zeros("f16", [2, d]);
    (x.data as Uint16Array).fill(0x1400, d); // row 1: 2^-10 each
    const w = zeros("f16", [d]);
    (w.data as Uint16Array).fill(0x3c00); // 1.0
    const y = zeros("f16", [2, d]);
    run({ x, w, y, eps: 2 ** -20 });
    const got = toNumbers(y);
    expect(Array.from(got.subarray(0, d))).toEqual(new Array(d).fill(0));
    // 2^-10 / sqrt(2^-20 + 2^-20) = 1/sqrt(2)
    expectWithin(got.subarray(d), new Array(d).fill(Math.SQRT1_2), F16_EPS, "damped row");
  });
});

describe("rmsNorm's GPU schedule", () => {
  const scheduled = (shapes: Record<string, number>) => {
    const s = new Schedule(specialize(lowerKernel(rmsNorm), shapes));
    GPU_SCHEDULES.rmsNorm!(s, "sm_90");
    return s.func;
  };
  test("each thread's run of a row in one vector load of x, one of w and one store; many rows over fewer threads a row (tuned)", () => {
    const decode = scheduled({ m: 1, d: 4096 });
    const prefill = scheduled({ d: 4096 });
    const threads = (f: PrimFunc) => printExpr(launchDims(f).block[0]);
    expect([threads(decode), threads(prefill)]).toEqual([
      String(tunedParams<{ threads: number }>("sm_90", "rowReduce")!.threads),
      String(tunedParams<{ threads: number }>("sm_90", "rowReduceRows")!.threads),
    ]);
    expect(printFunc(prefill)).toMatch(/\/\/ vectorized/);
    // The same values as unscheduled, on the emulation: rows of 4096 and a ragged 100.
    for (const [shapes, symbols] of [
      [{ d: 4096 }, { m: 3 }],
      [{ d: 100 }, { m: 2 }],
    ] as const) {
      const plain = specialize(lowerKernel(rmsNorm), shapes);
      const args = { ...randomArgs(plain, symbols, 7), eps: 1e-5 };
      const want = cloneArgs(args);
      const got = cloneArgs(args);
      cpuKernel(plain)(want as never);
      cpuDeviceKernel(lowerToDevice(scheduled(shapes), TARGETS.sm_90))(got as never);
      expect(compareResults(want, got, 2e-3).mismatches).toEqual([]);
    }
  });
});

type Layout = "interleaved" | "half";

/** Pair i of a head: (2i, 2i+1) or (i, i + d/2); angle pos * theta^(-2i/d), all float64. */
function ropeReference(
  x: Float64Array,
  t: number,
  h: number,
  d: number,
  offset: number,
  theta: number,
  layout: Layout,
) {
  const y = new Float64Array(x.length);
  const bound = new Float64Array(x.length);
  for (let tt = 0; tt < t; tt++)
    for (let hh = 0; hh < h; hh++)
      for (let i = 0; i < d / 2; i++) {
        const base = (tt * h + hh) * d;
        const a = base + (layout === "interleaved" ? 2 * i : i);
        const b = layout === "interleaved" ? a + 1 : a + d / 2;
        const angle = (offset + tt) * theta ** ((-2 * i) / d);
        const [c, s] = [Math.cos(angle), Math.sin(angle)];
        y[a] = x[a]! * c - x[b]! * s;
        y[b] = x[a]! * s + x[b]! * c;
        // f32 frequency and angle (a few roundings, relative to the angle) and f32 cos/sin/rotation.
        const slack = (Math.abs(x[a]!) + Math.abs(x[b]!)) * (8 * F32_EPS * (angle + 1)) + 2 ** -25;
        bound[a] = F16_EPS * Math.abs(y[a]!) + slack;
        bound[b] = F16_EPS * Math.abs(y[b]!) + slack;
      }
  return { y, bound };
}

describe(`rotary embedding on the CPU (seed ${SEED})`, () => {
  const cases = [
    [1, 1, 2, 0, 10000],
    [3, 4, 8, 0, 10000],
    [2, 6, 48, 17, 10000], // stories15M's head dimension
    [2, 2, 128, 4000, 10000], // Llama-2-7B's, late in a 4096 context
    [1, 2, 64, 100, 500000], // Llama-3's theta
  ] as const;
  for (const [layout, k] of [
    ["interleaved", ropeInterleaved],
    ["half", ropeHalf],
  ] as const) {
    test(`rope, ${layout} pairs`, () => {
      const run = cpuKernel(k);
      for (const [t, h, d, offset, theta] of cases) {
        const r = rng(SEED + t * h * d + offset);
        const x = randomF16([t, h, d], r);
        const y = zeros("f16", [t, h, d]);
        run({ x, y, offset, theta });
        const ref = ropeReference(toNumbers(x), t, h, d, offset, theta, layout);
        expectWithin(toNumbers(y), ref.y, ref.bound, `rope ${layout} ${t}x${h}x${d} at ${offset}`);
      }
    });
  }

  test("the layouts are one rotation under Hugging Face's permutation, bit for bit", () => {
    // HF's checkpoint conversion moves element 2i to i and 2i+1 to i + d/2 within each head.
    const [t, h, d] = [2, 3, 16];
    const r = rng(SEED + 1);
    const xi = randomF16([t, h, d], r);
    const xh = zeros("f16", [t, h, d]);
    const perm = (j: number) => (j % 2 === 0 ? j / 2 : (j - 1) / 2 + d / 2);
    for (let row = 0; row < t * h; row++)
      for (let j = 0; j < d; j++) xh.data[row * d + perm(j)] = xi.data[row * d + j]!;
    const [yi, yh] = [zeros("f16", [t, h, d]), zeros("f16", [t, h, d])];
    cpuKernel(ropeInterleaved)({ x: xi, y: yi, offset: 5, theta: 10000 });
    cpuKernel(ropeHalf)({ x: xh, y: yh, offset: 5, theta: 10000 });
    for (let row = 0; row < t * h; row++)
      for (let j = 0; j < d; j++) expect(yh.data[row * d + perm(j)]).toBe(yi.data[row * d + j]);
  });

  test("position 0 is the identity, and y may alias x", () => {
    const x = randomF16([2, 2, 8], rng(SEED + 2));
    const before = Array.from(x.data);
    cpuKernel(ropeHalf)({ x, y: x, offset: 0, theta: 10000 });
    expect(Array.from(x.data.subarray(0, 16))).toEqual(before.slice(0, 16)); // token 0: position 0
    const y = zeros("f16", [2, 2, 8]);
    const fresh = { dtype: "f16" as const, shape: [2, 2, 8], data: Uint16Array.from(before) };
    cpuKernel(ropeHalf)({ x: fresh, y, offset: 0, theta: 10000 });
    expect(Array.from(x.data)).toEqual(Array.from(y.data));
  });
});

describe("RoPE with the KV-cache append in one launch (decode)", () => {
  test.each([
    ["half", ropeHalfAppend, ropeHalf],
    ["interleaved", ropeInterleavedAppend, ropeInterleaved],
  ] as const)("rope%s then kvAppend, bit for bit, with GQA", (_name, fused, rope) => {
    const [h, kvh, d, ctx, pos] = [6, 2, 16, 9, 5];
    const r = rng(SEED + 31);
    const qkv = randomF16([h + 2 * kvh, d], r);
    const all = toNumbers(qkv);
    const qk = ndarray("f16", [h + kvh, d], all.slice(0, (h + kvh) * d));
    const v = ndarray("f16", [kvh, d], all.slice((h + kvh) * d));
    const cache = () => randomF16([ctx, kvh, d], rng(SEED + 32));
    // Separately: rotate q and k, then append k and v at pos.
    const rotated = zeros("f16", [1, h + kvh, d]);
    cpuKernel(rope)({ x: { ...qk, shape: [1, h + kvh, d] }, y: rotated, offset: pos, theta: 10000 });
    const [kc1, vc1] = [cache(), cache()];
    const rot = toNumbers(rotated);
    cpuKernel(kvAppend)({
      k: ndarray("f16", [1, kvh, d], rot.slice(h * d)),
      v: { ...v, shape: [1, kvh, d] },
      kCache: kc1,
      vCache: vc1,
      pos,
    });
    // Fused.
    const qr = zeros("f16", [h, d]);
    const [kc2, vc2] = [cache(), cache()];
    cpuKernel(fused)({ qk, v, qr, kCache: kc2, vCache: vc2, pos, theta: 10000 });
    expect(Array.from(toNumbers(qr))).toEqual(Array.from(rot.slice(0, h * d)));
    expect(Array.from(kc2.data)).toEqual(Array.from(kc1.data));
    expect(Array.from(vc2.data)).toEqual(Array.from(vc1.data));
  });
});
