/**
 * RMSNorm folded into the GEMV that follows it (decode): each row's block computes the input's
 * sum of squares itself (a cross-thread reduction over an x that is in cache anyway) and
 * normalizes x on the fly, so the norm costs no launch and no round trip through memory. Each
 * normalized element is rounded to f16 exactly as rmsNorm (rmsnorm.ts) stores it, so a fused
 * kernel computes bit for bit what rmsNorm followed by the plain GEMV computes.
 */
import { kernel, f16, f32, idiv, rsqrt, type u32, type Tensor, type Sym } from "../dsl/index.ts";
import { Q4_GROUP, Q4_PER_WORD, Q4_WORDS_PER_GROUP, q4Code } from "./q4_common.ts";
import { silu } from "./elementwise.ts";

/** y = W rmsNorm(x, wn, eps), four rows per iteration (N a multiple of 4); as q4GemvRows4 otherwise. */
export const q4GemvRows4Rms = kernel(function q4GemvRows4Rms(
  x: Tensor<f16, [Sym<"k">]>,
  wn: Tensor<f16, [Sym<"k">]>,
  eps: f32,
  packed: Tensor<u32, [Sym<"n">, Sym<"kw">]>,
  scales: Tensor<f16, [Sym<"n">, Sym<"kg">]>,
  y: Tensor<f16, [Sym<"n">]>,
) {
  const kk = x.shape[0];
  for (let n4 = 0; n4 < idiv(y.shape[0], 4); n4++) {
    let ss = f32(0);
    for (let j = 0; j < kk; j++) ss += f32(x[j]) * f32(x[j]);
    const r = rsqrt(ss / f32(kk) + eps);
    let acc0 = f32(0);
    let acc1 = f32(0);
    let acc2 = f32(0);
    let acc3 = f32(0);
    for (let g = 0; g < scales.shape[1]; g++) {
      let dot0 = f32(0);
      let dot1 = f32(0);
      let dot2 = f32(0);
      let dot3 = f32(0);
      for (let w = 0; w < Q4_WORDS_PER_GROUP; w++) {
        const col = g * Q4_WORDS_PER_GROUP + w;
        const w0 = packed[4 * n4][col];
        const w1 = packed[4 * n4 + 1][col];
        const w2 = packed[4 * n4 + 2][col];
        const w3 = packed[4 * n4 + 3][col];
        for (let r8 = 0; r8 < Q4_PER_WORD; r8++) {
          const at = g * Q4_GROUP + w * Q4_PER_WORD + r8;
          const xv = f32(f16(f32(x[at]) * r * f32(wn[at])));
          dot0 += xv * q4Code(w0, r8);
          dot1 += xv * q4Code(w1, r8);
          dot2 += xv * q4Code(w2, r8);
          dot3 += xv * q4Code(w3, r8);
        }
      }
      acc0 += dot0 * f32(scales[4 * n4][g]);
      acc1 += dot1 * f32(scales[4 * n4 + 1][g]);
      acc2 += dot2 * f32(scales[4 * n4 + 2][g]);
      acc3 += dot3 * f32(scales[4 * n4 + 3][g]);
    }
    y[4 * n4] = f16(acc0);
    y[4 * n4 + 1] = f16(acc1);
    y[4 * n4 + 2] = f16(acc2);
    y[4 * n4 + 3] = f16(acc3);
  }
});

/** out = SiLU(Wg x̂) * (Wu x̂) with x̂ = rmsNorm(x, wn, eps); as q4GateUpSilu otherwise. */
export const q4GateUpSiluRms = kernel(function q4GateUpSiluRms(
  x: Tensor<f16, [Sym<"k">]>,
  wn: Tensor<f16, [Sym<"k">]>,
  eps: f32,
  packed: Tensor<u32, [Sym<"n2">, Sym<"kw">]>,
  scales: Tensor<f16, [Sym<"n2">, Sym<"kg">]>,
  out: Tensor<f16, [Sym<"i">]>,
) {
  const kk = x.shape[0];
  const inter = out.shape[0];
  for (let i = 0; i < inter; i++) {
    let ss = f32(0);
    for (let j = 0; j < kk; j++) ss += f32(x[j]) * f32(x[j]);
    const r = rsqrt(ss / f32(kk) + eps);
    let gate = f32(0);
    let up = f32(0);
    for (let g = 0; g < scales.shape[1]; g++) {
      let gateDot = f32(0);
      let upDot = f32(0);
      for (let w = 0; w < Q4_WORDS_PER_GROUP; w++) {
        const gateWord = packed[i][g * Q4_WORDS_PER_GROUP + w];
        const upWord = packed[inter + i][g * Q4_WORDS_PER_GROUP + w];
        for (let r8 = 0; r8 < Q4_PER_WORD; r8++) {
          const at = g * Q4_GROUP + w * Q4_PER_WORD + r8;
          const xv = f32(f16(f32(x[at]) * r * f32(wn[at])));
          gateDot += xv * q4Code(gateWord, r8);
          upDot += xv * q4Code(upWord, r8);
        }
      }
      gate += gateDot * f32(scales[i][g]);
      up += upDot * f32(scales[inter + i][g]);
    }
    out[i] = f16(silu(f32(f16(gate))) * f32(f16(up)));
  }
});

/** Rows per block and lanes per row (the schedule applying them: stdlib/gpu/schedules.ts). */
export const q4GemvRows4RmsParams = {
  sm_90: { rowsPerBlock: 2, threadsPerRow: 32 },
  gfx1100: { rowsPerBlock: 2, threadsPerRow: 32 },
  vulkan: { rowsPerBlock: 2, threadsPerRow: 32 },
} as const;
export const q4GateUpSiluRmsParams = q4GemvRows4RmsParams;
