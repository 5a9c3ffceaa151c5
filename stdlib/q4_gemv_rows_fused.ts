/**
 * The fused decode GEMVs in the several-rows-per-thread form of q4_gemv_rows.ts: x is loaded once
 * per group for every row a thread computes. Each computes exactly what its one-row counterpart
 * in q4_fused.ts computes (the same per-group sums, the same f16 roundings).
 */
import { kernel, f16, f32, idiv, type u32, type Tensor, type Sym } from "../dsl/index.ts";
import { silu } from "./elementwise.ts";
import { Q4_GROUP, Q4_PER_WORD, Q4_WORDS_PER_GROUP, q4Code } from "./q4_common.ts";

/** y = residual + W x, four rows per iteration (N a multiple of 4); y may alias residual. */
export const q4GemvResidualRows4 = kernel(function q4GemvResidualRows4(
  x: Tensor<f16, [Sym<"k">]>,
  packed: Tensor<u32, [Sym<"n">, Sym<"kw">]>,
  scales: Tensor<f16, [Sym<"n">, Sym<"kg">]>,
  residual: Tensor<f16, [Sym<"n">]>,
  y: Tensor<f16, [Sym<"n">]>,
) {
  for (let n4 = 0; n4 < idiv(y.shape[0], 4); n4++) {
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
        for (let r = 0; r < Q4_PER_WORD; r++) {
          const xv = f32(x[g * Q4_GROUP + w * Q4_PER_WORD + r]);
          dot0 += xv * q4Code(w0, r);
          dot1 += xv * q4Code(w1, r);
          dot2 += xv * q4Code(w2, r);
          dot3 += xv * q4Code(w3, r);
        }
      }
      acc0 += dot0 * f32(scales[4 * n4][g]);
      acc1 += dot1 * f32(scales[4 * n4 + 1][g]);
      acc2 += dot2 * f32(scales[4 * n4 + 2][g]);
      acc3 += dot3 * f32(scales[4 * n4 + 3][g]);
    }
    // As q4GemvResidual: W x rounded to f16, then added to the residual.
    y[4 * n4] = f16(f32(residual[4 * n4]) + f32(f16(acc0)));
    y[4 * n4 + 1] = f16(f32(residual[4 * n4 + 1]) + f32(f16(acc1)));
    y[4 * n4 + 2] = f16(f32(residual[4 * n4 + 2]) + f32(f16(acc2)));
    y[4 * n4 + 3] = f16(f32(residual[4 * n4 + 3]) + f32(f16(acc3)));
  }
});

/** y = W x in f32 (logits), four rows per iteration (N a multiple of 4); as q4GemvF32 otherwise. */
export const q4GemvF32Rows4 = kernel(function q4GemvF32Rows4(
  x: Tensor<f16, [Sym<"k">]>,
  packed: Tensor<u32, [Sym<"n">, Sym<"kw">]>,
  scales: Tensor<f16, [Sym<"n">, Sym<"kg">]>,
  y: Tensor<f32, [Sym<"n">]>,
) {
  for (let n4 = 0; n4 < idiv(y.shape[0], 4); n4++) {
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
        for (let r = 0; r < Q4_PER_WORD; r++) {
          const xv = f32(x[g * Q4_GROUP + w * Q4_PER_WORD + r]);
          dot0 += xv * q4Code(w0, r);
          dot1 += xv * q4Code(w1, r);
          dot2 += xv * q4Code(w2, r);
          dot3 += xv * q4Code(w3, r);
        }
      }
      acc0 += dot0 * f32(scales[4 * n4][g]);
      acc1 += dot1 * f32(scales[4 * n4 + 1][g]);
      acc2 += dot2 * f32(scales[4 * n4 + 2][g]);
      acc3 += dot3 * f32(scales[4 * n4 + 3][g]);
    }
    y[4 * n4] = acc0;
    y[4 * n4 + 1] = acc1;
    y[4 * n4 + 2] = acc2;
    y[4 * n4 + 3] = acc3;
  }
});

/** out = SiLU(gate) * up for two outputs per iteration (I even); the weight is [Wgate; Wup]. */
export const q4GateUpSiluRows2 = kernel(function q4GateUpSiluRows2(
  x: Tensor<f16, [Sym<"k">]>,
  packed: Tensor<u32, [Sym<"n2">, Sym<"kw">]>,
  scales: Tensor<f16, [Sym<"n2">, Sym<"kg">]>,
  out: Tensor<f16, [Sym<"i">]>,
) {
  const inter = out.shape[0];
  for (let i2 = 0; i2 < idiv(inter, 2); i2++) {
    const a = 2 * i2;
    let g0 = f32(0);
    let g1 = f32(0);
    let u0 = f32(0);
    let u1 = f32(0);
    for (let g = 0; g < scales.shape[1]; g++) {
      let dg0 = f32(0);
      let dg1 = f32(0);
      let du0 = f32(0);
      let du1 = f32(0);
      for (let w = 0; w < Q4_WORDS_PER_GROUP; w++) {
        const col = g * Q4_WORDS_PER_GROUP + w;
        const wg0 = packed[a][col];
        const wg1 = packed[a + 1][col];
        const wu0 = packed[inter + a][col];
        const wu1 = packed[inter + a + 1][col];
        for (let r = 0; r < Q4_PER_WORD; r++) {
          const xv = f32(x[g * Q4_GROUP + w * Q4_PER_WORD + r]);
          dg0 += xv * q4Code(wg0, r);
          dg1 += xv * q4Code(wg1, r);
          du0 += xv * q4Code(wu0, r);
          du1 += xv * q4Code(wu1, r);
        }
      }
      g0 += dg0 * f32(scales[a][g]);
      g1 += dg1 * f32(scales[a + 1][g]);
      u0 += du0 * f32(scales[inter + a][g]);
      u1 += du1 * f32(scales[inter + a + 1][g]);
    }
    out[a] = f16(silu(f32(f16(g0))) * f32(f16(u0)));
    out[a + 1] = f16(silu(f32(f16(g1))) * f32(f16(u1)));
  }
});

/** As q4GemvRows4Params (the schedule applying them: stdlib/gpu/gemv.ts). */
export const q4GemvResidualRows4Params = {
  sm_90: { rowsPerBlock: 2, threadsPerRow: 32 },
  gfx1100: { rowsPerBlock: 2, threadsPerRow: 32 },
  vulkan: { rowsPerBlock: 2, threadsPerRow: 32 },
} as const;
export const q4GateUpSiluRows2Params = q4GemvResidualRows4Params;
export const q4GemvF32Rows4Params = q4GemvResidualRows4Params;
