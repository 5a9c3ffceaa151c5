import type { LlamaConfig } from "../../llama/config.ts";

/** Llama-2-7B's shape (weights synthetic in benchmarks). */
export const LLAMA2_7B: LlamaConfig = {
  dim: 4096,
  hiddenDim: 11008,
  nLayers: 32,
  nHeads: 32,
  nKvHeads: 32,
  vocabSize: 32000,
  normEps: 1e-5,
  ropeTheta: 10000,
  contextLength: 4096,
  ropeLayout: "half",
  sharedClassifier: false,
  bosId: 1,
  eosId: 2,
};

/** The KV cache length the decode benchmark allocates: a 512-token prompt plus 512 generated. */
export const DECODE_CONTEXT = 1100;
