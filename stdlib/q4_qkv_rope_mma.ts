/**
 * The decode step's QKV projection on tensor cores with RoPE and the KV-cache append in its
 * epilogue (q4QkvRopeAppendMma, and q4QkvRopeAppendRmsMma with RMSNorm folded in): what the GEMV
 * of stdlib/q4_gemv_mma.ts then ropeHalfAppend compute, in one launch. The product is that file's
 * (q4MmaPartials, and its constants a variant overrides with withConsts: WARPS, MMA_ROWS with
 * TILES, NORM); only the blocks' rows and the epilogue are these kernels' own. With KV_PREFETCH the
 * blocks also ask L2 for the cache rows the attention after them reads.
 */
import {
  kernel,
  cos,
  sin,
  f16,
  f32,
  idiv,
  local,
  prefetchL2,
  shared,
  type i32,
  type u32,
  type Tensor,
  type Sym,
} from "../dsl/index.ts";
import { ropeAngle } from "./rope.ts";
import {
  LANES,
  NORM,
  TILES,
  WARPS,
  mmaRmsScale,
  mmaRowSum,
  q4MmaPartials,
  q4PrefetchTiles,
} from "./q4_gemv_mma.ts";

/**
 * 1 (withConsts) in the RoPE kernels (q4QkvRopeAppend*Mma): each block, once its rows are written,
 * prefetches into L2 the cache rows of the positions before `pos` that fall to it
 * (q4KvCachePrefetch), so the attention launched after the GEMV reads its keys and values from L2
 * rather than DRAM; 0 (the default): none. llama/op-choices.ts's prefetchDecodeKv chooses it.
 */
const KV_PREFETCH: number = 0;

/**
 * L2 prefetches of the key and value rows (all heads of a position: one contiguous range each) of
 * the positions p < pos with p = blk (mod blocks), issued by the block's first two threads after
 * its epilogue: the attention that follows reads every cached position before pos, and the
 * GEMV's last blocks leave DRAM bandwidth idle while the first ones prefetch. Only a hint: the
 * rows at pos, which this kernel writes, are not among them.
 */
function q4KvCachePrefetch(
  kCache: Tensor<f16, readonly [number, number, number]>,
  vCache: Tensor<f16, readonly [number, number, number]>,
  pos: i32,
  blk: i32,
  blocks: i32,
) {
  const row = kCache.shape[1] * kCache.shape[2];
  for (let wk = 0; wk < WARPS; wk++)
    for (let lk = 0; lk < LANES; lk++)
      for (let pk = 0; pk < idiv(kCache.shape[0] + blocks - 1, blocks); pk++) {
        const p = pk * blocks + blk;
        if (KV_PREFETCH === 1 && p < pos) {
          if (wk * LANES + lk === 0) prefetchL2(kCache[p][0][0], row);
          if (wk * LANES + lk === 1) prefetchL2(vCache[p][0][0], row);
        }
      }
}

/**
 * The RoPE kernels' blocks (q4QkvRopeAppendMma, q4QkvRopeAppendRmsMma): W = [Wq; Wk; Wv], h + 2 kvh
 * heads of d rows, d / 2 a multiple of 8 * TILES. A block's tile t holds rows i0 + 8t .. + 7 of one
 * head and their rotation partners d / 2 further (the tile's C rows r and r + 8), so the thread of
 * pair p holds both elements of its rotation: 8 * TILES pairs a block, as many blocks as the
 * plain kernels' 16 * TILES rows. Each projected value is rounded to f16 first (times
 * rsqrt(mean(x^2) + eps) with NORM, as q4GemvRmsMma's output), then rotated as ropeHalfAppend
 * rotates it: q heads go to qr, k heads to the cache, both rotated; v heads to the cache as they
 * are, all at position pos.
 */
function q4QkvRopeAppendBlocks(
  x: Tensor<f16, readonly [number]>,
  wn: Tensor<f16, readonly [number]>,
  eps: f32,
  packed: Tensor<u32, readonly [number, number]>,
  scales: Tensor<f16, readonly [number, number]>,
  qr: Tensor<f16, readonly [number, number]>,
  kCache: Tensor<f16, readonly [number, number, number]>,
  vCache: Tensor<f16, readonly [number, number, number]>,
  pos: i32,
  theta: f32,
) {
  const d = qr.shape[1];
  const half = idiv(d, 2);
  const heads = qr.shape[0];
  const kvHeads = kCache.shape[1];
  const perHead = idiv(half, 8 * TILES);
  const blocks = (heads + 2 * kvHeads) * perHead;
  for (let blk = 0; blk < blocks; blk++) {
    const head = idiv(blk, perHead);
    const i0 = (blk % perHead) * 8 * TILES;
    q4PrefetchTiles(packed, scales, head * d + i0, 8, half);
    const part = shared("f32", [WARPS, LANES, TILES, 2]);
    const ssw = shared("f32", [WARPS, 1, 1, 1]);
    q4MmaPartials(x, wn, packed, scales, head * d + i0, 8, half, part, ssw);
    for (let ro = 0; ro < 8 * TILES; ro++) {
      // The rotation first (v rows compute it too, unused): it overlaps the wait for the other
      // warps' partial sums.
      const i = i0 + ro;
      const angle = ropeAngle(pos, i, d, theta);
      const c = cos(angle);
      const s = sin(angle);
      const lo = local("f32", [1]);
      const hi = local("f32", [1]);
      const r = local("f32", [1]);
      mmaRowSum(part, ro >> 3, ro & 7, lo);
      mmaRowSum(part, ro >> 3, (ro & 7) + 8, hi);
      r[0] = f32(1);
      if (NORM === 1) mmaRmsScale(ssw, x.shape[0], eps, r);
      const a = f32(f16(lo[0] * r[0]));
      const b = f32(f16(hi[0] * r[0]));
      if (head < heads + kvHeads) {
        const y0 = f16(a * c - b * s);
        const y1 = f16(a * s + b * c);
        if (head < heads) {
          qr[head][i] = y0;
          qr[head][i + half] = y1;
        } else {
          kCache[pos][head - heads][i] = y0;
          kCache[pos][head - heads][i + half] = y1;
        }
      } else {
        vCache[pos][head - heads - kvHeads][i] = f16(a);
        vCache[pos][head - heads - kvHeads][i + half] = f16(b);
      }
    }
    q4KvCachePrefetch(kCache, vCache, pos, blk, blocks);
  }
}

/**
 * The decode step's QKV projection with RoPE (pairs (i, i + d/2), ropeHalfAppend's layout) and
 * the KV-cache append in its epilogue: what q4GemvMma then ropeHalfAppend compute, in one launch
 * (q4QkvRopeAppendBlocks).
 */
export const q4QkvRopeAppendMma = kernel(function q4QkvRopeAppendMma(
  x: Tensor<f16, [Sym<"k">]>,
  packed: Tensor<u32, [Sym<"n">, Sym<"kw">]>,
  scales: Tensor<f16, [Sym<"n">, Sym<"kg">]>,
  qr: Tensor<f16, [Sym<"h">, Sym<"d">]>,
  kCache: Tensor<f16, [Sym<"ctx">, Sym<"kvh">, Sym<"d">]>,
  vCache: Tensor<f16, [Sym<"ctx">, Sym<"kvh">, Sym<"d">]>,
  pos: i32,
  theta: f32,
) {
  q4QkvRopeAppendBlocks(x, x, f32(0), packed, scales, qr, kCache, vCache, pos, theta);
});

/**
 * q4QkvRopeAppendMma with RMSNorm folded in (as q4GemvRmsMma): what q4GemvRmsMma then
 * ropeHalfAppend compute, in one launch; the decode step's attention follows it directly.
 */
export const q4QkvRopeAppendRmsMma = kernel(
  function q4QkvRopeAppendRmsMma(
    x: Tensor<f16, [Sym<"k">]>,
    wn: Tensor<f16, [Sym<"k">]>,
    eps: f32,
    packed: Tensor<u32, [Sym<"n">, Sym<"kw">]>,
    scales: Tensor<f16, [Sym<"n">, Sym<"kg">]>,
    qr: Tensor<f16, [Sym<"h">, Sym<"d">]>,
    kCache: Tensor<f16, [Sym<"ctx">, Sym<"kvh">, Sym<"d">]>,
    vCache: Tensor<f16, [Sym<"ctx">, Sym<"kvh">, Sym<"d">]>,
    pos: i32,
    theta: f32,
  ) {
    q4QkvRopeAppendBlocks(x, wn, eps, packed, scales, qr, kCache, vCache, pos, theta);
  },
  { consts: { NORM: 1 } },
);
