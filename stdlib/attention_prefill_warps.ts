/**
 * Causal prefill attention by chunks: a block per head and PREFILL_ROWS consecutive query rows, a
 * warp per row, each warp walking the positions in chunks of 32 with an online softmax (as
 * attentionDecodeWarps does for one row). A lane is a position for the scores (a whole dot product
 * each, no reduction per position) and owns D / 32 channels for the values; the chunk's max and
 * sum are reductions over the lanes. attentionPrefill gives every (row, head) its own warp and
 * walks the positions one at a time, a warp reduction per position, each row reading its keys and
 * values from L2 on its own; here the block's rows read the same chunk together, so L1 serves
 * most of them.
 *
 * Rows past N repeat the last row (not stored); positions past a row's own length read its last
 * position and weigh exactly 0, so the loop over chunks has one bound for the whole block (its
 * last row's) and every read stays in bounds. Arithmetic is attentionPrefill's regrouped by chunk
 * (results agree to f32 rounding, each output rounded to f16 once). The head dimension must be a
 * multiple of 32 and at most 256.
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

/** Query rows (warps) per block. */
export const PREFILL_ROWS = 8;
/** Positions per chunk: one per lane. */
const CHUNK = 32;
/** Channels a lane may own: head dimensions up to 32 * 8 = 256. */
const LANE_CHANNELS = 8;

/** Rows per block, per target (the shared buffers take PREFILL_ROWS as a constant). */
export const attentionPrefillWarpsParams = {
  sm_90: { rows: PREFILL_ROWS },
  gfx1100: { rows: PREFILL_ROWS },
  vulkan: { rows: PREFILL_ROWS },
} as const;

/**
 * N query tokens at positions start..start+N-1, each attending to positions 0..its own (their keys
 * and values appended to the cache first). q, out f16 [N, H, D]; kCache, vCache f16 [maxLen, kvH, D].
 */
export const attentionPrefillWarps = kernel(function attentionPrefillWarps(
  q: Tensor<f16, [Sym<"n">, Sym<"h">, Sym<"d">]>,
  kCache: Tensor<f16, [Sym<"ctx">, Sym<"kvh">, Sym<"d">]>,
  vCache: Tensor<f16, [Sym<"ctx">, Sym<"kvh">, Sym<"d">]>,
  start: i32,
  out: Tensor<f16, [Sym<"n">, Sym<"h">, Sym<"d">]>,
) {
  const N = q.shape[0];
  const d = q.shape[2];
  const perLane = idiv(d, CHUNK);
  const group = idiv(q.shape[1], kCache.shape[1]);
  const scale = rsqrt(f32(d));
  for (let nb = 0; nb < idiv(N + PREFILL_ROWS - 1, PREFILL_ROWS); nb++) {
    for (let h = 0; h < q.shape[1]; h++) {
      const kvh = idiv(h, group);
      // Chunks up to the block's last row: the same for every thread of the block.
      const rounds = idiv(start + min(nb * PREFILL_ROWS + PREFILL_ROWS, N) + CHUNK - 1, CHUNK);
      const p = shared("f32", [PREFILL_ROWS, CHUNK]);
      for (let w = 0; w < PREFILL_ROWS; w++) {
        const n = min(nb * PREFILL_ROWS + w, N - 1);
        const len = start + n + 1;
        const acc = local("f32", [PREFILL_ROWS, CHUNK, LANE_CHANNELS]);
        for (let lz = 0; lz < CHUNK; lz++) for (let iz = 0; iz < perLane; iz++) acc[w][lz][iz] = f32(0);
        let m = f32(-Infinity);
        let l = f32(0);
        for (let c = 0; c < rounds; c++) {
          const c0 = c * CHUNK;
          // The chunk's values, loaded before the scores that weigh them.
          const vr = local("f16", [PREFILL_ROWS, CHUNK, CHUNK, LANE_CHANNELS]);
          for (let lp = 0; lp < CHUNK; lp++)
            for (let tp = 0; tp < CHUNK; tp++)
              for (let ip = 0; ip < perLane; ip++)
                vr[w][lp][tp][ip] = vCache[min(c0 + tp, len - 1)][kvh][lp * perLane + ip];
          for (let t = 0; t < CHUNK; t++) {
            const pos = min(c0 + t, len - 1);
            let dot = f32(0);
            for (let i = 0; i < d; i++) dot += f32(q[n][h][i]) * f32(kCache[pos][kvh][i]);
            p[w][t] = select(c0 + t < len, dot * scale, f32(-Infinity));
          }
          let mc = f32(-Infinity);
          for (let t1 = 0; t1 < CHUNK; t1++) mc = max(mc, p[w][t1]);
          // Every row sees position 0 in its first chunk, so m is finite from then on.
          const mNew = max(m, mc);
          const alpha = exp(m - mNew);
          for (let t2 = 0; t2 < CHUNK; t2++) p[w][t2] = select(c0 + t2 < len, exp(p[w][t2] - mNew), f32(0));
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
        for (let lo = 0; lo < CHUNK; lo++)
          for (let io = 0; io < perLane; io++)
            if (nb * PREFILL_ROWS + w < N)
              out[nb * PREFILL_ROWS + w][h][lo * perLane + io] = f16(acc[w][lo][io] / l);
      }
    }
  }
});
