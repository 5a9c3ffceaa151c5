/**
 * GEMM-friendly variants of q4Gemm (q4_gemv.ts) and f16Gemm (f16_gemv.ts) for the GPU schedules
 * of stdlib/gpu/gemm.ts: the same values, bit for bit, with a loop structure a schedule can tile.
 *
 * Why variants: q4Gemm and f16Gemm keep one scalar accumulator per output, allocated inside the
 * output loops (`let acc = f32(0)` per (m, n)), so the reduction over K sits inside every output
 * loop and no schedule primitive can move the K loop outside a register tile of outputs (reorder
 * needs a perfect nest; there is no loop fission). Here each output loop iteration owns a
 * RM x RN tile of outputs (`acc = local(f32, [RM, RN])`), the K loops enclose the tile loops, and
 * a schedule only has to spread the tiles over threads and blocks and stage K tiles of x and of
 * the weights in shared memory (cacheRead + computeAt + cooperative copies).
 *
 * Same values: every output is the f32 sum, in increasing k, of the same products as the original
 * (f32(x) * q4Value(word, r, f32(scale)) for q4, f32(x) * f32(w) for f16), rounded to f16 once.
 * In the last tiles, rows and columns past M or N load the tile's first row or column instead
 * (which exists: a tile starts inside the tensor), so every load stays in bounds without a branch;
 * their accumulators are never stored.
 */
import { kernel, f16, f32, idiv, local, type u32, type Tensor, type Sym } from "../dsl/index.ts";
import { Q4_GROUP, Q4_PER_WORD, Q4_WORDS_PER_GROUP, q4Value } from "./q4_common.ts";

/** Outputs per register tile: rows of x (RM) by rows of the weight (RN). */
export const GEMM_TILE_M = 4;
export const GEMM_TILE_N = 4;

/** q4Gemm: y[m][n] = sum_k x[m][k] * W[n][k], W in q4f16_1 (packed u32 [N, K/8], f16 scales [N, K/32]). */
export const q4GemmTiled = kernel(function q4GemmTiled(
  x: Tensor<f16, [Sym<"m">, Sym<"k">]>,
  packed: Tensor<u32, [Sym<"n">, Sym<"kw">]>,
  scales: Tensor<f16, [Sym<"n">, Sym<"kg">]>,
  y: Tensor<f16, [Sym<"m">, Sym<"n">]>,
) {
  const M = y.shape[0];
  const N = y.shape[1];
  for (let mo = 0; mo < idiv(M + GEMM_TILE_M - 1, GEMM_TILE_M); mo++) {
    for (let no = 0; no < idiv(N + GEMM_TILE_N - 1, GEMM_TILE_N); no++) {
      const acc = local("f32", [GEMM_TILE_M, GEMM_TILE_N]);
      for (let mz = 0; mz < GEMM_TILE_M; mz++) for (let nz = 0; nz < GEMM_TILE_N; nz++) acc[mz][nz] = f32(0);
      for (let g = 0; g < scales.shape[1]; g++) {
        for (let w = 0; w < Q4_WORDS_PER_GROUP; w++) {
          for (let r = 0; r < Q4_PER_WORD; r++) {
            // The tile's operands for this k, each loaded (and dequantized) once.
            const xq = local("f32", [GEMM_TILE_M]);
            const wq = local("f32", [GEMM_TILE_N]);
            for (let mq = 0; mq < GEMM_TILE_M; mq++) {
              const row = mo * GEMM_TILE_M + mq < M ? mo * GEMM_TILE_M + mq : mo * GEMM_TILE_M;
              xq[mq] = f32(x[row][g * Q4_GROUP + w * Q4_PER_WORD + r]);
            }
            for (let nq = 0; nq < GEMM_TILE_N; nq++) {
              const col = no * GEMM_TILE_N + nq < N ? no * GEMM_TILE_N + nq : no * GEMM_TILE_N;
              wq[nq] = q4Value(packed[col][g * Q4_WORDS_PER_GROUP + w], r, f32(scales[col][g]));
            }
            for (let ni = 0; ni < GEMM_TILE_N; ni++) {
              for (let mi = 0; mi < GEMM_TILE_M; mi++) acc[mi][ni] += xq[mi] * wq[ni];
            }
          }
        }
      }
      for (let my = 0; my < GEMM_TILE_M; my++) {
        for (let ny = 0; ny < GEMM_TILE_N; ny++) {
          if (mo * GEMM_TILE_M + my < M && no * GEMM_TILE_N + ny < N) {
            y[mo * GEMM_TILE_M + my][no * GEMM_TILE_N + ny] = f16(acc[my][ny]);
          }
        }
      }
    }
  }
});

/** f16Gemm: y[m][n] = sum_k x[m][k] * w[n][k]: x f16 [M, K], w f16 [N, K], y f16 [M, N]. */
export const f16GemmTiled = kernel(function f16GemmTiled(
  x: Tensor<f16, [Sym<"m">, Sym<"k">]>,
  w: Tensor<f16, [Sym<"n">, Sym<"k">]>,
  y: Tensor<f16, [Sym<"m">, Sym<"n">]>,
) {
  const M = x.shape[0];
  const N = w.shape[0];
  for (let mo = 0; mo < idiv(M + GEMM_TILE_M - 1, GEMM_TILE_M); mo++) {
    for (let no = 0; no < idiv(N + GEMM_TILE_N - 1, GEMM_TILE_N); no++) {
      const acc = local("f32", [GEMM_TILE_M, GEMM_TILE_N]);
      for (let mz = 0; mz < GEMM_TILE_M; mz++) for (let nz = 0; nz < GEMM_TILE_N; nz++) acc[mz][nz] = f32(0);
      for (let k = 0; k < w.shape[1]; k++) {
        const xq = local("f32", [GEMM_TILE_M]);
        const wq = local("f32", [GEMM_TILE_N]);
        for (let mq = 0; mq < GEMM_TILE_M; mq++) {
          const row = mo * GEMM_TILE_M + mq < M ? mo * GEMM_TILE_M + mq : mo * GEMM_TILE_M;
          xq[mq] = f32(x[row][k]);
        }
        for (let nq = 0; nq < GEMM_TILE_N; nq++) {
          const col = no * GEMM_TILE_N + nq < N ? no * GEMM_TILE_N + nq : no * GEMM_TILE_N;
          wq[nq] = f32(w[col][k]);
        }
        for (let ni = 0; ni < GEMM_TILE_N; ni++) {
          for (let mi = 0; mi < GEMM_TILE_M; mi++) acc[mi][ni] += xq[mi] * wq[ni];
        }
      }
      for (let my = 0; my < GEMM_TILE_M; my++) {
        for (let ny = 0; ny < GEMM_TILE_N; ny++) {
          if (mo * GEMM_TILE_M + my < M && no * GEMM_TILE_N + ny < N) {
            y[mo * GEMM_TILE_M + my][no * GEMM_TILE_N + ny] = f16(acc[my][ny]);
          }
        }
      }
    }
  }
});

/** Threads per block along M and N and the K tile (the schedule applying them: stdlib/gpu/gemm.ts). */
export const q4GemmTiledParams = {
  sm_90: { threadsM: 16, threadsN: 16, kTile: 32 },
  gfx1100: { threadsM: 16, threadsN: 16, kTile: 32 },
  vulkan: { threadsM: 16, threadsN: 8, kTile: 16 },
} as const;
export const f16GemmTiledParams = q4GemmTiledParams;
