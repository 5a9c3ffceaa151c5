/**
 * q4f16_1 GEMVs on tensor cores (decode, one token): the 4-bit codes are decoded two at a time
 * into exact f16 pairs in registers (q4PairF16x2: a LOP3 and an HFMA2 per two weights) and
 * multiplied by x with mma.m16n8k16 (f16 operands, f32 accumulation): about 1.8 instructions per
 * weight in the compiled loop (a LOP3 and an HFMA2 per pair, a shift per word, B's masks and
 * packing, the mma itself) where the FMA GEMVs (q4_gemv_rows.ts) issue 3. The arithmetic is theirs: each product
 * x * (q - 7) is exact, each group's products are summed in f32 and the sum scaled once by
 * f32(scale); only the order of the f32 additions differs (the tensor core's).
 *
 * Layout: a block computes MMA_ROWS = 32 output rows (two 16-row tiles, the instruction's M) with
 * MMA_GEMV_WARPS warps that split K in chunks of 256 (8 groups), chunk c going to warp c mod the
 * warps.
 * In a chunk, lane (g, t) (g = lane >> 2, t = lane & 3) loads, for rows g and g + 8 of each tile,
 * the 16 bytes of groups 8c + t and 8c + t + 4: its A registers hold those rows' codes, so one
 * product's 16 k-slots are four lanes' codes from four different groups. B's eight columns keep
 * the groups apart: column n holds x only in the k-slots of the lane whose group is 8c + n, zeros
 * elsewhere, so C's column n is group 8c + n's sum, scaled once per chunk. Codes p and p + 4 of a
 * word form one f16 pair, so B's pairs are (x[k], x[k + 4]): each warp packs its chunk of x into
 * those pairs once, in its own slice of shared memory (a 16-byte load per lane), and each lane
 * reads its B registers from there, or from a row of zeros where its column is not its group (one
 * address select per half instead of a repack and a mask per register: the ALU pipe, which the
 * decode's LOP3s keep busiest, measured 6-12% faster GEMVs on an H200).
 *
 * Requirements: K a multiple of 256 and N a multiple of the rows per block (MMA_ROWS: 32, or 16
 * in a one-tile variant; the kernels pairing tiles, gate/up and RoPE (stdlib/q4_qkv_rope_mma.ts,
 * built on this file's product), need I or d / 2 a multiple of 16), as at every Llama-2-7B shape:
 * the GPU schedule checks them. MMA_ROWS with TILES, and WARPS (the split of K) are constants a
 * variant overrides with withConsts (stdlib/gpu/gemv.ts mmaGemvKernel picks them per weight shape
 * from bench/tune.ts's measurements).
 * On the CPU, without a schedule, the loops over warps and lanes run one after another and every
 * product is plain f32 arithmetic; stdlib/gpu/gemv.ts binds them and tensorizes on sm_80+.
 */
import {
  kernel,
  commitAsync,
  copyAsync,
  f16,
  f32,
  idiv,
  local,
  min,
  packF16x2,
  prefetchL2,
  rsqrt,
  select,
  shared,
  unpackF16x2,
  u32,
  waitAsync,
  type i32,
  type Tensor,
  type Sym,
} from "../dsl/index.ts";
import { silu } from "./elementwise.ts";
import * as L from "./mma_layout.ts";
import { Q4_GROUP, Q4_WORDS_PER_GROUP, q4PairF16x2 } from "./q4_common.ts";

/** Output rows per block: two tiles of the instruction's 16. */
export const MMA_ROWS = 32;
/** Warps per block, splitting K. */
export const MMA_GEMV_WARPS = 8;
/** Groups per chunk of K (256 elements): two per lane, one per column of B. */
const CHUNK_GROUPS = 8;
/** K per chunk. */
export const MMA_GEMV_CHUNK = CHUNK_GROUPS * Q4_GROUP;
export const LANES = 32;
export const WARPS = MMA_GEMV_WARPS;
export const TILES = MMA_ROWS / 16;
/**
 * 1 (withConsts): each block first prefetches its weight rows into L2 (q4PrefetchTiles), to
 * overlap the previous kernel's tail under programmatic dependent launch; 0 (the default): none.
 * Measured slower on an H200 (llama/op-choices.ts, prefetchDecodeWeights).
 */
const PREFETCH: number = 0;
/**
 * 0 (the default): each warp loads its next chunk's codes and scales into registers at the end of
 * a round. S > 0 (withConsts): each warp keeps a ring of S chunks in shared memory, filled by
 * asynchronous copies (copyAsync: cp.async on NVIDIA) S rounds ahead of the arithmetic, the first
 * S issued before the wait for the previous kernel: more of the weights in flight a
 * multiprocessor than the registers hold, and no registers held by them. Measured slower in the
 * 7B decode on an H200 at every depth and kernel tried (llama/op-choices.ts decodeGemvStages).
 */
const STAGES: number = 0;
/** The ring's slots (1 where STAGES is 0 and it is unused: shared tensors need a shape). */
const SLOTS = Math.max(STAGES, 1);
/**
 * 1 in the kernels with RMSNorm folded in (q4GemvRmsMma, q4GateUpSiluRmsMma, by kernel()'s
 * consts): q4MmaPartials stages x * wn and sums x's squares on the way; 0 elsewhere.
 */
export const NORM: number = 0;

/**
 * L2 prefetches of the codes and scales of a block's tiles (tile t: rows row0 + t * tileStride + r
 * and + rowStride + r for r < 8, two runs of 8 rows), a range each, issued by one thread per tile
 * (on sm_90 one bulk prefetch per range, which the copy engine works through). The kernels issue
 * them first, so the lowering (lower/passes/dependency_wait.ts) places the wait for the previous
 * kernel after them.
 * Weights are written by no kernel, so fetching them early is safe.
 */
export function q4PrefetchTiles(
  packed: Tensor<u32, readonly [number, number]>,
  scales: Tensor<f16, readonly [number, number]>,
  row0: i32,
  tileStride: i32,
  rowStride: i32,
) {
  for (let wq = 0; wq < WARPS; wq++)
    for (let lq = 0; lq < LANES; lq++)
      for (let tq = 0; tq < TILES; tq++)
        if (PREFETCH === 1 && wq * LANES + lq === tq)
          for (let hq = 0; hq < 2; hq++) {
            prefetchL2(packed[row0 + tq * tileStride + hq * rowStride][0], 8 * packed.shape[1]);
            prefetchL2(scales[row0 + tq * tileStride + hq * rowStride][0], 8 * scales.shape[1]);
          }
}

/**
 * Warp w's lane's codes and scales of chunk c (groups 8c .. 8c + 7) of the tiles whose rows start
 * at row0 (tile t: rows row0 + t * tileStride + r and + rowStride + r, r < 8), into wq[w][lane]
 * and ws[w][lane]: lane (g, t) loads the 16 bytes of groups 8c + t and 8c + t + 4 of its tile rows
 * g and g + 8, and the scales its C registers take (row mmaCRow, group 8c + mmaCCol).
 * q4MmaPartials calls it for the first round and at the end of each round for the next; the
 * frontend names the second copy's loops apart (tc_1, ...), and the schedule unrolls every copy
 * (Schedule.loopCopies).
 */
function q4LoadChunk(
  packed: Tensor<u32, readonly [number, number]>,
  scales: Tensor<f16, readonly [number, number]>,
  row0: i32,
  tileStride: i32,
  rowStride: i32,
  c: i32,
  w: i32,
  lane: i32,
  wq: Tensor<u32, readonly [number, number, number, number, number, number]>,
  ws: Tensor<f16, readonly [number, number, number, number]>,
) {
  for (let tc = 0; tc < TILES; tc++) {
    for (let rc = 0; rc < 2; rc++)
      for (let hc = 0; hc < 2; hc++)
        for (let vc = 0; vc < Q4_WORDS_PER_GROUP; vc++)
          wq[w][lane][tc][rc][hc][vc] =
            packed[row0 + tc * tileStride + rc * rowStride + (lane >> 2)][
              (c * CHUNK_GROUPS + (lane & 3) + 4 * hc) * Q4_WORDS_PER_GROUP + vc
            ];
    for (let sc = 0; sc < 4; sc++)
      ws[w][lane][tc][sc] =
        scales[row0 + tc * tileStride + L.mmaCRow(lane, sc) + (rowStride - 8) * (sc >> 1)][
          c * CHUNK_GROUPS + L.mmaCCol(lane, sc)
        ];
  }
}

/**
 * As q4LoadChunk, into ring slot `slot` of warp w by asynchronous copies (STAGES > 0): each lane
 * copies the four 16-byte runs of codes that it reads back (ringq, lanes innermost: conflict-free),
 * and lanes 0..15 each a tile row's 8 scales of the chunk (16 bytes; rings, by row and group).
 */
function q4CopyChunk(
  packed: Tensor<u32, readonly [number, number]>,
  scales: Tensor<f16, readonly [number, number]>,
  row0: i32,
  tileStride: i32,
  rowStride: i32,
  c: i32,
  w: i32,
  lane: i32,
  slot: i32,
  ringq: Tensor<u32, readonly [number, number, number, number, number, number, number]>,
  rings: Tensor<f16, readonly [number, number, number, number, number]>,
) {
  for (let ta = 0; ta < TILES; ta++) {
    for (let ra = 0; ra < 2; ra++)
      for (let ha = 0; ha < 2; ha++)
        for (let va = 0; va < Q4_WORDS_PER_GROUP; va++)
          copyAsync(
            ringq[w][slot][ta][ra][ha][lane][va],
            packed[row0 + ta * tileStride + ra * rowStride + (lane >> 2)][
              (c * CHUNK_GROUPS + (lane & 3) + 4 * ha) * Q4_WORDS_PER_GROUP + va
            ],
          );
    if (lane < 16)
      for (let ga = 0; ga < CHUNK_GROUPS; ga++)
        copyAsync(
          rings[w][slot][ta][lane][ga],
          scales[row0 + ta * tileStride + (lane & 7) + (lane >> 3) * rowStride][c * CHUNK_GROUPS + ga],
        );
  }
}

/**
 * Each (warp, lane)'s sums of its rows over its groups, into part[warp][lane][tile][g or g + 8]:
 * tile t's rows r and r + 8 (r < 8) are weight rows row0 + t * tileStride + r and that + rowStride
 * (rowStride 8: 16 consecutive rows; d / 2 in the RoPE kernels, so that a tile holds both
 * elements of 8 rotation pairs). The kernels add them up per row in their epilogue (mmaRowSum,
 * mmaPairSums). With NORM, x is multiplied by the norm weight wn as it
 * is staged and each warp's sum of x's squares goes to ssw[warp][0][0][0] (mmaRmsScale); without,
 * neither is touched, and the plain kernels pass x and part in their places.
 */
export function q4MmaPartials(
  x: Tensor<f16, readonly [number]>,
  wn: Tensor<f16, readonly [number]>,
  packed: Tensor<u32, readonly [number, number]>,
  scales: Tensor<f16, readonly [number, number]>,
  row0: i32,
  tileStride: i32,
  rowStride: i32,
  part: Tensor<f32, readonly [number, number, number, number]>,
  ssw: Tensor<f32, readonly [number, number, number, number]>,
) {
  const chunks = idiv(scales.shape[1], CHUNK_GROUPS);
  const rounds = idiv(chunks + WARPS - 1, WARPS);
  const acc = local("f32", [WARPS, LANES, TILES, 2]);
  const cacc = local("f32", [WARPS, LANES, TILES, 4]);
  const wq = local("u32", [WARPS, LANES, TILES, 2, 2, Q4_WORDS_PER_GROUP]);
  // The scales of the chunk in wq, by C's layout (row mmaCRow, group mmaCCol of each register).
  const ws = local("f16", [WARPS, LANES, TILES, 4]);
  const af = local("u32", [WARPS, LANES, 4]);
  const bf = local("u32", [WARPS, LANES, 2]);
  // Each warp's chunk of x as B's f16 pairs (x[k], x[k + 4]), by group, word and pair, and a row
  // of zeros (group CHUNK_GROUPS; two rows, one element per lane) that the lanes whose column is
  // not their group read instead: a lane's B registers for half h of its groups are one 16-byte
  // shared load per word.
  const xb = shared("u32", [WARPS, CHUNK_GROUPS + 2, Q4_WORDS_PER_GROUP, 4]);
  // With NORM: each lane's sum of the squares of the x it staged (every chunk once per block).
  const sq = local("f32", [WARPS, LANES]);
  for (let wz = 0; wz < WARPS; wz++)
    for (let lz = 0; lz < LANES; lz++) {
      for (let tz = 0; tz < TILES; tz++) {
        for (let hz = 0; hz < 2; hz++) acc[wz][lz][tz][hz] = f32(0);
        for (let rz = 0; rz < 4; rz++) cacc[wz][lz][tz][rz] = f32(0);
      }
      xb[wz][CHUNK_GROUPS + (lz >> 4)][(lz >> 2) & 3][lz & 3] = u32(0);
      sq[wz][lz] = f32(0);
    }
  // The first round's codes and scales, read before anything another kernel writes: the kernels'
  // schedules declare the weights invariant (written by no kernel), so under programmatic
  // dependent launch these loads are issued before the wait for the previous kernel and overlap
  // its tail (lower/passes/dependency_wait.ts). The same loads end each round for the next.
  // With STAGES: the ring, and its first STAGES rounds' copies (a group each, empty past the last
  // round), issued before the wait as the register loads are.
  const ringq = shared("u32", [WARPS, SLOTS, TILES, 2, 2, LANES, Q4_WORDS_PER_GROUP]);
  const rings = shared("f16", [WARPS, SLOTS, TILES, 16, CHUNK_GROUPS]);
  if (STAGES > 0)
    for (let pa = 0; pa < STAGES; pa++) {
      if (pa < rounds)
        for (let wa = 0; wa < WARPS; wa++)
          for (let la = 0; la < LANES; la++) {
            const c = min(pa * WARPS + wa, chunks - 1);
            q4CopyChunk(packed, scales, row0, tileStride, rowStride, c, wa, la, pa, ringq, rings);
          }
      commitAsync();
    }
  else
    for (let wb = 0; wb < WARPS; wb++)
      for (let lb = 0; lb < LANES; lb++) {
        const c = min(wb, chunks - 1);
        q4LoadChunk(packed, scales, row0, tileStride, rowStride, c, wb, lb, wq, ws);
      }
  for (let ci = 0; ci < rounds; ci++) {
    // With STAGES: this round's slot, once landed, into the registers the products read; then the
    // slot refilled with the round STAGES on (a group every round, empty near the end, so that
    // waiting for all but the latest STAGES - 1 groups always means this round's).
    if (STAGES > 0) {
      waitAsync(STAGES - 1);
      for (let wy = 0; wy < WARPS; wy++)
        for (let ly = 0; ly < LANES; ly++)
          for (let ty = 0; ty < TILES; ty++) {
            for (let ry = 0; ry < 2; ry++)
              for (let hy = 0; hy < 2; hy++)
                for (let vy = 0; vy < Q4_WORDS_PER_GROUP; vy++)
                  wq[wy][ly][ty][ry][hy][vy] = ringq[wy][ci % STAGES][ty][ry][hy][ly][vy];
            for (let sy = 0; sy < 4; sy++)
              ws[wy][ly][ty][sy] = rings[wy][ci % STAGES][ty][L.mmaCRow(ly, sy)][L.mmaCCol(ly, sy)];
          }
      if (ci + STAGES < rounds)
        for (let wn2 = 0; wn2 < WARPS; wn2++)
          for (let ln2 = 0; ln2 < LANES; ln2++) {
            const cn = min((ci + STAGES) * WARPS + wn2, chunks - 1);
            q4CopyChunk(packed, scales, row0, tileStride, rowStride, cn, wn2, ln2, ci % STAGES, ringq, rings);
          }
      commitAsync();
    }
    // Lane l packs word l & 3 of its warp's chunk's group l >> 2 (eight consecutive elements of x,
    // times wn's with NORM, each product rounded to f16 as rmsNorm rounds its output).
    for (let wx = 0; wx < WARPS; wx++)
      for (let lx = 0; lx < LANES; lx++)
        for (let jx = 0; jx < 4; jx++) {
          const c = ci * WARPS + wx;
          const k0 = min(c, chunks - 1) * MMA_GEMV_CHUNK + (lx >> 2) * Q4_GROUP + (lx & 3) * 8 + jx;
          if (NORM === 1) {
            const a = f32(x[k0]);
            const b = f32(x[k0 + 4]);
            xb[wx][lx >> 2][lx & 3][jx] = packF16x2(f16(a * f32(wn[k0])), f16(b * f32(wn[k0 + 4])));
            sq[wx][lx] += select(c < chunks, a * a + b * b, f32(0));
          } else xb[wx][lx >> 2][lx & 3][jx] = packF16x2(x[k0], x[k0 + 4]);
        }
    // One product per (half of the groups, word, pair of codes, tile): A's registers are rows g
    // and g + 8 with codes (2s, 2s + 4) and (2s + 1, 2s + 5) of the word; B's are x where the
    // lane's column is its group (g = t + 4h), zeros elsewhere.
    for (let hh = 0; hh < 2; hh++) {
      for (let vv = 0; vv < Q4_WORDS_PER_GROUP; vv++) {
        for (let ss = 0; ss < 2; ss++) {
          for (let wg = 0; wg < WARPS; wg++)
            for (let lg = 0; lg < LANES; lg++) {
              const group = select(lg >> 2 === (lg & 3) + 4 * hh, (lg & 3) + 4 * hh, CHUNK_GROUPS);
              for (let jg = 0; jg < 2; jg++) bf[wg][lg][jg] = xb[wg][group][vv][2 * ss + jg];
            }
          for (let tt = 0; tt < TILES; tt++) {
            for (let wf = 0; wf < WARPS; wf++)
              for (let lf = 0; lf < LANES; lf++)
                for (let jf = 0; jf < 4; jf++)
                  af[wf][lf][jf] = q4PairF16x2(wq[wf][lf][tt][jf & 1][hh][vv], 2 * ss + (jf >> 1));
            for (let wp = 0; wp < WARPS; wp++) {
              for (let lane = 0; lane < LANES; lane++) {
                for (let r = 0; r < 4; r++) {
                  for (let kk = 0; kk < 16; kk++) {
                    const row = L.mmaCRow(lane, r);
                    const col = L.mmaCCol(lane, r);
                    cacc[wp][lane][tt][r] +=
                      f32(unpackF16x2(af[wp][L.mmaALane(row, kk)][L.mmaAReg(row, kk)], kk & 1)) *
                      f32(unpackF16x2(bf[wp][L.mmaBLane(col, kk)][L.mmaBReg(kk)], kk & 1));
                  }
                }
              }
            }
          }
        }
      }
    }
    // Column n of C is group 8c + n: scaled once and added to the row's sum. Then the next
    // round's codes and scales, into the registers this round has finished with (a warp past the
    // last chunk reloads the last one; its sums are dropped).
    for (let we = 0; we < WARPS; we++) {
      for (let le = 0; le < LANES; le++) {
        const c = ci * WARPS + we;
        for (let te = 0; te < TILES; te++)
          for (let re = 0; re < 4; re++) {
            acc[we][le][te][re >> 1] += select(
              c < chunks,
              cacc[we][le][te][re] * f32(ws[we][le][te][re]),
              f32(0),
            );
            cacc[we][le][te][re] = f32(0);
          }
        if (STAGES === 0 && ci + 1 < rounds) {
          const cn = min(c + WARPS, chunks - 1);
          q4LoadChunk(packed, scales, row0, tileStride, rowStride, cn, we, le, wq, ws);
        }
      }
    }
  }
  for (let wr = 0; wr < WARPS; wr++)
    for (let lr = 0; lr < LANES; lr++)
      for (let tr = 0; tr < TILES; tr++)
        for (let hr = 0; hr < 2; hr++) part[wr][lr][tr][hr] = acc[wr][lr][tr][hr];
  // With NORM: each warp's sum of squares (its lanes' by shuffles), ssw[warp]; the warps' chunks
  // cover x once, so sum(ssw) is x's.
  if (NORM === 1)
    for (let wv = 0; wv < WARPS; wv++) {
      let s = f32(0);
      for (let lv = 0; lv < LANES; lv++) s += sq[wv][lv];
      ssw[wv][0][0][0] = s;
    }
}

/**
 * sum[0] = row r (0..15) of tile `tile`: its partial sums in part (q4MmaPartials) over warps and
 * lanes, in that order. Called by each kernel's epilogue loop over rows, whose stores keep it to
 * one warp (a helper writing every row's sum to shared memory first ran it in every warp: 6-34%
 * slower per GEMV on an H100).
 */
export function mmaRowSum(
  part: Tensor<f32, readonly [number, number, number, number]>,
  tile: i32,
  r: i32,
  sum: Tensor<f32, readonly [number]>,
) {
  // Four chains of WARPS additions, not one of 4 * WARPS: the epilogue's latency.
  const s4 = local("f32", [4]);
  for (let jo = 0; jo < 4; jo++) {
    s4[jo] = f32(0);
    for (let wo = 0; wo < WARPS; wo++) s4[jo] += part[wo][(r & 7) * 4 + jo][tile][r >> 3];
  }
  sum[0] = s4[0] + s4[1] + (s4[2] + s4[3]);
}

/**
 * As mmaRowSum for the gate/up kernels' output r: its gate row into lo and its up row into hi.
 * With two tiles (TILES 2: 16 outputs a block) they are row r of tile 0 and of tile 1; with one
 * (8 outputs a block) rows r and r + 8 of the tile.
 */
function mmaPairSums(
  part: Tensor<f32, readonly [number, number, number, number]>,
  r: i32,
  lo: Tensor<f32, readonly [number]>,
  hi: Tensor<f32, readonly [number]>,
) {
  const lo4 = local("f32", [4]);
  const hi4 = local("f32", [4]);
  for (let jo = 0; jo < 4; jo++) {
    lo4[jo] = f32(0);
    hi4[jo] = f32(0);
    for (let wo = 0; wo < WARPS; wo++) {
      lo4[jo] += part[wo][(r & 7) * 4 + jo][0][r >> 3];
      hi4[jo] += part[wo][(r & 7) * 4 + jo][TILES - 1][(r >> 3) + 2 - TILES];
    }
  }
  lo[0] = lo4[0] + lo4[1] + (lo4[2] + lo4[3]);
  hi[0] = hi4[0] + hi4[1] + (hi4[2] + hi4[3]);
}

/** y = W x (as q4Gemv), on tensor cores. */
export const q4GemvMma = kernel(function q4GemvMma(
  x: Tensor<f16, [Sym<"k">]>,
  packed: Tensor<u32, [Sym<"n">, Sym<"kw">]>,
  scales: Tensor<f16, [Sym<"n">, Sym<"kg">]>,
  y: Tensor<f16, [Sym<"n">]>,
) {
  for (let blk = 0; blk < idiv(y.shape[0], MMA_ROWS); blk++) {
    q4PrefetchTiles(packed, scales, blk * MMA_ROWS, 16, 8);
    const part = shared("f32", [WARPS, LANES, TILES, 2]);
    q4MmaPartials(x, x, packed, scales, blk * MMA_ROWS, 16, 8, part, part);
    for (let ro = 0; ro < MMA_ROWS; ro++) {
      const sum = local("f32", [1]);
      mmaRowSum(part, ro >> 4, ro & 15, sum);
      y[blk * MMA_ROWS + ro] = f16(sum[0]);
    }
  }
});

/** y = residual + W x (as q4GemvResidual: W x rounded to f16 first), on tensor cores; y may alias residual. */
export const q4GemvResidualMma = kernel(function q4GemvResidualMma(
  x: Tensor<f16, [Sym<"k">]>,
  packed: Tensor<u32, [Sym<"n">, Sym<"kw">]>,
  scales: Tensor<f16, [Sym<"n">, Sym<"kg">]>,
  residual: Tensor<f16, [Sym<"n">]>,
  y: Tensor<f16, [Sym<"n">]>,
) {
  for (let blk = 0; blk < idiv(y.shape[0], MMA_ROWS); blk++) {
    q4PrefetchTiles(packed, scales, blk * MMA_ROWS, 16, 8);
    const part = shared("f32", [WARPS, LANES, TILES, 2]);
    q4MmaPartials(x, x, packed, scales, blk * MMA_ROWS, 16, 8, part, part);
    for (let ro = 0; ro < MMA_ROWS; ro++) {
      // The residual first: its load overlaps the wait for the other warps' partial sums.
      const row = blk * MMA_ROWS + ro;
      const res = f32(residual[row]);
      const sum = local("f32", [1]);
      mmaRowSum(part, ro >> 4, ro & 15, sum);
      y[row] = f16(res + f32(f16(sum[0])));
    }
  }
});

/** y = W x in f32 (logits; as q4GemvF32), on tensor cores. */
export const q4GemvF32Mma = kernel(function q4GemvF32Mma(
  x: Tensor<f16, [Sym<"k">]>,
  packed: Tensor<u32, [Sym<"n">, Sym<"kw">]>,
  scales: Tensor<f16, [Sym<"n">, Sym<"kg">]>,
  y: Tensor<f32, [Sym<"n">]>,
) {
  for (let blk = 0; blk < idiv(y.shape[0], MMA_ROWS); blk++) {
    q4PrefetchTiles(packed, scales, blk * MMA_ROWS, 16, 8);
    const part = shared("f32", [WARPS, LANES, TILES, 2]);
    q4MmaPartials(x, x, packed, scales, blk * MMA_ROWS, 16, 8, part, part);
    for (let ro = 0; ro < MMA_ROWS; ro++) {
      const sum = local("f32", [1]);
      mmaRowSum(part, ro >> 4, ro & 15, sum);
      y[blk * MMA_ROWS + ro] = sum[0];
    }
  }
});

/**
 * Outputs of a gate/up block: with two tiles (MMA_ROWS 32) tile 0 holds 16 gate rows and tile 1
 * the 16 up rows of the same outputs; with one (MMA_ROWS 16) the tile holds 8 gate rows and their
 * 8 up rows: twice the blocks, for weights whose blocks would otherwise end in a thin last wave.
 */
const GATE_UP_OUTPUTS = 8 * TILES;

/** The distance from a gate/up tile's first 8 rows to its other 8: the next gate rows, or the up rows. */
function gateUpRowStride(inter: i32): i32 {
  return 8 + (2 - TILES) * (inter - 8);
}

/**
 * out = SiLU(Wg x) * (Wu x) (as q4GateUpSilu; W = [Wg; Wu], [2 I, K]), on tensor cores: a block's
 * outputs are GATE_UP_OUTPUTS (I a multiple of them).
 */
export const q4GateUpSiluMma = kernel(function q4GateUpSiluMma(
  x: Tensor<f16, [Sym<"k">]>,
  packed: Tensor<u32, [Sym<"n2">, Sym<"kw">]>,
  scales: Tensor<f16, [Sym<"n2">, Sym<"kg">]>,
  out: Tensor<f16, [Sym<"i">]>,
) {
  const inter = out.shape[0];
  for (let blk = 0; blk < idiv(inter, GATE_UP_OUTPUTS); blk++) {
    const rowStride = gateUpRowStride(inter);
    q4PrefetchTiles(packed, scales, blk * GATE_UP_OUTPUTS, inter, rowStride);
    const part = shared("f32", [WARPS, LANES, TILES, 2]);
    q4MmaPartials(x, x, packed, scales, blk * GATE_UP_OUTPUTS, inter, rowStride, part, part);
    for (let ro = 0; ro < GATE_UP_OUTPUTS; ro++) {
      const gate = local("f32", [1]);
      const up = local("f32", [1]);
      mmaPairSums(part, ro, gate, up);
      out[blk * GATE_UP_OUTPUTS + ro] = f16(silu(f32(f16(gate[0]))) * f32(f16(up[0])));
    }
  }
});

/**
 * The RMSNorm-folded kernels' scale: rsqrt(mean(x^2) + eps) from the warps' sums of squares
 * (ssw, q4MmaPartials with NORM), the same for every row, applied to each row's sum. The sums used
 * x * wn rounded to f16 (rmsNorm's rounding, without its scale), so an output differs from rmsNorm
 * followed by the plain kernel by roundings only.
 */
export function mmaRmsScale(
  ssw: Tensor<f32, readonly [number, number, number, number]>,
  k: i32,
  eps: f32,
  r: Tensor<f32, readonly [number]>,
) {
  let ss = f32(0);
  for (let wm = 0; wm < WARPS; wm++) ss += ssw[wm][0][0][0];
  r[0] = rsqrt(ss / f32(k) + eps);
}

/** y = W rmsNorm(x, wn, eps) (as q4GemvRows4Rms), on tensor cores. */
export const q4GemvRmsMma = kernel(
  function q4GemvRmsMma(
    x: Tensor<f16, [Sym<"k">]>,
    wn: Tensor<f16, [Sym<"k">]>,
    eps: f32,
    packed: Tensor<u32, [Sym<"n">, Sym<"kw">]>,
    scales: Tensor<f16, [Sym<"n">, Sym<"kg">]>,
    y: Tensor<f16, [Sym<"n">]>,
  ) {
    for (let blk = 0; blk < idiv(y.shape[0], MMA_ROWS); blk++) {
      q4PrefetchTiles(packed, scales, blk * MMA_ROWS, 16, 8);
      const part = shared("f32", [WARPS, LANES, TILES, 2]);
      const ssw = shared("f32", [WARPS, 1, 1, 1]);
      q4MmaPartials(x, wn, packed, scales, blk * MMA_ROWS, 16, 8, part, ssw);
      for (let ro = 0; ro < MMA_ROWS; ro++) {
        const sum = local("f32", [1]);
        const r = local("f32", [1]);
        mmaRowSum(part, ro >> 4, ro & 15, sum);
        mmaRmsScale(ssw, x.shape[0], eps, r);
        y[blk * MMA_ROWS + ro] = f16(sum[0] * r[0]);
      }
    }
  },
  { consts: { NORM: 1 } },
);

/** out = SiLU(Wg x̂) * (Wu x̂) with x̂ = rmsNorm(x, wn, eps) (as q4GateUpSiluRms), on tensor cores. */
export const q4GateUpSiluRmsMma = kernel(
  function q4GateUpSiluRmsMma(
    x: Tensor<f16, [Sym<"k">]>,
    wn: Tensor<f16, [Sym<"k">]>,
    eps: f32,
    packed: Tensor<u32, [Sym<"n2">, Sym<"kw">]>,
    scales: Tensor<f16, [Sym<"n2">, Sym<"kg">]>,
    out: Tensor<f16, [Sym<"i">]>,
  ) {
    const inter = out.shape[0];
    for (let blk = 0; blk < idiv(inter, GATE_UP_OUTPUTS); blk++) {
      const rowStride = gateUpRowStride(inter);
      q4PrefetchTiles(packed, scales, blk * GATE_UP_OUTPUTS, inter, rowStride);
      const part = shared("f32", [WARPS, LANES, TILES, 2]);
      const ssw = shared("f32", [WARPS, 1, 1, 1]);
      q4MmaPartials(x, wn, packed, scales, blk * GATE_UP_OUTPUTS, inter, rowStride, part, ssw);
      for (let ro = 0; ro < GATE_UP_OUTPUTS; ro++) {
        const gate = local("f32", [1]);
        const up = local("f32", [1]);
        const r = local("f32", [1]);
        mmaPairSums(part, ro, gate, up);
        mmaRmsScale(ssw, x.shape[0], eps, r);
        out[blk * GATE_UP_OUTPUTS + ro] = f16(silu(f32(f16(gate[0] * r[0]))) * f32(f16(up[0] * r[0])));
      }
    }
  },
  { consts: { NORM: 1 } },
);
