/**
 * Token embedding lookup from a q4f16_1 table [vocab, dim] (q4_common.ts): each token's row
 * dequantized to f16, f16((q - 7) * scale), which is MLC's dequantized value bit for bit (the f32
 * product is exact, so the one rounding to f16 is the f16 product's).
 * Token ids must lie in [0, vocab): the host validates them (the bounds-checked CPU backend
 * reports a bad id as an out-of-bounds access).
 */
import { kernel, f16, f32, idiv, type i32, type u32, type Tensor, type Sym } from "../dsl/index.ts";
import { ELEMENTWISE_DEFAULTS, type ElementwiseParams, type PerTarget } from "./params.ts";
import { Q4_GROUP, Q4_PER_WORD, q4Value } from "./q4_common.ts";

/** ids i32 [T]; packed u32 [vocab, dim/8]; scales f16 [vocab, dim/32]; out f16 [T, dim]. */
export const q4Embedding = kernel(function q4Embedding(
  ids: Tensor<i32, [Sym<"t">]>,
  packed: Tensor<u32, [Sym<"vocab">, Sym<"dw">]>,
  scales: Tensor<f16, [Sym<"vocab">, Sym<"dg">]>,
  out: Tensor<f16, [Sym<"t">, Sym<"dim">]>,
) {
  for (let t = 0; t < out.shape[0]; t++) {
    const id = ids[t];
    for (let c = 0; c < out.shape[1]; c++) {
      const word = packed[id][idiv(c, Q4_PER_WORD)];
      out[t][c] = f16(q4Value(word, c % Q4_PER_WORD, f32(scales[id][idiv(c, Q4_GROUP)])));
    }
  }
});

// Seeds for tuning (see params.ts); the schedule applied today is in stdlib/gpu/schedules.ts.
export const q4EmbeddingParams: PerTarget<ElementwiseParams> = ELEMENTWISE_DEFAULTS;
