/**
 * Small kernels the loop-transformation and loop-kind tests schedule. Odd sizes, so splits leave
 * tails; integer element types where the test wants results that match exactly.
 */
import { kernel, f32, i32, floordiv, min, type Tensor, type Sym } from "../../dsl/index.ts";

/** C += A B on integers: exact under any loop order. */
export const matmulInt = kernel(function matmulInt(
  a: Tensor<i32, [7, 5]>,
  b: Tensor<i32, [5, 9]>,
  c: Tensor<i32, [7, 9]>,
) {
  for (let i = 0; i < 7; i++)
    for (let j = 0; j < 9; j++) for (let k = 0; k < 5; k++) c[i][j] += a[i][k] * b[k][j];
});

/** C += A B in f32 with sizes known only at launch. */
export const matmulSym = kernel(function matmulSym(
  a: Tensor<f32, [Sym<"m">, Sym<"p">]>,
  b: Tensor<f32, [Sym<"p">, Sym<"n">]>,
  c: Tensor<f32, [Sym<"m">, Sym<"n">]>,
) {
  for (let i = 0; i < a.shape[0]; i++)
    for (let j = 0; j < b.shape[1]; j++) for (let k = 0; k < a.shape[1]; k++) c[i][j] += a[i][k] * b[k][j];
});

/** Each row adds the row above it, in place: row i + 1 depends on row i (distance (1, 0)). */
export const rowScan = kernel(function rowScan(y: Tensor<i32, [6, 5]>) {
  for (let i = 0; i < 5; i++) for (let j = 0; j < 5; j++) y[i + 1][j] = y[i + 1][j] + y[i][j];
});

/** Like rowScan, but reading up and to the right (distance (1, -1)): i and j may not swap. */
export const diagScan = kernel(function diagScan(y: Tensor<i32, [6, 6]>) {
  for (let i = 0; i < 5; i++) for (let j = 0; j < 5; j++) y[i + 1][j] = y[i + 1][j] + y[i][j + 1];
});

/** Two blocks in one nest: y reads t where the previous j iteration wrote it. */
export const twoStage = kernel(function twoStage(
  x: Tensor<i32, [5, 7]>,
  t: Tensor<i32, [5, 8]>,
  y: Tensor<i32, [5, 7]>,
) {
  for (let i = 0; i < 5; i++)
    for (let j = 0; j < 7; j++) {
      t[i][j + 1] = x[i][j] * 3;
      y[i][j] = t[i][j + 1] - t[i][j];
    }
});

/** Two blocks in one nest whose dependence crosses both loops: (i + 1, j) feeds (i, j + 1). */
export const twoStageSkew = kernel(function twoStageSkew(
  x: Tensor<i32, [5, 7]>,
  t: Tensor<i32, [6, 8]>,
  y: Tensor<i32, [5, 7]>,
) {
  for (let i = 0; i < 5; i++)
    for (let j = 0; j < 7; j++) {
      t[i + 1][j] = x[i][j] * 3;
      y[i][j] = t[i][j + 1];
    }
});

/** A lower-triangular nest: the range of j depends on i. */
export const triangle = kernel(function triangle(x: Tensor<i32, [6, 6]>, y: Tensor<i32, [6, 6]>) {
  for (let i = 0; i < 6; i++) for (let j = 0; j < i + 1; j++) y[i][j] = x[i][j] * 2;
});

/** The sum over both dimensions into one element: i and j are both reduction loops. */
export const sum2d = kernel(function sum2d(x: Tensor<f32, [5, 7]>, s: Tensor<f32, [1]>) {
  for (let i = 0; i < 5; i++) for (let j = 0; j < 7; j++) s[0] += x[i][j];
});

/** Row sums into an output param: j is a reduction loop for y. */
export const rowSum = kernel(function rowSum(
  x: Tensor<i32, [Sym<"m">, Sym<"n">]>,
  y: Tensor<i32, [Sym<"m">]>,
) {
  for (let i = 0; i < x.shape[0]; i++) for (let j = 0; j < x.shape[1]; j++) y[i] += x[i][j];
});

/** A running sum: iteration i + 1 reads what iteration i wrote. */
export const prefix = kernel(function prefix(x: Tensor<i32, [9]>, y: Tensor<i32, [10]>) {
  for (let i = 0; i < 9; i++) y[i + 1] = y[i] + x[i];
});

/** Reads every other element: stride 2 in the last index. */
export const evens = kernel(function evens(x: Tensor<i32, [18]>, y: Tensor<i32, [9]>) {
  for (let i = 0; i < 9; i++) y[i] = x[2 * i] + i32(1);
});

/** An elementwise kernel over a 3-d tensor, for fusing three loops. */
export const scale3 = kernel(function scale3(x: Tensor<i32, [3, 5, 7]>, y: Tensor<i32, [3, 5, 7]>) {
  for (let i = 0; i < 3; i++)
    for (let j = 0; j < 5; j++) for (let k = 0; k < 7; k++) y[i][j][k] = x[i][j][k] * 5 + i32(k);
});

/** Loops that start above 0. */
export const offsets = kernel(function offsets(x: Tensor<i32, [5, 8]>, y: Tensor<i32, [5, 8]>) {
  for (let i = 1; i < 4; i++) for (let j = 2; j < 7; j++) y[i][j] = x[i][j] + i32(j);
});

/** Every iteration overwrites y[0]: the last one wins. */
export const lastWins = kernel(function lastWins(x: Tensor<i32, [7]>, y: Tensor<i32, [1]>) {
  for (let i = 0; i < 7; i++) y[0] = x[i] * 2;
});

/** A reassigned scalar becomes a one-element local buffer outside the loop, used as a temporary. */
export const privateTemp = kernel(function privateTemp(x: Tensor<i32, [7]>, y: Tensor<i32, [7]>) {
  let t = i32(0);
  for (let i = 0; i < 7; i++) {
    t = x[i] * 2;
    y[i] = t + i32(1);
  }
});

/** Rows of 4 starting every 4 elements: distinct i never write the same y. */
export const packed = kernel(function packed(x: Tensor<i32, [5, 4]>, y: Tensor<i32, [20]>) {
  for (let i = 0; i < 5; i++) for (let j = 0; j < 4; j++) y[4 * i + j] = x[i][j];
});

/** Rows of 5 starting every 4 elements: neighbouring i overlap by one element. */
export const overlapped = kernel(function overlapped(x: Tensor<i32, [5, 5]>, y: Tensor<i32, [21]>) {
  for (let i = 0; i < 5; i++) for (let j = 0; j < 5; j++) y[4 * i + j] = x[i][j];
});

/** floordiv alone is not injective: nine iterations write each element. */
export const pick = kernel(function pick(x: Tensor<i32, [18]>, y: Tensor<i32, [2]>) {
  for (let i = 0; i < 18; i++) y[floordiv(i, 9)] = x[i];
});

/** Pairs (i, i + 8) of 16 elements: distinct i never meet (the range test, not the GCD test). */
export const halves = kernel(function halves(x: Tensor<i32, [16]>, y: Tensor<i32, [16]>) {
  for (let i = 0; i < 8; i++) {
    y[i] = x[i] - x[i + 8];
    y[i + 8] = x[i] + x[i + 8];
  }
});

/** Pairs (i, i + 7) for i < 8: iteration 0's y[7] is iteration 7's y[7]. */
export const halvesOverlap = kernel(function halvesOverlap(x: Tensor<i32, [16]>, y: Tensor<i32, [16]>) {
  for (let i = 0; i < 8; i++) {
    y[i] = x[i] * 2;
    y[i + 7] = x[i] + i32(1);
  }
});

/** A lane layout: lane >> 2 and lane & 3 name one element each (x = (x >> 2) * 4 + (x & 3)). */
export const laneLayout = kernel(function laneLayout(x: Tensor<i32, [32]>, y: Tensor<i32, [8, 4]>) {
  for (let lane = 0; lane < 32; lane++) y[lane >> 2][lane & 3] = x[lane];
});

/** lane >> 2 alone: four lanes write each row's first element. */
export const laneRowsOnly = kernel(function laneRowsOnly(x: Tensor<i32, [32]>, y: Tensor<i32, [8, 4]>) {
  for (let lane = 0; lane < 32; lane++) y[lane >> 2][0] = x[lane];
});

/** Tiles of 16 rows: (lane >> 2) + 8 * (r >> 1) stays below 16, so tiles t never meet (the range test). */
export const laneTiles = kernel(function laneTiles(x: Tensor<i32, [4, 32, 4]>, y: Tensor<i32, [64, 8]>) {
  for (let t = 0; t < 4; t++)
    for (let lane = 0; lane < 32; lane++)
      for (let r = 0; r < 4; r++)
        y[t * 16 + (lane >> 2) + 8 * (r >> 1)][(lane & 3) * 2 + (r & 1)] = x[t][lane][r];
});

/** The four digits of c < 64 (bits 5, 3-4, 2, 0-1) permuted into a row and a column: a bijection. */
export const digitsPermuted = kernel(function digitsPermuted(x: Tensor<i32, [64]>, y: Tensor<i32, [16, 4]>) {
  for (let c = 0; c < 64; c++) y[8 * (c >> 5) + ((c >> 3) & 3) + 4 * ((c >> 2) & 1)][c & 3] = x[c];
});

/** The same with bit 3 read twice and bit 2 never: c and c + 4 write one element. */
export const digitsRepeated = kernel(function digitsRepeated(x: Tensor<i32, [64]>, y: Tensor<i32, [16, 4]>) {
  for (let c = 0; c < 64; c++) y[8 * (c >> 5) + ((c >> 3) & 3) + 4 * ((c >> 3) & 1)][c & 3] = x[c];
});

/**
 * A 128-byte swizzle: row c >> 3, the column's chunk XOR the row's low bits. Each (row, column)
 * once: c pinned by the row and the column's chunk and element once the row is known.
 */
export const swizzledRows = kernel(function swizzledRows(x: Tensor<i32, [64, 8]>, y: Tensor<i32, [8, 64]>) {
  for (let c = 0; c < 64; c++)
    for (let v = 0; v < 8; v++) y[c >> 3][((c & 7) ^ ((c >> 3) & 7)) * 8 + v] = x[c][v];
});

/** XOR with the chunk's own low bit instead of the row's: chunks 0 and 1 of a row land on one element. */
export const swizzledSelf = kernel(function swizzledSelf(x: Tensor<i32, [64, 8]>, y: Tensor<i32, [8, 64]>) {
  for (let c = 0; c < 64; c++) for (let v = 0; v < 8; v++) y[c >> 3][((c & 7) ^ (c & 1)) * 8 + v] = x[c][v];
});

/**
 * Two swizzled tiles one after the other (stdlib/gemm_wgmma.ts at four groups a stage): tile
 * (c >> 1) & 1 and row c >> 4 make the row index; the column's chunk XORs the row's low bits,
 * which are known only once the row index is taken apart. Each element once.
 */
export const swizzledTiles = kernel(function swizzledTiles(
  x: Tensor<i32, [256, 8]>,
  y: Tensor<i32, [32, 64]>,
) {
  for (let c = 0; c < 256; c++)
    for (let v = 0; v < 8; v++)
      y[((c >> 1) & 1) * 16 + (c >> 4)][((4 * (c & 1) + ((c >> 2) & 3)) ^ ((c >> 4) & 7)) * 8 + v] = x[c][v];
});

/** The same without bit 1 of c (the tile): chunks c and c + 2 land on one element. */
export const swizzledTilesSame = kernel(function swizzledTilesSame(
  x: Tensor<i32, [256, 8]>,
  y: Tensor<i32, [32, 64]>,
) {
  for (let c = 0; c < 256; c++)
    for (let v = 0; v < 8; v++)
      y[(c >> 4) + 16 * ((c >> 3) & 1)][((4 * (c & 1) + ((c >> 2) & 3)) ^ ((c >> 4) & 7)) * 8 + v] = x[c][v];
});

/**
 * A tile of 16 per iteration of t, written by one nest or another (whole tiles unguarded, the
 * last guarded): each nest's own loops, but both put t in 16 t + a rest in [0, 16), so
 * different t never meet.
 */
export const tilesTwoNests = kernel(function tilesTwoNests(
  x: Tensor<f32, [Sym<"n">]>,
  y: Tensor<f32, [Sym<"n">]>,
) {
  const n = x.shape[0];
  for (let t = 0; t < floordiv(n + 15, 16); t++) {
    if (16 * t + 16 <= n) {
      for (let a = 0; a < 4; a++) for (let b = 0; b < 4; b++) y[16 * t + 4 * a + b] = x[16 * t + 4 * a + b];
    } else {
      for (let c = 0; c < 2; c++)
        for (let d = 0; d < 8; d++)
          if (16 * t + 8 * c + d < n) y[16 * t + 8 * c + d] = f32(2) * x[16 * t + 8 * c + d];
    }
  }
});

/** The same with the guarded nest's rest reaching 16 (8 c + d over c < 3): tiles t and t + 1 meet. */
export const tilesTwoNestsOverlap = kernel(function tilesTwoNestsOverlap(
  x: Tensor<f32, [Sym<"n">]>,
  y: Tensor<f32, [Sym<"n">]>,
) {
  const n = x.shape[0];
  for (let t = 0; t < floordiv(n + 15, 16); t++) {
    if (16 * t + 16 <= n) {
      for (let a = 0; a < 4; a++) for (let b = 0; b < 4; b++) y[16 * t + 4 * a + b] = x[16 * t + 4 * a + b];
    } else {
      for (let c = 0; c < 3; c++)
        for (let d = 0; d < 8; d++)
          if (16 * t + 8 * c + d < n)
            y[min(16 * t + 8 * c + d, n - 1)] = f32(2) * x[min(16 * t + 8 * c + d, n - 1)];
    }
  }
});

/**
 * tilesTwoNests with both nests' tiles 5 further along (a launch of later tiles: 5 + 16 t + a
 * rest in [0, 16)): tiles t still never meet.
 */
export const tilesTwoNestsOffset = kernel(function tilesTwoNestsOffset(
  x: Tensor<f32, [Sym<"n">]>,
  y: Tensor<f32, [Sym<"n">]>,
) {
  const n = x.shape[0];
  for (let t = 0; t < floordiv(n + 10, 16); t++) {
    if (5 + 16 * t + 16 <= n) {
      for (let a = 0; a < 4; a++)
        for (let b = 0; b < 4; b++) y[5 + 16 * t + 4 * a + b] = x[5 + 16 * t + 4 * a + b];
    } else {
      for (let c = 0; c < 2; c++)
        for (let d = 0; d < 8; d++)
          if (5 + 16 * t + 8 * c + d < n) y[5 + 16 * t + 8 * c + d] = f32(2) * x[5 + 16 * t + 8 * c + d];
    }
  }
});

/** Only the guarded nest's tiles 5 further along: its rests and the other's span 21 > 16, so t and t + 1 meet. */
export const tilesTwoNestsShifted = kernel(function tilesTwoNestsShifted(
  x: Tensor<f32, [Sym<"n">]>,
  y: Tensor<f32, [Sym<"n">]>,
) {
  const n = x.shape[0];
  for (let t = 0; t < floordiv(n + 10, 16); t++) {
    if (5 + 16 * t + 16 <= n) {
      for (let a = 0; a < 4; a++) for (let b = 0; b < 4; b++) y[16 * t + 4 * a + b] = x[16 * t + 4 * a + b];
    } else {
      for (let c = 0; c < 2; c++)
        for (let d = 0; d < 8; d++)
          if (5 + 16 * t + 8 * c + d < n) y[5 + 16 * t + 8 * c + d] = f32(2) * x[5 + 16 * t + 8 * c + d];
    }
  }
});
