import { kernel, f32, f16, exp, rsqrt, max, type Tensor, type Sym } from "../dsl/index.ts";

const DIM = 8;

export const addBroadcast = kernel(function addBroadcast(
  x: Tensor<f32, [Sym<"m">, Sym<"n">]>,
  b: Tensor<f32, [Sym<"n">]>,
  y: Tensor<f32, [Sym<"m">, Sym<"n">]>,
) {
  for (let i = 0; i < x.shape[0]; i++) {
    for (let j = 0; j < x.shape[1]; j++) {
      y[i][j] = x[i][j] + b[j];
    }
  }
});

export const rmsNorm = kernel(function rmsNorm(
  x: Tensor<f16, [Sym<"n">, typeof DIM]>,
  w: Tensor<f16, [typeof DIM]>,
  y: Tensor<f16, [Sym<"n">, typeof DIM]>,
  eps: f32,
) {
  for (let i = 0; i < x.shape[0]; i++) {
    let ss = f32(0);
    for (let k = 0; k < DIM; k++) ss += f32(x[i][k]) * f32(x[i][k]);
    const r = rsqrt(ss / DIM + eps);
    for (let k = 0; k < DIM; k++) y[i][k] = f16(f32(x[i][k]) * r * f32(w[k]));
  }
});

export const softmax = kernel(function softmax(
  x: Tensor<f32, [Sym<"m">, Sym<"n">]>,
  y: Tensor<f32, [Sym<"m">, Sym<"n">]>,
) {
  for (let i = 0; i < x.shape[0]; i++) {
    let m = f32(-Infinity);
    for (let j = 0; j < x.shape[1]; j++) m = max(m, x[i][j]);
    let s = f32(0);
    for (let j = 0; j < x.shape[1]; j++) s += exp(x[i][j] - m);
    for (let j = 0; j < x.shape[1]; j++) y[i][j] = exp(x[i][j] - m) / s;
  }
});
