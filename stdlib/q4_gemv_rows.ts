/**
 * q4f16_1 GEMV variants for GPUs where each thread computes several output rows at once: the
 * activation x is loaded and converted once per group for all of them, which cuts the L1 traffic
 * that bounds the one-row kernels (each 4-bit weight needs 2 bytes of x). They compute exactly
 * what q4Gemv computes (the same per-group sums and rounding), row by row.
 */
import { kernel, f16, f32, idiv, type u32, type Tensor, type Sym } from "../dsl/index.ts";
import { Q4_GROUP, Q4_PER_WORD, Q4_WORDS_PER_GROUP, q4Code } from "./q4_common.ts";

/** y = W x, four rows per iteration of n4 (N must be a multiple of 4). Shapes as q4Gemv. */
export const q4GemvRows4 = kernel(function q4GemvRows4(
  x: Tensor<f16, [Sym<"k">]>,
  packed: Tensor<u32, [Sym<"n">, Sym<"kw">]>,
  scales: Tensor<f16, [Sym<"n">, Sym<"kg">]>,
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
    y[4 * n4] = f16(acc0);
    y[4 * n4 + 1] = f16(acc1);
    y[4 * n4 + 2] = f16(acc2);
    y[4 * n4 + 3] = f16(acc3);
  }
});

/** Rows of 4 per block and lanes per row (the schedule applying them: stdlib/gpu/gemv.ts). */
export const q4GemvRows4Params = {
  sm_90: { rowsPerBlock: 2, threadsPerRow: 32 },
  gfx1100: { rowsPerBlock: 2, threadsPerRow: 32 },
  vulkan: { rowsPerBlock: 2, threadsPerRow: 32 },
} as const;
