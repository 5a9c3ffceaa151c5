/** Model shapes used by benchmarks, `tkc compile`'s default and the GPU tests. */
import type { LlamaConfig } from "./config.ts";

/** Llama-2-7B's shape (benchmarks use synthetic weights in the real q4f16_1 format). */
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

/** A tiny config with grouped-query attention: every op a Llama needs, at shapes tests can afford. */
export const TINY_GQA: LlamaConfig = {
  dim: 64,
  hiddenDim: 96,
  nLayers: 1,
  nHeads: 4,
  nKvHeads: 2,
  vocabSize: 40,
  normEps: 1e-5,
  ropeTheta: 10000,
  contextLength: 12,
  ropeLayout: "half",
  sharedClassifier: false,
  bosId: 1,
  eosId: 2,
};
