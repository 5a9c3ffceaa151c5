/**
 * Prefill GEMMs shaped for tensor cores (y = x W^T: x f16 [M, K], W [N, K] in q4f16_1 or f16,
 * y f16 [M, N]): the same values as q4Gemm / f16Gemm up to the grouping of f32 sums, with the loop
 * structure of a warp-level matrix-multiply-accumulate written out, so that a GPU schedule only
 * binds loops and calls `tensorize` (lower/schedule/tensorize.ts) on the 16 x 8 x 16 nest.
 *
 * A block computes a MMA_BM x MMA_BN tile of y with MMA_WARPS warps of 32 lanes (2 x 2), each warp
 * a 64 x 32 tile as 4 x 4 tiles of 16 x 8 outputs. In each 16 x 8 tile a lane holds four outputs,
 * field r at row (lane >> 2) + 8 (r >> 1) and column 2 (lane & 3) + (r & 1): the accumulator layout
 * of the PTX instruction mma.m16n8k16, so the tensorized nest needs no data movement between lanes.
 * Per step of K (MMA_BK = 32, one q4 group), the block's x tile and weight tile are staged in
 * shared memory, which every lane of every warp reads.
 *
 * On the CPU, without a schedule, the nest is plain sequential arithmetic; every access stays in
 * bounds (rows past M or N read the last row and their outputs are not stored; K past the end of
 * an f16 weight reads zeros).
 *
 * q4f16_1 arithmetic: the weight tile holds the codes q - 7 as f16 (exact, -7..8); each group's
 * products x * (q - 7) (exact in f32) are summed in f32 and the sum scaled once by f32(scale), the
 * GEMVs' arithmetic (q4_common.ts). The weight is never rounded to f16.
 */
import { kernel, f16, f32, idiv, local, min, shared, type u32, type Tensor, type Sym } from "../dsl/index.ts";
import { Q4_GROUP, Q4_PER_WORD, Q4_WORDS_PER_GROUP, q4Code } from "./q4_common.ts";

/** Lanes per warp the layout assumes (NVIDIA). */
export const MMA_LANES = 32;
/** Warps per block: 2 along M by 2 along N. */
export const MMA_WARPS = 4;
/** 16 x 8 tiles per warp along M and along N. */
export const MMA_TILES_M = 4;
export const MMA_TILES_N = 4;
/** The block's tile of y. */
export const MMA_BM = 128;
export const MMA_BN = 64;
/** K per shared-memory stage. */
export const MMA_BK = 32;

/** y[m][n] = sum_g f32(scale[n][g]) * sum_{k in g} x[m][k] * (q[n][k] - 7), W in q4f16_1. */
export const q4GemmMma = kernel(function q4GemmMma(
  x: Tensor<f16, [Sym<"m">, Sym<"k">]>,
  packed: Tensor<u32, [Sym<"n">, Sym<"kw">]>,
  scales: Tensor<f16, [Sym<"n">, Sym<"kg">]>,
  y: Tensor<f16, [Sym<"m">, Sym<"n">]>,
) {
  const M = y.shape[0];
  const N = y.shape[1];
  for (let bm = 0; bm < idiv(M + MMA_BM - 1, MMA_BM); bm++) {
    for (let bn = 0; bn < idiv(N + MMA_BN - 1, MMA_BN); bn++) {
      const acc = local("f32", [MMA_WARPS, MMA_LANES, MMA_TILES_M, MMA_TILES_N, 4]);
      const part = local("f32", [MMA_WARPS, MMA_LANES, MMA_TILES_M, MMA_TILES_N, 4]);
      for (let wz = 0; wz < MMA_WARPS; wz++)
        for (let lz = 0; lz < MMA_LANES; lz++)
          for (let mz = 0; mz < MMA_TILES_M; mz++)
            for (let nz = 0; nz < MMA_TILES_N; nz++)
              for (let rz = 0; rz < 4; rz++) acc[wz][lz][mz][nz][rz] = f32(0);
      const xs = shared("f16", [MMA_BM, MMA_BK]);
      const ws = shared("f16", [MMA_BN, MMA_BK]);
      for (let g = 0; g < scales.shape[1]; g++) {
        for (let xr = 0; xr < MMA_BM; xr++)
          for (let xc = 0; xc < MMA_BK; xc++) xs[xr][xc] = x[min(bm * MMA_BM + xr, M - 1)][g * Q4_GROUP + xc];
        for (let wr = 0; wr < MMA_BN; wr++)
          for (let wd = 0; wd < Q4_WORDS_PER_GROUP; wd++)
            for (let wj = 0; wj < Q4_PER_WORD; wj++)
              ws[wr][wd * Q4_PER_WORD + wj] = f16(
                q4Code(packed[min(bn * MMA_BN + wr, N - 1)][g * Q4_WORDS_PER_GROUP + wd], wj),
              );
        for (let wp = 0; wp < MMA_WARPS; wp++) {
          for (let lane = 0; lane < MMA_LANES; lane++) {
            for (let mp = 0; mp < MMA_TILES_M; mp++)
              for (let np = 0; np < MMA_TILES_N; np++)
                for (let rp = 0; rp < 4; rp++) part[wp][lane][mp][np][rp] = f32(0);
            for (let kt = 0; kt < MMA_BK / 16; kt++) {
              for (let mt = 0; mt < MMA_TILES_M; mt++) {
                for (let nt = 0; nt < MMA_TILES_N; nt++) {
                  for (let r = 0; r < 4; r++) {
                    for (let kk = 0; kk < 16; kk++) {
                      part[wp][lane][mt][nt][r] +=
                        f32(xs[idiv(wp, 2) * 64 + mt * 16 + (lane >> 2) + 8 * (r >> 1)][kt * 16 + kk]) *
                        f32(ws[(wp % 2) * 32 + nt * 8 + (lane & 3) * 2 + (r & 1)][kt * 16 + kk]);
                    }
                  }
                }
              }
            }
            for (let me = 0; me < MMA_TILES_M; me++)
              for (let ne = 0; ne < MMA_TILES_N; ne++)
                for (let re = 0; re < 4; re++) {
                  const col = min(bn * MMA_BN + (wp % 2) * 32 + ne * 8 + (lane & 3) * 2 + (re & 1), N - 1);
                  acc[wp][lane][me][ne][re] += part[wp][lane][me][ne][re] * f32(scales[col][g]);
                }
          }
        }
      }
      for (let wy = 0; wy < MMA_WARPS; wy++)
        for (let ly = 0; ly < MMA_LANES; ly++)
          for (let my = 0; my < MMA_TILES_M; my++)
            for (let ny = 0; ny < MMA_TILES_N; ny++)
              for (let ry = 0; ry < 4; ry++) {
                const row = bm * MMA_BM + idiv(wy, 2) * 64 + my * 16 + (ly >> 2) + 8 * (ry >> 1);
                const col = bn * MMA_BN + (wy % 2) * 32 + ny * 8 + (ly & 3) * 2 + (ry & 1);
                if (row < M && col < N) y[row][col] = f16(acc[wy][ly][my][ny][ry]);
              }
    }
  }
});

/** y[m][n] = sum_k x[m][k] * w[n][k]: x f16 [M, K], w f16 [N, K], y f16 [M, N] (f32 sums). */
export const f16GemmMma = kernel(function f16GemmMma(
  x: Tensor<f16, [Sym<"m">, Sym<"k">]>,
  w: Tensor<f16, [Sym<"n">, Sym<"k">]>,
  y: Tensor<f16, [Sym<"m">, Sym<"n">]>,
) {
  const M = x.shape[0];
  const N = w.shape[0];
  const K = w.shape[1];
  for (let bm = 0; bm < idiv(M + MMA_BM - 1, MMA_BM); bm++) {
    for (let bn = 0; bn < idiv(N + MMA_BN - 1, MMA_BN); bn++) {
      const acc = local("f32", [MMA_WARPS, MMA_LANES, MMA_TILES_M, MMA_TILES_N, 4]);
      for (let wz = 0; wz < MMA_WARPS; wz++)
        for (let lz = 0; lz < MMA_LANES; lz++)
          for (let mz = 0; mz < MMA_TILES_M; mz++)
            for (let nz = 0; nz < MMA_TILES_N; nz++)
              for (let rz = 0; rz < 4; rz++) acc[wz][lz][mz][nz][rz] = f32(0);
      const xs = shared("f16", [MMA_BM, MMA_BK]);
      const ws = shared("f16", [MMA_BN, MMA_BK]);
      for (let ks = 0; ks < idiv(K + MMA_BK - 1, MMA_BK); ks++) {
        for (let xr = 0; xr < MMA_BM; xr++)
          for (let xc = 0; xc < MMA_BK; xc++) {
            const k = ks * MMA_BK + xc;
            xs[xr][xc] = k < K ? x[min(bm * MMA_BM + xr, M - 1)][min(k, K - 1)] : f16(0);
          }
        for (let wr = 0; wr < MMA_BN; wr++)
          for (let wc = 0; wc < MMA_BK; wc++) {
            const k = ks * MMA_BK + wc;
            ws[wr][wc] = k < K ? w[min(bn * MMA_BN + wr, N - 1)][min(k, K - 1)] : f16(0);
          }
        for (let wp = 0; wp < MMA_WARPS; wp++) {
          for (let lane = 0; lane < MMA_LANES; lane++) {
            for (let kt = 0; kt < MMA_BK / 16; kt++) {
              for (let mt = 0; mt < MMA_TILES_M; mt++) {
                for (let nt = 0; nt < MMA_TILES_N; nt++) {
                  for (let r = 0; r < 4; r++) {
                    for (let kk = 0; kk < 16; kk++) {
                      acc[wp][lane][mt][nt][r] +=
                        f32(xs[idiv(wp, 2) * 64 + mt * 16 + (lane >> 2) + 8 * (r >> 1)][kt * 16 + kk]) *
                        f32(ws[(wp % 2) * 32 + nt * 8 + (lane & 3) * 2 + (r & 1)][kt * 16 + kk]);
                    }
                  }
                }
              }
            }
          }
        }
      }
      for (let wy = 0; wy < MMA_WARPS; wy++)
        for (let ly = 0; ly < MMA_LANES; ly++)
          for (let my = 0; my < MMA_TILES_M; my++)
            for (let ny = 0; ny < MMA_TILES_N; ny++)
              for (let ry = 0; ry < 4; ry++) {
                const row = bm * MMA_BM + idiv(wy, 2) * 64 + my * 16 + (ly >> 2) + 8 * (ry >> 1);
                const col = bn * MMA_BN + (wy % 2) * 32 + ny * 8 + (ly & 3) * 2 + (ry & 1);
                if (row < M && col < N) y[row][col] = f16(acc[wy][ly][my][ny][ry]);
              }
    }
  }
});
