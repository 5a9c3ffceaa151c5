/**
 * sampleTopP against llama2.c's algorithm written plainly in float64 (sort, nucleus, CDF) and
 * against llama/sampler.ts driven by the same seed. A pick may differ from the float64 reference
 * only where the coin lies within rounding distance of a CDF boundary; the test checks that.
 */
import { describe, expect, test } from "vitest";
import { cpuKernel } from "../../backends/cpu/runtime.ts";
import { fromStorage, zeros } from "../../dsl/ndarray.ts";
import { Sampler, XorShift64Star } from "../../llama/sampler.ts";
import { sampleTopP } from "../../stdlib/sampling.ts";
import { SEED, expectWithin, rng } from "./helpers.ts";

/** softmax(logits / T) in float64. */
function probabilities(logits: ArrayLike<number>, temperature: number): Float64Array {
  const x = Float64Array.from(logits, (v) => v / temperature);
  const mx = Math.max(...x);
  const e = x.map((v) => Math.exp(v - mx));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

const f = Math.fround;

/**
 * llama2.c's sampler (run.c: softmax, sample_topp, sample_mult) with its float32 arithmetic:
 * logits / T, max, expf, a float sum, division; then for topP in (0, 1) the candidates
 * p >= (1 - topP) / (n - 1) sorted most likely first (stably: C's qsort leaves ties in any order),
 * the shortest prefix whose float cumulative mass exceeds topP, r = coin * that mass, and the first
 * token whose float CDF exceeds r; otherwise the float CDF over the whole vocabulary in index order.
 * Also returns how close r came to a CDF boundary, or the nucleus's cumulative mass to topP
 * (whichever is closer), and how many terms the sums had: a kernel that sums in another order may
 * pick a neighbour within that rounding (a nucleus one token longer or shorter moves r too).
 */
function llama2c(logits: ArrayLike<number>, temperature: number, topP: number, coin: number) {
  const n = logits.length;
  const x = Float32Array.from(logits, (v) => f(v / temperature));
  let mx = -Infinity;
  for (const v of x) mx = Math.max(mx, v);
  let sum = 0;
  for (let i = 0; i < n; i++) sum = f(sum + (x[i] = f(Math.exp(f(x[i]! - mx)))));
  const p = x.map((v) => f(v / sum));
  let order = Array.from(p.keys());
  let r = coin;
  let cutMargin = Infinity;
  if (topP > 0 && topP < 1) {
    const cutoff = f((1 - topP) / (n - 1));
    order = order.filter((i) => p[i]! >= cutoff).sort((a, b) => p[b]! - p[a]! || a - b);
    let mass = 0;
    let last = order.length - 1;
    for (let i = 0; i < order.length; i++) {
      mass = f(mass + p[order[i]!]!);
      cutMargin = Math.min(cutMargin, Math.abs(mass - topP));
      if (mass > topP) {
        last = i;
        break;
      }
    }
    order = order.slice(0, last + 1);
    r = f(coin * mass);
  }
  let cdf = 0;
  let margin = cutMargin;
  let pick = order[order.length - 1]!;
  let found = false;
  for (const j of order) {
    cdf = f(cdf + p[j]!);
    margin = Math.min(margin, Math.abs(cdf - r));
    if (!found && r < cdf) {
      pick = j;
      found = true;
    }
  }
  return { pick, margin, terms: order.length };
}

/** Rounding of a float32 sum of `terms` probabilities (at most 1): the window where picks may differ. */
const roundingWindow = (terms: number) => terms * 2 ** -23;

function sample(logits: Float32Array, rows: number, coins: number[], temperature: number, topP: number) {
  const vocab = logits.length / rows;
  const probs = zeros("f32", [rows, vocab]);
  const out = zeros("i32", [rows]);
  cpuKernel(sampleTopP, { boundsCheck: vocab < 10000 })({
    logits: fromStorage("f32", [rows, vocab], logits),
    coins: fromStorage("f32", [rows], Float32Array.from(coins)),
    temperature,
    topP,
    probs,
    out,
  });
  return { picks: Array.from(out.data), probs: probs.data as Float32Array };
}

const randomLogits = (n: number, spread: number, r: () => number) =>
  Float32Array.from({ length: n }, () => (r() * 2 - 1) * spread);

describe(`sampling on the CPU (seed ${SEED})`, () => {
  test("probabilities are softmax(logits / temperature)", () => {
    const r = rng(SEED);
    for (const temperature of [0.3, 1, 2.5]) {
      const logits = randomLogits(500, 8, r);
      const { probs } = sample(logits, 1, [0.5], temperature, 0.9);
      const ref = probabilities(logits, temperature);
      expectWithin(
        probs,
        ref,
        ref.map((v) => 1e-5 * v + 1e-12),
        `probs at T=${temperature}`,
      );
    }
  });

  test("picks match llama2.c's float32 sampler, for top-p and the whole distribution", () => {
    const r = rng(SEED + 1);
    const [rows, vocab] = [64, 300];
    for (const [topP, temperature] of [
      [0.9, 1],
      [0.5, 0.7],
      [0.99, 1.5],
      [1, 1], // whole distribution
      [0, 0.8], // topP <= 0 also means the whole distribution (llama2.c)
    ] as const) {
      const logits = randomLogits(rows * vocab, 6, r);
      const coins = Array.from({ length: rows }, () => Math.floor(r() * 2 ** 24) / 2 ** 24);
      const { picks } = sample(logits, rows, coins, temperature, topP);
      let ambiguous = 0;
      for (let i = 0; i < rows; i++) {
        const ref = llama2c(logits.subarray(i * vocab, (i + 1) * vocab), temperature, topP, coins[i]!);
        if (picks[i] === ref.pick) continue;
        // The whole-distribution CDF is llama2.c's float sum in llama2.c's order: no slack. The
        // nucleus mass is summed in index order, not sorted order: its rounding may differ.
        const where = `row ${i} topP ${topP}: picked ${picks[i]}, llama2.c picks ${ref.pick} (seed ${SEED})`;
        if (!(topP > 0 && topP < 1)) expect.fail(where);
        expect(ref.margin, where).toBeLessThan(roundingWindow(ref.terms));
        ambiguous++;
      }
      expect(ambiguous).toBeLessThan(3);
    }
  });

  test("the nucleus is walked most likely first, and cut where its mass first exceeds topP", () => {
    // p = [0.3, 0.1, 0.6]: sorted 2, 0, 1 with cumulative 0.6, 0.9, 1.0.
    const logits = Float32Array.from([0.3, 0.1, 0.6], Math.log);
    const pick = (topP: number, coin: number) => sample(logits, 1, [coin], 1, topP).picks[0];
    expect(pick(0.5, 0.99)).toBe(2); // nucleus {2}
    expect(pick(0.7, 0.66)).toBe(2); // nucleus {2, 0}, mass 0.9: r = 0.594 < 0.6
    expect(pick(0.7, 0.7)).toBe(0); // r = 0.63
    expect(pick(0.95, 0.65)).toBe(0); // whole nucleus, sorted order (index order would pick 2)
    expect(pick(0.95, 0.95)).toBe(1);
    expect(pick(1, 0.35)).toBe(1); // whole distribution, index order: 0.3, 0.4, 1.0
    expect(pick(1, 0.5)).toBe(2);
    expect(pick(1, 0.25)).toBe(0);
    // A coin exactly on a CDF boundary goes to the next token (llama2.c's r < cdf). These logits
    // give exactly p = [0.5, 0.375, 0.125] in f32.
    const exact = Float32Array.from([4, 3, 1], Math.log);
    expect(sample(exact, 1, [0.5], 1, 0.9).picks[0]).toBe(1); // nucleus all, r = 0.5
    expect(sample(exact, 1, [0.5], 1, 1).picks[0]).toBe(1); // whole distribution, coin = 0.5
    expect(sample(exact, 1, [0.875], 1, 1).picks[0]).toBe(2);
    // Ties keep index order: p = [0.1, 0.4, 0.4, 0.1].
    const tied = Float32Array.from([0.1, 0.4, 0.4, 0.1], Math.log);
    expect(sample(tied, 1, [0.3], 1, 0.5).picks[0]).toBe(1); // nucleus {1, 2}, r = 0.24
    expect(sample(tied, 1, [0.6], 1, 0.5).picks[0]).toBe(2); // r = 0.48
    expect(sample(tied, 1, [0], 1, 0.5).picks[0]).toBe(1);
  });

  test("same seed, same tokens as llama/sampler.ts (llama2.c's sampler) over a 32000 vocabulary", () => {
    const r = rng(SEED + 2);
    const vocab = 32000;
    for (const [temperature, topP, seed] of [
      [1, 0.9, 42],
      [0.7, 0.95, 7],
      [0.8, 1, 3],
    ] as const) {
      const hostSampler = new Sampler({ temperature, topP, seed });
      const coins = new XorShift64Star(seed); // the kernel's coins: the same generator and seed
      for (let step = 0; step < 4; step++) {
        const logits = randomLogits(vocab, 10, r);
        const expected = hostSampler.sample(logits);
        const coin = coins.nextFloat();
        const { picks } = sample(logits, 1, [coin], temperature, topP);
        const ref = llama2c(logits, temperature, topP, coin);
        if (topP >= 1) expect(picks[0], `step ${step}: llama2.c's float32 CDF (seed ${SEED})`).toBe(ref.pick);
        if (picks[0] === expected) continue;
        // llama/sampler.ts sums its CDF in float64, llama2.c and the kernel in float32.
        expect(
          ref.margin,
          `step ${step}: kernel ${picks[0]}, sampler ${expected} (seed ${SEED})`,
        ).toBeLessThan(roundingWindow(ref.terms));
      }
    }
  });
});
