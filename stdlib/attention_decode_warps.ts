/**
 * Decode attention in one launch: a block per query head, its DECODE_WARPS warps taking chunks of
 * 32 positions in turn (warp w: chunks w, w + DECODE_WARPS, ...), each keeping a running softmax
 * (max m, sum l, and the weighted sum of values, online as in flash attention), the warps' states
 * combined at the end through shared memory. attentionDecodeChunks + attentionDecodeCombine cost
 * two launches and two dependent round trips to memory for a few megabytes at short contexts;
 * here every warp's loads are in flight at once and the combination stays on chip.
 *
 * In a chunk a lane is a position: its score q . k / sqrt(D) in f32, the chunk's max and sum by
 * reductions over the lanes (warp shuffles on a GPU). For the values a lane owns D / 32 consecutive
 * channels. Positions past len read position len - 1 and weigh exactly 0, so every loop has a
 * bound that depends on len only (the same for all threads) and nothing is read out of bounds.
 * Arithmetic is attentionDecode's regrouped (results agree to f32 rounding, output rounded to f16
 * once). The head dimension must be a multiple of 32 and at most 32 * LANE_CHANNELS.
 */
import {
  kernel,
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

/** Warps per block (one block per query head). */
export const DECODE_WARPS = 8;
/**
 * Warps per block, per target: DECODE_WARPS for all (the shared state buffers take it as a
 * constant; a target wanting another compiles the kernel with another).
 */
export const attentionDecodeWarpsParams = {
  sm_90: { warps: DECODE_WARPS },
  gfx1100: { warps: DECODE_WARPS },
  vulkan: { warps: DECODE_WARPS },
} as const;

/** Positions per chunk: one per lane. */
const CHUNK = 32;
/** Channels a lane may own: head dimensions up to 32 * 8 = 256. */
const LANE_CHANNELS = 8;

/** q f16 [H, D]; kCache, vCache f16 [maxLen, kvH, D]; len i32 (1 <= len <= maxLen); out f16 [H, D]. */
export const attentionDecodeWarps = kernel(function attentionDecodeWarps(
  q: Tensor<f16, [Sym<"h">, Sym<"d">]>,
  kCache: Tensor<f16, [Sym<"ctx">, Sym<"kvh">, Sym<"d">]>,
  vCache: Tensor<f16, [Sym<"ctx">, Sym<"kvh">, Sym<"d">]>,
  len: i32,
  out: Tensor<f16, [Sym<"h">, Sym<"d">]>,
) {
  const d = q.shape[1];
  const perLane = idiv(d, CHUNK);
  const group = idiv(q.shape[0], kCache.shape[1]);
  const scale = rsqrt(f32(d));
  // Rounds of DECODE_WARPS chunks that cover len positions: the same for every thread.
  const rounds = idiv(idiv(len + CHUNK - 1, CHUNK) + DECODE_WARPS - 1, DECODE_WARPS);
  for (let h = 0; h < q.shape[0]; h++) {
    const kvh = idiv(h, group);
    const p = shared("f32", [DECODE_WARPS, CHUNK]);
    const wm = shared("f32", [DECODE_WARPS]);
    const wl = shared("f32", [DECODE_WARPS]);
    const wacc = shared("f32", [DECODE_WARPS, CHUNK * LANE_CHANNELS]);
    for (let w = 0; w < DECODE_WARPS; w++) {
      const acc = local("f32", [DECODE_WARPS, CHUNK, LANE_CHANNELS]);
      for (let lz = 0; lz < CHUNK; lz++) for (let iz = 0; iz < perLane; iz++) acc[w][lz][iz] = f32(0);
      let m = f32(-Infinity);
      let l = f32(0);
      for (let r = 0; r < rounds; r++) {
        const start = (r * DECODE_WARPS + w) * CHUNK;
        // The chunk's values, loaded before the scores that weigh them: both round trips at once.
        const vr = local("f16", [DECODE_WARPS, CHUNK, CHUNK, LANE_CHANNELS]);
        for (let lp = 0; lp < CHUNK; lp++)
          for (let tp = 0; tp < CHUNK; tp++)
            for (let ip = 0; ip < perLane; ip++)
              vr[w][lp][tp][ip] = vCache[min(start + tp, len - 1)][kvh][lp * perLane + ip];
        for (let t = 0; t < CHUNK; t++) {
          const pos = min(start + t, len - 1);
          let dot = f32(0);
          for (let i = 0; i < d; i++) dot += f32(q[h][i]) * f32(kCache[pos][kvh][i]);
          p[w][t] = select(start + t < len, dot * scale, f32(-Infinity));
        }
        let mc = f32(-Infinity);
        for (let t1 = 0; t1 < CHUNK; t1++) mc = max(mc, p[w][t1]);
        const mNew = max(m, mc);
        // Nothing seen yet (all -inf): keep the (zero) state as it is.
        const alpha = select(mNew == f32(-Infinity), f32(1), exp(m - mNew));
        for (let t2 = 0; t2 < CHUNK; t2++) p[w][t2] = select(start + t2 < len, exp(p[w][t2] - mNew), f32(0));
        let sc = f32(0);
        for (let t3 = 0; t3 < CHUNK; t3++) sc += p[w][t3];
        l = l * alpha + sc;
        m = mNew;
        for (let lv = 0; lv < CHUNK; lv++) {
          for (let iv = 0; iv < perLane; iv++) {
            let a = acc[w][lv][iv] * alpha;
            for (let tv = 0; tv < CHUNK; tv++) a += p[w][tv] * f32(vr[w][lv][tv][iv]);
            acc[w][lv][iv] = a;
          }
        }
      }
      wm[w] = m;
      wl[w] = l;
      for (let ls = 0; ls < CHUNK; ls++)
        for (let is = 0; is < perLane; is++) wacc[w][ls * perLane + is] = acc[w][ls][is];
    }
    // The warps' states combined: weights e^(m_w - M), warps that saw nothing weigh 0.
    for (let i = 0; i < d; i++) {
      let mAll = f32(-Infinity);
      for (let w1 = 0; w1 < DECODE_WARPS; w1++) mAll = max(mAll, wm[w1]);
      let num = f32(0);
      let den = f32(0);
      for (let w2 = 0; w2 < DECODE_WARPS; w2++) {
        const e = select(wm[w2] == f32(-Infinity), f32(0), exp(wm[w2] - mAll));
        num += e * wacc[w2][i];
        den += e * wl[w2];
      }
      out[h][i] = f16(num / den);
    }
  }
});
