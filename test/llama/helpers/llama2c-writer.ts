/**
 * Writes float32 weights as a llama2.c checkpoint, for tests of the reader: the legacy layout
 * (run.c's, export.py legacy_export) or version 1 (export.py version1_export). Written from
 * llama2.c's export.py, independently of the reader's layout table.
 */
import type { LlamaWeights } from "../../../llama/weights/types.ts";

export function llama2cCheckpointBytes(w: LlamaWeights, version: 0 | 1): Uint8Array {
  const c = w.config;
  const parts: Float32Array[] = [];
  const all = (pick: (l: LlamaWeights["layers"][number]) => Float32Array) =>
    w.layers.forEach((l) => parts.push(pick(l)));
  let header: Uint8Array;
  const fields = [c.dim, c.hiddenDim, c.nLayers, c.nHeads, c.nKvHeads, c.vocabSize, c.contextLength];
  if (version === 0) {
    if (!c.sharedClassifier) fields[5] = -c.vocabSize;
    header = new Uint8Array(Int32Array.from(fields).buffer);
    parts.push(w.tokenEmbedding);
    all((l) => l.attnNorm);
    all((l) => l.wq);
    all((l) => l.wk);
    all((l) => l.wv);
    all((l) => l.wo);
    all((l) => l.ffnNorm);
    all((l) => l.w1);
    all((l) => l.w2);
    all((l) => l.w3);
    parts.push(w.finalNorm);
    // freq_cis_real and freq_cis_imag: the reader skips them, so fill them with a recognisable junk value
    parts.push(new Float32Array(c.contextLength * (c.dim / c.nHeads)).fill(1234.5));
  } else {
    header = new Uint8Array(256);
    const dv = new DataView(header.buffer);
    dv.setUint32(0, 0x616b3432, true);
    dv.setInt32(4, 1, true);
    fields.forEach((f, i) => dv.setInt32(8 + 4 * i, f, true));
    header[36] = c.sharedClassifier ? 1 : 0;
    all((l) => l.attnNorm);
    all((l) => l.ffnNorm);
    parts.push(w.finalNorm, w.tokenEmbedding);
    all((l) => l.wq);
    all((l) => l.wk);
    all((l) => l.wv);
    all((l) => l.wo);
    all((l) => l.w1);
    all((l) => l.w2);
    all((l) => l.w3);
  }
  if (!c.sharedClassifier) parts.push(w.classifier);
  const size = header.length + parts.reduce((n, p) => n + p.byteLength, 0);
  const out = new Uint8Array(size);
  out.set(header, 0);
  let pos = header.length;
  for (const p of parts) {
    out.set(new Uint8Array(p.buffer, p.byteOffset, p.byteLength), pos);
    pos += p.byteLength;
  }
  return out;
}
