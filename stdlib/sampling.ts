/**
 * Choosing the next token from logits f32 [M, V] (M sequences decoded together; M = 1 for chat).
 *
 * argmax is greedy decoding (temperature 0). sampleTopP is llama2.c's sampler as a kernel:
 * softmax(logits / temperature) in f32, then nucleus (top-p) sampling by inverse CDF, or
 * multinomial sampling over the whole vocabulary when topP <= 0 or topP >= 1.
 *
 * The randomness comes from the host: `coins` holds one uniform f32 in [0, 1) per row, drawn from a
 * seeded generator (llama/sampler.ts's XorShift64Star, llama2.c's xorshift64*, whose nextFloat()
 * is 24 random bits / 2^24). Given the same seed, the kernel then picks what llama2.c picks, except
 * where f32 sums in a different order move a CDF boundary across the coin (or the nucleus mass
 * across topP, which lengthens or shortens the nucleus by a token).
 *
 * Top-p without sorting: llama2.c sorts the probabilities in decreasing order, keeps the shortest
 * prefix whose mass exceeds topP, and walks that prefix's CDF with r = coin * (its mass). Both steps
 * are "find the probability value tau where the mass of {p >= tau} crosses a target", which a
 * bisection over tau finds with a fixed number of passes over the row (BISECT_STEPS). Within the
 * final interval, which holds only probabilities equal to tau once the bisection has converged,
 * candidates are walked in index order: the order of a stable sort. Two documented differences
 * from llama2.c: tokens tied with the smallest nucleus probability all join the nucleus; and
 * probabilities below about 2^-39 are not resolved by 64 halvings of [0, 2 * max p].
 * The kernel is sequential per row; each pass over V is a reduction a GPU schedule can split.
 */
import { kernel, exp, f32, i32, local, max, min, select, type Tensor, type Sym } from "../dsl/index.ts";
import { ROW_REDUCE_DEFAULTS, type PerTarget, type RowReduceParams } from "./params.ts";

/** Halvings of the threshold interval; see the file comment for the precision this gives. */
export const BISECT_STEPS = 64;

/**
 * logits f32 [M, V] -> out i32 [M]: the index of each row's largest value, the first on ties, or -1
 * where the row holds a NaN (a broken model; the host says so). Two passes, each a plain reduction
 * a GPU schedule spreads over a block: the row's max, then the least index holding it.
 */
export const argmax = kernel(function argmax(
  logits: Tensor<f32, [Sym<"m">, Sym<"v">]>,
  out: Tensor<i32, [Sym<"m">]>,
) {
  const vocab = logits.shape[1];
  for (let m = 0; m < logits.shape[0]; m++) {
    let best = f32(-Infinity);
    for (let j = 0; j < vocab; j++) best = max(best, logits[m][j]);
    let at = vocab;
    for (let j1 = 0; j1 < vocab; j1++) {
      const x = logits[m][j1];
      at = min(at, select(x != x, i32(-1), select(x == best, j1, vocab)));
    }
    out[m] = at;
  }
});

/**
 * Where the decode step's token, position and length live in its i32 buffer (recordToken's
 * `step`): 64 words (256 bytes: llama/device/types.ts VIEW_ALIGN_BYTES) apart, so that a view of
 * each binds in place on every device; packed at words 0, 1 and 2, each launch reading the
 * position or length went through a staging copy (64 copies and barriers a 7B step on NVIDIA's
 * Vulkan driver).
 */
export const STEP_TOKEN = 0;
export const STEP_POS = 64;
export const STEP_LEN = 128;
/** Words of the step buffer: recordToken's `step` shape. */
export const STEP_WORDS = 129;

/** The contents of a step buffer holding `token`, `pos` and `len` (other words zero). */
export function stepWords(token: number, pos: number, len: number): Int32Array {
  const w = new Int32Array(STEP_WORDS);
  w[STEP_TOKEN] = token;
  w[STEP_POS] = pos;
  w[STEP_LEN] = len;
  return w;
}

/**
 * Greedy decoding's bookkeeping on the device, after argmax, so that decode steps can run back to
 * back without the host: `step` holds the token, position and length of the step just run (at
 * STEP_TOKEN, STEP_POS and STEP_LEN); next[0], the token it chose, is recorded at history[pos] and
 * becomes the next step's token (a NaN's -1 as token 0, so the next step reads inside the embedding
 * table; history keeps the -1 for the host to report), and the position and length advance by one.
 */
export const recordToken = kernel(function recordToken(
  next: Tensor<i32, [Sym<"m">]>,
  step: Tensor<i32, readonly [129]>,
  history: Tensor<i32, [Sym<"ctx">]>,
) {
  const t = next[0];
  const pos = step[STEP_POS];
  history[pos] = t;
  step[STEP_TOKEN] = max(t, i32(0));
  step[STEP_POS] = pos + 1;
  step[STEP_LEN] = pos + 2;
});

/**
 * Narrows bounds = [lo, hi], given mass(lo) > target >= mass(hi) where mass(tau) is the sum of the
 * row's probabilities p >= tau, keeping that invariant while halving hi - lo.
 */
function bisectMass(
  probs: Tensor<f32, [Sym<"m">, Sym<"v">]>,
  m: i32,
  target: f32,
  bounds: Tensor<f32, readonly [2]>,
) {
  for (let step = 0; step < BISECT_STEPS; step++) {
    const mid = (bounds[0] + bounds[1]) * 0.5;
    let mass = f32(0);
    for (let j = 0; j < probs.shape[1]; j++) mass += select(probs[m][j] >= mid, probs[m][j], f32(0));
    if (mass > target) {
      bounds[0] = mid;
    } else {
      bounds[1] = mid;
    }
  }
}

/**
 * logits f32 [M, V]; coins f32 [M] (uniform in [0, 1), from the host's seeded generator);
 * temperature f32 (> 0: use argmax for greedy decoding); topP f32; probs f32 [M, V] (output:
 * softmax(logits / temperature), also the kernel's workspace); out i32 [M]: the sampled token.
 */
export const sampleTopP = kernel(function sampleTopP(
  logits: Tensor<f32, [Sym<"m">, Sym<"v">]>,
  coins: Tensor<f32, [Sym<"m">]>,
  temperature: f32,
  topP: f32,
  probs: Tensor<f32, [Sym<"m">, Sym<"v">]>,
  out: Tensor<i32, [Sym<"m">]>,
) {
  const vocab = logits.shape[1];
  for (let m = 0; m < logits.shape[0]; m++) {
    let mx = f32(-Infinity);
    for (let j = 0; j < vocab; j++) mx = max(mx, logits[m][j] / temperature);
    let sum = f32(0);
    for (let j = 0; j < vocab; j++) {
      const e = exp(logits[m][j] / temperature - mx);
      probs[m][j] = e;
      sum += e;
    }
    let pmax = f32(0);
    for (let j = 0; j < vocab; j++) {
      probs[m][j] = probs[m][j] / sum;
      pmax = max(pmax, probs[m][j]);
    }
    const coin = coins[m];
    let pick = i32(-1);
    if (topP <= 0 || topP >= 1) {
      // The whole distribution, CDF in index order (llama2.c's sample_mult).
      let cdf = f32(0);
      for (let j = 0; j < vocab; j++) {
        cdf += probs[m][j];
        pick = select(pick < 0 && coin < cdf, j, pick);
      }
      pick = select(pick < 0, vocab - 1, pick);
    } else {
      // mass(0) = 1 > topP and mass(2 * pmax) = 0: the invariant holds from the start.
      const bounds = local("f32", [2]);
      bounds[0] = 0;
      bounds[1] = pmax * 2;
      bisectMass(probs, m, topP, bounds);
      // The nucleus is {p >= cut}: the shortest most-likely-first prefix with mass > topP.
      const cut = bounds[0];
      let nucleus = f32(0);
      for (let j = 0; j < vocab; j++) nucleus += select(probs[m][j] >= cut, probs[m][j], f32(0));
      const r = coin * nucleus;
      // mass(cut) = nucleus > r (coin < 1), so [cut, 2 * pmax] brackets the token where the
      // most-likely-first CDF passes r.
      bounds[1] = pmax * 2;
      bisectMass(probs, m, r, bounds);
      const lo = bounds[0];
      const hi = bounds[1];
      let cdf = f32(0);
      for (let j = 0; j < vocab; j++) cdf += select(probs[m][j] >= hi, probs[m][j], f32(0));
      let last = i32(-1);
      for (let j = 0; j < vocab; j++) {
        const inside = probs[m][j] >= lo && probs[m][j] < hi;
        cdf += select(inside, probs[m][j], f32(0));
        pick = select(pick < 0 && inside && r < cdf, j, pick);
        last = select(inside, j, last);
      }
      pick = select(pick < 0, last, pick);
    }
    out[m] = pick;
  }
});

// Seeds for tuning (see params.ts); the schedule applied today is in stdlib/gpu/schedules.ts.
export const argmaxParams: PerTarget<RowReduceParams> = ROW_REDUCE_DEFAULTS;
export const sampleTopPParams: PerTarget<RowReduceParams> = ROW_REDUCE_DEFAULTS;
