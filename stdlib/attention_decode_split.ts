/**
 * Decode attention split over positions (flash-decoding): one query token against positions
 * 0..len-1 of the cache, the positions dealt to `splits` blocks per head so that the whole GPU
 * reads the cache and does the arithmetic at once, then a second launch combines the splits.
 * attentionDecodeWarps (a block per head) leaves a 132-multiprocessor GPU 3/4 idle at 32 heads,
 * and its 32 busy multiprocessors take several rounds of chunks in turn as len grows.
 *
 * - attentionDecodeSplit: the len positions, in chunks of 32 (one position per lane), go to the
 *   splits in contiguous runs of ceil(chunks / splits) chunks, so every split has work once len
 *   reaches 32 * splits positions; a split's SPLIT_WARPS warps take its chunks in turn, each warp
 *   keeping a running softmax (max m, sum l, weighted sum of values: online, as in flash
 *   attention), and the warps' states are combined through shared memory into the split's
 *   partMax, partSum and partAcc (the weighted sum, not yet divided). A split with no positions
 *   writes m = -inf, l = 0, acc = 0.
 * - attentionDecodeCombine: out[h][i] = sum_s e^(m_s - M) acc_s[i] / sum_s e^(m_s - M) l_s with
 *   M = max_s m_s (splits at -inf weigh 0), rounded to f16 once.
 *
 * In a chunk a lane is a position: its score q . k / sqrt(D) in f32, the chunk's max and sum by
 * reductions over the lanes (warp shuffles on a GPU). For the values a lane owns ceil(D / 32) consecutive
 * channels. Positions outside the split or past len read position len - 1 (always written) and
 * weigh exactly 0, so every loop's bound depends on len only (the same for all threads) and nothing
 * is read out of bounds. The split count is a shape, fixed when the kernels are compiled, so one
 * launch configuration serves every len (a CUDA graph replays it while len is read from device
 * memory). Arithmetic is attentionDecode's regrouped: results agree with it to f32 rounding, output
 * rounded to f16 once. Head dimensions up to 32 * LANE_CHANNELS = 256 (MAX_HEAD_DIM).
 */
import {
  kernel,
  atomicAdd,
  exp,
  f16,
  f32,
  idiv,
  local,
  max,
  min,
  rsqrt,
  select,
  shared,
  type i32,
  type Tensor,
  type Sym,
} from "../dsl/index.ts";

/** Positions per chunk: one per lane. */
export const DECODE_CHUNK = 32;
/** Channels a lane may own: head dimensions up to 32 * 8 = 256. */
const LANE_CHANNELS = 8;
/** Warps per split (the shared state buffers take it as a constant). */
export const SPLIT_WARPS = 4;
/**
 * Splits per head by default: 8 x 32 heads = 256 blocks of 4 warps, and 8 splits x 4 warps x 32
 * positions cover 1,024 positions in one round of chunks. CUDA takes 4 (llama/op-choices.ts decodeSplits:
 * measured faster on an H100 at a few hundred positions).
 */
export const DECODE_SPLITS = 8;

/**
 * Splits per head, per target: DECODE_SPLITS for all (a shape of the partial results, bound when
 * the kernels are compiled; llama/ops.ts passes it).
 */
export const attentionDecodeSplitParams = {
  sm_90: { splits: DECODE_SPLITS, warps: SPLIT_WARPS },
  gfx1100: { splits: DECODE_SPLITS, warps: SPLIT_WARPS },
  vulkan: { splits: DECODE_SPLITS, warps: SPLIT_WARPS },
} as const;

/** attentionDecodeSplitLast's are attentionDecodeSplit's. */
export const attentionDecodeSplitLastParams = attentionDecodeSplitParams;

/**
 * q f16 [H, D]; kCache, vCache f16 [maxLen, kvH, D]; len i32 (1 <= len <= maxLen);
 * partAcc f32 [H, splits, D], partMax and partSum f32 [H, splits].
 */
export const attentionDecodeSplit = kernel(function attentionDecodeSplit(
  q: Tensor<f16, [Sym<"h">, Sym<"d">]>,
  kCache: Tensor<f16, [Sym<"ctx">, Sym<"kvh">, Sym<"d">]>,
  vCache: Tensor<f16, [Sym<"ctx">, Sym<"kvh">, Sym<"d">]>,
  len: i32,
  partAcc: Tensor<f32, [Sym<"h">, Sym<"splits">, Sym<"d">]>,
  partMax: Tensor<f32, [Sym<"h">, Sym<"splits">]>,
  partSum: Tensor<f32, [Sym<"h">, Sym<"splits">]>,
) {
  for (let h = 0; h < q.shape[0]; h++)
    for (let s = 0; s < partMax.shape[1]; s++)
      splitPartials(q, kCache, vCache, len, partAcc, partMax, partSum, h, s);
});

/**
 * As attentionDecodeSplit, then the splits combined (as attentionDecodeCombine) by the last block
 * of each head to finish, in the same launch: each split's block adds 1 to count[h] once its
 * partial results are written (atomicAdd, which publishes them), and the block that adds last
 * reads every split's, writes out[h] and sets count[h] back to 0 for the next launch. count i32
 * [H] must be all 0 before the first launch. One kernel boundary fewer a layer than the pair.
 */
export const attentionDecodeSplitLast = kernel(function attentionDecodeSplitLast(
  q: Tensor<f16, [Sym<"h">, Sym<"d">]>,
  kCache: Tensor<f16, [Sym<"ctx">, Sym<"kvh">, Sym<"d">]>,
  vCache: Tensor<f16, [Sym<"ctx">, Sym<"kvh">, Sym<"d">]>,
  len: i32,
  partAcc: Tensor<f32, [Sym<"h">, Sym<"splits">, Sym<"d">]>,
  partMax: Tensor<f32, [Sym<"h">, Sym<"splits">]>,
  partSum: Tensor<f32, [Sym<"h">, Sym<"splits">]>,
  count: Tensor<i32, [Sym<"h">]>,
  out: Tensor<f16, [Sym<"h">, Sym<"d">]>,
) {
  for (let h = 0; h < q.shape[0]; h++)
    for (let s = 0; s < partMax.shape[1]; s++) {
      splitPartials(q, kCache, vCache, len, partAcc, partMax, partSum, h, s);
      const seen = shared("i32", [1]);
      seen[0] = atomicAdd(count[h], 1);
      if (seen[0] === partMax.shape[1] - 1) {
        for (let ic = 0; ic < out.shape[1]; ic++) combineSplits(partAcc, partMax, partSum, out, h, ic);
        count[h] = 0;
      }
    }
});

/**
 * Split s of head h (attentionDecodeSplit): its positions' softmax state into partMax[h][s],
 * partSum[h][s] and partAcc[h][s].
 */
function splitPartials(
  q: Tensor<f16, readonly [number, number]>,
  kCache: Tensor<f16, readonly [number, number, number]>,
  vCache: Tensor<f16, readonly [number, number, number]>,
  len: i32,
  partAcc: Tensor<f32, readonly [number, number, number]>,
  partMax: Tensor<f32, readonly [number, number]>,
  partSum: Tensor<f32, readonly [number, number]>,
  h: i32,
  s: i32,
) {
  const d = q.shape[1];
  // Channels per lane for the values; with D not a multiple of 32 the last lanes' extra channels
  // read channel D - 1 and are never used.
  const perLane = idiv(d + DECODE_CHUNK - 1, DECODE_CHUNK);
  const group = idiv(q.shape[0], kCache.shape[1]);
  const scale = rsqrt(f32(d));
  // Chunks per split, and rounds of SPLIT_WARPS chunks that cover them: the same for every thread.
  const run = idiv(idiv(len + DECODE_CHUNK - 1, DECODE_CHUNK) + partMax.shape[1] - 1, partMax.shape[1]);
  const rounds = idiv(run + SPLIT_WARPS - 1, SPLIT_WARPS);
  const kvh = idiv(h, group);
  // This split's positions: [s * run * DECODE_CHUNK, end).
  const end = min(len, (s + 1) * run * DECODE_CHUNK);
  const p = shared("f32", [SPLIT_WARPS, DECODE_CHUNK]);
  const wm = shared("f32", [SPLIT_WARPS]);
  const wl = shared("f32", [SPLIT_WARPS]);
  const wacc = shared("f32", [SPLIT_WARPS, DECODE_CHUNK * LANE_CHANNELS]);
  for (let w = 0; w < SPLIT_WARPS; w++) {
    const acc = local("f32", [SPLIT_WARPS, DECODE_CHUNK, LANE_CHANNELS]);
    for (let lz = 0; lz < DECODE_CHUNK; lz++) for (let iz = 0; iz < perLane; iz++) acc[w][lz][iz] = f32(0);
    let m = f32(-Infinity);
    let l = f32(0);
    for (let r = 0; r < rounds; r++) {
      const start = (s * run + r * SPLIT_WARPS + w) * DECODE_CHUNK;
      // The chunk's values, loaded before the scores that weigh them: both round trips at once.
      const vr = local("f16", [SPLIT_WARPS, DECODE_CHUNK, DECODE_CHUNK, LANE_CHANNELS]);
      for (let lp = 0; lp < DECODE_CHUNK; lp++)
        for (let tp = 0; tp < DECODE_CHUNK; tp++)
          for (let ip = 0; ip < perLane; ip++)
            vr[w][lp][tp][ip] = vCache[min(start + tp, len - 1)][kvh][min(lp * perLane + ip, d - 1)];
      for (let t = 0; t < DECODE_CHUNK; t++) {
        const pos = min(start + t, len - 1);
        let dot = f32(0);
        for (let i = 0; i < d; i++) dot += f32(q[h][i]) * f32(kCache[pos][kvh][i]);
        p[w][t] = select(start + t < end, dot * scale, f32(-Infinity));
      }
      let mc = f32(-Infinity);
      for (let t1 = 0; t1 < DECODE_CHUNK; t1++) mc = max(mc, p[w][t1]);
      const mNew = max(m, mc);
      // Nothing seen yet (all -inf): keep the (zero) state as it is.
      const alpha = select(mNew == f32(-Infinity), f32(1), exp(m - mNew));
      for (let t2 = 0; t2 < DECODE_CHUNK; t2++)
        p[w][t2] = select(start + t2 < end, exp(p[w][t2] - mNew), f32(0));
      let sc = f32(0);
      for (let t3 = 0; t3 < DECODE_CHUNK; t3++) sc += p[w][t3];
      l = l * alpha + sc;
      m = mNew;
      for (let lv = 0; lv < DECODE_CHUNK; lv++) {
        for (let iv = 0; iv < perLane; iv++) {
          let a = acc[w][lv][iv] * alpha;
          for (let tv = 0; tv < DECODE_CHUNK; tv++) a += p[w][tv] * f32(vr[w][lv][tv][iv]);
          acc[w][lv][iv] = a;
        }
      }
    }
    wm[w] = m;
    wl[w] = l;
    for (let ls = 0; ls < DECODE_CHUNK; ls++)
      for (let is = 0; is < perLane; is++) wacc[w][ls * perLane + is] = acc[w][ls][is];
  }
  // The warps' states combined: weights e^(m_w - M), warps that saw nothing weigh 0.
  let mAll = f32(-Infinity);
  for (let w1 = 0; w1 < SPLIT_WARPS; w1++) mAll = max(mAll, wm[w1]);
  let den = f32(0);
  for (let w2 = 0; w2 < SPLIT_WARPS; w2++)
    den += select(wm[w2] == f32(-Infinity), f32(0), exp(wm[w2] - mAll)) * wl[w2];
  partMax[h][s] = mAll;
  partSum[h][s] = den;
  for (let i = 0; i < d; i++) {
    let num = f32(0);
    for (let w3 = 0; w3 < SPLIT_WARPS; w3++)
      num += select(wm[w3] == f32(-Infinity), f32(0), exp(wm[w3] - mAll)) * wacc[w3][i];
    partAcc[h][s][i] = num;
  }
}

/** partAcc, partMax, partSum as attentionDecodeSplit wrote them; out f16 [H, D]. */
export const attentionDecodeCombine = kernel(function attentionDecodeCombine(
  partAcc: Tensor<f32, [Sym<"h">, Sym<"splits">, Sym<"d">]>,
  partMax: Tensor<f32, [Sym<"h">, Sym<"splits">]>,
  partSum: Tensor<f32, [Sym<"h">, Sym<"splits">]>,
  out: Tensor<f16, [Sym<"h">, Sym<"d">]>,
) {
  for (let h = 0; h < out.shape[0]; h++)
    for (let i = 0; i < out.shape[1]; i++) combineSplits(partAcc, partMax, partSum, out, h, i);
});

/** out[h][i] from the splits' partial results (attentionDecodeCombine). */
function combineSplits(
  partAcc: Tensor<f32, readonly [number, number, number]>,
  partMax: Tensor<f32, readonly [number, number]>,
  partSum: Tensor<f32, readonly [number, number]>,
  out: Tensor<f16, readonly [number, number]>,
  h: i32,
  i: i32,
) {
  let m = f32(-Infinity);
  for (let c = 0; c < partMax.shape[1]; c++) m = max(m, partMax[h][c]);
  let num = f32(0);
  let den = f32(0);
  for (let c1 = 0; c1 < partMax.shape[1]; c1++) {
    // Splits with no positions (m = -inf) weigh 0; the first split always has some.
    const e = select(partMax[h][c1] == f32(-Infinity), f32(0), exp(partMax[h][c1] - m));
    num += e * partAcc[h][c1][i];
    den += e * partSum[h][c1];
  }
  out[h][i] = f16(num / den);
}
