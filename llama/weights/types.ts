import type { LlamaConfig } from "../config.ts";

/**
 * Float32 Llama weights, every matrix row-major [out, in] (PyTorch's and llama2.c's layout).
 * Norm weights are vectors of length dim. `classifier` is [vocab, dim] and may be the same array as
 * `tokenEmbedding` when the config says sharedClassifier.
 */
export interface LlamaLayerWeights {
  readonly attnNorm: Float32Array;
  readonly wq: Float32Array; // [dim, dim]
  readonly wk: Float32Array; // [kvDim, dim]
  readonly wv: Float32Array; // [kvDim, dim]
  readonly wo: Float32Array; // [dim, dim]
  readonly ffnNorm: Float32Array;
  readonly w1: Float32Array; // gate [hiddenDim, dim]
  readonly w2: Float32Array; // down [dim, hiddenDim]
  readonly w3: Float32Array; // up [hiddenDim, dim]
}

export interface LlamaWeights {
  readonly config: LlamaConfig;
  readonly tokenEmbedding: Float32Array; // [vocab, dim]
  readonly layers: readonly LlamaLayerWeights[];
  readonly finalNorm: Float32Array;
  readonly classifier: Float32Array; // [vocab, dim]
}
