/**
 * What a converter reads from: a model's config and its tensors one at a time, as float32, under the
 * names of ./names.ts. Two kinds exist: llama2.c checkpoints (a file, or a byte range of a container
 * such as the bundled emscripten package) and Hugging Face directories (./hf.ts).
 */
import * as fs from "node:fs";
import type { LlamaConfig } from "../config.ts";
import { type FileSlice, SliceReader, toSlice } from "../file-slice.ts";
import { headDim } from "../config.ts";
import { llama2cExpectedBytes, readLlama2cHeader, type Llama2cHeader } from "../weights/llama2c.ts";
import { openHfLlama } from "./hf.ts";
import { llamaTensorSpecs, type TensorSpec } from "./names.ts";

export type TokenizerKind = "llama2c" | "hf";

/** A file to copy into a converted model: its name there, and where to read it. */
export interface SourceFile {
  readonly name: string;
  readonly src: string | FileSlice;
}

export interface ModelSource {
  readonly kind: "llama2c" | "hf";
  /** The path, for messages and the converted model's provenance. */
  readonly label: string;
  readonly config: LlamaConfig;
  /** Every tensor, in the order they are best read (file order for llama2.c). */
  readonly tensors: readonly TensorSpec[];
  /** One tensor's values, row-major, as float32 (f16/bf16 sources widen exactly). */
  read(spec: TensorSpec): Float32Array;
  /** The tokenizer files to copy, the main one first; absent when the source has none. */
  readonly tokenizer?: { readonly kind: TokenizerKind; readonly files: readonly SourceFile[] };
  close(): void;
}

/**
 * Byte offsets of every tensor of a llama2.c checkpoint. The file order is llama2.c's export.py
 * order, as in llama/weights/llama2c.ts (which loads the whole model at once); we need offsets to
 * stream tensor by tensor, and the total is checked against that reader's llama2cExpectedBytes.
 */
function llama2cOffsets(h: Llama2cHeader): Map<string, number> {
  const c = h.config;
  const specs = llamaTensorSpecs(c);
  const byKey = (key: string): TensorSpec[] =>
    specs.filter((s) => (s.target.kind === "layer" ? s.target.key : s.target.key) === key);
  const order =
    h.version === 0
      ? [
          "tokenEmbedding",
          "attnNorm",
          "wq",
          "wk",
          "wv",
          "wo",
          "ffnNorm",
          "w1",
          "w2",
          "w3",
          "finalNorm",
          "freqCis",
          "classifier",
        ]
      : [
          "attnNorm",
          "ffnNorm",
          "finalNorm",
          "tokenEmbedding",
          "wq",
          "wk",
          "wv",
          "wo",
          "w1",
          "w2",
          "w3",
          "classifier",
        ];
  const offsets = new Map<string, number>();
  let pos = h.headerBytes;
  for (const key of order) {
    if (key === "freqCis") {
      pos += 4 * c.contextLength * headDim(c); // freq_cis_real and _imag, seq_len * headDim/2 each: unused
      continue;
    }
    for (const s of byKey(key)) {
      offsets.set(s.name, pos);
      pos += 4 * s.shape.reduce((a, b) => a * b, 1);
    }
  }
  if (pos !== llama2cExpectedBytes(h))
    throw new Error(`internal: llama2.c layout mismatch (${pos} vs ${llama2cExpectedBytes(h)} bytes)`);
  return offsets;
}

/**
 * Opens a llama2.c checkpoint for streaming conversion. `tokenizer` is its tokenizer.bin (llama2.c
 * keeps it in a separate file), copied into the converted model when given.
 */
export function openLlama2cSource(src: string | FileSlice, tokenizer?: string | FileSlice): ModelSource {
  const r = new SliceReader(toSlice(src));
  try {
    const h = readLlama2cHeader(r);
    const expected = llama2cExpectedBytes(h);
    if (r.length !== expected)
      throw new Error(
        `${r.name}: ${r.length < expected ? "truncated" : "too long"}: a llama2.c checkpoint with this header ` +
          `(dim ${h.config.dim}, ${h.config.nLayers} layers, vocab ${h.config.vocabSize}) needs ${expected} bytes, file has ${r.length}`,
      );
    const offsets = llama2cOffsets(h);
    const specs = llamaTensorSpecs(h.config).sort((a, b) => offsets.get(a.name)! - offsets.get(b.name)!);
    return {
      kind: "llama2c",
      label: r.name,
      config: h.config,
      tensors: specs,
      read: (s) =>
        r.float32(
          offsets.get(s.name)!,
          s.shape.reduce((a, b) => a * b, 1),
          s.name,
        ),
      tokenizer: tokenizer
        ? { kind: "llama2c", files: [{ name: "tokenizer.bin", src: tokenizer }] }
        : undefined,
      close: () => r.close(),
    };
  } catch (e) {
    r.close();
    throw e;
  }
}

/** A directory is a Hugging Face model; a file or slice is a llama2.c checkpoint. */
export function openSource(
  src: string | FileSlice,
  opts: { tokenizer?: string | FileSlice } = {},
): ModelSource {
  if (typeof src === "string" && fs.existsSync(src) && fs.statSync(src).isDirectory()) {
    if (opts.tokenizer) throw new Error(`${src}: a Hugging Face directory brings its own tokenizer.json`);
    return openHfLlama(src);
  }
  return openLlama2cSource(src, opts.tokenizer);
}
