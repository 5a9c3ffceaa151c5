import { kvDim, validateConfig } from "../config.ts";
import type { LlamaWeights } from "./types.ts";

/**
 * Checks that every tensor of `w` has the length its config implies; throws naming the tensor.
 * Any loader (llama2.c, Hugging Face, quantized and dequantized) should pass this before a model
 * uses the weights, so a shape mistake fails at load time and not as garbage text later.
 */
export function validateWeights(w: LlamaWeights, where = "weights"): LlamaWeights {
  const c = validateConfig(w.config, `${where} config`);
  const kv = kvDim(c);
  const want = (name: string, a: Float32Array, n: number, shape: string): void => {
    if (!(a instanceof Float32Array)) throw new Error(`${where}: ${name} is not a Float32Array`);
    if (a.length !== n) throw new Error(`${where}: ${name} has ${a.length} values, expected ${shape} = ${n}`);
  };
  want("tokenEmbedding", w.tokenEmbedding, c.vocabSize * c.dim, `[${c.vocabSize}, ${c.dim}]`);
  want("classifier", w.classifier, c.vocabSize * c.dim, `[${c.vocabSize}, ${c.dim}]`);
  want("finalNorm", w.finalNorm, c.dim, `[${c.dim}]`);
  if (w.layers.length !== c.nLayers)
    throw new Error(`${where}: ${w.layers.length} layers, config says ${c.nLayers}`);
  w.layers.forEach((l, i) => {
    const p = `layers[${i}].`;
    want(p + "attnNorm", l.attnNorm, c.dim, `[${c.dim}]`);
    want(p + "wq", l.wq, c.dim * c.dim, `[${c.dim}, ${c.dim}]`);
    want(p + "wk", l.wk, kv * c.dim, `[${kv}, ${c.dim}]`);
    want(p + "wv", l.wv, kv * c.dim, `[${kv}, ${c.dim}]`);
    want(p + "wo", l.wo, c.dim * c.dim, `[${c.dim}, ${c.dim}]`);
    want(p + "ffnNorm", l.ffnNorm, c.dim, `[${c.dim}]`);
    want(p + "w1", l.w1, c.hiddenDim * c.dim, `[${c.hiddenDim}, ${c.dim}]`);
    want(p + "w2", l.w2, c.dim * c.hiddenDim, `[${c.dim}, ${c.hiddenDim}]`);
    want(p + "w3", l.w3, c.hiddenDim * c.dim, `[${c.hiddenDim}, ${c.dim}]`);
  });
  return w;
}
