import type { LlamaConfig } from "../../../llama/config.ts";
import { kvDim } from "../../../llama/config.ts";
import type { LlamaLayerWeights, LlamaWeights } from "../../../llama/weights/types.ts";

/** mulberry32: a small seeded generator so test weights are the same on every run. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function tinyConfig(over: Partial<LlamaConfig> = {}): LlamaConfig {
  return {
    dim: 16,
    hiddenDim: 40,
    nLayers: 2,
    nHeads: 4,
    nKvHeads: 2,
    vocabSize: 300,
    contextLength: 12,
    normEps: 1e-5,
    ropeTheta: 10000,
    ropeLayout: "interleaved",
    sharedClassifier: false,
    bosId: 1,
    eosId: 2,
    ...over,
  };
}

/** Random weights of the right shapes; values of order `scale`, norms around 1. */
export function randomWeights(config: LlamaConfig, seed: number, scale = 0.3): LlamaWeights {
  const rand = seededRandom(seed);
  const mat = (n: number) => Float32Array.from({ length: n }, () => (rand() * 2 - 1) * scale);
  const norm = (n: number) => Float32Array.from({ length: n }, () => 0.5 + rand());
  const { dim, hiddenDim } = config;
  const kv = kvDim(config);
  const layers: LlamaLayerWeights[] = Array.from({ length: config.nLayers }, () => ({
    attnNorm: norm(dim),
    wq: mat(dim * dim),
    wk: mat(kv * dim),
    wv: mat(kv * dim),
    wo: mat(dim * dim),
    ffnNorm: norm(dim),
    w1: mat(hiddenDim * dim),
    w2: mat(dim * hiddenDim),
    w3: mat(hiddenDim * dim),
  }));
  const tokenEmbedding = mat(config.vocabSize * dim);
  return {
    config,
    tokenEmbedding,
    layers,
    finalNorm: norm(dim),
    classifier: config.sharedClassifier ? tokenEmbedding : mat(config.vocabSize * dim),
  };
}
