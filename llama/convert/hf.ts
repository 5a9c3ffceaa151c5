/**
 * Hugging Face Llama checkpoints: a directory with config.json, safetensors weights (one file or
 * shards with an index) and usually tokenizer.json.
 *
 * HF's conversion script permutes the rows of q_proj and k_proj so that rotary embedding rotates
 * halves (i, i + headDim/2) instead of Meta's adjacent pairs; we keep the weights as they are and
 * say so with ropeLayout "half".
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { type LlamaConfig, validateConfig } from "../config.ts";
import { llamaTensorSpecs, shapeText, type TensorSpec } from "./names.ts";
import { SafetensorsModel } from "./safetensors.ts";
import type { ModelSource, SourceFile } from "./source.ts";

type Json = Record<string, unknown>;

/** Reads and checks `dir/config.json`; every missing or unsupported field is an error naming it. */
export function readHfConfig(dir: string): LlamaConfig {
  const file = path.join(dir, "config.json");
  let raw: string;
  try {
    raw = fs.readFileSync(file, "utf8");
  } catch (e) {
    throw new Error(`${file}: cannot read the model config: ${(e as Error).message}`);
  }
  let j: Json;
  try {
    j = JSON.parse(raw) as Json;
  } catch (e) {
    throw new Error(`${file}: not valid JSON: ${(e as Error).message}`);
  }
  if (typeof j !== "object" || j === null || Array.isArray(j)) throw new Error(`${file}: not a JSON object`);
  return hfConfigFromJson(j, file);
}

/** Builds a LlamaConfig from a parsed config.json; `file` names the source in error messages. */
export function hfConfigFromJson(j: Json, file = "config.json"): LlamaConfig {
  const num = (key: string, fallback?: number): number => {
    const v = j[key];
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      throw new Error(`${file}: missing field ${key}`);
    }
    if (typeof v !== "number" || !Number.isFinite(v))
      throw new Error(`${file}: field ${key} is not a number: ${JSON.stringify(v)}`);
    return v;
  };
  if (j.model_type !== undefined && j.model_type !== "llama")
    throw new Error(`${file}: model_type is ${JSON.stringify(j.model_type)}; only "llama" is supported`);
  if (j.hidden_act !== undefined && j.hidden_act !== "silu")
    throw new Error(
      `${file}: hidden_act ${JSON.stringify(j.hidden_act)} is not supported (Llama uses "silu")`,
    );
  // Llama 3.1's "llama3" rope scaling and others change rotary frequencies: refuse rather than be wrong.
  if (j.rope_scaling !== undefined && j.rope_scaling !== null)
    throw new Error(`${file}: rope_scaling ${JSON.stringify(j.rope_scaling)} is not supported`);
  for (const flag of ["attention_bias", "mlp_bias"])
    if (j[flag] === true) throw new Error(`${file}: ${flag} = true is not supported (no bias tensors)`);
  const tie = j.tie_word_embeddings ?? false;
  if (typeof tie !== "boolean") throw new Error(`${file}: tie_word_embeddings is not a boolean`);
  // Llama 3 lists several end-of-sequence ids; generation stops at the first one, its <|end_of_text|>.
  const eosRaw = j.eos_token_id;
  const eos = Array.isArray(eosRaw) ? eosRaw[0] : eosRaw;
  if (eos !== undefined && (typeof eos !== "number" || !Number.isInteger(eos)))
    throw new Error(`${file}: eos_token_id is not an integer (or list of them): ${JSON.stringify(eosRaw)}`);
  const config: LlamaConfig = {
    dim: num("hidden_size"),
    hiddenDim: num("intermediate_size"),
    nLayers: num("num_hidden_layers"),
    nHeads: num("num_attention_heads"),
    // HF's LlamaConfig defaults these when absent: kv heads = heads (no GQA), theta 10000.
    nKvHeads: num("num_key_value_heads", num("num_attention_heads")),
    vocabSize: num("vocab_size"),
    normEps: num("rms_norm_eps"),
    ropeTheta: num("rope_theta", 10000),
    contextLength: num("max_position_embeddings"),
    ropeLayout: "half",
    sharedClassifier: tie,
    bosId: num("bos_token_id", 1),
    eosId: (eos as number | undefined) ?? 2,
  };
  validateConfig(config, file);
  const hd = j.head_dim;
  if (hd !== undefined && hd !== null && hd !== config.dim / config.nHeads)
    throw new Error(
      `${file}: head_dim ${JSON.stringify(hd)} differs from hidden_size / num_attention_heads = ${config.dim / config.nHeads}; not supported`,
    );
  return config;
}

/** Opens a Hugging Face Llama directory as a conversion source; checks every tensor's shape and dtype. */
export function openHfLlama(dir: string): ModelSource {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory())
    throw new Error(`${dir}: not a directory (a Hugging Face model directory is expected)`);
  const config = readHfConfig(dir);
  const st = new SafetensorsModel(dir);
  try {
    const specs = llamaTensorSpecs(config);
    for (const s of specs) {
      if (!st.has(s.name)) {
        const hint = s.name === "lm_head.weight" ? " (config.json says tie_word_embeddings is false)" : "";
        throw new Error(`${dir}: tensor ${s.name} is missing${hint}`);
      }
      const info = st.info(s.name);
      if (!["F32", "F16", "BF16"].includes(info.dtype))
        throw new Error(
          `${info.file}: tensor ${s.name} has dtype ${info.dtype}; only F32, F16 and BF16 are supported`,
        );
      if (shapeText(info.shape) !== shapeText(s.shape))
        throw new Error(
          `${info.file}: tensor ${s.name} has shape ${shapeText(info.shape)}, config.json implies ${shapeText(s.shape)}`,
        );
    }
    const tokenizer: SourceFile[] = [];
    for (const f of ["tokenizer.json", "tokenizer_config.json"]) {
      const p = path.join(dir, f);
      if (fs.existsSync(p)) tokenizer.push({ name: f, src: p });
    }
    return {
      kind: "hf",
      label: dir,
      config,
      tensors: specs,
      read: (s: TensorSpec) => st.readF32(s.name),
      tokenizer: tokenizer.some((t) => t.name === "tokenizer.json")
        ? { kind: "hf", files: tokenizer }
        : undefined,
      close: () => st.close(),
    };
  } catch (e) {
    st.close();
    throw e;
  }
}
