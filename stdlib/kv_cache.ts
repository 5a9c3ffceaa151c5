/**
 * The KV cache: per layer, one key cache and one value cache, each f16 [maxLen, kvHeads, headDim]
 * (position-major: the keys of one token are one contiguous kvDim = kvHeads * headDim row, which
 * is also what the k/v projections produce). Positions 0..len-1 are valid; a decode step appends
 * its token at position len and then attends over len + 1 positions.
 *
 * kvAppend writes n tokens' keys and values at positions [pos, pos + n). The caller keeps
 * pos + n <= maxLen (the bounds-checked CPU backend reports an overflow as out of bounds).
 */
import { kernel, type f16, type i32, type Tensor, type Sym } from "../dsl/index.ts";
import { ELEMENTWISE_DEFAULTS, type ElementwiseParams, type PerTarget } from "./params.ts";

/** k, v f16 [N, kvHeads, headDim] (rotary embedding already applied to k); caches f16 [maxLen, kvHeads, headDim]; pos i32. */
export const kvAppend = kernel(function kvAppend(
  k: Tensor<f16, [Sym<"n">, Sym<"kvh">, Sym<"d">]>,
  v: Tensor<f16, [Sym<"n">, Sym<"kvh">, Sym<"d">]>,
  kCache: Tensor<f16, [Sym<"ctx">, Sym<"kvh">, Sym<"d">]>,
  vCache: Tensor<f16, [Sym<"ctx">, Sym<"kvh">, Sym<"d">]>,
  pos: i32,
) {
  for (let t = 0; t < k.shape[0]; t++) {
    for (let h = 0; h < k.shape[1]; h++) {
      for (let i = 0; i < k.shape[2]; i++) {
        kCache[pos + t][h][i] = k[t][h][i];
        vCache[pos + t][h][i] = v[t][h][i];
      }
    }
  }
});

// Seeds for tuning (see params.ts); the schedule applied today is in stdlib/gpu/schedules.ts.
export const kvAppendParams: PerTarget<ElementwiseParams> = ELEMENTWISE_DEFAULTS;
