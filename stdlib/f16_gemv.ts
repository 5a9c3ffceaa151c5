/**
 * Products with plain f16 weights in the [N, K] layout (PyTorch's [out, in]): f16 inputs, products
 * and sums in f32, f16 outputs. The loop structure matches q4_gemv.ts (rows outside, the reduction
 * over K inside) so the same GEMV/GEMM schedules apply.
 */
import { kernel, f16, f32, type Tensor, type Sym } from "../dsl/index.ts";
import { silu } from "./elementwise.ts";
import type { GemmParams, GemvParams, PerTarget } from "./params.ts";

/** y[n] = sum_k x[k] * w[n][k]: x f16 [K], w f16 [N, K], y f16 [N]. */
export const f16Gemv = kernel(function f16Gemv(
  x: Tensor<f16, [Sym<"k">]>,
  w: Tensor<f16, [Sym<"n">, Sym<"k">]>,
  y: Tensor<f16, [Sym<"n">]>,
) {
  for (let n = 0; n < w.shape[0]; n++) {
    let acc = f32(0);
    for (let k = 0; k < w.shape[1]; k++) acc += f32(x[k]) * f32(w[n][k]);
    y[n] = f16(acc);
  }
});

/** y = residual + W x, W x rounded to f16 first (as f16Gemv then residualAdd); y may alias residual. */
export const f16GemvResidual = kernel(function f16GemvResidual(
  x: Tensor<f16, [Sym<"k">]>,
  w: Tensor<f16, [Sym<"n">, Sym<"k">]>,
  residual: Tensor<f16, [Sym<"n">]>,
  y: Tensor<f16, [Sym<"n">]>,
) {
  for (let n = 0; n < w.shape[0]; n++) {
    let acc = f32(0);
    for (let k = 0; k < w.shape[1]; k++) acc += f32(x[k]) * f32(w[n][k]);
    y[n] = f16(f32(residual[n]) + f32(f16(acc)));
  }
});

/**
 * out = SiLU(Wg x) * (Wu x) for W = [Wg; Wu] ([2 I, K]), each product rounded to f16 first (as
 * f16Gemv over both halves then siluMul).
 */
export const f16GateUpSilu = kernel(function f16GateUpSilu(
  x: Tensor<f16, [Sym<"k">]>,
  w: Tensor<f16, [Sym<"n2">, Sym<"k">]>,
  out: Tensor<f16, [Sym<"i">]>,
) {
  const inter = out.shape[0];
  for (let n = 0; n < inter; n++) {
    let gate = f32(0);
    let up = f32(0);
    for (let k = 0; k < w.shape[1]; k++) {
      gate += f32(x[k]) * f32(w[n][k]);
      up += f32(x[k]) * f32(w[inter + n][k]);
    }
    out[n] = f16(silu(f32(f16(gate))) * f32(f16(up)));
  }
});

/** y[m][n] = sum_k x[m][k] * w[n][k]: x f16 [M, K], w f16 [N, K], y f16 [M, N]. */
export const f16Gemm = kernel(function f16Gemm(
  x: Tensor<f16, [Sym<"m">, Sym<"k">]>,
  w: Tensor<f16, [Sym<"n">, Sym<"k">]>,
  y: Tensor<f16, [Sym<"m">, Sym<"n">]>,
) {
  for (let m = 0; m < x.shape[0]; m++) {
    for (let n = 0; n < w.shape[0]; n++) {
      let acc = f32(0);
      for (let k = 0; k < w.shape[1]; k++) acc += f32(x[m][k]) * f32(w[n][k]);
      y[m][n] = f16(acc);
    }
  }
});

// Seeds for tuning (see params.ts); the schedule applied today is in stdlib/gpu/schedules.ts.
export const f16GemvParams: PerTarget<GemvParams> = {
  // f16 weights are 4x the bytes of q4: wider rows per block, 8 halves (16 bytes) per load.
  sm_90: { rowsPerBlock: 4, threadsPerRow: 64, vec: 8, unroll: 256 },
  gfx1100: { rowsPerBlock: 1, threadsPerRow: 128, vec: 8, unroll: 64 },
  vulkan: { rowsPerBlock: 4, threadsPerRow: 32, vec: 4, unroll: 64 },
};

/** The fused decode GEMVs share f16Gemv's loop structure and schedule. */
export const f16GemvResidualParams = f16GemvParams;
export const f16GateUpSiluParams = f16GemvParams;

export const f16GemmParams: PerTarget<GemmParams> = {
  sm_90: { tileM: 128, tileN: 128, tileK: 32, threads: 256, vec: 8 },
  gfx1100: { tileM: 64, tileN: 64, tileK: 32, threads: 256, vec: 8 },
  vulkan: { tileM: 32, tileN: 32, tileK: 16, threads: 128, vec: 4 },
};
