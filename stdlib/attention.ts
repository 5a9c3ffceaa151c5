/**
 * Attention over the KV cache (layout: kv_cache.ts), with grouped-query attention: query head h
 * reads key/value head floor(h / (H / kvH)). Scores are q . k / sqrt(headDim) in f32, the softmax
 * is f32, and the weighted sum of values is f32, rounded to f16 once per output element.
 *
 * Two kernels, because the two phases parallelise differently:
 * - attentionDecode (one new token): few rows (H), long reductions. It works in stages per head
 *   (scores, max, exp and sum, weighted sum of values), each one a GEMV-like loop nest that a GPU
 *   schedule binds head -> block and positions or channels -> threads. Scores go to a caller-owned
 *   f32 workspace [H, maxLen] (kernels cannot allocate memory of a run-time size).
 * - attentionPrefill (N tokens, causal): many rows (N * H). Each row runs the online softmax of
 *   FlashAttention in one pass over positions, keeping the running max, the running sum and an f32
 *   accumulator of headDim values; no workspace, any N. headDim <= MAX_HEAD_DIM.
 */
import {
  kernel,
  exp,
  f16,
  f32,
  idiv,
  local,
  max,
  rsqrt,
  type i32,
  type Tensor,
  type Sym,
} from "../dsl/index.ts";
import { ROW_REDUCE_DEFAULTS, type PerTarget, type RowReduceParams } from "./params.ts";

/** The largest head dimension attentionPrefill holds in its per-row accumulator. */
export const MAX_HEAD_DIM = 256;

/**
 * One query token against positions 0..len-1 of the cache (the token's own key and value
 * appended first, so len = its position + 1).
 * q, out f16 [H, D]; kCache, vCache f16 [maxLen, kvH, D]; len i32 (1 <= len <= maxLen);
 * scores f32 [H, maxLen] (workspace; holds exp(score - max) afterwards).
 */
export const attentionDecode = kernel(function attentionDecode(
  q: Tensor<f16, [Sym<"h">, Sym<"d">]>,
  kCache: Tensor<f16, [Sym<"ctx">, Sym<"kvh">, Sym<"d">]>,
  vCache: Tensor<f16, [Sym<"ctx">, Sym<"kvh">, Sym<"d">]>,
  len: i32,
  scores: Tensor<f32, [Sym<"h">, Sym<"ctx">]>,
  out: Tensor<f16, [Sym<"h">, Sym<"d">]>,
) {
  const d = q.shape[1];
  const group = idiv(q.shape[0], kCache.shape[1]);
  const scale = rsqrt(f32(d));
  for (let h = 0; h < q.shape[0]; h++) {
    const kvh = idiv(h, group);
    for (let t = 0; t < len; t++) {
      let dot = f32(0);
      for (let i = 0; i < d; i++) dot += f32(q[h][i]) * f32(kCache[t][kvh][i]);
      scores[h][t] = dot * scale;
    }
    let m = f32(-Infinity);
    for (let t = 0; t < len; t++) m = max(m, scores[h][t]);
    let sum = f32(0);
    for (let t = 0; t < len; t++) {
      const e = exp(scores[h][t] - m);
      scores[h][t] = e;
      sum += e;
    }
    for (let i = 0; i < d; i++) {
      let acc = f32(0);
      for (let t = 0; t < len; t++) acc += scores[h][t] * f32(vCache[t][kvh][i]);
      out[h][i] = f16(acc / sum);
    }
  }
});

/**
 * N query tokens at positions start..start+N-1, each attending causally to positions
 * 0..its own (their keys and values appended to the cache first).
 * q, out f16 [N, H, D]; kCache, vCache f16 [maxLen, kvH, D]; start i32 (start + N <= maxLen).
 */
export const attentionPrefill = kernel(function attentionPrefill(
  q: Tensor<f16, [Sym<"n">, Sym<"h">, Sym<"d">]>,
  kCache: Tensor<f16, [Sym<"ctx">, Sym<"kvh">, Sym<"d">]>,
  vCache: Tensor<f16, [Sym<"ctx">, Sym<"kvh">, Sym<"d">]>,
  start: i32,
  out: Tensor<f16, [Sym<"n">, Sym<"h">, Sym<"d">]>,
) {
  const d = q.shape[2];
  const group = idiv(q.shape[1], kCache.shape[1]);
  const scale = rsqrt(f32(d));
  for (let n = 0; n < q.shape[0]; n++) {
    for (let h = 0; h < q.shape[1]; h++) {
      const kvh = idiv(h, group);
      const acc = local("f32", [MAX_HEAD_DIM]);
      for (let i = 0; i < d; i++) acc[i] = 0;
      let m = f32(-Infinity);
      let sum = f32(0);
      for (let t = 0; t < start + n + 1; t++) {
        let dot = f32(0);
        for (let i = 0; i < d; i++) dot += f32(q[n][h][i]) * f32(kCache[t][kvh][i]);
        const s = dot * scale;
        // Rescale what has been summed so far to the new maximum (exp(-inf) = 0 at the start).
        const mNew = max(m, s);
        const correction = exp(m - mNew);
        const p = exp(s - mNew);
        sum = sum * correction + p;
        for (let i = 0; i < d; i++) acc[i] = acc[i] * correction + p * f32(vCache[t][kvh][i]);
        m = mNew;
      }
      for (let i = 0; i < d; i++) out[n][h][i] = f16(acc[i] / sum);
    }
  }
});

// Seeds for tuning (see params.ts); the schedule applied today is in stdlib/gpu/schedules.ts.
export const attentionDecodeParams: PerTarget<RowReduceParams> = ROW_REDUCE_DEFAULTS;
export const attentionPrefillParams: PerTarget<RowReduceParams> = {
  sm_90: { threads: 32, vec: 8, unroll: 16 },
  gfx1100: { threads: 32, vec: 8, unroll: 16 },
  vulkan: { threads: 32, vec: 4, unroll: 16 },
};
