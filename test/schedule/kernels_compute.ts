/** Small kernels the cache/computeAt/region tests schedule (the frontend reads this file's source). */
import { kernel, local, max, exp, f32, type i32, type Tensor, type Sym } from "../../dsl/index.ts";

/** Three elementwise stages through local temporaries (integers: results compare exactly). */
export const ewChain = kernel(function ewChain(x: Tensor<i32, [7, 9]>, y: Tensor<i32, [7, 9]>) {
  const t = local("i32", [7, 9]);
  for (let i = 0; i < 7; i++) for (let j = 0; j < 9; j++) t[i][j] = x[i][j] * 3 + 1;
  const u = local("i32", [7, 9]);
  for (let i = 0; i < 7; i++) for (let j = 0; j < 9; j++) u[i][j] = t[i][j] - x[i][j];
  for (let i = 0; i < 7; i++) for (let j = 0; j < 9; j++) y[i][j] = max(u[i][j], 0) * 2;
});

/** C = A @ B with the accumulation in C itself. */
export const matmul = kernel(function matmul(
  a: Tensor<f32, [Sym<"m">, Sym<"k">]>,
  b: Tensor<f32, [Sym<"k">, Sym<"n">]>,
  c: Tensor<f32, [Sym<"m">, Sym<"n">]>,
) {
  for (let i = 0; i < a.shape[0]; i++)
    for (let j = 0; j < b.shape[1]; j++) {
      c[i][j] = f32(0);
      for (let k = 0; k < a.shape[1]; k++) c[i][j] += a[i][k] * b[k][j];
    }
});

/** y = relu(x @ w): a reduction stage feeding an elementwise stage through a local buffer. */
export const reluMatmul = kernel(function reluMatmul(
  x: Tensor<i32, [5, 7]>,
  w: Tensor<i32, [7, 3]>,
  y: Tensor<i32, [5, 3]>,
) {
  const t = local("i32", [5, 3]);
  for (let i = 0; i < 5; i++)
    for (let j = 0; j < 3; j++) {
      t[i][j] = 0;
      for (let k = 0; k < 7; k++) t[i][j] += x[i][k] * w[k][j];
    }
  for (let i = 0; i < 5; i++) for (let j = 0; j < 3; j++) y[i][j] = max(t[i][j], 0);
});

/** Softmax over rows with the exponentials kept in a row buffer. */
export const softmaxRows = kernel(function softmaxRows(
  x: Tensor<f32, [Sym<"m">, 11]>,
  y: Tensor<f32, [Sym<"m">, 11]>,
) {
  for (let i = 0; i < x.shape[0]; i++) {
    let mx = f32(-Infinity);
    for (let j = 0; j < 11; j++) mx = max(mx, x[i][j]);
    const e = local("f32", [11]);
    for (let j = 0; j < 11; j++) e[j] = exp(x[i][j] - mx);
    let s = f32(0);
    for (let j = 0; j < 11; j++) s += e[j];
    for (let j = 0; j < 11; j++) y[i][j] = e[j] / s;
  }
});

/** A CPU-tiled matmul (tiles 3 x 2, k-tiles of 5): io, jo, ko outside the tile loops. */
export const tiledMatmul = kernel(function tiledMatmul(
  a: Tensor<f32, [9, 15]>,
  b: Tensor<f32, [15, 4]>,
  c: Tensor<f32, [9, 4]>,
) {
  for (let io = 0; io < 3; io++)
    for (let jo = 0; jo < 2; jo++) {
      for (let ii = 0; ii < 3; ii++) for (let ji = 0; ji < 2; ji++) c[io * 3 + ii][jo * 2 + ji] = f32(0);
      for (let ko = 0; ko < 3; ko++)
        for (let ii = 0; ii < 3; ii++)
          for (let ji = 0; ji < 2; ji++)
            for (let ki = 0; ki < 5; ki++)
              c[io * 3 + ii][jo * 2 + ji] += a[io * 3 + ii][ko * 5 + ki] * b[ko * 5 + ki][jo * 2 + ji];
    }
});

/** A GPU-shaped matmul: tile loops (blocks), then per-thread loops, then k-outer/k-inner. */
export const gpuMatmul = kernel(function gpuMatmul(
  a: Tensor<f32, [12, 10]>,
  b: Tensor<f32, [10, 8]>,
  c: Tensor<f32, [12, 8]>,
) {
  for (let by = 0; by < 3; by++)
    for (let bx = 0; bx < 2; bx++)
      for (let ty = 0; ty < 4; ty++)
        for (let tx = 0; tx < 4; tx++) {
          let acc = f32(0);
          for (let ko = 0; ko < 2; ko++)
            for (let ki = 0; ki < 5; ki++) acc += a[by * 4 + ty][ko * 5 + ki] * b[ko * 5 + ki][bx * 4 + tx];
          c[by * 4 + ty][bx * 4 + tx] = acc;
        }
});

/** A plain matmul with a scalar accumulator, for schedules that split and reorder it. */
export const accMatmul = kernel(function accMatmul(
  a: Tensor<f32, [12, 10]>,
  b: Tensor<f32, [10, 8]>,
  c: Tensor<f32, [12, 8]>,
) {
  for (let i = 0; i < 12; i++)
    for (let j = 0; j < 8; j++) {
      let acc = f32(0);
      for (let k = 0; k < 10; k++) acc += a[i][k] * b[k][j];
      c[i][j] = acc;
    }
});

/** The reduction's init in a nest of its own: its update cannot move without it. */
export const splitInit = kernel(function splitInit(
  x: Tensor<i32, [5, 7]>,
  w: Tensor<i32, [7, 3]>,
  y: Tensor<i32, [5, 3]>,
) {
  const t = local("i32", [5, 3]);
  for (let i = 0; i < 5; i++) for (let j = 0; j < 3; j++) t[i][j] = 0;
  for (let i = 0; i < 5; i++)
    for (let j = 0; j < 3; j++) for (let k = 0; k < 7; k++) t[i][j] += x[i][k] * w[k][j];
  for (let i = 0; i < 5; i++) for (let j = 0; j < 3; j++) y[i][j] = max(t[i][j], 0);
});

/** An intermediate that is also an output (a parameter). */
export const twoOutputs = kernel(function twoOutputs(
  x: Tensor<i32, [9]>,
  t: Tensor<i32, [9]>,
  y: Tensor<i32, [9]>,
) {
  for (let i = 0; i < 9; i++) t[i] = x[i] * 2;
  for (let i = 0; i < 9; i++) y[i] = t[i] + 1;
});

/** x changes between the producer and its consumer: moving or inlining t would read the new x. */
export const clobber = kernel(function clobber(x: Tensor<i32, [9]>, y: Tensor<i32, [9]>) {
  const t = local("i32", [9]);
  for (let i = 0; i < 9; i++) t[i] = x[i] * 2;
  for (let i = 0; i < 9; i++) x[i] = 0;
  for (let i = 0; i < 9; i++) y[i] = t[i] + 1;
});

/** Consumers that read a neighbour, broadcast a row, or shift: not one element per element. */
export const stencil = kernel(function stencil(
  x: Tensor<i32, [9]>,
  y: Tensor<i32, [8]>,
  z: Tensor<i32, [8, 3]>,
) {
  const t = local("i32", [9]);
  for (let i = 0; i < 9; i++) t[i] = x[i] * 2;
  for (let i = 0; i < 8; i++) y[i] = t[i] + t[i + 1];
  for (let i = 0; i < 8; i++) for (let j = 0; j < 3; j++) z[i][j] = t[i] * j;
});

/** Accumulates into an output it never initializes (the caller's values are part of the result). */
export const accumulate = kernel(function accumulate(x: Tensor<i32, [5, 4]>, y: Tensor<i32, [5]>) {
  for (let i = 0; i < 5; i++) for (let k = 0; k < 4; k++) y[i] += x[i][k];
});

/** Writes every other element, and a guarded write: a copy back of the hull would copy holes. */
export const gaps = kernel(function gaps(x: Tensor<i32, [5]>, y: Tensor<i32, [10]>, z: Tensor<i32, [5]>) {
  for (let i = 0; i < 5; i++) y[2 * i] = x[i];
  for (let i = 0; i < 5; i++) if (i > 1) z[i] = x[i];
});

/** A three-dimensional scratch buffer, for storageAlign. */
export const cube = kernel(function cube(x: Tensor<i32, [3, 4, 2]>, y: Tensor<i32, [3, 4, 2]>) {
  const t = local("i32", [3, 4, 2]);
  for (let i = 0; i < 3; i++)
    for (let j = 0; j < 4; j++) for (let k = 0; k < 2; k++) t[i][j][k] = x[i][j][k] + 1;
  for (let i = 0; i < 3; i++)
    for (let j = 0; j < 4; j++) for (let k = 0; k < 2; k++) y[i][j][k] = t[i][j][k] * 3;
});

/** A consumer reading its producer one element over, and one broadcasting it along a new axis. */
export const shifted = kernel(function shifted(x: Tensor<i32, [9]>, y: Tensor<i32, [8]>) {
  const t = local("i32", [9]);
  for (let i = 0; i < 9; i++) t[i] = x[i] * 2;
  for (let i = 0; i < 8; i++) y[i] = t[i + 1] - 1;
});
export const broadcast = kernel(function broadcast(x: Tensor<i32, [8]>, z: Tensor<i32, [8, 3]>) {
  const t = local("i32", [8]);
  for (let i = 0; i < 8; i++) t[i] = x[i] * 2;
  for (let i = 0; i < 8; i++) for (let j = 0; j < 3; j++) z[i][j] = t[i] * j;
});

/** Reads an element of y that a later iteration writes: before the loop it holds the caller's value. */
export const mirror = kernel(function mirror(x: Tensor<i32, [9]>, y: Tensor<i32, [9]>, z: Tensor<i32, [9]>) {
  for (let i = 0; i < 9; i++) {
    y[i] = x[i];
    z[i] = y[8 - i];
  }
});

/** y = relu(x @ w) with the sum in a scalar accumulator: the relu can fold into the store of t. */
export const reluAccMatmul = kernel(function reluAccMatmul(
  x: Tensor<f32, [5, 7]>,
  w: Tensor<f32, [7, 3]>,
  bias: Tensor<f32, [3]>,
  y: Tensor<f32, [5, 3]>,
) {
  const t = local("f32", [5, 3]);
  for (let i = 0; i < 5; i++)
    for (let j = 0; j < 3; j++) {
      let acc = f32(0);
      for (let k = 0; k < 7; k++) acc += x[i][k] * w[k][j];
      t[i][j] = acc + bias[j];
    }
  for (let i = 0; i < 5; i++) for (let j = 0; j < 3; j++) y[i][j] = max(t[i][j], f32(0));
});

/** One nest writes a row and the last element seen: its loop indexes t but not last. */
export const lastWins = kernel(function lastWins(x: Tensor<i32, [9]>, y: Tensor<i32, [9]>) {
  const t = local("i32", [9]);
  const last = local("i32", [1]);
  for (let i = 0; i < 9; i++) {
    t[i] = x[i] * 2;
    last[0] = x[i];
  }
  for (let i = 0; i < 9; i++) y[i] = t[i] + last[0];
});
