/** Numerically stable softmax over each row of f32 [M, N]: exp(x - max) / sum, all in f32. */
import { kernel, exp, f32, max, type Tensor, type Sym } from "../dsl/index.ts";
import { ROW_REDUCE_DEFAULTS, type PerTarget, type RowReduceParams } from "./params.ts";

/** x, y f32 [M, N]. y may alias x. */
export const softmax = kernel(function softmax(
  x: Tensor<f32, [Sym<"m">, Sym<"n">]>,
  y: Tensor<f32, [Sym<"m">, Sym<"n">]>,
) {
  for (let m = 0; m < x.shape[0]; m++) {
    let mx = f32(-Infinity);
    for (let j = 0; j < x.shape[1]; j++) mx = max(mx, x[m][j]);
    let sum = f32(0);
    for (let j = 0; j < x.shape[1]; j++) sum += exp(x[m][j] - mx);
    for (let j = 0; j < x.shape[1]; j++) y[m][j] = exp(x[m][j] - mx) / sum;
  }
});

// Seeds for tuning (see params.ts); the schedule applied today is in stdlib/gpu/schedules.ts.
export const softmaxParams: PerTarget<RowReduceParams> = ROW_REDUCE_DEFAULTS;
