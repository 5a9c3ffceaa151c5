/** Kernels with atomics (the frontend reads this file's source). */
import { kernel, f32, i32, shared, local, atomicAdd, type Tensor, type Sym } from "../../dsl/index.ts";

/** hist[b] = how many x are b (0 <= x < bins): every element adds one to its bin. */
export const histogram = kernel(function histogram(
  x: Tensor<i32, [Sym<"n">]>,
  hist: Tensor<i32, [Sym<"bins">]>,
) {
  for (let i = 0; i < x.shape[0]; i++) atomicAdd(hist[x[i]], 1);
});

/** total[0] += the sum of x, in f32 additions (one per element). */
export const atomicSum = kernel(function atomicSum(x: Tensor<f32, [Sym<"n">]>, total: Tensor<f32, [1]>) {
  for (let i = 0; i < x.shape[0]; i++) atomicAdd(total[0], x[i]);
});

/**
 * Per row b: y[b][t] = 2 x[b][t]; the last row to finish (by a counter that starts at 0 and is
 * reset for the next launch) writes the sum of all of y to total[0] and the order it saw to
 * last[0]. Rows are blocks on a GPU: the last block reads the others' results.
 */
export const lastBlockSum = kernel(function lastBlockSum(
  x: Tensor<f32, [Sym<"m">, Sym<"n">]>,
  y: Tensor<f32, [Sym<"m">, Sym<"n">]>,
  count: Tensor<i32, [1]>,
  total: Tensor<f32, [1]>,
) {
  for (let b = 0; b < x.shape[0]; b++) {
    for (let t = 0; t < x.shape[1]; t++) y[b][t] = x[b][t] * f32(2);
    const seen = shared("i32", [1]);
    seen[0] = atomicAdd(count[0], 1);
    if (seen[0] === x.shape[0] - 1) {
      let s = f32(0);
      for (let r = 0; r < x.shape[0]; r++) for (let k = 0; k < x.shape[1]; k++) s += y[r][k];
      total[0] = s;
      count[0] = 0;
    }
  }
});

/** As lastBlockSum's counter, the old value kept per thread: refused where one thread adds. */
export const atomicLocalResult = kernel(function atomicLocalResult(
  count: Tensor<i32, [1]>,
  y: Tensor<i32, [4, Sym<"n">]>,
) {
  for (let b = 0; b < 4; b++) {
    const old = local("i32", [1]);
    old[0] = atomicAdd(count[0], 1);
    for (let t = 0; t < y.shape[1]; t++) y[b][t] = old[0];
  }
});

/** As lastBlockSum with the counter bumped in a loop (twice a row): its old value proves nothing. */
export const countedTwice = kernel(function countedTwice(
  x: Tensor<f32, [Sym<"m">, Sym<"n">]>,
  y: Tensor<f32, [Sym<"m">, Sym<"n">]>,
  count: Tensor<i32, [1]>,
  total: Tensor<f32, [1]>,
) {
  for (let b = 0; b < x.shape[0]; b++) {
    for (let t = 0; t < x.shape[1]; t++) y[b][t] = x[b][t];
    const seen = shared("i32", [1]);
    for (let twice = 0; twice < 2; twice++) seen[0] = atomicAdd(count[0], 1);
    if (seen[0] === x.shape[0] - 1) {
      let s = f32(0);
      for (let k = 0; k < x.shape[1]; k++) s += y[0][k];
      total[0] = s;
    }
  }
});
