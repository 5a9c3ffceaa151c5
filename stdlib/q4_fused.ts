/**
 * Fused q4f16_1 GEMVs for decoding: one launch and one read of x where the unfused model has two or
 * three. Each fusion rounds its intermediates to f16 exactly where the unfused kernels would (the
 * GEMV outputs), so a fused kernel computes bit for bit what its unfused composition computes;
 * fusing is a performance choice only. Format and arithmetic: q4_common.ts.
 *
 * The weights are concatenated along N, as MLC concatenates them (qkv_proj, gate_up_proj).
 */
import { kernel, f16, f32, type u32, type Tensor, type Sym } from "../dsl/index.ts";
import { silu } from "./elementwise.ts";
import type { GemvParams, PerTarget } from "./params.ts";
import { Q4_GROUP, Q4_PER_WORD, Q4_WORDS_PER_GROUP, q4Code, q4Value } from "./q4_common.ts";
import { q4GemvParams } from "./q4_gemv.ts";

/**
 * q, k and v projections as one GEMV over W = [Wq; Wk; Wv] with N = qDim + 2 * kvDim rows:
 * row n < qDim goes to q[n], the next kvDim rows to k, the last kvDim rows to v.
 * Shapes: x f16 [K]; q f16 [qDim]; k, v f16 [kvDim] (views of [heads, headDim]).
 */
export const q4QkvGemv = kernel(function q4QkvGemv(
  x: Tensor<f16, [Sym<"k">]>,
  packed: Tensor<u32, [Sym<"n">, Sym<"kw">]>,
  scales: Tensor<f16, [Sym<"n">, Sym<"kg">]>,
  q: Tensor<f16, [Sym<"qd">]>,
  k: Tensor<f16, [Sym<"kvd">]>,
  v: Tensor<f16, [Sym<"kvd">]>,
) {
  const qDim = q.shape[0];
  const kvDim = k.shape[0];
  for (let n = 0; n < qDim + 2 * kvDim; n++) {
    let acc = f32(0);
    for (let g = 0; g < scales.shape[1]; g++) {
      // The group's sum of x * (q - 7), scaled once: one multiply per group, not per weight.
      let dot = f32(0);
      for (let w = 0; w < Q4_WORDS_PER_GROUP; w++) {
        const word = packed[n][g * Q4_WORDS_PER_GROUP + w];
        for (let r = 0; r < Q4_PER_WORD; r++) {
          dot += f32(x[g * Q4_GROUP + w * Q4_PER_WORD + r]) * q4Code(word, r);
        }
      }
      acc += dot * f32(scales[n][g]);
    }
    if (n < qDim) {
      q[n] = f16(acc);
    } else if (n < qDim + kvDim) {
      k[n - qDim] = f16(acc);
    } else {
      v[n - qDim - kvDim] = f16(acc);
    }
  }
});

/**
 * out[i] = SiLU(gate[i]) * up[i] with gate = Wg x, up = Wu x, both from one weight [Wg; Wu] of
 * 2 * I rows (gate first). Each output row reads its gate row i and up row I + i in the same
 * reduction loop, so x is read once for both. gate and up are rounded to f16 (the unfused GEMV
 * outputs) before SiLU. Shapes: x f16 [K]; out f16 [I]; the weight has 2 * I rows.
 */
export const q4GateUpSilu = kernel(function q4GateUpSilu(
  x: Tensor<f16, [Sym<"k">]>,
  packed: Tensor<u32, [Sym<"n2">, Sym<"kw">]>,
  scales: Tensor<f16, [Sym<"n2">, Sym<"kg">]>,
  out: Tensor<f16, [Sym<"i">]>,
) {
  const inter = out.shape[0];
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
          const xv = f32(x[g * Q4_GROUP + w * Q4_PER_WORD + r]);
          gateDot += xv * q4Code(gateWord, r);
          upDot += xv * q4Code(upWord, r);
        }
      }
      gate += gateDot * f32(scales[i][g]);
      up += upDot * f32(scales[inter + i][g]);
    }
    out[i] = f16(silu(f32(f16(gate))) * f32(f16(up)));
  }
});

/**
 * y = residual + W x: the output and down projections with the residual connection folded in.
 * W x is rounded to f16 before the f16 addition, as the unfused GEMV + residualAdd would.
 * y may alias residual (the residual stream updated in place). Shapes: x f16 [K]; residual, y f16 [N].
 */
export const q4GemvResidual = kernel(function q4GemvResidual(
  x: Tensor<f16, [Sym<"k">]>,
  packed: Tensor<u32, [Sym<"n">, Sym<"kw">]>,
  scales: Tensor<f16, [Sym<"n">, Sym<"kg">]>,
  residual: Tensor<f16, [Sym<"n">]>,
  y: Tensor<f16, [Sym<"n">]>,
) {
  for (let n = 0; n < y.shape[0]; n++) {
    let acc = f32(0);
    for (let g = 0; g < scales.shape[1]; g++) {
      // The group's sum of x * (q - 7), scaled once: one multiply per group, not per weight.
      let dot = f32(0);
      for (let w = 0; w < Q4_WORDS_PER_GROUP; w++) {
        const word = packed[n][g * Q4_WORDS_PER_GROUP + w];
        for (let r = 0; r < Q4_PER_WORD; r++) {
          dot += f32(x[g * Q4_GROUP + w * Q4_PER_WORD + r]) * q4Code(word, r);
        }
      }
      acc += dot * f32(scales[n][g]);
    }
    y[n] = f16(f32(residual[n]) + f32(f16(acc)));
  }
});

// Seeds for tuning (see params.ts); the schedule applied today is in stdlib/gpu/schedules.ts.
export const q4QkvGemvParams: PerTarget<GemvParams> = q4GemvParams;
export const q4GemvResidualParams: PerTarget<GemvParams> = q4GemvParams;
export const q4GateUpSiluParams: PerTarget<GemvParams> = {
  sm_90: { ...q4GemvParams.sm_90, rowsPerBlock: 2 },
  gfx1100: { ...q4GemvParams.gfx1100, rowsPerBlock: 1 },
  vulkan: { ...q4GemvParams.vulkan, rowsPerBlock: 2 },
};
