/**
 * Element-wise kernels on f16 activations [M, D] (M = 1 when decoding), computed in f32 and rounded
 * to f16 once. An f16 + f16 sum formed in f32 and rounded to f16 equals IEEE f16 addition (f32
 * carries 24 >= 2 * 11 + 2 significant bits, so the double rounding is harmless).
 * Outputs may alias inputs: each element is read and written by the same iteration.
 */
import { kernel, exp, f16, f32, type Tensor, type Sym } from "../dsl/index.ts";
import { ELEMENTWISE_DEFAULTS, type ElementwiseParams, type PerTarget } from "./params.ts";

/** SiLU, x * sigmoid(x), in f32. */
export function silu(v: f32): f32 {
  return v / (1 + exp(-v));
}

/** out = SiLU(gate) * up: the SwiGLU feed-forward's gate. */
export const siluMul = kernel(function siluMul(
  gate: Tensor<f16, [Sym<"m">, Sym<"d">]>,
  up: Tensor<f16, [Sym<"m">, Sym<"d">]>,
  out: Tensor<f16, [Sym<"m">, Sym<"d">]>,
) {
  for (let m = 0; m < gate.shape[0]; m++) {
    for (let i = 0; i < gate.shape[1]; i++) {
      out[m][i] = f16(silu(f32(gate[m][i])) * f32(up[m][i]));
    }
  }
});

/** y = a + b: the residual connection. */
export const residualAdd = kernel(function residualAdd(
  a: Tensor<f16, [Sym<"m">, Sym<"d">]>,
  b: Tensor<f16, [Sym<"m">, Sym<"d">]>,
  y: Tensor<f16, [Sym<"m">, Sym<"d">]>,
) {
  for (let m = 0; m < a.shape[0]; m++) {
    for (let i = 0; i < a.shape[1]; i++) {
      y[m][i] = f16(f32(a[m][i]) + f32(b[m][i]));
    }
  }
});

// Seeds for tuning (see params.ts); the schedule applied today is in stdlib/gpu/schedules.ts.
export const siluMulParams: PerTarget<ElementwiseParams> = ELEMENTWISE_DEFAULTS;
export const residualAddParams: PerTarget<ElementwiseParams> = ELEMENTWISE_DEFAULTS;
