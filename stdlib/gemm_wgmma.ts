/**
 * The prefill's q4f16_1 GEMM for Hopper's warpgroup tensor-core instruction (wgmma.mma_async
 * m64n128k16, NVIDIA sm_90a): y = x W^T as q4GemmMma computes it (the same dequantized weights,
 * the same f32 sums up to their grouping), with the roles of the operands swapped: the weights are
 * the instruction's A, dequantized into registers, and x its B, which the instruction reads from
 * shared memory itself — no ldmatrix, no per-warp copy of x's fragments in registers.
 *
 * A block has WGMMA_GROUPS warpgroups of four warps; each computes D = W x^T for 64 weight rows
 * and the block's 128 tokens: warp w holds weight rows 16 w .. 16 w + 15 of the block, lane l's
 * field 4 nt + r is weight row (l >> 2) + 8 (r >> 1) and token 8 nt + 2 (l & 3) + (r & 1) (the
 * mma.m16n8k16 accumulator layout of 16 tiles of 8 tokens). Per stage of K (64, two q4 groups) the
 * block's x tile (128 tokens of 64 halves) is staged in shared memory in the weights' K order
 * (stagedColumn, as q4GemmMma stages it) and 128-byte swizzled (swizzle128), the layout the
 * instruction's matrix descriptor names; at four groups a stage (STAGE_GROUPS: CUDA's choice for
 * long K), K 128 as two such tiles.
 *
 * q4GemmWgmma's fused variants add the epilogues of gemm_mma.ts's (the same values): the
 * residual add (q4GemmResidualWgmma), Q, K and V in their own tensors (q4QkvGemmWgmma) and with
 * RoPE and the KV-cache append (q4QkvRopeAppendGemmWgmma); SwiGLU of paired gate and up rows is
 * gemm_wgmma_gateup.ts's, on this file's block (q4WgmmaBlock).
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
  prefetchL2,
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
import * as L from "./mma_layout.ts";
import { ropeAngle } from "./rope.ts";
import { Q4_GROUP, Q4_WORDS_PER_GROUP, q4PairF16x2Lane } from "./q4_common.ts";

export const LANES = 32;
/**
 * 1 in q4GateUpSiluGemmWgmma and q4QkvRopeAppendGemmWgmma (by kernel()'s consts): each warp's
 * rows l >> 2 and l >> 2 + 8 are rows `half` apart (weightRow), so a lane holds both of a pair;
 * 0 elsewhere.
 */
const PAIRED: number = 0;
/**
 * 1 (withConsts; llama/op-choices.ts's prefetchPrefillWeights): each block first asks L2 for all of its
 * weight rows' codes and scales (one bulk prefetch per 8 rows on sm_90), so the K loop's weight
 * loads find them there instead of waiting on DRAM at every stage; 0 (default) loads as it goes.
 */
const PREFETCH: number = 0;
/**
 * Stages ahead (withConsts; llama/op-choices.ts's prefillWeightsAhead) that each weight row's L2 line
 * of codes, and of scales, is prefetched: every LINE_STAGES-th stage (a 128-byte line holds four
 * stages of a row's codes at two groups a stage, two at four), quad lane 0 of the row's lanes
 * asks for the line that stage g + this reads,
 * so the K loop's loads, issued one stage ahead, find weights coming from DRAM already in L2;
 * 0 (default) none. CUDA's op choices take 4: the 512-token 7B prefill 2.1-2.4% faster on an H100
 * (bench/results/prefill-weights-ahead-ab-h100.json).
 */
const PREFETCH_AHEAD: number = 0;
/**
 * Warpgroups per block, each 64 weight rows of the block's tile and all of its tokens. 1 (by
 * withConsts) halves the weight rows a block: on an H100 16-28% slower, each block staging its own
 * x tile for half the products (bench/results/gemm-wgmma-warpgroups-ab-h100.json).
 */
const WGMMA_GROUPS: number = 2;
export const WARPS = 4 * WGMMA_GROUPS;
const THREADS = WARPS * LANES;
/** Tokens per block (the instruction's N) and weight rows per block. */
export const WGMMA_BT = 128;
export const WGMMA_BW = 64 * WGMMA_GROUPS;
/** 8-token tiles of a warp's accumulators. */
export const TILES = WGMMA_BT / 8;
/**
 * q4 groups of 32 per K stage (withConsts): 2 (a stage of 64, one 128-byte swizzled row of x per
 * token) or 4 (128: half the stages, each with twice the products and loads; x staged as two
 * tiles of 64-half rows, one after the other). No other value (the GPU schedule refuses it).
 */
const STAGE_GROUPS: number = 2;
const STAGE_K = Q4_GROUP * STAGE_GROUPS;
const STAGE_WORDS = Q4_WORDS_PER_GROUP * STAGE_GROUPS;
/** log2 of the 16-byte chunks of x (8 halves: one code word's K) in a token's row of a stage. */
const ROW_CHUNK_BITS = 2 + STAGE_GROUPS / 2;
/** 64-half tiles of the staged x (each WGMMA_BT rows of 128 bytes, the instruction's B). */
const X_TILES = STAGE_K / 64;
/** Stages of a weight row's codes in one 128-byte L2 line. */
const LINE_STAGES = 32 / STAGE_WORDS;
/** 16-byte chunks of the x tile each thread copies per stage. */
const X_CHUNKS = (WGMMA_BT * STAGE_K) / 8 / THREADS;

/**
 * Where x's chunk c of a stage (token c >> ROW_CHUNK_BITS, stage word w = c mod STAGE_WORDS, which
 * quad lane t = w / STAGE_GROUPS loads as its word j = w mod STAGE_GROUPS) goes in the staged
 * tiles: its elements belong to K steps 2 j and 2 j + 1, in x tile j >> 1 (of 64 halves, 4 K
 * steps), at the row of its token. Written with shifts and masks of c (bit fields), which the
 * schedule's dependence test takes apart.
 */
function stagedRow(c: i32): i32 {
  return select(STAGE_GROUPS === 4, ((c >> 1) & 1) * WGMMA_BT + (c >> ROW_CHUNK_BITS), c >> ROW_CHUNK_BITS);
}

/**
 * The column in its tile of element vx of chunk c (stagedRow): K step 2 (j & 1) + ((vx >> 1) & 1)
 * of the tile, slot 2 t + 8 (vx & 1) + (vx >> 2), where the A registers formed from the word put it
 * (q4PairF16x2Lane's pairs of codes p and p + 4). At two groups a stage, gemm_mma.ts's stageColumn.
 */
function stagedColumn(c: i32, vx: i32): i32 {
  return (
    (2 * (c & 1) + ((vx >> 1) & 1)) * 16 + 2 * ((c >> (STAGE_GROUPS / 2)) & 3) + (vx >> 2) + 8 * (vx & 1)
  );
}

/** Column c of row n of a tile of 64-half rows, 128-byte swizzled (lower/schedule/tensorize.ts swizzle128). */
function swizzled(n: i32, c: i32): i32 {
  return ((c >> 3) ^ (n & 7)) * 8 + (c & 7);
}

/**
 * The first weight row of warp `warp`'s row half h (its A rows l >> 2 + 8 h) in block bn. With
 * PAIRED, warps hold WGMMA_BW / 2 outputs of a block, row half 1 the rows `half` after row half
 * 0's, in groups of groupBlocks blocks 2 half rows apart (gate and up rows: one group; each head's
 * rotation pairs: a group per head).
 */
function weightRow(bn: i32, warp: i32, h: i32, half: i32, groupBlocks: i32): i32 {
  return select(
    PAIRED === 1,
    idiv(bn, groupBlocks) * (2 * half) + (bn % groupBlocks) * (WGMMA_BW / 2) + h * half + warp * 8,
    bn * WGMMA_BW + warp * 16 + 8 * h,
  );
}

/** The weight row (output column) of lane l's accumulator field r in block bn, warp w (not PAIRED). */
function columnOf(bn: i32, w: i32, l: i32, r: i32): i32 {
  return bn * WGMMA_BW + w * 16 + L.mmaCRow(l, r);
}

/**
 * Whether block bm's tokens and the block's outputs up to `end` are all inside (M tokens, `n`
 * outputs): its epilogue then stores without a guard per element, at addresses a constant apart
 * (one instruction each instead of a branch and the address's arithmetic).
 */
export function wholeTile(bm: i32, M: i32, end: i32, n: i32): boolean {
  return bm * WGMMA_BT + WGMMA_BT <= M && end <= n;
}

/** The token of lane l's accumulator field (tile nt, field r) in block bm. */
export function tokenOf(bm: i32, nt: i32, l: i32, r: i32): i32 {
  return bm * WGMMA_BT + nt * 8 + L.mmaCCol(l, r);
}

/**
 * A block's D = W x^T in the accumulators: warp w's lane l, field (nt, r) sums weight row
 * weightRow(bn, w, r >> 1, ..) + (l >> 2) against x's row tokenOf(bm, nt, l, r). W in q4f16_1
 * dequantized as q4GemmMma does it: w[n][k] = f16((q[n][k] - 7) * scale[n][k / 32]).
 *
 * Per stage, each quad lane t of a warp loads words 2t and 2t + 1 of its two weight rows and
 * turns them into the A registers of the stage's four K steps: register q of step j is row half
 * q & 1, the codes q4GemmMma's B register q >> 1 of step j holds, scaled by that group's scale.
 * Software-pipelined as q4GemmMma: the next stage's x chunks, words and scales are loaded into
 * registers before this stage's products.
 */
export function q4WgmmaBlock(
  x: Tensor<f16, readonly [number, number]>,
  packed: Tensor<u32, readonly [number, number]>,
  scales: Tensor<f16, readonly [number, number]>,
  bm: i32,
  bn: i32,
  half: i32,
  groupBlocks: i32,
  split: i32,
  splits: i32,
  acc: Tensor<f32, readonly [number, number, number, number]>,
) {
  const M = x.shape[0];
  const K = x.shape[1];
  const NW = packed.shape[0];
  const KW = packed.shape[1];
  const KG = scales.shape[1];
  // Split `split` of `splits` of the K stages (split K: q4GateUpSplitKGemmWgmma; 0 of 1 elsewhere).
  const all = idiv(KG + STAGE_GROUPS - 1, STAGE_GROUPS);
  const each = idiv(all + splits - 1, splits);
  const from = split * each;
  const stages = min(each, all - from);
  // The next stage's x chunks, weight words (two rows) and scales, in registers.
  const xr = local("f16", [WARPS, LANES, X_CHUNKS, 8]);
  const wr = local("u32", [WARPS, LANES, 2, STAGE_GROUPS]);
  const sr = local("f16", [WARPS, LANES, 2]);
  // The words and scales of the stage whose products come next.
  const wq = local("u32", [WARPS, LANES, 2, STAGE_GROUPS]);
  const sk = local("f16", [WARPS, LANES, 2]);
  // This stage's A registers: per K step, lane, register.
  const af = local("u32", [WARPS, STAGE_K / 16, LANES, 4]);
  // X_TILES tiles of 64 halves a row, one after the other.
  const xs = shared("f16", [X_TILES * WGMMA_BT, 64]);
  // Lane h of each warp: the warp's row half h (8 consecutive rows, contiguous in memory).
  // Weights are written by no kernel: under programmatic launch the fetch starts before the wait.
  for (let wh = 0; wh < WARPS; wh++)
    for (let lh = 0; lh < LANES; lh++) {
      const first = weightRow(bn, wh, lh, half, groupBlocks);
      if (PREFETCH === 1 && lh < 2 && first + 8 <= NW) {
        prefetchL2(packed[first][0], 8 * KW);
        prefetchL2(scales[first][0], 8 * KG);
      }
    }
  for (let wz = 0; wz < WARPS; wz++)
    for (let lz = 0; lz < LANES; lz++)
      for (let nz = 0; nz < TILES; nz++) for (let rz = 0; rz < 4; rz++) acc[wz][lz][nz][rz] = f32(0);
  for (let g = 0; g < stages + 1; g++) {
    if (g > 0) {
      // Stage g - 1's x to shared memory; its words and scales kept for the A registers.
      for (let wc = 0; wc < WARPS; wc++) {
        for (let lc = 0; lc < LANES; lc++) {
          for (let sx = 0; sx < X_CHUNKS; sx++) {
            for (let vx = 0; vx < 8; vx++) {
              const c = sx * THREADS + wc * LANES + lc;
              xs[stagedRow(c)][swizzled(c >> ROW_CHUNK_BITS, stagedColumn(c, vx))] = xr[wc][lc][sx][vx];
            }
          }
          for (let sq = 0; sq < 2; sq++) {
            for (let vq = 0; vq < STAGE_GROUPS; vq++) wq[wc][lc][sq][vq] = wr[wc][lc][sq][vq];
            sk[wc][lc][sq] = sr[wc][lc][sq];
          }
        }
      }
    }
    // Stage g's loads, issued before stage g - 1's products (the last round reloads the last stage).
    const gl = from + min(g, stages - 1);
    for (let wf = 0; wf < WARPS; wf++) {
      for (let lf = 0; lf < LANES; lf++) {
        for (let sf = 0; sf < X_CHUNKS; sf++) {
          for (let vf = 0; vf < 8; vf++) {
            const c = sf * THREADS + wf * LANES + lf;
            xr[wf][lf][sf][vf] =
              x[min(bm * WGMMA_BT + (c >> ROW_CHUNK_BITS), M - 1)][
                min(gl * STAGE_K + (c & (STAGE_WORDS - 1)) * 8, K - 8) + vf
              ];
          }
        }
        for (let sg = 0; sg < 2; sg++) {
          const row = min(weightRow(bn, wf, sg, half, groupBlocks) + (lf >> 2), NW - 1);
          for (let vg = 0; vg < STAGE_GROUPS; vg++)
            wr[wf][lf][sg][vg] =
              packed[row][min(gl * STAGE_WORDS + STAGE_GROUPS * (lf & 3), KW - STAGE_GROUPS) + vg];
          // Quad lane t's words belong to group t / (4 / STAGE_GROUPS) of the stage.
          const group = gl * STAGE_GROUPS + idiv((lf & 3) * STAGE_GROUPS, 4);
          sr[wf][lf][sg] = select(group < KG, scales[row][min(group, KG - 1)], f16(0));
        }
        for (let sp = 0; sp < 2; sp++) {
          const prow = min(weightRow(bn, wf, sp, half, groupBlocks) + (lf >> 2), NW - 1);
          const ahead = from + min(g + PREFETCH_AHEAD, stages - 1);
          if (PREFETCH_AHEAD > 0 && (lf & 3) === 0 && g % LINE_STAGES === 0) {
            prefetchL2(packed[prow][min(ahead * STAGE_WORDS, KW - 1)]);
            prefetchL2(scales[prow][min(ahead * STAGE_GROUPS, KG - 1)]);
          }
        }
      }
    }
    if (g > 0) {
      for (let kt = 0; kt < STAGE_K / 16; kt++) {
        // K step kt's A registers from stage g - 1's words, just before its products: the
        // products run asynchronously (wgmma), so the next step's registers are formed while
        // this step's product runs, and a stage's while the previous stage's last ones finish
        // (the renderer waits where registers still being read would be rewritten).
        for (let wa = 0; wa < WARPS; wa++)
          for (let la = 0; la < LANES; la++)
            for (let jw = 0; jw < 4; jw++)
              af[wa][kt][la][jw] = fmaF16x2(
                q4PairF16x2Lane(wq[wa][la][jw & 1][kt >> 1], 2 * (kt & 1) + (jw >> 1)),
                packF16x2(sk[wa][la][jw & 1], sk[wa][la][jw & 1]),
                u32(0),
              );
        for (let wp = 0; wp < WARPS; wp++) {
          for (let lane = 0; lane < LANES; lane++) {
            for (let nt = 0; nt < TILES; nt++) {
              for (let r = 0; r < 4; r++) {
                for (let kk = 0; kk < 16; kk++) {
                  const row = L.mmaCRow(lane, r);
                  const col = nt * 8 + L.mmaCCol(lane, r);
                  acc[wp][lane][nt][r] +=
                    f32(unpackF16x2(af[wp][kt][L.mmaALane(row, kk)][L.mmaAReg(row, kk)], kk & 1)) *
                    f32(xs[(kt >> 2) * WGMMA_BT + col][swizzled(col, (kt & 3) * 16 + kk)]);
                }
              }
            }
          }
        }
      }
    }
  }
}

/** y = x W^T, W in q4f16_1: q4GemmMma's values on Hopper's warpgroup instruction. */
export const q4GemmWgmma = kernel(function q4GemmWgmma(
  x: Tensor<f16, [Sym<"m">, Sym<"k">]>,
  packed: Tensor<u32, [Sym<"n">, Sym<"kw">]>,
  scales: Tensor<f16, [Sym<"n">, Sym<"kg">]>,
  y: Tensor<f16, [Sym<"m">, Sym<"n">]>,
) {
  const M = y.shape[0];
  const N = y.shape[1];
  for (let bm = 0; bm < idiv(M + WGMMA_BT - 1, WGMMA_BT); bm++) {
    for (let bn = 0; bn < idiv(N + WGMMA_BW - 1, WGMMA_BW); bn++) {
      const acc = local("f32", [WARPS, LANES, TILES, 4]);
      q4WgmmaBlock(x, packed, scales, bm, bn, 0, 1, 0, 1, acc);
      if (wholeTile(bm, M, bn * WGMMA_BW + WGMMA_BW, N)) {
        for (let wu = 0; wu < WARPS; wu++)
          for (let lu = 0; lu < LANES; lu++)
            for (let nu = 0; nu < TILES; nu++)
              for (let ru = 0; ru < 4; ru++)
                y[tokenOf(bm, nu, lu, ru)][columnOf(bn, wu, lu, ru)] = f16(acc[wu][lu][nu][ru]);
      } else {
        for (let wy = 0; wy < WARPS; wy++)
          for (let ly = 0; ly < LANES; ly++)
            for (let ny = 0; ny < TILES; ny++)
              for (let ry = 0; ry < 4; ry++) {
                const token = tokenOf(bm, ny, ly, ry);
                const col = columnOf(bn, wy, ly, ry);
                // The store's indices written out (not token, col): the schedule's dependence
                // test compares them with the unguarded nest's.
                if (token < M && col < N)
                  y[tokenOf(bm, ny, ly, ry)][columnOf(bn, wy, ly, ry)] = f16(acc[wy][ly][ny][ry]);
              }
      }
    }
  }
});

/**
 * y = residual + x W^T (as q4GemmResidualMma: the product rounded to f16 first, the same values as
 * q4GemmWgmma then residualAdd). y may alias residual: every residual load comes before the first store.
 */
export const q4GemmResidualWgmma = kernel(function q4GemmResidualWgmma(
  x: Tensor<f16, [Sym<"m">, Sym<"k">]>,
  packed: Tensor<u32, [Sym<"n">, Sym<"kw">]>,
  scales: Tensor<f16, [Sym<"n">, Sym<"kg">]>,
  residual: Tensor<f16, [Sym<"m">, Sym<"n">]>,
  y: Tensor<f16, [Sym<"m">, Sym<"n">]>,
) {
  const M = y.shape[0];
  const N = y.shape[1];
  for (let bm = 0; bm < idiv(M + WGMMA_BT - 1, WGMMA_BT); bm++) {
    for (let bn = 0; bn < idiv(N + WGMMA_BW - 1, WGMMA_BW); bn++) {
      const acc = local("f32", [WARPS, LANES, TILES, 4]);
      const res = local("f16", [WARPS, LANES, TILES, 4]);
      q4WgmmaBlock(x, packed, scales, bm, bn, 0, 1, 0, 1, acc);
      if (wholeTile(bm, M, bn * WGMMA_BW + WGMMA_BW, N)) {
        for (let wu = 0; wu < WARPS; wu++)
          for (let lu = 0; lu < LANES; lu++) {
            for (let nq = 0; nq < TILES; nq++)
              for (let rq = 0; rq < 4; rq++)
                res[wu][lu][nq][rq] = residual[tokenOf(bm, nq, lu, rq)][columnOf(bn, wu, lu, rq)];
            for (let nu = 0; nu < TILES; nu++)
              for (let ru = 0; ru < 4; ru++)
                y[tokenOf(bm, nu, lu, ru)][columnOf(bn, wu, lu, ru)] = f16(
                  f32(res[wu][lu][nu][ru]) + f32(f16(acc[wu][lu][nu][ru])),
                );
          }
      } else {
        for (let wy = 0; wy < WARPS; wy++)
          for (let ly = 0; ly < LANES; ly++) {
            for (let nr = 0; nr < TILES; nr++)
              for (let rr = 0; rr < 4; rr++)
                res[wy][ly][nr][rr] =
                  residual[min(tokenOf(bm, nr, ly, rr), M - 1)][min(columnOf(bn, wy, ly, rr), N - 1)];
            for (let ny = 0; ny < TILES; ny++)
              for (let ry = 0; ry < 4; ry++) {
                const token = tokenOf(bm, ny, ly, ry);
                const col = columnOf(bn, wy, ly, ry);
                if (token < M && col < N)
                  y[tokenOf(bm, ny, ly, ry)][columnOf(bn, wy, ly, ry)] = f16(
                    f32(res[wy][ly][ny][ry]) + f32(f16(acc[wy][ly][ny][ry])),
                  );
              }
          }
      }
    }
  }
});

/** [q | k | v] = x W^T with W = [Wq; Wk; Wv] (as q4QkvGemmMma), one launch. */
export const q4QkvGemmWgmma = kernel(function q4QkvGemmWgmma(
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
  for (let bm = 0; bm < idiv(M + WGMMA_BT - 1, WGMMA_BT); bm++) {
    for (let bn = 0; bn < idiv(N + WGMMA_BW - 1, WGMMA_BW); bn++) {
      const acc = local("f32", [WARPS, LANES, TILES, 4]);
      q4WgmmaBlock(x, packed, scales, bm, bn, 0, 1, 0, 1, acc);
      for (let wy = 0; wy < WARPS; wy++)
        for (let ly = 0; ly < LANES; ly++)
          for (let ny = 0; ny < TILES; ny++)
            for (let ry = 0; ry < 4; ry++) {
              const token = tokenOf(bm, ny, ly, ry);
              const col = columnOf(bn, wy, ly, ry);
              const value = f16(acc[wy][ly][ny][ry]);
              if (token < M) {
                if (col < qDim) q[token][col] = value;
                else if (col < qDim + kvDim) k[token][col - qDim] = value;
                else if (col < N) v[token][col - qDim - kvDim] = value;
              }
            }
    }
  }
});

/**
 * Q, K and V with RoPE and the KV-cache append in the epilogue (as q4QkvRopeAppendGemmMma, the
 * same values): a block's warps pair dims i and i + D / 2 of one head (weightRow, a group per
 * head), so a lane holds both elements of its rotation pairs; D / 2 must be a multiple of
 * WGMMA_BW / 2 (64), as Llama-2-7B's 128 is (the model keeps separate launches otherwise).
 */
export const q4QkvRopeAppendGemmWgmma = kernel(
  function q4QkvRopeAppendGemmWgmma(
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
    const perHead = idiv(half, WGMMA_BW / 2);
    for (let bm = 0; bm < idiv(M + WGMMA_BT - 1, WGMMA_BT); bm++) {
      for (let bn = 0; bn < (heads + 2 * kvHeads) * perHead; bn++) {
        const acc = local("f32", [WARPS, LANES, TILES, 4]);
        q4WgmmaBlock(x, packed, scales, bm, bn, half, perHead, 0, 1, acc);
        const head = idiv(bn, perHead);
        for (let wy = 0; wy < WARPS; wy++)
          for (let ly = 0; ly < LANES; ly++)
            for (let ny = 0; ny < TILES; ny++)
              for (let ry = 0; ry < 2; ry++) {
                const token = tokenOf(bm, ny, ly, ry);
                const i = (bn % perHead) * (WGMMA_BW / 2) + wy * 8 + (ly >> 2);
                const lo = f16(acc[wy][ly][ny][ry]);
                const hi = f16(acc[wy][ly][ny][ry + 2]);
                if (token < M) {
                  if (head < heads + kvHeads) {
                    const angle = ropeAngle(start + token, i, d, theta);
                    const c = cos(angle);
                    const sn = sin(angle);
                    const y0 = f16(f32(lo) * c - f32(hi) * sn);
                    const y1 = f16(f32(lo) * sn + f32(hi) * c);
                    if (head < heads) {
                      qr[token][head][i] = y0;
                      qr[token][head][i + half] = y1;
                    } else {
                      kCache[start + token][head - heads][i] = y0;
                      kCache[start + token][head - heads][i + half] = y1;
                    }
                  } else {
                    vCache[start + token][head - heads - kvHeads][i] = lo;
                    vCache[start + token][head - heads - kvHeads][i + half] = hi;
                  }
                }
              }
      }
    }
  },
  { consts: { PAIRED: 1 } },
);
