/**
 * Decode attention for GPUs: as attentionDecode (attention.ts), with the scores of a head kept in
 * shared memory instead of a global workspace, so the stages (scores, max, exp-sum, weighted sum)
 * can each spread over the threads of the head's block: the lowering passes put barriers between
 * stages that share the scores. Positions are limited to MAX_DECODE_CONTEXT (16 KB of scores).
 */
import {
  kernel,
  exp,
  f16,
  f32,
  idiv,
  max,
  rsqrt,
  shared,
  type i32,
  type Tensor,
  type Sym,
} from "../dsl/index.ts";

export const MAX_DECODE_CONTEXT = 4096;

/** q, out f16 [H, D]; caches f16 [maxLen, kvH, D]; len i32 (1 <= len <= min(maxLen, MAX_DECODE_CONTEXT)). */
export const attentionDecodeShared = kernel(function attentionDecodeShared(
  q: Tensor<f16, [Sym<"h">, Sym<"d">]>,
  kCache: Tensor<f16, [Sym<"ctx">, Sym<"kvh">, Sym<"d">]>,
  vCache: Tensor<f16, [Sym<"ctx">, Sym<"kvh">, Sym<"d">]>,
  len: i32,
  out: Tensor<f16, [Sym<"h">, Sym<"d">]>,
) {
  const d = q.shape[1];
  const group = idiv(q.shape[0], kCache.shape[1]);
  const scale = rsqrt(f32(d));
  for (let h = 0; h < q.shape[0]; h++) {
    const s = shared("f32", [MAX_DECODE_CONTEXT]);
    const kvh = idiv(h, group);
    for (let t = 0; t < len; t++) {
      let dot = f32(0);
      for (let i = 0; i < d; i++) dot += f32(q[h][i]) * f32(kCache[t][kvh][i]);
      s[t] = dot * scale;
    }
    let m = f32(-Infinity);
    for (let t = 0; t < len; t++) m = max(m, s[t]);
    let sum = f32(0);
    for (let t = 0; t < len; t++) {
      const e = exp(s[t] - m);
      s[t] = e;
      sum += e;
    }
    for (let i = 0; i < d; i++) {
      let acc = f32(0);
      for (let t = 0; t < len; t++) acc += s[t] * f32(vCache[t][kvh][i]);
      out[h][i] = f16(acc / sum);
    }
  }
});

/** Threads per head block (the schedule applying them: stdlib/gpu/schedules.ts). */
export const attentionDecodeSharedParams = {
  sm_90: { threads: 256 },
  gfx1100: { threads: 256 },
  vulkan: { threads: 128 },
} as const;
