/**
 * Decode attention split over positions (flash-decoding): one query token against positions
 * 0..len-1 of the cache, with the positions cut into chunks of DECODE_CHUNK so that every
 * (head, chunk) pair is a block of its own and the whole GPU reads the cache at once. One head per
 * block (attentionDecodeShared) keeps a 132-multiprocessor GPU 3/4 idle at 32 heads and walks the
 * positions serially.
 *
 * - attentionDecodeChunks: for each head and chunk, the chunk's scores (q . k / sqrt(D), f32),
 *   their max m, sum l of exp(score - m), and acc[i] = sum over the chunk of exp(score - m) v[i].
 *   A chunk past len writes m = -inf, l = 0, acc = 0 and reads nothing (its block leaves at once:
 *   the grid covers the whole cache, len only the start of it). Within a chunk every loop has the constant
 *   extent DECODE_CHUNK (a GPU schedule unrolls it, so all its loads are in flight at once):
 *   positions past len read position len - 1 (always written) and weigh it by exactly 0.
 * - attentionDecodeCombine: out[h][i] = sum_c e^(m_c - M) acc_c[i] / sum_c e^(m_c - M) l_c with
 *   M = max_c m_c, rounded to f16 once.
 *
 * The chunk count is a shape (chunks = ceil(maxLen / DECODE_CHUNK)), fixed when the kernel is
 * compiled, so one launch configuration serves every len (a CUDA graph replays it while len is
 * read from device memory). Arithmetic is attentionDecode's, regrouped by chunk: results agree with
 * it to f32 rounding, not bit for bit.
 */
import {
  kernel,
  exp,
  f16,
  f32,
  idiv,
  max,
  min,
  rsqrt,
  select,
  shared,
  type i32,
  type Tensor,
  type Sym,
} from "../dsl/index.ts";

/** Positions per (head, chunk) block. */
export const DECODE_CHUNK = 32;

/**
 * Positions per block, per target: DECODE_CHUNK for all (the shared score buffer and the unrolled
 * loops take it as a constant; a target wanting another compiles the kernel with another).
 */
export const attentionDecodeChunksParams = {
  sm_90: { positionsPerBlock: DECODE_CHUNK },
  gfx1100: { positionsPerBlock: DECODE_CHUNK },
  vulkan: { positionsPerBlock: DECODE_CHUNK },
} as const;

/** Chunks for a cache of maxLen positions. */
export const decodeChunks = (maxLen: number): number => Math.ceil(maxLen / DECODE_CHUNK);

/**
 * q f16 [H, D]; kCache, vCache f16 [maxLen, kvH, D]; len i32 (1 <= len <= maxLen);
 * partAcc f32 [H, chunks, D], partMax and partSum f32 [H, chunks] with chunks * DECODE_CHUNK >= len.
 */
export const attentionDecodeChunks = kernel(function attentionDecodeChunks(
  q: Tensor<f16, [Sym<"h">, Sym<"d">]>,
  kCache: Tensor<f16, [Sym<"ctx">, Sym<"kvh">, Sym<"d">]>,
  vCache: Tensor<f16, [Sym<"ctx">, Sym<"kvh">, Sym<"d">]>,
  len: i32,
  partAcc: Tensor<f32, [Sym<"h">, Sym<"chunks">, Sym<"d">]>,
  partMax: Tensor<f32, [Sym<"h">, Sym<"chunks">]>,
  partSum: Tensor<f32, [Sym<"h">, Sym<"chunks">]>,
) {
  const d = q.shape[1];
  const group = idiv(q.shape[0], kCache.shape[1]);
  const scale = rsqrt(f32(d));
  for (let h = 0; h < q.shape[0]; h++) {
    for (let c = 0; c < partMax.shape[1]; c++) {
      const s = shared("f32", [DECODE_CHUNK]);
      const kvh = idiv(h, group);
      const start = c * DECODE_CHUNK;
      if (start < len) {
        for (let t = 0; t < DECODE_CHUNK; t++) {
          const pos = min(start + t, len - 1);
          let dot = f32(0);
          for (let i = 0; i < d; i++) dot += f32(q[h][i]) * f32(kCache[pos][kvh][i]);
          s[t] = select(start + t < len, dot * scale, f32(-Infinity));
        }
        let m = f32(-Infinity);
        for (let t = 0; t < DECODE_CHUNK; t++) m = max(m, s[t]);
        let sum = f32(0);
        for (let t = 0; t < DECODE_CHUNK; t++) {
          const e = select(start + t < len, exp(s[t] - m), f32(0));
          s[t] = e;
          sum += e;
        }
        partMax[h][c] = m;
        partSum[h][c] = sum;
        for (let i = 0; i < d; i++) {
          let acc = f32(0);
          for (let t = 0; t < DECODE_CHUNK; t++) acc += s[t] * f32(vCache[min(start + t, len - 1)][kvh][i]);
          partAcc[h][c][i] = acc;
        }
      } else {
        // A chunk past len (the same for the whole block): weight 0 in the combination.
        partMax[h][c] = f32(-Infinity);
        partSum[h][c] = f32(0);
        for (let i = 0; i < d; i++) partAcc[h][c][i] = f32(0);
      }
    }
  }
});

/** partAcc, partMax, partSum as attentionDecodeChunks wrote them; out f16 [H, D]. */
export const attentionDecodeCombine = kernel(function attentionDecodeCombine(
  partAcc: Tensor<f32, [Sym<"h">, Sym<"chunks">, Sym<"d">]>,
  partMax: Tensor<f32, [Sym<"h">, Sym<"chunks">]>,
  partSum: Tensor<f32, [Sym<"h">, Sym<"chunks">]>,
  len: i32,
  out: Tensor<f16, [Sym<"h">, Sym<"d">]>,
) {
  for (let h = 0; h < out.shape[0]; h++) {
    for (let i = 0; i < out.shape[1]; i++) {
      let m = f32(-Infinity);
      for (let c = 0; c < partMax.shape[1]; c++) m = max(m, partMax[h][c]);
      let num = f32(0);
      let den = f32(0);
      for (let c = 0; c < partMax.shape[1]; c++) {
        // Chunks past len hold weight 0: their loads are skipped.
        if (c * DECODE_CHUNK < len) {
          const w = exp(partMax[h][c] - m);
          num += w * partAcc[h][c][i];
          den += w * partSum[h][c];
        }
      }
      out[h][i] = f16(num / den);
    }
  }
});
