/**
 * Reader for llama2.c checkpoints (https://github.com/karpathy/llama2.c, export.py).
 *
 * Two fp32 layouts exist:
 * - legacy ("version 0", run.c's format, stories15M/42M/110M): 7 int32 header fields
 *   dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len (vocab_size < 0 means the
 *   classifier is stored separately), then token_embedding, rms_att, wq, wk, wv, wo, rms_ffn, w1,
 *   w2, w3, rms_final, freq_cis_real, freq_cis_imag (seq_len * head_size / 2 each, unused: we compute
 *   rotary angles ourselves), then wcls when unshared.
 * - version 1: a 256-byte header (magic "ak42", int32 version 1, the 7 fields, uint8
 *   shared_classifier), then all attention norms, all ffn norms, the final norm, the embedding, wq,
 *   wk, wv, wo, w1, w2, w3 of every layer, then wcls when unshared.
 * Version 2 (int8 group-quantized) is refused with a clear message.
 *
 * Per-layer tensors are stored layer after layer within each kind, each matrix row-major [out, in].
 * Every tensor is read on its own with a positioned read so that huge checkpoints never sit in one
 * buffer, and the file size is checked against the header before anything is read.
 */
import type { LlamaConfig } from "../config.ts";
import { headDim, kvDim, validateConfig } from "../config.ts";
import { type FileSlice, type SliceReader, toSlice, withSlice } from "../file-slice.ts";
import type { LlamaLayerWeights, LlamaWeights } from "./types.ts";
import { validateWeights } from "./validate.ts";

/** "ak42" read as a little-endian uint32: the magic of llama2.c's versioned exports. */
const MAGIC_AK42 = 0x616b3432;
const LEGACY_HEADER_BYTES = 7 * 4;
const V1_HEADER_BYTES = 256;

type LayerKey = keyof LlamaLayerWeights;
type GlobalKey = "tokenEmbedding" | "finalNorm" | "classifier" | "skip";

/** One run of tensors in file order: `count` floats, once, or once per layer. */
type Segment =
  | { readonly kind: "global"; readonly key: GlobalKey; readonly count: number }
  | { readonly kind: "layer"; readonly key: LayerKey; readonly count: number };

export interface Llama2cHeader {
  readonly version: 0 | 1;
  readonly headerBytes: number;
  readonly config: LlamaConfig;
}

/** llama2.c's fixed hyperparameters that its header does not store. */
export function llama2cConfig(p: {
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  vocabSize: number;
  seqLen: number;
  sharedClassifier: boolean;
}): LlamaConfig {
  return {
    dim: p.dim,
    hiddenDim: p.hiddenDim,
    nLayers: p.nLayers,
    nHeads: p.nHeads,
    nKvHeads: p.nKvHeads,
    vocabSize: p.vocabSize,
    contextLength: p.seqLen,
    sharedClassifier: p.sharedClassifier,
    normEps: 1e-5,
    ropeTheta: 10000,
    ropeLayout: "interleaved",
    bosId: 1,
    eosId: 2,
  };
}

export function readLlama2cHeader(r: SliceReader): Llama2cHeader {
  if (r.length < LEGACY_HEADER_BYTES)
    throw new Error(
      `${r.name}: too short for a llama2.c checkpoint: expected at least ${LEGACY_HEADER_BYTES} header bytes, file has ${r.length}`,
    );
  const first = r.int32(0, 2, "the header");
  if (first[0] >>> 0 === MAGIC_AK42) {
    const version = first[1];
    if (version !== 1)
      throw new Error(
        `${r.name}: llama2.c export version ${version} is not supported (only the legacy fp32 format and version 1 fp32 are)`,
      );
    if (r.length < V1_HEADER_BYTES)
      throw new Error(
        `${r.name}: truncated version 1 header: expected ${V1_HEADER_BYTES} bytes, file has ${r.length}`,
      );
    const h = r.int32(8, 7, "the header");
    const shared = r.bytes(36, 1, "the header")[0];
    if (shared > 1)
      throw new Error(`${r.name}: header field shared_classifier is ${shared}, expected 0 or 1`);
    return { version: 1, headerBytes: V1_HEADER_BYTES, config: headerConfig(r.name, h, shared === 1, false) };
  }
  const h = r.int32(0, 7, "the header");
  return { version: 0, headerBytes: LEGACY_HEADER_BYTES, config: headerConfig(r.name, h, h[5] > 0, true) };
}

function headerConfig(name: string, h: Int32Array, shared: boolean, legacy: boolean): LlamaConfig {
  const [dim, hiddenDim, nLayers, nHeads, nKvHeads, vocab, seqLen] = h;
  const config = llama2cConfig({
    dim,
    hiddenDim,
    nLayers,
    nHeads,
    nKvHeads,
    // The legacy format says "unshared classifier" with a negative vocab_size.
    vocabSize: legacy ? Math.abs(vocab) : vocab,
    seqLen,
    sharedClassifier: shared,
  });
  const fields = `dim=${dim} hidden_dim=${hiddenDim} n_layers=${nLayers} n_heads=${nHeads} n_kv_heads=${nKvHeads} vocab_size=${vocab} seq_len=${seqLen}`;
  try {
    return validateConfig(config, `${name} header`);
  } catch (e) {
    throw new Error(`${(e as Error).message} (not a llama2.c checkpoint? header: ${fields})`);
  }
}

/** The tensors of a checkpoint in file order. */
function layout(h: Llama2cHeader): Segment[] {
  const c = h.config;
  const d = c.dim;
  const kv = kvDim(c);
  const hid = c.hiddenDim;
  const L = (key: LayerKey, count: number): Segment => ({ kind: "layer", key, count });
  const G = (key: GlobalKey, count: number): Segment => ({ kind: "global", key, count });
  const matrices = [L("wq", d * d), L("wk", kv * d), L("wv", kv * d), L("wo", d * d)];
  const ffn = [L("w1", hid * d), L("w2", d * hid), L("w3", hid * d)];
  const cls = c.sharedClassifier ? [] : [G("classifier", c.vocabSize * d)];
  if (h.version === 0) {
    const freqCis = (c.contextLength * headDim(c)) / 2;
    return [
      G("tokenEmbedding", c.vocabSize * d),
      L("attnNorm", d),
      ...matrices,
      L("ffnNorm", d),
      ...ffn,
      G("finalNorm", d),
      G("skip", 2 * freqCis),
      ...cls,
    ];
  }
  return [
    L("attnNorm", d),
    L("ffnNorm", d),
    G("finalNorm", d),
    G("tokenEmbedding", c.vocabSize * d),
    ...matrices,
    ...ffn,
    ...cls,
  ];
}

/** Bytes a checkpoint with this header must have. */
export function llama2cExpectedBytes(h: Llama2cHeader): number {
  const floats = layout(h).reduce((n, s) => n + s.count * (s.kind === "layer" ? h.config.nLayers : 1), 0);
  return h.headerBytes + 4 * floats;
}

/**
 * Loads a llama2.c checkpoint (a path, or a byte range of a container file such as the bundled
 * emscripten package) into float32 weights.
 */
export function loadLlama2cCheckpoint(src: string | FileSlice): LlamaWeights {
  return withSlice(toSlice(src), (r) => {
    const h = readLlama2cHeader(r);
    const expected = llama2cExpectedBytes(h);
    if (r.length !== expected) {
      const what = r.length < expected ? "truncated" : `${r.length - expected} bytes too long`;
      throw new Error(
        `${r.name}: ${what}: a llama2.c ${h.version === 0 ? "legacy" : "version 1"} checkpoint with this header ` +
          `(dim ${h.config.dim}, ${h.config.nLayers} layers, vocab ${h.config.vocabSize}) needs ${expected} bytes, file has ${r.length}`,
      );
    }
    const c = h.config;
    const layers: Partial<Record<LayerKey, Float32Array>>[] = Array.from({ length: c.nLayers }, () => ({}));
    const globals: Partial<Record<GlobalKey, Float32Array>> = {};
    let pos = h.headerBytes;
    for (const s of layout(h)) {
      if (s.kind === "global") {
        if (s.key !== "skip") globals[s.key] = r.float32(pos, s.count, s.key);
        pos += 4 * s.count;
      } else {
        for (let l = 0; l < c.nLayers; l++) {
          layers[l][s.key] = r.float32(pos, s.count, `layers[${l}].${s.key}`);
          pos += 4 * s.count;
        }
      }
    }
    const tokenEmbedding = globals.tokenEmbedding!;
    return validateWeights(
      {
        config: c,
        tokenEmbedding,
        layers: layers as unknown as LlamaLayerWeights[],
        finalNorm: globals.finalNorm!,
        classifier: c.sharedClassifier ? tokenEmbedding : globals.classifier!,
      },
      r.name,
    );
  });
}
