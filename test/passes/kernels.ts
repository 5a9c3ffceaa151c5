/** Kernels the lowering-pass tests schedule and lower (the frontend reads this file's source). */
import {
  kernel,
  f32,
  i32,
  max,
  min,
  rsqrt,
  idiv,
  shared,
  local,
  prefetchL2,
  type Tensor,
  type Sym,
} from "../../dsl/index.ts";

/** y = x * rsqrt(mean(x^2) + eps) * w, per row: a row reduction then an elementwise stage. */
export const rmsNormRows = kernel(function rmsNormRows(
  x: Tensor<f32, [Sym<"m">, Sym<"n">]>,
  w: Tensor<f32, [Sym<"n">]>,
  y: Tensor<f32, [Sym<"m">, Sym<"n">]>,
  eps: f32,
) {
  for (let i = 0; i < x.shape[0]; i++) {
    let ss = f32(0);
    for (let k = 0; k < x.shape[1]; k++) ss += x[i][k] * x[i][k];
    const r = rsqrt(ss / f32(x.shape[1]) + eps);
    for (let k = 0; k < x.shape[1]; k++) y[i][k] = x[i][k] * r * w[k];
  }
});

/** C = A @ B, the reference for the tiled kernel below. */
export const matmul = kernel(function matmul(
  a: Tensor<f32, [Sym<"m">, Sym<"k">]>,
  b: Tensor<f32, [Sym<"k">, Sym<"n">]>,
  c: Tensor<f32, [Sym<"m">, Sym<"n">]>,
) {
  for (let i = 0; i < a.shape[0]; i++)
    for (let j = 0; j < b.shape[1]; j++) {
      let acc = f32(0);
      for (let k = 0; k < a.shape[1]; k++) acc += a[i][k] * b[k][j];
      c[i][j] = acc;
    }
});

const T = 8;

/**
 * The same product written pre-tiled for a GPU: 8 x 8 tiles of C per block (loops by, bx), one
 * element per thread (ty, tx), A and B staged through shared-memory tiles per step of k. The
 * loops named b* and t* are bound to blockIdx/threadIdx by the tests; serially it computes C.
 */
export const matmulTiled = kernel(function matmulTiled(
  a: Tensor<f32, [Sym<"m">, Sym<"k">]>,
  b: Tensor<f32, [Sym<"k">, Sym<"n">]>,
  c: Tensor<f32, [Sym<"m">, Sym<"n">]>,
) {
  const M = a.shape[0];
  const K = a.shape[1];
  const N = b.shape[1];
  for (let by = 0; by < idiv(M + T - 1, T); by++)
    for (let bx = 0; bx < idiv(N + T - 1, T); bx++) {
      const As = shared("f32", [T, T]);
      const Bs = shared("f32", [T, T]);
      const acc = local("f32", [T, T]);
      for (let ty = 0; ty < T; ty++) for (let tx = 0; tx < T; tx++) acc[ty][tx] = f32(0);
      for (let ko = 0; ko < idiv(K + T - 1, T); ko++) {
        for (let ty1 = 0; ty1 < T; ty1++)
          for (let tx1 = 0; tx1 < T; tx1++) {
            As[ty1][tx1] = by * T + ty1 < M && ko * T + tx1 < K ? a[by * T + ty1][ko * T + tx1] : f32(0);
            Bs[ty1][tx1] = ko * T + ty1 < K && bx * T + tx1 < N ? b[ko * T + ty1][bx * T + tx1] : f32(0);
          }
        for (let ty2 = 0; ty2 < T; ty2++)
          for (let tx2 = 0; tx2 < T; tx2++)
            for (let ki = 0; ki < T; ki++) acc[ty2][tx2] += As[ty2][ki] * Bs[ki][tx2];
      }
      for (let ty3 = 0; ty3 < T; ty3++)
        for (let tx3 = 0; tx3 < T; tx3++)
          if (by * T + ty3 < M && bx * T + tx3 < N) c[by * T + ty3][bx * T + tx3] = acc[ty3][tx3];
    }
});

/** y = x * 2 + b per element: no reduction, so any binding of its loops is a plain map. */
export const scaleRows = kernel(function scaleRows(
  x: Tensor<f32, [Sym<"m">, Sym<"n">]>,
  b: Tensor<f32, [Sym<"n">]>,
  y: Tensor<f32, [Sym<"m">, Sym<"n">]>,
) {
  for (let i = 0; i < x.shape[0]; i++) for (let j = 0; j < x.shape[1]; j++) y[i][j] = x[i][j] * 2 + b[j];
});

/** Rows of a static width 16, for vectorizing: y = x * s + b[i]. */
export const scaleWide = kernel(function scaleWide(
  x: Tensor<f32, [Sym<"m">, 16]>,
  b: Tensor<f32, [Sym<"m">]>,
  y: Tensor<f32, [Sym<"m">, 16]>,
) {
  for (let i = 0; i < x.shape[0]; i++) for (let j = 0; j < 16; j++) y[i][j] = x[i][j] * 3 + b[i];
});

/** Two loops over different symbolic extents. */
export const twoShapes = kernel(function twoShapes(x: Tensor<f32, [Sym<"m">]>, z: Tensor<f32, [Sym<"n">]>) {
  for (let i = 0; i < x.shape[0]; i++) x[i] = x[i] + 1;
  for (let j = 0; j < z.shape[0]; j++) z[j] = z[j] * 2;
});

/** Integer row reductions: a max through a local, a sum straight into the output. */
export const rowMaxSum = kernel(function rowMaxSum(
  x: Tensor<i32, [Sym<"m">, Sym<"n">]>,
  mx: Tensor<i32, [Sym<"m">]>,
  sm: Tensor<i32, [Sym<"m">]>,
) {
  for (let i = 0; i < x.shape[0]; i++) {
    let best = i32(-1000);
    for (let k = 0; k < x.shape[1]; k++) best = max(best, x[i][k]);
    mx[i] = best;
    sm[i] = 0;
    for (let k = 0; k < x.shape[1]; k++) sm[i] += x[i][k] ^ 5;
  }
});

/** A prefix sum and a last-writer store: loops that are not reductions across threads. */
export const notAcross = kernel(function notAcross(
  x: Tensor<f32, [32]>,
  y: Tensor<f32, [32]>,
  z: Tensor<f32, [1]>,
) {
  let s = f32(0);
  for (let t = 0; t < 32; t++) {
    s += x[t];
    y[t] = s;
  }
  for (let t = 0; t < 32; t++) z[0] = x[t];
});

/** Shared memory read at another thread's index under a thread-dependent branch. */
export const halfSwap = kernel(function halfSwap(x: Tensor<f32, [32]>, y: Tensor<f32, [32]>) {
  const sh = shared("f32", [32]);
  for (let t = 0; t < 32; t++)
    if (t < 16) {
      sh[t] = x[t];
      y[t] = sh[15 - t];
    }
});

/** An unrolled loop whose body binds a value. */
export const polyEval = kernel(function polyEval(
  x: Tensor<f32, [Sym<"n">]>,
  c: Tensor<f32, [4]>,
  y: Tensor<f32, [Sym<"n">]>,
) {
  for (let i = 0; i < x.shape[0]; i++) {
    let acc = f32(0);
    for (let p = 0; p < 4; p++) {
      const term = c[p] * x[i];
      acc = acc * x[i] + term;
    }
    y[i] = acc;
  }
});

/** A 64 KB shared tile: a transpose through shared memory. */
export const bigTile = kernel(function bigTile(x: Tensor<f32, [128, 128]>, y: Tensor<f32, [128, 128]>) {
  const t = shared("f32", [128, 128]);
  for (let i = 0; i < 128; i++) for (let j = 0; j < 128; j++) t[i][j] = x[i][j];
  for (let i = 0; i < 128; i++) for (let j = 0; j < 128; j++) y[i][j] = t[j][i];
});

/** A copy in two steps into one shared tile, then a sum over it: the steps write different elements. */
export const stagedTwice = kernel(function stagedTwice(x: Tensor<f32, [64]>, y: Tensor<f32, [32]>) {
  const tile = shared("f32", [64]);
  for (let s = 0; s < 2; s++) for (let t = 0; t < 32; t++) tile[s * 32 + t] = x[s * 32 + t];
  for (let u = 0; u < 32; u++) y[u] = tile[u] + tile[63 - u];
});

/** The same copy into one row of 32 that both steps overwrite: the second must wait for the first. */
export const stagedOver = kernel(function stagedOver(x: Tensor<f32, [64]>, y: Tensor<f32, [32]>) {
  const tile = shared("f32", [32]);
  for (let s = 0; s < 2; s++) for (let t = 0; t < 32; t++) tile[t] = x[s * 32 + t];
  for (let u = 0; u < 32; u++) y[u] = tile[u] + tile[31 - u];
});

/**
 * y[b] = x[b] * s[b] per row of 64 (loops b: blockIdx, tp and t: threadIdx): each block first
 * prefetches its row of x, two 128-byte lines, one per thread of the first two, then the next
 * row as one range.
 */
export const scaleRowsPrefetched = kernel(function scaleRowsPrefetched(
  x: Tensor<f32, [Sym<"m">, 64]>,
  s: Tensor<f32, [Sym<"m">]>,
  y: Tensor<f32, [Sym<"m">, 64]>,
) {
  for (let b = 0; b < x.shape[0]; b++) {
    for (let tp = 0; tp < 2; tp++) prefetchL2(x[b][tp * 32]);
    prefetchL2(x[min(b + 1, x.shape[0] - 1)][0], 64);
    const scale = local("f32", [1]);
    scale[0] = s[b];
    for (let t = 0; t < 64; t++) y[b][t] = x[b][t] * scale[0];
  }
});

/**
 * Each warp transposes its 4 x 8 tile through its own slice of a shared buffer, addressed by the
 * lane's bit fields (lane >> 3, lane & 7): a warp barrier orders it (the warp-private test looks
 * only at the warp index's coefficient and bounds the rest).
 */
export const warpTileTranspose = kernel(function warpTileTranspose(
  x: Tensor<f32, [4, 32]>,
  y: Tensor<f32, [4, 32]>,
) {
  const sh = shared("f32", [4, 8, 4]);
  for (let w = 0; w < 4; w++) for (let l = 0; l < 32; l++) sh[w][l & 7][l >> 3] = x[w][l];
  for (let w2 = 0; w2 < 4; w2++) for (let l2 = 0; l2 < 32; l2++) y[w2][l2] = sh[w2][l2 >> 2][l2 & 3];
});

/** A block count named by a `const` (the grid is read with it substituted): y = x + 1 in blocks of 4. */
export const namedBlocks = kernel(function namedBlocks(
  x: Tensor<f32, [Sym<"n">]>,
  y: Tensor<f32, [Sym<"n">]>,
) {
  const blocks = idiv(x.shape[0] + 3, 4);
  for (let b = 0; b < blocks; b++)
    for (let t = 0; t < 4; t++) if (b * 4 + t < x.shape[0]) y[b * 4 + t] = x[b * 4 + t] + 1;
});

/** A loop whose extent is read from memory: no grid can be sized by it. */
export const loadedBlocks = kernel(function loadedBlocks(n: Tensor<i32, [1]>, y: Tensor<f32, [Sym<"m">]>) {
  const count = n[0];
  for (let b = 0; b < count; b++) if (b < y.shape[0]) y[b] = f32(1);
});

/**
 * A block stages its 4 x 32 slice of x in shared memory; then its epilogue, on 16 lanes, sums a
 * column each and stores it to a or to b depending on the lane (hoist_guards: every warp computes
 * it and warp 0 stores, unless the whole epilogue goes under warp 0's guard). With SHARE, the
 * epilogue also writes shared memory, which keeps it out of the guard.
 */
export const branchyEpilogue = kernel(function branchyEpilogue(
  x: Tensor<f32, [Sym<"n">]>,
  a: Tensor<f32, [Sym<"m">, Sym<"h">]>,
  b: Tensor<f32, [Sym<"m">, Sym<"h">]>,
) {
  for (let blk = 0; blk < a.shape[0]; blk++) {
    const sh = shared("f32", [4, 32]);
    const out = shared("f32", [16]);
    for (let w = 0; w < 4; w++) for (let l = 0; l < 32; l++) sh[w][l] = x[blk * 128 + w * 32 + l];
    for (let r = 0; r < 16; r++) {
      let s = f32(0);
      for (let w2 = 0; w2 < 4; w2++) s += sh[w2][r] * f32(w2 + 1);
      if (SHARE === 1) out[r] = s;
      if (r < 8) a[blk][r] = max(s, f32(0));
      else b[blk][r - 8] = s * f32(2);
    }
  }
});
const SHARE: number = 0;
