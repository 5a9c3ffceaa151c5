/**
 * Matrix-vector and matrix-matrix products on q4f16_1 weights (see q4_common.ts for the format and
 * the arithmetic): y = W x with W [N, K] dequantized inside the reduction loop, so the weight is
 * read once, 4 bits per element, which is what makes decoding memory-bound at ~0.56 bytes/weight.
 *
 * Loop structure, for the GPU schedules to split and bind: an outer loop over output rows n
 * (spatial), then the reduction over K as groups g (one scale each) x words w (one u32 each) x
 * codes r (8 per word). A schedule binds n to blocks/threads, splits g across the threads of a row
 * (rfactor + cross-thread reduction), and unrolls/vectorizes w and r.
 */
import { kernel, f16, f32, type u32, type Tensor, type Sym } from "../dsl/index.ts";
import type { GemmParams, GemvParams, PerTarget } from "./params.ts";
import { Q4_GROUP, Q4_PER_WORD, Q4_WORDS_PER_GROUP, q4Code, q4Value } from "./q4_common.ts";

/**
 * y[n] = sum_k x[k] * W[n][k]. x is f16 [K]; y is f16 [N].
 * `scales.shape[1]` (K/32) drives the reduction: `x` must hold K = 32 * K/32 elements and `packed`
 * K/8 words per row (the frontend cannot relate symbolic dimensions; the bounds-checked CPU backend
 * reports a mismatch as an out-of-bounds access).
 */
export const q4Gemv = kernel(function q4Gemv(
  x: Tensor<f16, [Sym<"k">]>,
  packed: Tensor<u32, [Sym<"n">, Sym<"kw">]>,
  scales: Tensor<f16, [Sym<"n">, Sym<"kg">]>,
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
    y[n] = f16(acc);
  }
});

/** y[m][n] = sum_k x[m][k] * W[n][k]: x f16 [M, K], y f16 [M, N] (prefill: M tokens at once). */
export const q4Gemm = kernel(function q4Gemm(
  x: Tensor<f16, [Sym<"m">, Sym<"k">]>,
  packed: Tensor<u32, [Sym<"n">, Sym<"kw">]>,
  scales: Tensor<f16, [Sym<"n">, Sym<"kg">]>,
  y: Tensor<f16, [Sym<"m">, Sym<"n">]>,
) {
  for (let m = 0; m < y.shape[0]; m++) {
    for (let n = 0; n < y.shape[1]; n++) {
      let acc = f32(0);
      for (let g = 0; g < scales.shape[1]; g++) {
        const scale = f32(scales[n][g]);
        for (let w = 0; w < Q4_WORDS_PER_GROUP; w++) {
          const word = packed[n][g * Q4_WORDS_PER_GROUP + w];
          for (let r = 0; r < Q4_PER_WORD; r++) {
            acc += f32(x[m][g * Q4_GROUP + w * Q4_PER_WORD + r]) * q4Value(word, r, scale);
          }
        }
      }
      y[m][n] = f16(acc);
    }
  }
});

/**
 * As q4Gemv with f32 outputs: for the classifier (lm_head), where f16 logits would tie often
 * (f16 steps are 1/64 near 16) and sampling wants f32 anyway.
 */
export const q4GemvF32 = kernel(function q4GemvF32(
  x: Tensor<f16, [Sym<"k">]>,
  packed: Tensor<u32, [Sym<"n">, Sym<"kw">]>,
  scales: Tensor<f16, [Sym<"n">, Sym<"kg">]>,
  y: Tensor<f32, [Sym<"n">]>,
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
    y[n] = acc;
  }
});

// Seeds for tuning (see params.ts); the schedule applied today is in stdlib/gpu/schedules.ts.
export const q4GemvParams: PerTarget<GemvParams> = {
  // 8 warps per block; 4 rows x 64 threads, one u32 word (8 codes) per thread per step.
  sm_90: { rowsPerBlock: 4, threadsPerRow: 64, vec: 8, unroll: 256 },
  // RDNA3 runs wave32: 1 row x 128 threads (4 waves) keeps the reduction short.
  gfx1100: { rowsPerBlock: 1, threadsPerRow: 128, vec: 8, unroll: 64 },
  vulkan: { rowsPerBlock: 4, threadsPerRow: 32, vec: 8, unroll: 64 },
};

export const q4GemvF32Params: PerTarget<GemvParams> = q4GemvParams;

export const q4GemmParams: PerTarget<GemmParams> = {
  sm_90: { tileM: 64, tileN: 64, tileK: 32, threads: 256, vec: 8 },
  gfx1100: { tileM: 64, tileN: 64, tileK: 32, threads: 256, vec: 8 },
  vulkan: { tileM: 32, tileN: 32, tileK: 32, threads: 128, vec: 8 },
};
