/**
 * convertModel: a llama2.c checkpoint or Hugging Face directory to tkc's converted format
 * (./format.ts), streamed tensor by tensor: one source tensor in memory at a time, written out
 * before the next is read. tkc-config.json is written last (through a rename), so a conversion that
 * fails halfway leaves no directory that looks loadable.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import type { FileSlice } from "../file-slice.ts";
import { SliceReader, toSlice } from "../file-slice.ts";
import { quantizeQ4f16_1, toF16Checked } from "../quant/q4f16_1.ts";
import {
  CONFIG_FILE,
  FORMAT_NAME,
  FORMAT_VERSION,
  isQuantized,
  qScaleName,
  qWeightName,
  type Quantization,
  QUANTIZATIONS,
  type StoredDType,
  TENSOR_ALIGN,
  type TensorEntry,
  type TkcManifest,
} from "./format.ts";
import { shapeText } from "./names.ts";
import { type ModelSource, openSource } from "./source.ts";

export interface ConvertProgress {
  /** Source tensors converted so far, of `total`. */
  readonly done: number;
  readonly total: number;
  /** The tensor just converted. */
  readonly tensor: string;
  /** Bytes written to shards so far. */
  readonly bytes: number;
}

export interface ConvertOptions {
  readonly quantization: Quantization;
  /** llama2.c sources only: their tokenizer.bin, copied into the output. */
  readonly tokenizer?: string | FileSlice;
  /** A shard is closed once it would pass this size; a single larger tensor gets a shard alone. */
  readonly maxShardBytes?: number;
  readonly onProgress?: (p: ConvertProgress) => void;
}

export const DEFAULT_MAX_SHARD_BYTES = 64 * 1024 * 1024;
const SHARD_NAME = (i: number): string => `params_shard_${i}.bin`;

/** Appends tensors to numbered shard files, aligning each and hashing every byte written. */
class ShardWriter {
  readonly shards: { file: string; bytes: number; sha256: string }[] = [];
  readonly tensors: Record<string, TensorEntry> = {};
  written = 0;
  private fd = -1;
  private pos = 0;
  private hash: crypto.Hash | undefined;

  constructor(
    private readonly dir: string,
    private readonly maxBytes: number,
  ) {}

  add(name: string, dtype: StoredDType, shape: readonly number[], data: ArrayBufferView): void {
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const start = Math.ceil(this.pos / TENSOR_ALIGN) * TENSOR_ALIGN;
    if (this.fd < 0 || (this.pos > 0 && start + bytes.length > this.maxBytes)) this.open();
    this.pad(Math.ceil(this.pos / TENSOR_ALIGN) * TENSOR_ALIGN - this.pos);
    const file = this.shards[this.shards.length - 1]!.file;
    this.tensors[name] = { shard: file, offset: this.pos, length: bytes.length, dtype, shape: [...shape] };
    this.write(bytes);
  }

  private open(): void {
    this.closeShard();
    const file = SHARD_NAME(this.shards.length);
    this.fd = fs.openSync(path.join(this.dir, file), "w");
    this.pos = 0;
    this.hash = crypto.createHash("sha256");
    this.shards.push({ file, bytes: 0, sha256: "" });
  }

  private pad(n: number): void {
    if (n > 0) this.write(new Uint8Array(n));
  }

  private write(bytes: Uint8Array): void {
    for (let done = 0; done < bytes.length;) done += fs.writeSync(this.fd, bytes, done, bytes.length - done);
    this.hash!.update(bytes);
    this.pos += bytes.length;
    this.written += bytes.length;
  }

  private closeShard(): void {
    if (this.fd < 0) return;
    fs.closeSync(this.fd);
    const s = this.shards[this.shards.length - 1]!;
    s.bytes = this.pos;
    s.sha256 = this.hash!.digest("hex");
    this.fd = -1;
  }

  finish(): void {
    this.closeShard();
  }

  abort(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }
}

/**
 * Prepares `outDir`: creates it, or clears a previous conversion's files from it. A non-empty
 * directory without tkc-config.json is refused: it is probably not ours to overwrite.
 */
function prepareOutDir(outDir: string): void {
  if (!fs.existsSync(outDir)) {
    fs.mkdirSync(outDir, { recursive: true });
    return;
  }
  if (!fs.statSync(outDir).isDirectory()) throw new Error(`${outDir}: exists and is not a directory`);
  const entries = fs.readdirSync(outDir);
  if (entries.length === 0) return;
  if (!entries.includes(CONFIG_FILE))
    throw new Error(
      `${outDir}: not empty and holds no ${CONFIG_FILE}; refusing to write a converted model over it`,
    );
  // Remove the manifest first: from here on the directory does not claim to hold a model.
  fs.rmSync(path.join(outDir, CONFIG_FILE));
  for (const e of entries) if (/^params_shard_\d+\.bin$/.test(e)) fs.rmSync(path.join(outDir, e));
}

function copyFile(src: string | FileSlice, dst: string): void {
  const r = new SliceReader(toSlice(src));
  try {
    fs.writeFileSync(dst, r.bytes(0, r.length, "the tokenizer"));
  } finally {
    r.close();
  }
}

/**
 * Converts `source` (a HF directory, a llama2.c checkpoint path or slice, or an opened ModelSource,
 * which the caller keeps and closes) into `outDir`. Returns the manifest written.
 */
export function convertModel(
  source: string | FileSlice | ModelSource,
  outDir: string,
  opts: ConvertOptions,
): TkcManifest {
  if (!QUANTIZATIONS.includes(opts.quantization))
    throw new Error(
      `unknown quantization ${JSON.stringify(opts.quantization)}: use one of ${QUANTIZATIONS.join(", ")}`,
    );
  const maxBytes = opts.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES;
  if (!(maxBytes > 0)) throw new Error(`maxShardBytes must be positive, got ${maxBytes}`);
  const owned = typeof source === "string" || !("read" in source);
  const src: ModelSource = owned
    ? openSource(source as string | FileSlice, { tokenizer: opts.tokenizer })
    : source;
  try {
    prepareOutDir(outDir);
    const w = new ShardWriter(outDir, maxBytes);
    const q = opts.quantization;
    try {
      src.tensors.forEach((spec, i) => {
        const values = src.read(spec);
        const where = `${src.label}: tensor ${spec.name}`;
        if (values.length !== spec.shape.reduce((a, b) => a * b, 1))
          throw new Error(`${where}: ${values.length} values, expected ${shapeText(spec.shape)}`);
        if (isQuantized(q, spec)) {
          const [n, k] = spec.shape as [number, number];
          const qt = quantizeQ4f16_1(values, n, k, { name: where });
          w.add(qWeightName(spec.name), "u32", [n, k / 8], qt.packed);
          w.add(qScaleName(spec.name), "f16", [n, k / 32], qt.scales);
        } else if (q === "f32") {
          for (let j = 0; j < values.length; j++)
            if (!Number.isFinite(values[j])) throw new Error(`${where}: element ${j} is ${values[j]}`);
          w.add(spec.name, "f32", spec.shape, values);
        } else w.add(spec.name, "f16", spec.shape, toF16Checked(values, { name: where }));
        opts.onProgress?.({ done: i + 1, total: src.tensors.length, tensor: spec.name, bytes: w.written });
      });
      w.finish();
    } catch (e) {
      w.abort();
      throw e;
    }
    const tokFiles = src.tokenizer?.files ?? [];
    for (const f of tokFiles) copyFile(f.src, path.join(outDir, f.name));
    const manifest: TkcManifest = {
      format: FORMAT_NAME,
      version: FORMAT_VERSION,
      quantization: q,
      model: src.config,
      source: { kind: src.kind, path: src.label },
      tokenizer: src.tokenizer
        ? { kind: src.tokenizer.kind, file: tokFiles[0]!.name, files: tokFiles.map((f) => f.name) }
        : null,
      shards: w.shards,
      tensors: w.tensors,
    };
    const tmp = path.join(outDir, `${CONFIG_FILE}.tmp`);
    fs.writeFileSync(tmp, JSON.stringify(manifest, null, 2) + "\n");
    fs.renameSync(tmp, path.join(outDir, CONFIG_FILE));
    return manifest;
  } finally {
    if (owned) src.close();
  }
}
