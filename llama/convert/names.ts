/**
 * The tensors of a Llama model under one naming scheme, shared by every converter and loader.
 *
 * We use Hugging Face's names (model.layers.N.self_attn.q_proj.weight, ...): they are what people
 * search for and what MLC's parameter names derive from. Each entry says which field of tkc's
 * LlamaWeights it fills, and whether it is a matrix (quantized by q4f16_1) or a vector (norms,
 * kept in f16/f32: MLC does not quantize them either).
 */
import { kvDim, type LlamaConfig } from "../config.ts";
import type { LlamaLayerWeights } from "../weights/types.ts";

export interface TensorSpec {
  readonly name: string;
  /** Row-major [out, in] for matrices, [dim] for norms. */
  readonly shape: readonly number[];
  readonly matrix: boolean;
  /** Where it goes in LlamaWeights: a global field, or a layer's field. */
  readonly target:
    | { readonly kind: "global"; readonly key: "tokenEmbedding" | "finalNorm" | "classifier" }
    | { readonly kind: "layer"; readonly layer: number; readonly key: keyof LlamaLayerWeights };
}

export const EMBED = "model.embed_tokens.weight";
export const FINAL_NORM = "model.norm.weight";
export const LM_HEAD = "lm_head.weight";

const LAYER_TENSORS: readonly { suffix: string; key: keyof LlamaLayerWeights; matrix: boolean }[] = [
  { suffix: "input_layernorm.weight", key: "attnNorm", matrix: false },
  { suffix: "self_attn.q_proj.weight", key: "wq", matrix: true },
  { suffix: "self_attn.k_proj.weight", key: "wk", matrix: true },
  { suffix: "self_attn.v_proj.weight", key: "wv", matrix: true },
  { suffix: "self_attn.o_proj.weight", key: "wo", matrix: true },
  { suffix: "post_attention_layernorm.weight", key: "ffnNorm", matrix: false },
  { suffix: "mlp.gate_proj.weight", key: "w1", matrix: true },
  { suffix: "mlp.up_proj.weight", key: "w3", matrix: true },
  { suffix: "mlp.down_proj.weight", key: "w2", matrix: true },
];

/** The model's tensors in a fixed order; lm_head only when the classifier is not shared. */
export function llamaTensorSpecs(c: LlamaConfig): TensorSpec[] {
  const d = c.dim;
  const kv = kvDim(c);
  const shapes: Record<keyof LlamaLayerWeights, number[]> = {
    attnNorm: [d],
    wq: [d, d],
    wk: [kv, d],
    wv: [kv, d],
    wo: [d, d],
    ffnNorm: [d],
    w1: [c.hiddenDim, d],
    w3: [c.hiddenDim, d],
    w2: [d, c.hiddenDim],
  };
  const specs: TensorSpec[] = [
    { name: EMBED, shape: [c.vocabSize, d], matrix: true, target: { kind: "global", key: "tokenEmbedding" } },
  ];
  for (let l = 0; l < c.nLayers; l++)
    for (const t of LAYER_TENSORS)
      specs.push({
        name: `model.layers.${l}.${t.suffix}`,
        shape: shapes[t.key],
        matrix: t.matrix,
        target: { kind: "layer", layer: l, key: t.key },
      });
  specs.push({ name: FINAL_NORM, shape: [d], matrix: false, target: { kind: "global", key: "finalNorm" } });
  if (!c.sharedClassifier)
    specs.push({
      name: LM_HEAD,
      shape: [c.vocabSize, d],
      matrix: true,
      target: { kind: "global", key: "classifier" },
    });
  return specs;
}

export const shapeText = (s: readonly number[]): string => `[${s.join(", ")}]`;
