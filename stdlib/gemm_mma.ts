/**
 * Prefill GEMMs shaped for tensor cores (y = x W^T: x f16 [M, K], W [N, K] in q4f16_1 or f16,
 * y f16 [M, N]): the same values as q4Gemm / f16Gemm up to the grouping of f32 sums, with the loop
 * structure of a warp-level matrix-multiply-accumulate written out, so that a GPU schedule only
 * binds loops and calls `tensorize` (lower/schedule/tensorize.ts) on the 16 x 8 x 16 nest.
 *
 * A block computes a MMA_BM x MMA_BN (128 x 64) tile of y: q4GemmMma with four warps of 32 lanes
 * (2 x 2), each a 64 x 32 tile as 4 x 4 tiles of 16 x 8 outputs; f16GemmMma with eight (4 x 2),
 * each 32 x 32 as 2 x 4 tiles. In each 16 x 8 tile a lane holds four outputs,
 * field r at row (lane >> 2) + 8 (r >> 1) and column 2 (lane & 3) + (r & 1): the accumulator layout
 * of the PTX instruction mma.m16n8k16, so the tensorized nest needs no data movement between lanes.
 * Per step of K (MMA_BK = 32, one q4 group), the block's x tile (and f16GemmMma's weight tile)
 * is staged in shared memory, which every lane of every warp reads; q4GemmMma's weights go from
 * global memory to registers.
 *
 * On the CPU, without a schedule, the nest is plain sequential arithmetic; every access stays in
 * bounds (rows past M or N read the last row and their outputs are not stored; K past the end of
 * an f16 weight reads zeros).
 *
 * q4f16_1 arithmetic: the weight tile holds the codes q - 7 as f16 (exact, -7..8); each group's
 * products x * (q - 7) (exact in f32) are summed in f32 and the sum scaled once by f32(scale), the
 * GEMVs' arithmetic (q4_common.ts). The weight is never rounded to f16.
 */
import {
  kernel,
  f16,
  f32,
  idiv,
  local,
  min,
  shared,
  unpackF16x2,
  type i32,
  type u32,
  type Tensor,
  type Sym,
} from "../dsl/index.ts";
import * as L from "./mma_layout.ts";
import { Q4_GROUP, Q4_WORDS_PER_GROUP, q4PairF16x2Lane } from "./q4_common.ts";

/** Lanes per warp the layout assumes (NVIDIA). */
export const MMA_LANES = 32;
/** 16 x 8 tiles per warp along M and along N. */
export const MMA_TILES_M = 4;
export const MMA_TILES_N = 4;
/** The block's tile of y. */
export const MMA_BM = 128;
export const MMA_BN = 64;
/** A warp's tile of y, and the warps along N and in all. */
const MMA_WARP_M = MMA_TILES_M * 16;
const MMA_WARP_N = MMA_TILES_N * 8;
const MMA_WARPS_N = MMA_BN / MMA_WARP_N;
export const MMA_WARPS = (MMA_BM / MMA_WARP_M) * MMA_WARPS_N;
/** K per shared-memory stage. */
export const MMA_BK = 32;

/** Threads per block. */
const MMA_THREADS = MMA_WARPS * MMA_LANES;
/** 16-byte chunks (8 halves) of the x tile each thread copies per K step (q4GemmMma). */
const X_CHUNKS = (MMA_BM * MMA_BK) / 8 / MMA_THREADS;

/**
 * y[m][n] = sum_g f32(scale[n][g]) * sum_{k in g} x[m][k] * (q[n][k] - 7), W in q4f16_1.
 *
 * The weights never pass through shared memory: lane (g, t) of a warp loads, for each of its
 * 16 x 8 tiles along N, the four words of weight row g of the tile in the K step's group, and
 * turns codes t and t + 4 of a word into one f16 pair (q4PairF16x2Lane: a shift, a LOP3 and an
 * HADD2), which is exactly a B register of mma.m16n8k16 once the 16 k-slots of each half-group
 * are ordered (0, 4, 1, 5, 2, 6, 3, 7) within each 8: slot s holds element (s >> 1) + 4 (s & 1).
 * x's tile is stored in shared memory in that order, so A and B agree and the products are those
 * of the plain order. (Shared memory was the bound with both tiles there: Nsight Compute on an
 * H200 measured the L1/shared pipe 82% busy at 18% of PyTorch's f16 matmul.)
 *
 * Software-pipelined: each thread's share of the next K step (X_CHUNKS chunks of x, its tiles'
 * weight words, its lanes' scales) is loaded into registers before the products of this step;
 * x goes to shared memory and the words become B registers after them, so the global loads'
 * latency hides behind the tensor-core work. The copies name their thread (warp, lane)
 * explicitly: chunk c = s * threads + warp * 32 + lane is row xChunkRow(c), eight halves at
 * column (c & 3) * 8.
 */
export const q4GemmMma = kernel(function q4GemmMma(
  x: Tensor<f16, [Sym<"m">, Sym<"k">]>,
  packed: Tensor<u32, [Sym<"n">, Sym<"kw">]>,
  scales: Tensor<f16, [Sym<"n">, Sym<"kg">]>,
  y: Tensor<f16, [Sym<"m">, Sym<"n">]>,
) {
  const M = y.shape[0];
  const N = y.shape[1];
  const KG = scales.shape[1];
  for (let bm = 0; bm < idiv(M + MMA_BM - 1, MMA_BM); bm++) {
    for (let bn = 0; bn < idiv(N + MMA_BN - 1, MMA_BN); bn++) {
      const acc = local("f32", [MMA_WARPS, MMA_LANES, MMA_TILES_M, MMA_TILES_N, 4]);
      const part = local("f32", [MMA_WARPS, MMA_LANES, MMA_TILES_M, MMA_TILES_N, 4]);
      // The next step's x chunks, weight words and scales, in registers.
      const xr = local("f16", [MMA_WARPS, MMA_LANES, X_CHUNKS, 8]);
      const wr = local("u32", [MMA_WARPS, MMA_LANES, MMA_TILES_N, Q4_WORDS_PER_GROUP]);
      const sc = local("f32", [MMA_WARPS, MMA_LANES, MMA_TILES_N, 2]);
      const scn = local("f32", [MMA_WARPS, MMA_LANES, MMA_TILES_N, 2]);
      // This step's B registers: per tile along N and half-group, lane, register.
      const bf = local("u32", [MMA_WARPS, MMA_TILES_N, MMA_BK / 16, MMA_LANES, 2]);
      const xs = shared("f16", [MMA_BM, MMA_BK]);
      for (let wz = 0; wz < MMA_WARPS; wz++)
        for (let lz = 0; lz < MMA_LANES; lz++)
          for (let mz = 0; mz < MMA_TILES_M; mz++)
            for (let nz = 0; nz < MMA_TILES_N; nz++)
              for (let rz = 0; rz < 4; rz++) acc[wz][lz][mz][nz][rz] = f32(0);
      // Step 0 into registers.
      for (let wa = 0; wa < MMA_WARPS; wa++) {
        for (let la = 0; la < MMA_LANES; la++) {
          for (let sa = 0; sa < X_CHUNKS; sa++) {
            for (let va = 0; va < 8; va++) {
              const c = sa * MMA_THREADS + wa * MMA_LANES + la;
              xr[wa][la][sa][va] = x[min(bm * MMA_BM + xChunkRow(c), M - 1)][(c & 3) * 8 + va];
            }
          }
          for (let sb = 0; sb < MMA_TILES_N; sb++)
            for (let vb = 0; vb < Q4_WORDS_PER_GROUP; vb++)
              wr[wa][la][sb][vb] = packed[min(weightRow(bn, wa, sb, la), N - 1)][vb];
          for (let na = 0; na < MMA_TILES_N; na++)
            for (let ja = 0; ja < 2; ja++)
              sc[wa][la][na][ja] = f32(scales[min(outputColumn(bn, wa, na, la, ja), N - 1)][0]);
        }
      }
      for (let g = 0; g < KG; g++) {
        // This step's x to shared memory, each 8 halves in the B registers' k order, and its
        // weight words to B registers.
        for (let wc = 0; wc < MMA_WARPS; wc++) {
          for (let lc = 0; lc < MMA_LANES; lc++) {
            for (let sx = 0; sx < X_CHUNKS; sx++) {
              for (let vx = 0; vx < 8; vx++) {
                const c = sx * MMA_THREADS + wc * MMA_LANES + lc;
                xs[xChunkRow(c)][(c & 3) * 8 + vx] = xr[wc][lc][sx][(vx >> 1) + 4 * (vx & 1)];
              }
            }
            for (let nw = 0; nw < MMA_TILES_N; nw++)
              for (let hw = 0; hw < MMA_BK / 16; hw++)
                for (let jw = 0; jw < 2; jw++)
                  bf[wc][nw][hw][lc][jw] = q4PairF16x2Lane(wr[wc][lc][nw][2 * hw + jw], lc & 3);
          }
        }
        // The next step's loads, issued before this step's products (the last step reloads itself).
        const gn = min(g + 1, KG - 1);
        for (let wf = 0; wf < MMA_WARPS; wf++) {
          for (let lf = 0; lf < MMA_LANES; lf++) {
            for (let sf = 0; sf < X_CHUNKS; sf++) {
              for (let vf = 0; vf < 8; vf++) {
                const c = sf * MMA_THREADS + wf * MMA_LANES + lf;
                xr[wf][lf][sf][vf] =
                  x[min(bm * MMA_BM + xChunkRow(c), M - 1)][gn * Q4_GROUP + (c & 3) * 8 + vf];
              }
            }
            for (let sg = 0; sg < MMA_TILES_N; sg++)
              for (let vg = 0; vg < Q4_WORDS_PER_GROUP; vg++)
                wr[wf][lf][sg][vg] =
                  packed[min(weightRow(bn, wf, sg, lf), N - 1)][gn * Q4_WORDS_PER_GROUP + vg];
            for (let nf = 0; nf < MMA_TILES_N; nf++)
              for (let jf = 0; jf < 2; jf++)
                scn[wf][lf][nf][jf] = f32(scales[min(outputColumn(bn, wf, nf, lf, jf), N - 1)][gn]);
          }
        }
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
                        f32(
                          xs[idiv(wp, MMA_WARPS_N) * MMA_WARP_M + mt * 16 + (lane >> 2) + 8 * (r >> 1)][
                            kt * 16 + kk
                          ],
                        ) *
                        f32(
                          unpackF16x2(
                            bf[wp][nt][kt][L.mmaBLane(L.mmaCCol(lane, r), kk)][L.mmaBReg(kk)],
                            kk & 1,
                          ),
                        );
                    }
                  }
                }
              }
            }
            for (let me = 0; me < MMA_TILES_M; me++)
              for (let ne = 0; ne < MMA_TILES_N; ne++)
                for (let re = 0; re < 4; re++)
                  acc[wp][lane][me][ne][re] += part[wp][lane][me][ne][re] * sc[wp][lane][ne][re & 1];
            for (let ns = 0; ns < MMA_TILES_N; ns++)
              for (let js = 0; js < 2; js++) sc[wp][lane][ns][js] = scn[wp][lane][ns][js];
          }
        }
      }
      for (let wy = 0; wy < MMA_WARPS; wy++)
        for (let ly = 0; ly < MMA_LANES; ly++)
          for (let my = 0; my < MMA_TILES_M; my++)
            for (let ny = 0; ny < MMA_TILES_N; ny++)
              for (let ry = 0; ry < 4; ry++) {
                const row =
                  bm * MMA_BM + idiv(wy, MMA_WARPS_N) * MMA_WARP_M + my * 16 + (ly >> 2) + 8 * (ry >> 1);
                const col = outputColumn(bn, wy, ny, ly, ry & 1);
                if (row < M && col < N) y[row][col] = f16(acc[wy][ly][my][ny][ry]);
              }
    }
  }
});

/**
 * The row of x's tile that chunk c (16 bytes, column c & 3) belongs to: a warp's 32 chunks are
 * rows 8 (c >> 5) .. + 7 whole (coalesced loads), and each 16-byte store phase (8 threads) writes
 * rows r and r + 4, 16 banks apart in the padded tile (rows r and r + 1, as c >> 2 gave, share
 * four banks: Nsight Compute counted a quarter of the shared wavefronts as conflicts).
 */
function xChunkRow(c: i32): i32 {
  return 8 * (c >> 5) + ((c >> 3) & 3) + 4 * ((c >> 2) & 1);
}

/** The first output column (weight row) of warp `warp`'s 16 x 8 tile `tile` along N, in block bn. */
function tileColumn(bn: i32, warp: i32, tile: i32): i32 {
  return bn * MMA_BN + (warp % MMA_WARPS_N) * MMA_WARP_N + tile * 8;
}

/** The weight row whose words lane `lane` loads for the tile: B's column g = lane >> 2. */
function weightRow(bn: i32, warp: i32, tile: i32, lane: i32): i32 {
  return tileColumn(bn, warp, tile) + (lane >> 2);
}

/** The output column of the lane's accumulator field 2 (lane & 3) + j in the tile (also its scale's row). */
function outputColumn(bn: i32, warp: i32, tile: i32, lane: i32, j: i32): i32 {
  return tileColumn(bn, warp, tile) + (lane & 3) * 2 + j;
}

/**
 * f16GemmMma's warps: eight, each a 32 x 32 tile (2 x 4 tiles of 16 x 8), whose 128 registers let
 * two blocks share a multiprocessor; measured 3x faster than q4GemmMma's four 64 x 32 warps for
 * f16 weights, and 10-20% slower for q4f16_1 (bench/results/gemm-h100.json).
 */
const F16_MMA_TILES_M = 2;
const F16_MMA_TILES_N = 4;
const F16_MMA_WARP_M = F16_MMA_TILES_M * 16;
const F16_MMA_WARP_N = F16_MMA_TILES_N * 8;
const F16_MMA_WARPS_N = MMA_BN / F16_MMA_WARP_N;
const F16_MMA_WARPS = (MMA_BM / F16_MMA_WARP_M) * F16_MMA_WARPS_N;

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
      const acc = local("f32", [F16_MMA_WARPS, MMA_LANES, F16_MMA_TILES_M, F16_MMA_TILES_N, 4]);
      for (let wz = 0; wz < F16_MMA_WARPS; wz++)
        for (let lz = 0; lz < MMA_LANES; lz++)
          for (let mz = 0; mz < F16_MMA_TILES_M; mz++)
            for (let nz = 0; nz < F16_MMA_TILES_N; nz++)
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
        for (let wp = 0; wp < F16_MMA_WARPS; wp++) {
          for (let lane = 0; lane < MMA_LANES; lane++) {
            for (let kt = 0; kt < MMA_BK / 16; kt++) {
              for (let mt = 0; mt < F16_MMA_TILES_M; mt++) {
                for (let nt = 0; nt < F16_MMA_TILES_N; nt++) {
                  for (let r = 0; r < 4; r++) {
                    for (let kk = 0; kk < 16; kk++) {
                      acc[wp][lane][mt][nt][r] +=
                        f32(
                          xs[
                            idiv(wp, F16_MMA_WARPS_N) * F16_MMA_WARP_M + mt * 16 + (lane >> 2) + 8 * (r >> 1)
                          ][kt * 16 + kk],
                        ) *
                        f32(
                          ws[(wp % F16_MMA_WARPS_N) * F16_MMA_WARP_N + nt * 8 + (lane & 3) * 2 + (r & 1)][
                            kt * 16 + kk
                          ],
                        );
                    }
                  }
                }
              }
            }
          }
        }
      }
      for (let wy = 0; wy < F16_MMA_WARPS; wy++)
        for (let ly = 0; ly < MMA_LANES; ly++)
          for (let my = 0; my < F16_MMA_TILES_M; my++)
            for (let ny = 0; ny < F16_MMA_TILES_N; ny++)
              for (let ry = 0; ry < 4; ry++) {
                const row =
                  bm * MMA_BM +
                  idiv(wy, F16_MMA_WARPS_N) * F16_MMA_WARP_M +
                  my * 16 +
                  (ly >> 2) +
                  8 * (ry >> 1);
                const col =
                  bn * MMA_BN + (wy % F16_MMA_WARPS_N) * F16_MMA_WARP_N + ny * 8 + (ly & 3) * 2 + (ry & 1);
                if (row < M && col < N) y[row][col] = f16(acc[wy][ly][my][ny][ry]);
              }
    }
  }
});
