/**
 * Tiny models written byte by byte in the tests' own code (not through tkc's writers), so that the
 * readers are checked against an independent idea of the formats.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { bf16Bits, f16Bits } from "../../dsl/dtypes.ts";

/** Deterministic PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const made: string[] = [];

/** A fresh temporary directory; removeTmpDirs() (in afterAll) deletes every one made. */
export function tmpDir(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `tkc-${prefix}-`));
  made.push(d);
  return d;
}

export function removeTmpDirs(): void {
  for (const d of made.splice(0)) fs.rmSync(d, { recursive: true, force: true });
}

export interface TinyDims {
  dim: number;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  vocab: number;
  seq: number;
  shared: boolean;
}

export const TINY: TinyDims = {
  dim: 64,
  hidden: 96,
  layers: 2,
  heads: 4,
  kvHeads: 2,
  vocab: 40,
  seq: 16,
  shared: false,
};

/** A model's tensors by HF name, float32, with the HF shapes. */
export type TinyTensors = Map<string, { shape: number[]; data: Float32Array }>;

export function randomTensors(d: TinyDims, seed: number): TinyTensors {
  const next = rng(seed);
  const kv = (d.dim / d.heads) * d.kvHeads;
  const t: TinyTensors = new Map();
  const add = (name: string, shape: number[], norm = false) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = Float32Array.from({ length: n }, () =>
      norm ? 1 + 0.1 * (next() - 0.5) : (next() - 0.5) * 0.2,
    );
    t.set(name, { shape, data });
  };
  add("model.embed_tokens.weight", [d.vocab, d.dim]);
  for (let l = 0; l < d.layers; l++) {
    const p = `model.layers.${l}.`;
    add(p + "input_layernorm.weight", [d.dim], true);
    add(p + "self_attn.q_proj.weight", [d.dim, d.dim]);
    add(p + "self_attn.k_proj.weight", [kv, d.dim]);
    add(p + "self_attn.v_proj.weight", [kv, d.dim]);
    add(p + "self_attn.o_proj.weight", [d.dim, d.dim]);
    add(p + "post_attention_layernorm.weight", [d.dim], true);
    add(p + "mlp.gate_proj.weight", [d.hidden, d.dim]);
    add(p + "mlp.up_proj.weight", [d.hidden, d.dim]);
    add(p + "mlp.down_proj.weight", [d.dim, d.hidden]);
  }
  add("model.norm.weight", [d.dim], true);
  if (!d.shared) add("lm_head.weight", [d.vocab, d.dim]);
  return t;
}

/**
 * A legacy llama2.c checkpoint (run.c's format, export.py's legacy_export): 7 int32 header fields,
 * then every tensor kind for all layers in turn, the unused freq_cis tables, then wcls if unshared.
 */
export function writeLlama2c(file: string, d: TinyDims, t: TinyTensors): void {
  const parts: Float32Array[] = [];
  const get = (n: string) => t.get(n)!.data;
  const perLayer = (suffix: string) => {
    for (let l = 0; l < d.layers; l++) parts.push(get(`model.layers.${l}.${suffix}`));
  };
  parts.push(get("model.embed_tokens.weight"));
  perLayer("input_layernorm.weight");
  for (const s of ["q", "k", "v", "o"]) perLayer(`self_attn.${s}_proj.weight`);
  perLayer("post_attention_layernorm.weight");
  perLayer("mlp.gate_proj.weight"); // w1
  perLayer("mlp.down_proj.weight"); // w2
  perLayer("mlp.up_proj.weight"); // w3
  parts.push(get("model.norm.weight"));
  const hd = d.dim / d.heads;
  parts.push(new Float32Array(d.seq * hd).fill(0.5)); // freq_cis_real + freq_cis_imag
  if (!d.shared) parts.push(get("lm_head.weight"));
  const header = Int32Array.from([
    d.dim,
    d.hidden,
    d.layers,
    d.heads,
    d.kvHeads,
    d.shared ? d.vocab : -d.vocab,
    d.seq,
  ]);
  fs.writeFileSync(
    file,
    Buffer.concat([
      Buffer.from(header.buffer),
      ...parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength)),
    ]),
  );
}

export type StDType = "F32" | "F16" | "BF16" | "I64";

/** Encodes float values in a safetensors dtype (I64: the values as integers). */
export function encode(values: Float32Array, dtype: StDType): Buffer {
  if (dtype === "F32")
    return Buffer.from(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
  if (dtype === "I64") return Buffer.from(BigInt64Array.from(values, (v) => BigInt(Math.round(v))).buffer);
  const bits = Uint16Array.from(values, (v) => (dtype === "F16" ? f16Bits(v) : bf16Bits(v)));
  return Buffer.from(bits.buffer);
}

export interface StEntry {
  name: string;
  dtype: StDType;
  shape: number[];
  bytes: Buffer;
}

/**
 * Writes a safetensors file: u64 header length, JSON header, data. `lie` edits the header after
 * the offsets are computed, to make corrupt files.
 */
export function writeSafetensors(
  file: string,
  entries: StEntry[],
  lie?: (header: Record<string, unknown>) => void,
): void {
  const header: Record<string, unknown> = { __metadata__: { format: "pt" } };
  let off = 0;
  for (const e of entries) {
    header[e.name] = { dtype: e.dtype, shape: e.shape, data_offsets: [off, off + e.bytes.length] };
    off += e.bytes.length;
  }
  lie?.(header);
  let json = Buffer.from(JSON.stringify(header), "utf8");
  // Pad the header with spaces to a multiple of 8, as the Python writer does.
  json = Buffer.concat([json, Buffer.alloc((8 - (json.length % 8)) % 8, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  fs.writeFileSync(file, Buffer.concat([len, json, ...entries.map((e) => e.bytes)]));
}

export function hfConfigJson(d: TinyDims): Record<string, unknown> {
  return {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    hidden_size: d.dim,
    intermediate_size: d.hidden,
    num_hidden_layers: d.layers,
    num_attention_heads: d.heads,
    num_key_value_heads: d.kvHeads,
    vocab_size: d.vocab,
    rms_norm_eps: 1e-6,
    rope_theta: 500000,
    max_position_embeddings: d.seq,
    tie_word_embeddings: d.shared,
    bos_token_id: 1,
    eos_token_id: 2,
    hidden_act: "silu",
    torch_dtype: "float16",
  };
}

/**
 * A Hugging Face directory: config.json plus the tensors over `shards` safetensors files with an
 * index (or one model.safetensors when shards is 1). `dtypeOf` picks each tensor's dtype.
 */
export function writeHfDir(
  dir: string,
  d: TinyDims,
  t: TinyTensors,
  opts: { shards?: number; dtypeOf?: (name: string) => StDType; extra?: StEntry[] } = {},
): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(hfConfigJson(d), null, 2));
  const shards = opts.shards ?? 1;
  const entries: StEntry[] = [...t].map(([name, v]) => {
    const dtype = opts.dtypeOf?.(name) ?? "F32";
    return { name, dtype, shape: v.shape, bytes: encode(v.data, dtype) };
  });
  entries.push(...(opts.extra ?? []));
  if (shards === 1) {
    writeSafetensors(path.join(dir, "model.safetensors"), entries);
    return;
  }
  const weightMap: Record<string, string> = {};
  for (let s = 0; s < shards; s++) {
    const file = `model-${String(s + 1).padStart(5, "0")}-of-${String(shards).padStart(5, "0")}.safetensors`;
    const mine = entries.filter((_, i) => i % shards === s);
    for (const e of mine) weightMap[e.name] = file;
    writeSafetensors(path.join(dir, file), mine);
  }
  fs.writeFileSync(
    path.join(dir, "model.safetensors.index.json"),
    JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }),
  );
}
