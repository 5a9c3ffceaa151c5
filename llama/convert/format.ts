/**
 * tkc's converted model directory: its counterpart of MLC's mlc-chat-config.json + params shards.
 *
 *   tkc-config.json        the manifest below (model config, quantization, tensor table)
 *   params_shard_N.bin     raw little-endian tensor bytes, each tensor 64-byte aligned, bounded size
 *   tokenizer.bin | tokenizer.json (+ tokenizer_config.json)   copied from the source
 *
 * Tensor names follow ./names.ts. With q4f16_1 every matrix `X.weight` is stored as MLC stores it:
 * `X.q_weight` (u32 [N, K/8], element r of a word at bits 4r) and `X.q_scale` (f16 bits [N, K/32]);
 * norms stay f16. With "f16" every tensor is f16, with "f32" every tensor is f32.
 *
 * The loader reads one tensor at a time with positioned reads (a Buffer per tensor, never the whole
 * model in one array), and checks the manifest against the files when it opens them, so a truncated
 * shard or an edited table fails with the file and tensor named, not as garbage output.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { type LlamaConfig, validateConfig } from "../config.ts";
import { SliceReader, toSlice } from "../file-slice.ts";
import { dequantizeQ4f16_1, type Q4f16_1 } from "../quant/q4f16_1.ts";
import type { LlamaLayerWeights, LlamaWeights } from "../weights/types.ts";
import { validateWeights } from "../weights/validate.ts";
import { llamaTensorSpecs, shapeText, type TensorSpec } from "./names.ts";
import { numel, toFloat32 } from "./safetensors.ts";
import type { TokenizerKind } from "./source.ts";

export const CONFIG_FILE = "tkc-config.json";
export const FORMAT_NAME = "tkc-model";
export const FORMAT_VERSION = 1;
/** Tensors start at multiples of this, so a mapped or uploaded shard can be viewed as u32/f32/vec4. */
export const TENSOR_ALIGN = 64;

export type Quantization = "q4f16_1" | "f16" | "f32";
export const QUANTIZATIONS: readonly Quantization[] = ["q4f16_1", "f16", "f32"];
export type StoredDType = "u32" | "f16" | "f32";
const STORED_BYTES: Record<StoredDType, number> = { u32: 4, f16: 2, f32: 4 };

export interface TensorEntry {
  readonly shard: string;
  readonly offset: number;
  readonly length: number;
  readonly dtype: StoredDType;
  readonly shape: readonly number[];
}

export interface TkcManifest {
  readonly format: typeof FORMAT_NAME;
  readonly version: number;
  readonly quantization: Quantization;
  readonly model: LlamaConfig;
  readonly source: { readonly kind: "llama2c" | "hf"; readonly path: string };
  /** `file` is the one to load; `files` all copied (HF's tokenizer_config.json rides along). */
  readonly tokenizer: {
    readonly kind: TokenizerKind;
    readonly file: string;
    readonly files: readonly string[];
  } | null;
  readonly shards: readonly { readonly file: string; readonly bytes: number; readonly sha256: string }[];
  readonly tensors: Readonly<Record<string, TensorEntry>>;
}

/** Stored names for a weight: itself, or its q_weight/q_scale pair under q4f16_1. */
export const qWeightName = (name: string): string => name.replace(/\.weight$/, ".q_weight");
export const qScaleName = (name: string): string => name.replace(/\.weight$/, ".q_scale");
export const isQuantized = (q: Quantization, spec: TensorSpec): boolean => q === "q4f16_1" && spec.matrix;

/** The stored tensors (name, dtype, shape) a model with this config and quantization must have. */
export function storedTensors(
  c: LlamaConfig,
  q: Quantization,
): { name: string; dtype: StoredDType; shape: number[] }[] {
  const out: { name: string; dtype: StoredDType; shape: number[] }[] = [];
  for (const s of llamaTensorSpecs(c)) {
    if (isQuantized(q, s)) {
      const [n, k] = s.shape as [number, number];
      out.push({ name: qWeightName(s.name), dtype: "u32", shape: [n, k / 8] });
      out.push({ name: qScaleName(s.name), dtype: "f16", shape: [n, k / 32] });
    } else out.push({ name: s.name, dtype: q === "f32" ? "f32" : "f16", shape: [...s.shape] });
  }
  return out;
}

function checkManifest(m: TkcManifest, file: string): void {
  if (m.format !== FORMAT_NAME)
    throw new Error(`${file}: format is ${JSON.stringify(m.format)}, expected "${FORMAT_NAME}"`);
  if (m.version !== FORMAT_VERSION)
    throw new Error(
      `${file}: format version ${m.version} is not supported (this tkc reads version ${FORMAT_VERSION})`,
    );
  if (!QUANTIZATIONS.includes(m.quantization))
    throw new Error(
      `${file}: quantization ${JSON.stringify(m.quantization)} is not one of ${QUANTIZATIONS.join(", ")}`,
    );
  if (typeof m.model !== "object" || m.model === null) throw new Error(`${file}: missing field model`);
  validateConfig(m.model, `${file} model`);
  if (!Array.isArray(m.shards) || typeof m.tensors !== "object" || m.tensors === null)
    throw new Error(`${file}: missing shards or tensors`);
  const shardBytes = new Map(m.shards.map((s) => [s.file, s.bytes]));
  for (const want of storedTensors(m.model, m.quantization)) {
    const e = m.tensors[want.name];
    if (!e) throw new Error(`${file}: tensor ${want.name} is missing from the tensor table`);
    const where = `${file}: tensor ${want.name}`;
    if (e.dtype !== want.dtype)
      throw new Error(`${where} has dtype ${e.dtype}, ${m.quantization} stores ${want.dtype}`);
    if (!Array.isArray(e.shape) || shapeText(e.shape) !== shapeText(want.shape))
      throw new Error(
        `${where} has shape ${JSON.stringify(e.shape)}, the model config implies ${shapeText(want.shape)}`,
      );
    if (e.length !== numel(want.shape) * STORED_BYTES[want.dtype])
      throw new Error(
        `${where}: length ${e.length} bytes does not match ${want.dtype} ${shapeText(want.shape)}`,
      );
    const size = shardBytes.get(e.shard);
    if (size === undefined)
      throw new Error(`${where} is in shard ${JSON.stringify(e.shard)}, which the shard list lacks`);
    if (!Number.isSafeInteger(e.offset) || e.offset < 0 || e.offset + e.length > size)
      throw new Error(
        `${where}: bytes ${e.offset}..${e.offset + e.length} lie outside shard ${e.shard} (${size} bytes)`,
      );
  }
}

/** A converted model opened for reading. Call close() to release the shard file descriptors. */
export class ConvertedModel {
  readonly manifest: TkcManifest;
  private readonly readers = new Map<string, SliceReader>();

  constructor(readonly dir: string) {
    const file = path.join(dir, CONFIG_FILE);
    let text: string;
    try {
      text = fs.readFileSync(file, "utf8");
    } catch (e) {
      throw new Error(`${file}: cannot read (not a converted tkc model directory?): ${(e as Error).message}`);
    }
    try {
      this.manifest = JSON.parse(text) as TkcManifest;
    } catch (e) {
      throw new Error(`${file}: not valid JSON: ${(e as Error).message}`);
    }
    checkManifest(this.manifest, file);
    // Sizes now, so a truncated or missing shard fails at load time rather than mid-generation.
    for (const s of this.manifest.shards) {
      const p = path.join(dir, s.file);
      let size: number;
      try {
        size = fs.statSync(p).size;
      } catch {
        throw new Error(`${p}: shard listed in ${CONFIG_FILE} is missing`);
      }
      if (size !== s.bytes)
        throw new Error(
          `${p}: ${size < s.bytes ? "truncated" : "wrong size"}: ${size} bytes, ${CONFIG_FILE} says ${s.bytes}`,
        );
    }
  }

  get config(): LlamaConfig {
    return this.manifest.model;
  }

  get quantization(): Quantization {
    return this.manifest.quantization;
  }

  /** Names of the stored tensors (q_weight/q_scale pairs under q4f16_1). */
  tensorNames(): string[] {
    return Object.keys(this.manifest.tensors);
  }

  entry(name: string): TensorEntry {
    const e = this.manifest.tensors[name];
    if (!e) throw new Error(`${path.join(this.dir, CONFIG_FILE)}: no tensor named ${name}`);
    return e;
  }

  /** One stored tensor's raw bytes, in a Buffer of its own (offset 0: typed views of it align). */
  read(name: string): Buffer {
    const e = this.entry(name);
    let r = this.readers.get(e.shard);
    if (!r) {
      r = new SliceReader(toSlice(path.join(this.dir, e.shard)));
      this.readers.set(e.shard, r);
    }
    const out = Buffer.allocUnsafeSlow(e.length);
    r.readInto(out, e.offset, `tensor ${name}`);
    return out;
  }

  /** A q4f16_1 weight's packed codes and scales, as the GPU kernels consume them. */
  readQ4(weightName: string): Q4f16_1 & { readonly shape: readonly [number, number] } {
    const pw = this.read(qWeightName(weightName));
    const sc = this.read(qScaleName(weightName));
    const [n, k8] = this.entry(qWeightName(weightName)).shape as [number, number];
    return {
      packed: new Uint32Array(pw.buffer, pw.byteOffset, pw.byteLength / 4),
      scales: new Uint16Array(sc.buffer, sc.byteOffset, sc.byteLength / 2),
      shape: [n, k8 * 8],
    };
  }

  /** A weight (names.ts name) as float32 values: dequantized, widened from f16, or as stored. */
  readF32(weightName: string): Float32Array {
    if (this.manifest.tensors[qWeightName(weightName)] && weightName.endsWith(".weight")) {
      const q = this.readQ4(weightName);
      return dequantizeQ4f16_1(q, q.shape[0], q.shape[1], { name: weightName });
    }
    const e = this.entry(weightName);
    return toFloat32(this.read(weightName), e.dtype === "f16" ? "F16" : "F32");
  }

  /** Every weight as float32 arrays (one per tensor), e.g. for the CPU reference model. */
  loadWeights(): LlamaWeights {
    const c = this.config;
    const layers: Partial<LlamaLayerWeights>[] = Array.from({ length: c.nLayers }, () => ({}));
    const globals: Partial<Record<"tokenEmbedding" | "finalNorm" | "classifier", Float32Array>> = {};
    for (const s of llamaTensorSpecs(c)) {
      const v = this.readF32(s.name);
      if (s.target.kind === "global") globals[s.target.key] = v;
      else (layers[s.target.layer] as Record<string, Float32Array>)[s.target.key] = v;
    }
    const emb = globals.tokenEmbedding!;
    return validateWeights(
      {
        config: c,
        tokenEmbedding: emb,
        layers: layers as LlamaLayerWeights[],
        finalNorm: globals.finalNorm!,
        classifier: c.sharedClassifier ? emb : globals.classifier!,
      },
      this.dir,
    );
  }

  /** The tokenizer file to load (absolute path), if the model has one. */
  tokenizerPath(): string | undefined {
    return this.manifest.tokenizer ? path.join(this.dir, this.manifest.tokenizer.file) : undefined;
  }

  /** Recomputes every shard's SHA-256 against the manifest (reads all bytes: seconds per GB). */
  verify(): void {
    for (const s of this.manifest.shards) {
      const p = path.join(this.dir, s.file);
      const got = hashFile(p);
      if (got !== s.sha256)
        throw new Error(`${p}: SHA-256 ${got} differs from ${CONFIG_FILE}'s ${s.sha256} (corrupted)`);
    }
  }

  close(): void {
    for (const r of this.readers.values()) r.close();
    this.readers.clear();
  }
}

function hashFile(p: string): string {
  const h = crypto.createHash("sha256");
  const r = new SliceReader(toSlice(p));
  try {
    const chunk = Buffer.allocUnsafeSlow(1 << 24);
    for (let pos = 0; pos < r.length; pos += chunk.length) {
      const part = chunk.subarray(0, Math.min(chunk.length, r.length - pos));
      r.readInto(part, pos, "the shard");
      h.update(part);
    }
  } finally {
    r.close();
  }
  return h.digest("hex");
}

/** Opens a converted model directory (checks the manifest against the shard files; reads no tensor). */
export function loadConverted(dir: string): ConvertedModel {
  return new ConvertedModel(dir);
}
