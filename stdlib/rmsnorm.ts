/**
 * RMSNorm, as Llama applies it before attention, before the feed-forward and before the
 * classifier: y = x / sqrt(mean(x^2) + eps) * w, per row of x [M, D] (M = 1 when decoding).
 * f16 in and out; the sum of squares and the scaling are f32, rounded to f16 once per element.
 */
import { kernel, f16, f32, rsqrt, type Tensor, type Sym } from "../dsl/index.ts";
import { ROW_REDUCE_DEFAULTS, type PerTarget, type RowReduceParams } from "./params.ts";

/** x, y f16 [M, D]; w f16 [D]; eps f32 (Llama-2: 1e-5; llama2.c models: 1e-5). y may alias x. */
export const rmsNorm = kernel(function rmsNorm(
  x: Tensor<f16, [Sym<"m">, Sym<"d">]>,
  w: Tensor<f16, [Sym<"d">]>,
  y: Tensor<f16, [Sym<"m">, Sym<"d">]>,
  eps: f32,
) {
  const d = x.shape[1];
  for (let m = 0; m < x.shape[0]; m++) {
    let ss = f32(0);
    for (let i = 0; i < d; i++) ss += f32(x[m][i]) * f32(x[m][i]);
    const r = rsqrt(ss / f32(d) + eps);
    for (let i = 0; i < d; i++) y[m][i] = f16(f32(x[m][i]) * r * f32(w[i]));
  }
});

// Seeds for tuning (see params.ts); the schedule applied today is in stdlib/gpu/schedules.ts.
export const rmsNormParams: PerTarget<RowReduceParams> = ROW_REDUCE_DEFAULTS;
