/**
 * The fused q4f16_1 kernels of q4_fused.ts for M tokens at once (prefill), on the same concatenated
 * weights, so a model stores [Wq; Wk; Wv] and [Wg; Wu] once for both phases. Row m of each output is
 * computed exactly as the GEMV computes it for x[m]: the same loops and the same roundings (each
 * group's sum of x * (q - 7) in f32, scaled once by the group's scale).
 */
import { kernel, f16, f32, type u32, type Tensor, type Sym } from "../dsl/index.ts";
import { silu } from "./elementwise.ts";
import type { GemmParams, PerTarget } from "./params.ts";
import { Q4_GROUP, Q4_PER_WORD, Q4_WORDS_PER_GROUP, q4Code } from "./q4_common.ts";
import { q4GemmParams } from "./q4_gemv.ts";

/** q4QkvGemv per token: x f16 [M, K]; q f16 [M, qDim]; k, v f16 [M, kvDim]; weight rows qDim + 2 * kvDim. */
export const q4QkvGemm = kernel(function q4QkvGemm(
  x: Tensor<f16, [Sym<"m">, Sym<"k">]>,
  packed: Tensor<u32, [Sym<"n">, Sym<"kw">]>,
  scales: Tensor<f16, [Sym<"n">, Sym<"kg">]>,
  q: Tensor<f16, [Sym<"m">, Sym<"qd">]>,
  k: Tensor<f16, [Sym<"m">, Sym<"kvd">]>,
  v: Tensor<f16, [Sym<"m">, Sym<"kvd">]>,
) {
  const qDim = q.shape[1];
  const kvDim = k.shape[1];
  for (let m = 0; m < x.shape[0]; m++) {
    for (let n = 0; n < qDim + 2 * kvDim; n++) {
      let acc = f32(0);
      for (let g = 0; g < scales.shape[1]; g++) {
        let dot = f32(0);
        for (let w = 0; w < Q4_WORDS_PER_GROUP; w++) {
          const word = packed[n][g * Q4_WORDS_PER_GROUP + w];
          for (let r = 0; r < Q4_PER_WORD; r++) {
            dot += f32(x[m][g * Q4_GROUP + w * Q4_PER_WORD + r]) * q4Code(word, r);
          }
        }
        acc += dot * f32(scales[n][g]);
      }
      if (n < qDim) {
        q[m][n] = f16(acc);
      } else if (n < qDim + kvDim) {
        k[m][n - qDim] = f16(acc);
      } else {
        v[m][n - qDim - kvDim] = f16(acc);
      }
    }
  }
});

/** q4GateUpSilu per token: x f16 [M, K]; out f16 [M, I]; weight [Wg; Wu] of 2 * I rows. */
export const q4GateUpSiluGemm = kernel(function q4GateUpSiluGemm(
  x: Tensor<f16, [Sym<"m">, Sym<"k">]>,
  packed: Tensor<u32, [Sym<"n2">, Sym<"kw">]>,
  scales: Tensor<f16, [Sym<"n2">, Sym<"kg">]>,
  out: Tensor<f16, [Sym<"m">, Sym<"i">]>,
) {
  const inter = out.shape[1];
  for (let m = 0; m < x.shape[0]; m++) {
    for (let i = 0; i < inter; i++) {
      let gate = f32(0);
      let up = f32(0);
      for (let g = 0; g < scales.shape[1]; g++) {
        let gateDot = f32(0);
        let upDot = f32(0);
        for (let w = 0; w < Q4_WORDS_PER_GROUP; w++) {
          const gateWord = packed[i][g * Q4_WORDS_PER_GROUP + w];
          const upWord = packed[inter + i][g * Q4_WORDS_PER_GROUP + w];
          for (let r = 0; r < Q4_PER_WORD; r++) {
            const xv = f32(x[m][g * Q4_GROUP + w * Q4_PER_WORD + r]);
            gateDot += xv * q4Code(gateWord, r);
            upDot += xv * q4Code(upWord, r);
          }
        }
        gate += gateDot * f32(scales[i][g]);
        up += upDot * f32(scales[inter + i][g]);
      }
      out[m][i] = f16(silu(f32(f16(gate))) * f32(f16(up)));
    }
  }
});

/** q4GemvResidual per token: x f16 [M, K]; residual, y f16 [M, N] (y may alias residual). */
export const q4GemmResidual = kernel(function q4GemmResidual(
  x: Tensor<f16, [Sym<"m">, Sym<"k">]>,
  packed: Tensor<u32, [Sym<"n">, Sym<"kw">]>,
  scales: Tensor<f16, [Sym<"n">, Sym<"kg">]>,
  residual: Tensor<f16, [Sym<"m">, Sym<"n">]>,
  y: Tensor<f16, [Sym<"m">, Sym<"n">]>,
) {
  for (let m = 0; m < x.shape[0]; m++) {
    for (let n = 0; n < y.shape[1]; n++) {
      let acc = f32(0);
      for (let g = 0; g < scales.shape[1]; g++) {
        let dot = f32(0);
        for (let w = 0; w < Q4_WORDS_PER_GROUP; w++) {
          const word = packed[n][g * Q4_WORDS_PER_GROUP + w];
          for (let r = 0; r < Q4_PER_WORD; r++) {
            dot += f32(x[m][g * Q4_GROUP + w * Q4_PER_WORD + r]) * q4Code(word, r);
          }
        }
        acc += dot * f32(scales[n][g]);
      }
      y[m][n] = f16(f32(residual[m][n]) + f32(f16(acc)));
    }
  }
});

// Seeds for tuning (see params.ts); the schedule applied today is in stdlib/gpu/schedules.ts.
export const q4QkvGemmParams: PerTarget<GemmParams> = q4GemmParams;
export const q4GateUpSiluGemmParams: PerTarget<GemmParams> = q4GemmParams;
export const q4GemmResidualParams: PerTarget<GemmParams> = q4GemmParams;
