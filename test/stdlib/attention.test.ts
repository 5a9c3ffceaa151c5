/**
 * KV-cache append and attention (decode and causal prefill, with grouped-query heads) on the CPU
 * against a float64 softmax attention written out plainly.
 */
import { describe, expect, test } from "vitest";
import { cpuKernel } from "../../backends/cpu/runtime.ts";
import { ndarray, toNumbers, zeros, type NDArray } from "../../dsl/ndarray.ts";
import { MAX_HEAD_DIM, attentionDecode, attentionPrefill } from "../../stdlib/attention.ts";
import { kvAppend } from "../../stdlib/kv_cache.ts";
import {
  DECODE_CHUNK,
  DECODE_SPLITS,
  SPLIT_WARPS,
  attentionDecodeCombine,
  attentionDecodeSplit,
  attentionDecodeSplitLast,
} from "../../stdlib/attention_decode_split.ts";
import { DECODE_WARPS, attentionDecodeWarps } from "../../stdlib/attention_decode_warps.ts";
import { attentionPrefillWarps } from "../../stdlib/attention_prefill_warps.ts";
import { attentionPrefillMma } from "../../stdlib/attention_prefill_mma.ts";
import { cloneArgs, compareResults, randomArgs } from "../../backends/check.ts";
import { withConsts, type KernelDef } from "../../dsl/kernel.ts";
import { GPU_SCHEDULES } from "../../stdlib/gpu/schedules.ts";
import { cpuDeviceKernel } from "../../backends/cpu/device.ts";
import { lowerKernel } from "../../lower/frontend/lower.ts";
import { specialize } from "../../lower/ir/specialize.ts";
import { lowerToDevice } from "../../lower/passes/pipeline.ts";
import { TARGETS } from "../../lower/passes/target.ts";
import { Schedule } from "../../lower/schedule/index.ts";
import { F16_EPS, SEED, expectWithin, randomF16, reshape, rng } from "./helpers.ts";

interface Cache {
  readonly k: NDArray;
  readonly v: NDArray;
  readonly ctx: number;
  readonly kvh: number;
  readonly d: number;
}

const randomCache = (ctx: number, kvh: number, d: number, r: () => number): Cache => ({
  k: randomF16([ctx, kvh, d], r),
  v: randomF16([ctx, kvh, d], r),
  ctx,
  kvh,
  d,
});

/**
 * softmax(q . k_t / sqrt(d)) . v over positions 0..len-1 for one query vector of head h, in
 * float64; query head h uses kv head floor(h / (heads / kvh)).
 */
function attendReference(
  qv: Float64Array,
  h: number,
  heads: number,
  len: number,
  c: Cache,
  ks: Float64Array,
  vs: Float64Array,
): Float64Array {
  const kvHead = Math.floor(h / (heads / c.kvh));
  const s = new Float64Array(len);
  for (let t = 0; t < len; t++) {
    let dot = 0;
    for (let i = 0; i < c.d; i++) dot += qv[i]! * ks[(t * c.kvh + kvHead) * c.d + i]!;
    s[t] = dot / Math.sqrt(c.d);
  }
  const mx = Math.max(...s);
  const p = s.map((v) => Math.exp(v - mx));
  const sum = p.reduce((a, b) => a + b, 0);
  const out = new Float64Array(c.d);
  for (let t = 0; t < len; t++)
    for (let i = 0; i < c.d; i++) out[i] += (p[t]! / sum) * vs[(t * c.kvh + kvHead) * c.d + i]!;
  return out;
}

// Outputs are convex combinations of values in [-1, 1]: f16 rounding plus f32 noise well below 1e-5.
const attentionBound = (ref: Float64Array) => ref.map((v) => F16_EPS * Math.abs(v) + 1e-5);

/** Queries 4x larger than the keys: peakier softmaxes, as trained models have. */
const peakyQuery = (heads: number, d: number, r: () => number): NDArray =>
  ndarray(
    "f16",
    [heads, d],
    toNumbers(randomF16([heads, d], r)).map((v) => 4 * v),
  );

/** Each listed head of a decode attention's output `out` [heads, d] against attendReference. */
function expectHeadsAttend(
  out: NDArray,
  q: NDArray,
  cache: Cache,
  heads: number,
  len: number,
  label: string,
  which: readonly number[] = Array.from({ length: heads }, (_, h) => h),
): void {
  const d = cache.d;
  const [qs, ks, vs] = [toNumbers(q), toNumbers(cache.k), toNumbers(cache.v)];
  const got = toNumbers(out);
  for (const h of which) {
    const ref = attendReference(qs.subarray(h * d, (h + 1) * d), h, heads, len, cache, ks, vs);
    expectWithin(got.subarray(h * d, (h + 1) * d), ref, attentionBound(ref), `${label} head ${h}`);
  }
}

describe(`KV cache and attention on the CPU (seed ${SEED})`, () => {
  test("kvAppend writes positions [pos, pos + n) and nothing else", () => {
    const [ctx, kvh, d, n, pos] = [10, 2, 4, 3, 5];
    const r = rng(SEED + 1);
    const cache = randomCache(ctx, kvh, d, r);
    const before = { k: Array.from(cache.k.data), v: Array.from(cache.v.data) };
    const k = randomF16([n, kvh, d], r);
    const v = randomF16([n, kvh, d], r);
    cpuKernel(kvAppend)({ k, v, kCache: cache.k, vCache: cache.v, pos });
    const row = kvh * d;
    for (const [name, buf, src] of [
      ["k", cache.k, k],
      ["v", cache.v, v],
    ] as const) {
      const expected = [...before[name]];
      expected.splice(pos * row, n * row, ...Array.from(src.data));
      expect(Array.from(buf.data), name).toEqual(expected);
    }
  });

  test("kvAppend past the end of the cache is refused (bounds-checked CPU)", () => {
    const cache = randomCache(4, 1, 2, rng(SEED));
    const k = randomF16([2, 1, 2], rng(SEED + 1));
    expect(() => cpuKernel(kvAppend)({ k, v: k, kCache: cache.k, vCache: cache.v, pos: 3 })).toThrow(
      /out-of-bounds access kCache/,
    );
  });

  const SHAPES = [
    // heads, kv heads, head dim, cache length, len
    [1, 1, 2, 1, 1],
    [4, 4, 8, 16, 9], // no GQA
    [6, 2, 48, 40, 33], // GQA groups of 3, stories15M's head dimension
    [8, 1, 64, 20, 20], // one kv head (MQA), the full cache
  ] as const;

  test("attentionDecode, with and without GQA", () => {
    const run = cpuKernel(attentionDecode);
    for (const [heads, kvh, d, ctx, len] of SHAPES) {
      const r = rng(SEED + heads * d + len);
      const cache = randomCache(ctx, kvh, d, r);
      const q = randomF16([heads, d], r);
      const out = zeros("f16", [heads, d]);
      run({ q, kCache: cache.k, vCache: cache.v, len, scores: zeros("f32", [heads, ctx]), out });
      expectHeadsAttend(out, q, cache, heads, len, `decode ${heads}/${kvh}x${d} len ${len}`);
    }
  });

  test("split decode attention (splits, then their combination, or combined by the last split's block): GQA, head dimensions not multiples of 32, lengths within, at and across chunk and split edges, CPU and scheduled for sm_90", () => {
    const splitRun = cpuKernel(attentionDecodeSplit);
    const lastRun = cpuKernel(attentionDecodeSplitLast);
    const combineRun = cpuKernel(attentionDecodeCombine);
    const C = DECODE_CHUNK;
    // heads, kv heads, head dim, cache length, len, splits
    const cases: (readonly [number, number, number, number, number, number])[] = [
      ...SHAPES.map(([h, kvh, d, ctx, len]) => [h, kvh, d, ctx, len, 3] as const),
      [4, 2, 8, 3 * C + 5, 1, 3],
      [4, 2, 32, 3 * C + 5, C, 3],
      [4, 2, 32, 3 * C + 5, C + 1, 3],
      [4, 4, 16, 3 * C + 5, 3 * C + 5, 2],
      // More chunks than splits x SPLIT_WARPS: several rounds per warp.
      [2, 1, 64, 2 * SPLIT_WARPS * C + 40, 2 * SPLIT_WARPS * C + 33, 2],
      [2, 2, 48, 40, 37, DECODE_SPLITS],
    ];
    for (const [heads, kvh, d, ctx, len, splits] of cases) {
      const r = rng(SEED + 3 * heads * d + len);
      const cache = randomCache(ctx, kvh, d, r);
      const q = peakyQuery(heads, d, r);
      // Poisoned partials: every split, used or not, must be written.
      const poison = (shape: number[]) =>
        ndarray("f32", shape, new Array(shape.reduce((a, b) => a * b)).fill(NaN));
      const parts = () => ({
        partAcc: poison([heads, splits, d]),
        partMax: poison([heads, splits]),
        partSum: poison([heads, splits]),
      });
      const cpuParts = parts();
      splitRun({ q, kCache: cache.k, vCache: cache.v, len, ...cpuParts });
      const out = zeros("f16", [heads, d]);
      combineRun({ ...cpuParts, out });
      expectHeadsAttend(
        out,
        q,
        cache,
        heads,
        len,
        `split decode ${heads}/${kvh}x${d} len ${len} splits ${splits}`,
      );
      // The GPU schedules (warps on threadIdx.y, lanes on threadIdx.x, shuffles) on the device emulation.
      const onDevice = (def: KernelDef, shapes: Record<string, number>) => {
        const s = new Schedule(specialize(lowerKernel(def), shapes));
        GPU_SCHEDULES[def.name]!(s, "sm_90");
        return cpuDeviceKernel(lowerToDevice(s.func, TARGETS.sm_90));
      };
      const devParts = parts();
      onDevice(attentionDecodeSplit, { h: heads, d, ctx, kvh, splits })({
        q,
        kCache: cache.k,
        vCache: cache.v,
        len,
        ...devParts,
      });
      const dev = zeros("f16", [heads, d]);
      onDevice(attentionDecodeCombine, { h: heads, d, splits })({ ...devParts, out: dev });
      // The chunk's max and sum are warp shuffles there: another order of f32 additions.
      expectWithin(
        toNumbers(dev),
        Float64Array.from(toNumbers(out)),
        2 * F16_EPS,
        `split on the device emulation, ${heads}/${kvh}x${d} len ${len} splits ${splits}`,
      );
      // One launch: the same arithmetic on the CPU, every head's counter back at 0 for the next.
      const count = ndarray("i32", [heads], new Array(heads).fill(0));
      const lastOut = zeros("f16", [heads, d]);
      const cache3 = { q, kCache: cache.k, vCache: cache.v, len };
      for (let launch = 0; launch < 2; launch++) {
        lastRun({ ...cache3, ...parts(), count, out: lastOut });
        expect(Array.from(toNumbers(lastOut))).toEqual(Array.from(toNumbers(out)));
        expect(Array.from(toNumbers(count))).toEqual(new Array(heads).fill(0));
      }
      const devLast = zeros("f16", [heads, d]);
      onDevice(attentionDecodeSplitLast, { h: heads, d, ctx, kvh, splits })({
        ...cache3,
        ...parts(),
        count,
        out: devLast,
      });
      expect(toNumbers(devLast)).toEqual(toNumbers(dev));
      expect(Array.from(toNumbers(count))).toEqual(new Array(heads).fill(0));
    }
  });

  test.each([DECODE_WARPS, 16])(
    "one-launch decode attention (warps over chunks, online softmax), %i warps: GQA, one and several rounds of chunks, CPU and scheduled for sm_90",
    (warps) => {
      const kernel =
        warps === DECODE_WARPS
          ? attentionDecodeWarps
          : withConsts(attentionDecodeWarps, { DECODE_WARPS: warps });
      const run = cpuKernel(kernel);
      const schedule = GPU_SCHEDULES.attentionDecodeWarps!;
      const round = warps * 32;
      const cases: (readonly [number, number, number, number, number])[] = [
        [4, 2, 32, 40, 1],
        [4, 2, 64, round + 40, 33],
        [4, 4, 64, 2 * round + 7, 2 * round + 7],
        [2, 1, 32, round + 40, round + 1],
      ];
      for (const [heads, kvh, d, ctx, len] of cases) {
        const r = rng(SEED + 5 * heads * d + len);
        const cache = randomCache(ctx, kvh, d, r);
        const q = peakyQuery(heads, d, r);
        const out = zeros("f16", [heads, d]);
        run({ q, kCache: cache.k, vCache: cache.v, len, out });
        expectHeadsAttend(out, q, cache, heads, len, `warps ${heads}/${kvh}x${d} len ${len}`);
        // The GPU schedule (warps on threadIdx.y, lanes on threadIdx.x, shuffles) on the device emulation.
        const s = new Schedule(specialize(lowerKernel(kernel), { h: heads, d, ctx, kvh }));
        schedule(s, "sm_90");
        const dev = zeros("f16", [heads, d]);
        const lowered = lowerToDevice(s.func, TARGETS.sm_90);
        expect(lowered.launch?.block[1]).toBe(warps);
        cpuDeviceKernel(lowered)({
          q,
          kCache: cache.k,
          vCache: cache.v,
          len,
          out: dev,
        });
        // The chunk's max and sum are warp shuffles there: another order of f32 additions.
        expectWithin(
          toNumbers(dev),
          Float64Array.from(toNumbers(out)),
          2 * F16_EPS,
          `warps on the device emulation, len ${len}`,
        );
      }
    },
  );

  /**
   * A prefill attention kernel against attentionPrefill, on the CPU and scheduled for sm_90 on the
   * device emulation, for cases [n, heads, kvh, d, ctx, start].
   */
  function checkPrefillKernel(
    kernel: KernelDef,
    cases: readonly (readonly [number, number, number, number, number, number])[],
  ): void {
    for (const [n, heads, kvh, d, ctx, start] of cases) {
      const sym = { n, h: heads, d, ctx, kvh };
      const f = specialize(lowerKernel(kernel), sym);
      const ref = specialize(lowerKernel(attentionPrefill), sym);
      const args = randomArgs(f, {}, n + start, { start });
      const got = cloneArgs(args);
      const want = cloneArgs(args);
      cpuKernel(f)(got as never);
      cpuKernel(ref)(want as never);
      expect(compareResults(want, got, 2e-3).mismatches, `n ${n} start ${start}`).toEqual([]);
      const s = new Schedule(f);
      GPU_SCHEDULES[kernel.name]!(s, "sm_90");
      const dev = cloneArgs(args);
      cpuDeviceKernel(lowerToDevice(s.func, TARGETS.sm_90))(dev as never);
      // Warp shuffles and tensor-core products group the f32 sums in other orders.
      expect(compareResults(want, dev, 2e-3).mismatches, `device emulation, n ${n} start ${start}`).toEqual(
        [],
      );
    }
  }

  test("prefill attention by chunks (a warp per token, 8 tokens a block): GQA, from offsets, CPU and scheduled for sm_90", () => {
    checkPrefillKernel(attentionPrefillWarps, [
      [11, 4, 2, 64, 120, 0],
      [11, 4, 2, 64, 120, 109],
      [9, 2, 2, 32, 80, 37],
    ]);
  });

  test("prefill attention on tensor cores (128 tokens a block, chunks of 64 positions): GQA, from offsets, CPU and scheduled for sm_90", () => {
    // Probabilities are rounded to f16 before P V (the tensor cores' operand), as FlashAttention
    // does; on the emulation mma.m16n8k16 is computed from the 32 lanes' fragments, so a wrong
    // layout gives wrong numbers.
    checkPrefillKernel(attentionPrefillMma, [
      [11, 4, 2, 64, 120, 0],
      // Two blocks of 128 rows (the second partial), three chunks of 64 positions.
      [150, 2, 2, 48, 200, 37],
      [9, 2, 1, 128, 80, 37],
    ]);
    const s = new Schedule(specialize(lowerKernel(attentionPrefillMma), { h: 2, d: 64, ctx: 40, kvh: 2 }));
    expect(() => GPU_SCHEDULES.attentionPrefillMma!(s, "gfx1100")).toThrow(
      /needs NVIDIA sm_80 or later \(mma.m16n8k16\); gfx1100 has none: use attentionPrefillWarps/,
    );
  });

  test("attentionDecode at Llama-2-7B's 32 heads x 128, 1500 of 2048 positions", () => {
    const [heads, kvh, d, ctx, len] = [32, 32, 128, 2048, 1500];
    const r = rng(SEED + 7);
    const cache = randomCache(ctx, kvh, d, r);
    const q = peakyQuery(heads, d, r);
    const out = zeros("f16", [heads, d]);
    cpuKernel(attentionDecode, { boundsCheck: false })({
      q,
      kCache: cache.k,
      vCache: cache.v,
      len,
      scores: zeros("f32", [heads, ctx]),
      out,
    });
    expectHeadsAttend(out, q, cache, heads, len, "decode 7B", [0, 13, 31]);
  });

  test("attentionPrefill: causal from a start offset, with and without GQA", () => {
    const run = cpuKernel(attentionPrefill);
    for (const [heads, kvh, d, n, start, ctx] of [
      [1, 1, 2, 1, 0, 1],
      [4, 4, 8, 5, 0, 8],
      [6, 2, 48, 7, 10, 20],
      [4, 2, MAX_HEAD_DIM, 3, 2, 5], // the largest head dimension
    ] as const) {
      const r = rng(SEED + heads * n + start);
      const cache = randomCache(ctx, kvh, d, r);
      const q = randomF16([n, heads, d], r);
      const out = zeros("f16", [n, heads, d]);
      run({ q, kCache: cache.k, vCache: cache.v, start, out });
      const [qs, ks, vs] = [toNumbers(q), toNumbers(cache.k), toNumbers(cache.v)];
      const got = toNumbers(out);
      for (let t = 0; t < n; t++)
        for (let h = 0; h < heads; h++) {
          const at = (t * heads + h) * d;
          const ref = attendReference(qs.subarray(at, at + d), h, heads, start + t + 1, cache, ks, vs);
          expectWithin(
            got.subarray(at, at + d),
            ref,
            attentionBound(ref),
            `prefill ${heads}/${kvh}x${d} token ${t} head ${h}`,
          );
        }
    }
  });

  test("a prefill then decode steps through kvAppend see the same cache as one longer prefill", () => {
    // The way a model uses these kernels: append k/v at their positions, then attend.
    const [heads, kvh, d, ctx, n0, steps] = [4, 2, 16, 12, 5, 3];
    const r = rng(SEED + 3);
    const qAll = randomF16([n0 + steps, heads, d], r);
    const kAll = randomF16([n0 + steps, kvh, d], r);
    const vAll = randomF16([n0 + steps, kvh, d], r);
    const rows = (a: NDArray, from: number, count: number, width: number) =>
      reshape({ ...a, data: a.data.slice(from * width, (from + count) * width) }, [
        count,
        ...a.shape.slice(1),
      ]);
    const kCache = zeros("f16", [ctx, kvh, d]);
    const vCache = zeros("f16", [ctx, kvh, d]);
    const append = cpuKernel(kvAppend);
    append({ k: rows(kAll, 0, n0, kvh * d), v: rows(vAll, 0, n0, kvh * d), kCache, vCache, pos: 0 });
    const got: number[] = [];
    const prefillOut = zeros("f16", [n0, heads, d]);
    cpuKernel(attentionPrefill)({
      q: rows(qAll, 0, n0, heads * d),
      kCache,
      vCache,
      start: 0,
      out: prefillOut,
    });
    got.push(...toNumbers(prefillOut));
    for (let s = 0; s < steps; s++) {
      const pos = n0 + s;
      append({ k: rows(kAll, pos, 1, kvh * d), v: rows(vAll, pos, 1, kvh * d), kCache, vCache, pos });
      const out = zeros("f16", [heads, d]);
      const q = reshape(rows(qAll, pos, 1, heads * d), [heads, d]);
      cpuKernel(attentionDecode)({
        q,
        kCache,
        vCache,
        len: pos + 1,
        scores: zeros("f32", [heads, ctx]),
        out,
      });
      got.push(...toNumbers(out));
    }
    const whole = zeros("f16", [n0 + steps, heads, d]);
    const fullCache = { k: reshape(kAll, [n0 + steps, kvh, d]), v: reshape(vAll, [n0 + steps, kvh, d]) };
    cpuKernel(attentionPrefill)({ q: qAll, kCache: fullCache.k, vCache: fullCache.v, start: 0, out: whole });
    const ref = toNumbers(whole);
    // Decode (staged softmax) and prefill (online softmax) round differently: within a few f16 ulps.
    expectWithin(
      got,
      ref,
      ref.map((v) => 2 * F16_EPS * Math.abs(v) + 2e-5),
      "prefill + decode steps vs one prefill",
    );
  });
});
