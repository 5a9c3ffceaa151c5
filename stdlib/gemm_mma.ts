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
 * Per stage of K (q4GemmMma: 64, two q4 groups; f16GemmMma: MMA_BK = 32), the block's x tile
 * (and f16GemmMma's weight tile) is staged in shared memory, which every lane of every warp reads;
 * q4GemmMma's weights go from global memory to registers.
 *
 * On the CPU, without a schedule, the nest is plain sequential arithmetic; every access stays in
 * bounds (rows past M or N read the last row and their outputs are not stored; K past the end
 * reads zeros for f16 weights, and weights scaled by 0 for q4f16_1).
 *
 * q4f16_1 arithmetic: each weight is dequantized to f16 once, f16((q - 7) * scale), as MLC's
 * q4f16_1 kernels do, and the products summed in f32 by the tensor cores; the GEMVs (q4_common.ts)
 * keep the exact codes and scale each group's f32 sum instead. The two agree to the f16 rounding of
 * the weights (relative 2^-11 each, random in sign).
 */
import {
  kernel,
  cos,
  f16,
  f32,
  fmaF16x2,
  idiv,
  local,
  min,
  packF16x2,
  select,
  shared,
  sin,
  u32,
  unpackF16x2,
  type i32,
  type Tensor,
  type Sym,
} from "../dsl/index.ts";
import { silu } from "./elementwise.ts";
import { ropeAngle } from "./rope.ts";
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
/**
 * 1 in q4GateUpSiluGemmMma and q4QkvRopeAppendGemmMma (by kernel()'s consts): each warp's tiles
 * pair rows `half` apart (tileRow); 0 elsewhere.
 */
const PAIRED: number = 0;
/** K per shared-memory stage of f16GemmMma. */
export const MMA_BK = 32;

/** Threads per block (q4GemmMma). */
const MMA_THREADS = MMA_WARPS * MMA_LANES;
/** q4GemmMma's stage: two q4 groups (64 of K, eight words a weight row), each quad lane's words all of one group. */
const STAGE_GROUPS = 2;
const STAGE_K = Q4_GROUP * STAGE_GROUPS;
const STAGE_WORDS = Q4_WORDS_PER_GROUP * STAGE_GROUPS;
/** 16-byte chunks (8 halves) of the x tile each thread copies per stage. */
const STAGE_X_CHUNKS = (MMA_BM * STAGE_K) / 8 / MMA_THREADS;

/**
 * y[m][n] = sum_k x[m][k] * w[n][k], with W in q4f16_1 dequantized as MLC's q4f16_1 does it:
 * w[n][k] = f16((q[n][k] - 7) * scale[n][k / 32]), rounded once (the exact code as an f16 pair,
 * then one HFMA2 by the group's scale).
 *
 * The weights never pass through shared memory. Per stage of STAGE_K = 64 (two groups), the four
 * lanes of a quad (t = lane & 3) that hold column g = lane >> 2 of a 16 x 8 tile's B operand load
 * words 2t and 2t + 1 of weight row g's stage (eight contiguous words a quad, no word loaded
 * twice), all of group t >> 1, and turn them into the lane's eight B registers of the stage's
 * four K steps, each scaled by that group's scale: K step j, register r, element e is code
 * 8 (2t + (j >> 1)) + 2 (j & 1) + r + 4 e of the stage (a shift, a LOP3 and two HFMA2s a register).
 * x's tile is stored in shared memory in the same order (slot s of K step j holds that element
 * for t = (s & 7) >> 1, r = s >> 3, e = s & 1), so A and B agree and the products are those of
 * the plain order. Because the scale is applied to each weight before the products, the tensor
 * cores accumulate across groups in their own registers, and a lane's codes may come from any
 * group: that is what lets each quad load its row's words once (a layout that kept the exact
 * codes and scaled each group's partial sums in f32 loaded every word four times, spent four
 * FFMAs a tile and group and 64 registers on the partial sums, and was 1.29x slower at
 * 512 x 4096 x 4096 on an H100: bench/results/gemm-q4-stages-ab-h100.json).
 *
 * Software-pipelined: each thread's share of the next stage (STAGE_X_CHUNKS 16-byte chunks of x,
 * its tiles' weight words and scales) is loaded into registers before the products of this stage;
 * x goes to shared memory and the words become B registers after them. A last stage past the end
 * of K (an odd number of groups) reads the last words and x's last chunk, with a scale of 0.
 *
 * This is a block's tile in the accumulators (the mma.m16n8k16 layout; warp w's 16 x 8 tile
 * (mt, nt) sums x's rows from outputRow(bm, w, mt, ..) and weight rows from tileRow(bn, w, nt,
 * ..)); q4GemmMma and its fused variants below each add their epilogue.
 */
function q4MmaBlock(
  x: Tensor<f16, readonly [number, number]>,
  packed: Tensor<u32, readonly [number, number]>,
  scales: Tensor<f16, readonly [number, number]>,
  bm: i32,
  bn: i32,
  half: i32,
  groupBlocks: i32,
  acc: Tensor<f32, readonly [number, number, number, number, number]>,
) {
  const M = x.shape[0];
  const K = x.shape[1];
  const NW = packed.shape[0];
  const KW = packed.shape[1];
  const KG = scales.shape[1];
  const stages = idiv(KG + STAGE_GROUPS - 1, STAGE_GROUPS);
  // The next stage's x chunks, weight words and scales, in registers.
  const xr = local("f16", [MMA_WARPS, MMA_LANES, STAGE_X_CHUNKS, 8]);
  const wr = local("u32", [MMA_WARPS, MMA_LANES, MMA_TILES_N, STAGE_GROUPS]);
  const sr = local("f16", [MMA_WARPS, MMA_LANES, MMA_TILES_N]);
  // This stage's B registers: per tile along N and K step, lane, register.
  const bf = local("u32", [MMA_WARPS, MMA_TILES_N, STAGE_K / 16, MMA_LANES, 2]);
  const xs = shared("f16", [MMA_BM, STAGE_K]);
  for (let wz = 0; wz < MMA_WARPS; wz++)
    for (let lz = 0; lz < MMA_LANES; lz++)
      for (let mz = 0; mz < MMA_TILES_M; mz++)
        for (let nz = 0; nz < MMA_TILES_N; nz++)
          for (let rz = 0; rz < 4; rz++) acc[wz][lz][mz][nz][rz] = f32(0);
  // Stage g into registers: the loads of stage 0 here, of stage g + 1 inside the loop.
  for (let g = 0; g < stages + 1; g++) {
    if (g > 0) {
      // Stage g - 1's x to shared memory in the B registers' order; its words to B registers.
      for (let wc = 0; wc < MMA_WARPS; wc++) {
        for (let lc = 0; lc < MMA_LANES; lc++) {
          for (let sx = 0; sx < STAGE_X_CHUNKS; sx++) {
            for (let vx = 0; vx < 8; vx++) {
              const c = sx * MMA_THREADS + wc * MMA_LANES + lc;
              xs[c >> 3][stageColumn(c, vx)] = xr[wc][lc][sx][vx];
            }
          }
          for (let nw = 0; nw < MMA_TILES_N; nw++)
            for (let hw = 0; hw < STAGE_K / 16; hw++)
              for (let jw = 0; jw < 2; jw++)
                bf[wc][nw][hw][lc][jw] = fmaF16x2(
                  q4PairF16x2Lane(wr[wc][lc][nw][hw >> 1], 2 * (hw & 1) + jw),
                  packF16x2(sr[wc][lc][nw], sr[wc][lc][nw]),
                  u32(0),
                );
        }
      }
    }
    // Stage g's loads, issued before stage g - 1's products (the last round reloads the last stage).
    const gl = min(g, stages - 1);
    for (let wf = 0; wf < MMA_WARPS; wf++) {
      for (let lf = 0; lf < MMA_LANES; lf++) {
        for (let sf = 0; sf < STAGE_X_CHUNKS; sf++) {
          for (let vf = 0; vf < 8; vf++) {
            const c = sf * MMA_THREADS + wf * MMA_LANES + lf;
            xr[wf][lf][sf][vf] =
              x[min(bm * MMA_BM + (c >> 3), M - 1)][min(gl * STAGE_K + (c & 7) * 8, K - 8) + vf];
          }
        }
        for (let sg = 0; sg < MMA_TILES_N; sg++) {
          const row = min(tileRow(bn, wf, sg, half, groupBlocks) + (lf >> 2), NW - 1);
          for (let vg = 0; vg < STAGE_GROUPS; vg++)
            wr[wf][lf][sg][vg] =
              packed[row][min(gl * STAGE_WORDS + STAGE_GROUPS * (lf & 3), KW - STAGE_GROUPS) + vg];
          const group = gl * STAGE_GROUPS + ((lf & 3) >> 1);
          sr[wf][lf][sg] = select(group < KG, scales[row][min(group, KG - 1)], f16(0));
        }
      }
    }
    if (g > 0) {
      for (let wp = 0; wp < MMA_WARPS; wp++) {
        for (let lane = 0; lane < MMA_LANES; lane++) {
          for (let kt = 0; kt < STAGE_K / 16; kt++) {
            for (let mt = 0; mt < MMA_TILES_M; mt++) {
              for (let nt = 0; nt < MMA_TILES_N; nt++) {
                for (let r = 0; r < 4; r++) {
                  for (let kk = 0; kk < 16; kk++) {
                    acc[wp][lane][mt][nt][r] +=
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
        }
      }
    }
  }
}

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
      q4MmaBlock(x, packed, scales, bm, bn, 0, 1, acc);
      for (let wy = 0; wy < MMA_WARPS; wy++)
        for (let ly = 0; ly < MMA_LANES; ly++)
          for (let my = 0; my < MMA_TILES_M; my++)
            for (let ny = 0; ny < MMA_TILES_N; ny++)
              for (let ry = 0; ry < 4; ry++) {
                const row = outputRow(bm, wy, my, ly, ry);
                const col = tileColumn(bn, wy, ny) + (ly & 3) * 2 + (ry & 1);
                if (row < M && col < N) y[row][col] = f16(acc[wy][ly][my][ny][ry]);
              }
    }
  }
});

/**
 * [q | k | v] = x W^T with W = [Wq; Wk; Wv] (as q4QkvGemm: q4GemmMma over the three with each
 * output column stored in its own tensor), one launch instead of three.
 */
export const q4QkvGemmMma = kernel(function q4QkvGemmMma(
  x: Tensor<f16, [Sym<"m">, Sym<"k">]>,
  packed: Tensor<u32, [Sym<"n">, Sym<"kw">]>,
  scales: Tensor<f16, [Sym<"n">, Sym<"kg">]>,
  q: Tensor<f16, [Sym<"m">, Sym<"qd">]>,
  k: Tensor<f16, [Sym<"m">, Sym<"kvd">]>,
  v: Tensor<f16, [Sym<"m">, Sym<"kvd">]>,
) {
  const M = x.shape[0];
  const qDim = q.shape[1];
  const kvDim = k.shape[1];
  const N = qDim + 2 * kvDim;
  for (let bm = 0; bm < idiv(M + MMA_BM - 1, MMA_BM); bm++) {
    for (let bn = 0; bn < idiv(N + MMA_BN - 1, MMA_BN); bn++) {
      const acc = local("f32", [MMA_WARPS, MMA_LANES, MMA_TILES_M, MMA_TILES_N, 4]);
      q4MmaBlock(x, packed, scales, bm, bn, 0, 1, acc);
      for (let wy = 0; wy < MMA_WARPS; wy++)
        for (let ly = 0; ly < MMA_LANES; ly++)
          for (let my = 0; my < MMA_TILES_M; my++)
            for (let ny = 0; ny < MMA_TILES_N; ny++)
              for (let ry = 0; ry < 4; ry++) {
                const row = outputRow(bm, wy, my, ly, ry);
                const col = tileColumn(bn, wy, ny) + (ly & 3) * 2 + (ry & 1);
                const value = f16(acc[wy][ly][my][ny][ry]);
                if (row < M) {
                  if (col < qDim) q[row][col] = value;
                  else if (col < qDim + kvDim) k[row][col - qDim] = value;
                  else if (col < N) v[row][col - qDim - kvDim] = value;
                }
              }
    }
  }
});

/**
 * The prefill's Q, K and V with RoPE and the KV-cache append in the epilogue (as q4QkvGemm, then
 * ropeHalf on the q and k heads and kvAppend at start, computing the same values): W = [Wq; Wk; Wv]
 * rows of heads of D, q heads rotated into qr [M, H, D], k heads rotated and v heads into the
 * caches' rows start .. start + M - 1. Each warp's tiles pair dims i and i + D / 2 of one head
 * (tileRow, a group per head), so a lane holds both elements of its rotation pairs; D / 2 must be
 * a multiple of MMA_BN / 2 (32), as Llama-2-7B's 128 is (the model keeps separate launches
 * otherwise).
 */
export const q4QkvRopeAppendGemmMma = kernel(
  function q4QkvRopeAppendGemmMma(
    x: Tensor<f16, [Sym<"m">, Sym<"k">]>,
    packed: Tensor<u32, [Sym<"n">, Sym<"kw">]>,
    scales: Tensor<f16, [Sym<"n">, Sym<"kg">]>,
    qr: Tensor<f16, [Sym<"m">, Sym<"h">, Sym<"d">]>,
    kCache: Tensor<f16, [Sym<"ctx">, Sym<"kvh">, Sym<"d">]>,
    vCache: Tensor<f16, [Sym<"ctx">, Sym<"kvh">, Sym<"d">]>,
    start: i32,
    theta: f32,
  ) {
    const M = x.shape[0];
    const heads = qr.shape[1];
    const d = qr.shape[2];
    const half = idiv(d, 2);
    const kvHeads = kCache.shape[1];
    const perHead = idiv(half, MMA_BN / 2);
    for (let bm = 0; bm < idiv(M + MMA_BM - 1, MMA_BM); bm++) {
      for (let bn = 0; bn < (heads + 2 * kvHeads) * perHead; bn++) {
        const acc = local("f32", [MMA_WARPS, MMA_LANES, MMA_TILES_M, MMA_TILES_N, 4]);
        q4MmaBlock(x, packed, scales, bm, bn, half, perHead, acc);
        const head = idiv(bn, perHead);
        for (let wy = 0; wy < MMA_WARPS; wy++)
          for (let ly = 0; ly < MMA_LANES; ly++)
            for (let my = 0; my < MMA_TILES_M; my++)
              for (let ny = 0; ny < MMA_TILES_N / 2; ny++)
                for (let ry = 0; ry < 4; ry++) {
                  const row = outputRow(bm, wy, my, ly, ry);
                  const i =
                    (bn % perHead) * (MMA_BN / 2) +
                    (wy % MMA_WARPS_N) * (MMA_WARP_N / 2) +
                    ny * 8 +
                    (ly & 3) * 2 +
                    (ry & 1);
                  const lo = f16(acc[wy][ly][my][ny][ry]);
                  const hi = f16(acc[wy][ly][my][ny + MMA_TILES_N / 2][ry]);
                  if (row < M) {
                    if (head < heads + kvHeads) {
                      const angle = ropeAngle(start + row, i, d, theta);
                      const c = cos(angle);
                      const sn = sin(angle);
                      const y0 = f16(f32(lo) * c - f32(hi) * sn);
                      const y1 = f16(f32(lo) * sn + f32(hi) * c);
                      if (head < heads) {
                        qr[row][head][i] = y0;
                        qr[row][head][i + half] = y1;
                      } else {
                        kCache[start + row][head - heads][i] = y0;
                        kCache[start + row][head - heads][i + half] = y1;
                      }
                    } else {
                      vCache[start + row][head - heads - kvHeads][i] = lo;
                      vCache[start + row][head - heads - kvHeads][i + half] = hi;
                    }
                  }
                }
      }
    }
  },
  { consts: { PAIRED: 1 } },
);

/**
 * y = residual + x W^T (as q4GemmMma, then residualAdd: the product rounded to f16 first, so the
 * same values as the two launches). y may alias residual.
 */
export const q4GemmResidualMma = kernel(function q4GemmResidualMma(
  x: Tensor<f16, [Sym<"m">, Sym<"k">]>,
  packed: Tensor<u32, [Sym<"n">, Sym<"kw">]>,
  scales: Tensor<f16, [Sym<"n">, Sym<"kg">]>,
  residual: Tensor<f16, [Sym<"m">, Sym<"n">]>,
  y: Tensor<f16, [Sym<"m">, Sym<"n">]>,
) {
  const M = y.shape[0];
  const N = y.shape[1];
  for (let bm = 0; bm < idiv(M + MMA_BM - 1, MMA_BM); bm++) {
    for (let bn = 0; bn < idiv(N + MMA_BN - 1, MMA_BN); bn++) {
      const acc = local("f32", [MMA_WARPS, MMA_LANES, MMA_TILES_M, MMA_TILES_N, 4]);
      const res = local("f16", [MMA_WARPS, MMA_LANES, MMA_TILES_M, MMA_TILES_N, 4]);
      q4MmaBlock(x, packed, scales, bm, bn, 0, 1, acc);
      for (let wy = 0; wy < MMA_WARPS; wy++)
        for (let ly = 0; ly < MMA_LANES; ly++) {
          // Every residual load before the first store: y may alias residual, so a load after a
          // store cannot start before it (64 round trips one after another, 110 against 77 us at
          // 512 x 4096 x 4096 on an H100).
          for (let mr = 0; mr < MMA_TILES_M; mr++)
            for (let nr = 0; nr < MMA_TILES_N; nr++)
              for (let rr = 0; rr < 4; rr++)
                res[wy][ly][mr][nr][rr] =
                  residual[min(outputRow(bm, wy, mr, ly, rr), M - 1)][
                    min(tileColumn(bn, wy, nr) + (ly & 3) * 2 + (rr & 1), N - 1)
                  ];
          for (let my = 0; my < MMA_TILES_M; my++)
            for (let ny = 0; ny < MMA_TILES_N; ny++)
              for (let ry = 0; ry < 4; ry++) {
                const row = outputRow(bm, wy, my, ly, ry);
                const col = tileColumn(bn, wy, ny) + (ly & 3) * 2 + (ry & 1);
                if (row < M && col < N)
                  y[row][col] = f16(f32(res[wy][ly][my][ny][ry]) + f32(f16(acc[wy][ly][my][ny][ry])));
              }
        }
    }
  }
});

/**
 * out = SiLU(x Wg^T) * (x Wu^T), W = [Wg; Wu] ([2 I, K], as q4GemmMma twice, then siluMul: each
 * product rounded to f16 first, so the same values as the three launches). A warp's tiles 0 and 1
 * are 16 gate rows and tiles 2 and 3 the same outputs' up rows (I further), so each lane holds the
 * gate and the up sum of its outputs; a block computes MMA_BN / 2 outputs of MMA_BM rows.
 */
export const q4GateUpSiluGemmMma = kernel(
  function q4GateUpSiluGemmMma(
    x: Tensor<f16, [Sym<"m">, Sym<"k">]>,
    packed: Tensor<u32, [Sym<"n2">, Sym<"kw">]>,
    scales: Tensor<f16, [Sym<"n2">, Sym<"kg">]>,
    out: Tensor<f16, [Sym<"m">, Sym<"i">]>,
  ) {
    const M = out.shape[0];
    const I = out.shape[1];
    for (let bm = 0; bm < idiv(M + MMA_BM - 1, MMA_BM); bm++) {
      for (let bn = 0; bn < idiv(I + MMA_BN / 2 - 1, MMA_BN / 2); bn++) {
        const acc = local("f32", [MMA_WARPS, MMA_LANES, MMA_TILES_M, MMA_TILES_N, 4]);
        q4MmaBlock(x, packed, scales, bm, bn, I, idiv(I + MMA_BN / 2 - 1, MMA_BN / 2), acc);
        for (let wy = 0; wy < MMA_WARPS; wy++)
          for (let ly = 0; ly < MMA_LANES; ly++)
            for (let my = 0; my < MMA_TILES_M; my++)
              for (let ny = 0; ny < MMA_TILES_N / 2; ny++)
                for (let ry = 0; ry < 4; ry++) {
                  const row = outputRow(bm, wy, my, ly, ry);
                  const col =
                    bn * (MMA_BN / 2) +
                    (wy % MMA_WARPS_N) * (MMA_WARP_N / 2) +
                    ny * 8 +
                    (ly & 3) * 2 +
                    (ry & 1);
                  const gate = f32(f16(acc[wy][ly][my][ny][ry]));
                  const up = f32(f16(acc[wy][ly][my][ny + MMA_TILES_N / 2][ry]));
                  if (row < M && col < I) out[row][col] = f16(silu(gate) * up);
                }
      }
    }
  },
  { consts: { PAIRED: 1 } },
);

/**
 * Where element vx of x's chunk c (row c >> 3, stage words w = c & 7: quad lane t = w >> 1, K-step
 * pair w & 1) goes in the staged tile: K step 2 (w & 1) + ((vx >> 1) & 1), slot 2t + (vx >> 2) +
 * 8 (vx & 1). A warp's stores of one (step, register) land on 32 different banks (row stride 36
 * words once padded: 4 row + 16 (w & 1) + t are distinct).
 */
export function stageColumn(c: i32, vx: i32): i32 {
  return (2 * (c & 1) + ((vx >> 1) & 1)) * 16 + 2 * ((c >> 1) & 3) + (vx >> 2) + 8 * (vx & 1);
}

/**
 * The first weight row of warp `warp`'s 16 x 8 tile `tile` along N, in block bn (also its first
 * output column). With PAIRED (q4GateUpSiluGemmMma, q4QkvRopeAppendGemmMma), a warp's tiles 0 and
 * 1 are 16 rows and tiles 2 and 3 the rows `half` further, of MMA_BN / 2 outputs a block, in groups
 * of groupBlocks blocks 2 half rows apart (gate and up rows: one group; each head's rotation
 * pairs: a group per head).
 */
function tileRow(bn: i32, warp: i32, tile: i32, half: i32, groupBlocks: i32): i32 {
  return select(
    PAIRED === 1,
    idiv(bn, groupBlocks) * (2 * half) +
      (bn % groupBlocks) * (MMA_BN / 2) +
      (tile >> 1) * half +
      (warp % MMA_WARPS_N) * (MMA_WARP_N / 2) +
      (tile & 1) * 8,
    tileColumn(bn, warp, tile),
  );
}

/** The first output column (weight row) of warp `warp`'s 16 x 8 tile `tile` along N, in block bn. */
function tileColumn(bn: i32, warp: i32, tile: i32): i32 {
  return bn * MMA_BN + (warp % MMA_WARPS_N) * MMA_WARP_N + tile * 8;
}

/** The output row of the lane's accumulator field r in warp `warp`'s tile `mt` along M, in block bm. */
function outputRow(bm: i32, warp: i32, mt: i32, lane: i32, r: i32): i32 {
  return bm * MMA_BM + idiv(warp, MMA_WARPS_N) * MMA_WARP_M + mt * 16 + (lane >> 2) + 8 * (r >> 1);
}

/**
 * f16GemmMma's warps: eight, each a 32 x 32 tile (2 x 4 tiles of 16 x 8), whose 128 registers let
 * two blocks share a multiprocessor; measured 3x faster than q4GemmMma's four 64 x 32 warps for
 * f16 weights, and 10-20% slower for q4f16_1 (bench/results/gemm-h100.json as of the sixth session, in git history).
 */
const F16_MMA_TILES_M = 2;
const F16_MMA_TILES_N = 4;
const F16_MMA_WARP_M = F16_MMA_TILES_M * 16;
const F16_MMA_WARP_N = F16_MMA_TILES_N * 8;
const F16_MMA_WARPS_N = MMA_BN / F16_MMA_WARP_N;
const F16_MMA_WARPS = (MMA_BM / F16_MMA_WARP_M) * F16_MMA_WARPS_N;
const F16_THREADS = F16_MMA_WARPS * MMA_LANES;
/** 16-byte chunks of the x and weight tiles each thread copies per K step. */
const F16_X_CHUNKS = (MMA_BM * MMA_BK) / 8 / F16_THREADS;
const F16_W_CHUNKS = (MMA_BN * MMA_BK) / 8 / F16_THREADS;

/** y[m][n] = sum_k x[m][k] * w[n][k]: x f16 [M, K], w f16 [N, K], y f16 [M, N] (f32 sums); K a multiple of 8. */
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
      // The next step's chunks of x and of the weights, in registers.
      const xr = local("f16", [F16_MMA_WARPS, MMA_LANES, F16_X_CHUNKS, 8]);
      const wr = local("f16", [F16_MMA_WARPS, MMA_LANES, F16_W_CHUNKS, 8]);
      const steps = idiv(K + MMA_BK - 1, MMA_BK);
      // Step ks - 1's products while step ks's chunks load into registers (software pipelining;
      // the last round reloads the last step). Chunk c = s * threads + warp * 32 + lane is row
      // c >> 2, column (c & 3) * 8 of a tile; a chunk past the end of K (K is a multiple of 8)
      // reads zeros.
      for (let ks = 0; ks < steps + 1; ks++) {
        if (ks > 0) {
          for (let wx = 0; wx < F16_MMA_WARPS; wx++) {
            for (let lx = 0; lx < MMA_LANES; lx++) {
              for (let sx = 0; sx < F16_X_CHUNKS; sx++) {
                const c = sx * F16_THREADS + wx * MMA_LANES + lx;
                for (let vx = 0; vx < 8; vx++) xs[c >> 2][(c & 3) * 8 + vx] = xr[wx][lx][sx][vx];
              }
              for (let sw = 0; sw < F16_W_CHUNKS; sw++) {
                const c = sw * F16_THREADS + wx * MMA_LANES + lx;
                for (let vw = 0; vw < 8; vw++) ws[c >> 2][(c & 3) * 8 + vw] = wr[wx][lx][sw][vw];
              }
            }
          }
        }
        const kl = min(ks, steps - 1) * MMA_BK;
        for (let wl = 0; wl < F16_MMA_WARPS; wl++) {
          for (let ll = 0; ll < MMA_LANES; ll++) {
            for (let sl = 0; sl < F16_X_CHUNKS; sl++) {
              const c = sl * F16_THREADS + wl * MMA_LANES + ll;
              const kb = kl + (c & 3) * 8;
              for (let vl = 0; vl < 8; vl++)
                xr[wl][ll][sl][vl] = select(
                  kb < K,
                  x[min(bm * MMA_BM + (c >> 2), M - 1)][min(kb, K - 8) + vl],
                  f16(0),
                );
            }
            for (let sm = 0; sm < F16_W_CHUNKS; sm++) {
              const c = sm * F16_THREADS + wl * MMA_LANES + ll;
              const kb = kl + (c & 3) * 8;
              for (let vm = 0; vm < 8; vm++)
                wr[wl][ll][sm][vm] = select(
                  kb < K,
                  w[min(bn * MMA_BN + (c >> 2), N - 1)][min(kb, K - 8) + vm],
                  f16(0),
                );
            }
          }
        }
        if (ks > 0) {
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
                              idiv(wp, F16_MMA_WARPS_N) * F16_MMA_WARP_M +
                                mt * 16 +
                                (lane >> 2) +
                                8 * (r >> 1)
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
