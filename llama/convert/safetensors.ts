/**
 * Reader for Hugging Face safetensors files (https://github.com/huggingface/safetensors).
 *
 * A file is: 8 bytes little-endian u64 N, then N bytes of JSON header
 * `{ "__metadata__"?: {..}, name: { dtype, shape, data_offsets: [begin, end] } }`, then the data
 * section; offsets are relative to its start (byte 8 + N). We read only the header up front and each
 * tensor on demand with a positioned read, so a 14 GB shard never sits in memory. The header is
 * checked against the file's real size before any tensor is read: a truncated download or a header
 * that lies about sizes fails at open time, naming the file and the tensor.
 *
 * A model split in shards has `model.safetensors.index.json` (`{ weight_map: { name: file } }`);
 * SafetensorsModel opens either that or a single `model.safetensors`.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { SliceReader, toSlice } from "../file-slice.ts";

/** Element sizes of the dtypes the format defines; only F32, F16 and BF16 can be read as floats. */
const DTYPE_BYTES: Readonly<Record<string, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
};
export type FloatDType = "F32" | "F16" | "BF16";
const FLOAT_DTYPES: readonly string[] = ["F32", "F16", "BF16"];

/** The safetensors spec caps the header at 100 MB; a larger N means a corrupt or foreign file. */
const MAX_HEADER_BYTES = 100_000_000;

export interface SafeTensorInfo {
  readonly name: string;
  readonly dtype: string;
  readonly shape: readonly number[];
  /** The file holding the tensor. */
  readonly file: string;
  /** Absolute byte offset of the tensor's data in the file, and its length. */
  readonly start: number;
  readonly length: number;
}

export const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** One .safetensors file: header parsed and checked at open, tensors read on demand. */
export class SafetensorsFile {
  readonly tensors: ReadonlyMap<string, SafeTensorInfo>;
  readonly metadata: Readonly<Record<string, string>>;
  private readonly reader: SliceReader;

  constructor(readonly path: string) {
    this.reader = new SliceReader(toSlice(path));
    try {
      const parsed = parseHeader(this.reader, path);
      this.tensors = parsed.tensors;
      this.metadata = parsed.metadata;
    } catch (e) {
      this.reader.close();
      throw e;
    }
  }

  info(name: string): SafeTensorInfo {
    const t = this.tensors.get(name);
    if (!t) throw new Error(`${this.path}: no tensor named ${name}`);
    return t;
  }

  /** The tensor's raw little-endian bytes, in a Buffer of its own (offset 0, so typed views align). */
  readRaw(name: string): Buffer {
    const t = this.info(name);
    const out = Buffer.allocUnsafeSlow(t.length);
    this.reader.readInto(out, t.start, `tensor ${name}`);
    return out;
  }

  /** Reads an F32, F16 or BF16 tensor as float32 values (exact: f16 and bf16 widen losslessly). */
  readF32(name: string): Float32Array {
    const t = this.info(name);
    if (!FLOAT_DTYPES.includes(t.dtype))
      throw new Error(
        `${this.path}: tensor ${name} has dtype ${t.dtype}; only ${FLOAT_DTYPES.join(", ")} tensors can be read as weights`,
      );
    const raw = this.readRaw(name);
    // readRaw's Buffer is ours alone (offset 0): view F32 data in place instead of copying it.
    if (t.dtype === "F32") return new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
    return toFloat32(raw, t.dtype as FloatDType);
  }

  close(): void {
    this.reader.close();
  }
}

// Every f16 bit pattern as f32: widening f16 is a table look-up.
let f16Table: Float32Array | undefined;
function f16ToF32Table(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let b = 0; b < 65536; b++) {
      const e = (b >>> 10) & 0x1f;
      const m = b & 0x3ff;
      const s = b & 0x8000 ? -1 : 1;
      f16Table[b] =
        e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? NaN : s * Infinity) : s * (1024 + m) * 2 ** (e - 25);
    }
  }
  return f16Table;
}

/** Widens little-endian F32/F16/BF16 bytes to float32 values. */
export function toFloat32(raw: Uint8Array, dtype: FloatDType): Float32Array {
  if (raw.byteOffset % 4 !== 0) raw = Uint8Array.prototype.slice.call(raw); // typed views need alignment
  if (dtype === "F32") return new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4).slice();
  const src = new Uint16Array(raw.buffer, raw.byteOffset, raw.byteLength / 2);
  const out = new Float32Array(src.length);
  if (dtype === "F16") {
    const table = f16ToF32Table();
    for (let i = 0; i < src.length; i++) out[i] = table[src[i]!]!;
  } else {
    // bf16 is the high half of an f32.
    const bits = new Uint32Array(out.buffer);
    for (let i = 0; i < src.length; i++) bits[i] = src[i]! << 16;
  }
  return out;
}

function parseHeader(
  r: SliceReader,
  file: string,
): { tensors: Map<string, SafeTensorInfo>; metadata: Record<string, string> } {
  if (r.length < 8)
    throw new Error(
      `${file}: not a safetensors file: ${r.length} bytes, too short for the 8-byte header length`,
    );
  const lenBytes = r.bytes(0, 8, "the header length");
  const n = Number(new DataView(lenBytes.buffer).getBigUint64(0, true));
  if (n > MAX_HEADER_BYTES || n < 2)
    throw new Error(`${file}: not a safetensors file: header length ${n} is outside 2..${MAX_HEADER_BYTES}`);
  if (8 + n > r.length)
    throw new Error(
      `${file}: truncated: the header says it is ${n} bytes but the file has only ${r.length - 8} after the length`,
    );
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(r.bytes(8, n, "the header")).toString("utf8"));
  } catch (e) {
    throw new Error(`${file}: the header is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json))
    throw new Error(`${file}: the header is not a JSON object`);
  const dataStart = 8 + n;
  const dataBytes = r.length - dataStart;
  const tensors = new Map<string, SafeTensorInfo>();
  let metadata: Record<string, string> = {};
  for (const [name, v] of Object.entries(json as Record<string, unknown>)) {
    if (name === "__metadata__") {
      metadata = (v ?? {}) as Record<string, string>;
      continue;
    }
    const where = `${file}: tensor ${name}`;
    const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e !== "object" || e === null) throw new Error(`${where}: header entry is not an object`);
    if (typeof e.dtype !== "string" || !(e.dtype in DTYPE_BYTES))
      throw new Error(`${where}: unknown dtype ${JSON.stringify(e.dtype)}`);
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0))
      throw new Error(`${where}: shape ${JSON.stringify(e.shape)} is not a list of non-negative integers`);
    const offs = e.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((d) => Number.isSafeInteger(d) && d >= 0))
      throw new Error(`${where}: data_offsets ${JSON.stringify(offs)} is not [begin, end]`);
    const [begin, end] = offs as [number, number];
    const shape = e.shape as number[];
    const want = numel(shape) * DTYPE_BYTES[e.dtype]!;
    if (end - begin !== want)
      throw new Error(
        `${where}: data_offsets [${begin}, ${end}] span ${end - begin} bytes but ${e.dtype} ${JSON.stringify(shape)} needs ${want}`,
      );
    if (end > dataBytes)
      throw new Error(
        `${where}: data ends at byte ${end} of the data section, which has only ${dataBytes} bytes (file truncated?)`,
      );
    tensors.set(name, { name, dtype: e.dtype, shape, file, start: dataStart + begin, length: want });
  }
  // Overlapping tensors mean the header lies (the format forbids them).
  const sorted = [...tensors.values()].filter((t) => t.length > 0).sort((a, b) => a.start - b.start);
  for (let i = 1; i < sorted.length; i++) {
    const a = sorted[i - 1]!;
    const b = sorted[i]!;
    if (b.start < a.start + a.length)
      throw new Error(`${file}: tensors ${a.name} and ${b.name} overlap in the data section`);
  }
  return { tensors, metadata };
}

export const SAFETENSORS_INDEX = "model.safetensors.index.json";
export const SAFETENSORS_SINGLE = "model.safetensors";

/** A model's tensors over one or more safetensors shards, by tensor name. */
export class SafetensorsModel {
  private readonly files: SafetensorsFile[] = [];
  private readonly byName = new Map<string, SafetensorsFile>();

  /** Opens `dir`'s model.safetensors.index.json, or its model.safetensors when there is no index. */
  constructor(readonly dir: string) {
    const indexPath = path.join(dir, SAFETENSORS_INDEX);
    try {
      if (fs.existsSync(indexPath)) this.openIndexed(indexPath);
      else {
        const single = path.join(dir, SAFETENSORS_SINGLE);
        if (!fs.existsSync(single))
          throw new Error(`${dir}: neither ${SAFETENSORS_INDEX} nor ${SAFETENSORS_SINGLE} is there`);
        const f = new SafetensorsFile(single);
        this.files.push(f);
        for (const name of f.tensors.keys()) this.byName.set(name, f);
      }
    } catch (e) {
      this.close();
      throw e;
    }
  }

  private openIndexed(indexPath: string): void {
    let index: { weight_map?: unknown };
    try {
      index = JSON.parse(fs.readFileSync(indexPath, "utf8")) as { weight_map?: unknown };
    } catch (e) {
      throw new Error(`${indexPath}: cannot read the shard index: ${(e as Error).message}`);
    }
    const map = index.weight_map;
    if (typeof map !== "object" || map === null) throw new Error(`${indexPath}: no weight_map object`);
    const opened = new Map<string, SafetensorsFile>();
    for (const [name, shard] of Object.entries(map as Record<string, unknown>)) {
      if (typeof shard !== "string" || shard.includes("/") || shard.includes("\\"))
        throw new Error(
          `${indexPath}: weight_map entry for ${name} is not a file name: ${JSON.stringify(shard)}`,
        );
      let f = opened.get(shard);
      if (!f) {
        const p = path.join(this.dir, shard);
        if (!fs.existsSync(p)) throw new Error(`${indexPath}: shard ${shard} (holding ${name}) is missing`);
        f = new SafetensorsFile(p);
        opened.set(shard, f);
        this.files.push(f);
      }
      if (!f.tensors.has(name))
        throw new Error(`${indexPath}: says ${name} is in ${shard}, but that file has no such tensor`);
      this.byName.set(name, f);
    }
  }

  names(): string[] {
    return [...this.byName.keys()];
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  private file(name: string): SafetensorsFile {
    const f = this.byName.get(name);
    if (!f) throw new Error(`${this.dir}: the model has no tensor named ${name}`);
    return f;
  }

  info(name: string): SafeTensorInfo {
    return this.file(name).info(name);
  }

  readRaw(name: string): Buffer {
    return this.file(name).readRaw(name);
  }

  readF32(name: string): Float32Array {
    return this.file(name).readF32(name);
  }

  close(): void {
    for (const f of this.files) f.close();
    this.files.length = 0;
  }
}
