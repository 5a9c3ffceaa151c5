import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { bundledModelFile } from "../../llama/bundled.ts";
import { loadLlama2cCheckpoint } from "../../llama/weights/llama2c.ts";
import { validateWeights } from "../../llama/weights/validate.ts";
import { llama2cCheckpointBytes } from "./helpers/llama2c-writer.ts";
import { randomWeights, tinyConfig } from "./helpers/random-weights.ts";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tkc-llama2c-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const write = (name: string, bytes: Uint8Array): string => {
  const p = path.join(dir, name);
  fs.writeFileSync(p, bytes);
  return p;
};

describe("llama2.c checkpoint reader", () => {
  it("reads the bundled stories15M with llama2.c's hyperparameters", () => {
    const w = loadLlama2cCheckpoint(bundledModelFile());
    expect(w.config).toMatchObject({
      dim: 288,
      hiddenDim: 768,
      nLayers: 6,
      nHeads: 6,
      nKvHeads: 6,
      vocabSize: 32000,
      contextLength: 256,
      sharedClassifier: true,
      ropeLayout: "interleaved",
      normEps: 1e-5,
      ropeTheta: 10000,
      bosId: 1,
      eosId: 2,
    });
    expect(w.classifier).toBe(w.tokenEmbedding);
    // the tensors after the embedding start where llama2.c says: rms_att of layer 0 right after it
    const f = bundledModelFile();
    const fd = fs.openSync(f.path, "r");
    const probe = Buffer.alloc(4);
    fs.readSync(fd, probe, 0, 4, f.offset + 28 + 32000 * 288 * 4);
    fs.closeSync(fd);
    expect(w.layers[0].attnNorm[0]).toBe(probe.readFloatLE(0));
  });

  for (const version of [0, 1] as const) {
    for (const shared of [true, false]) {
      it(`round-trips version ${version} files, GQA, ${shared ? "shared" : "separate"} classifier`, () => {
        const w = randomWeights(tinyConfig({ sharedClassifier: shared }), 11 + version);
        const p = write(`rt-${version}-${shared}.bin`, llama2cCheckpointBytes(w, version));
        const r = loadLlama2cCheckpoint(p);
        expect(r.config).toEqual({ ...w.config, normEps: 1e-5, ropeTheta: 10000 });
        expect(r.tokenEmbedding).toEqual(w.tokenEmbedding);
        expect(r.classifier).toEqual(w.classifier);
        expect(r.classifier === r.tokenEmbedding).toBe(shared);
        expect(r.finalNorm).toEqual(w.finalNorm);
        r.layers.forEach((l, i) => expect(l).toEqual(w.layers[i]));
      });
    }
  }

  it("reads a checkpoint from a byte range inside a larger file", () => {
    const w = randomWeights(tinyConfig(), 5);
    const body = llama2cCheckpointBytes(w, 0);
    const padded = new Uint8Array(body.length + 100);
    padded.set(body, 37);
    const p = write("embedded.data", padded);
    const r = loadLlama2cCheckpoint({ path: p, offset: 37, length: body.length });
    expect(r.layers[1].w3).toEqual(w.layers[1].w3);
  });

  it("names the file and the expected and actual sizes of a truncated checkpoint", () => {
    const bytes = llama2cCheckpointBytes(randomWeights(tinyConfig(), 3), 0);
    const p = write("truncated.bin", bytes.subarray(0, bytes.length - 10));
    expect(() => loadLlama2cCheckpoint(p)).toThrow(
      `${p}: truncated: a llama2.c legacy checkpoint with this header (dim 16, 2 layers, vocab 300) needs ${bytes.length} bytes, file has ${bytes.length - 10}`,
    );
    const long = write("long.bin", new Uint8Array([...bytes, 0, 0, 0, 0]));
    expect(() => loadLlama2cCheckpoint(long)).toThrow(`${long}: 4 bytes too long`);
  });

  it("truncating the bundled model's slice is caught the same way", () => {
    const f = bundledModelFile();
    expect(() => loadLlama2cCheckpoint({ ...f, length: f.length - 4, label: "cut.bin" })).toThrow(
      `cut.bin: truncated: a llama2.c legacy checkpoint with this header (dim 288, 6 layers, vocab 32000) needs ${f.length} bytes, file has ${f.length - 4}`,
    );
  });

  it("rejects garbage headers, tiny files, missing files and unsupported versions", () => {
    const garbage = write("garbage.bin", new Uint8Array(Int32Array.from([100, 7, 2, 3, 3, 10, 16]).buffer));
    expect(() => loadLlama2cCheckpoint(garbage)).toThrow(
      /garbage\.bin header: dim 100 is not divisible by nHeads 3.*not a llama2\.c checkpoint/,
    );
    const tiny = write("tiny.bin", new Uint8Array(10));
    expect(() => loadLlama2cCheckpoint(tiny)).toThrow(
      `${tiny}: too short for a llama2.c checkpoint: expected at least 28 header bytes, file has 10`,
    );
    expect(() => loadLlama2cCheckpoint(path.join(dir, "missing.bin"))).toThrow(/cannot open .*missing\.bin/);
    const v2 = new Uint8Array(256);
    new DataView(v2.buffer).setUint32(0, 0x616b3432, true);
    new DataView(v2.buffer).setInt32(4, 2, true);
    const v2p = write("v2.bin", v2);
    expect(() => loadLlama2cCheckpoint(v2p)).toThrow(`${v2p}: llama2.c export version 2 is not supported`);
  });

  it("validateWeights names a tensor of the wrong size", () => {
    const w = randomWeights(tinyConfig(), 9);
    const bad = { ...w, layers: w.layers.map((l, i) => (i === 1 ? { ...l, wk: new Float32Array(5) } : l)) };
    expect(() => validateWeights(bad)).toThrow("weights: layers[1].wk has 5 values, expected [8, 16] = 128");
  });
});
