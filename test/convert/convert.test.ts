import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { f16FromBits, roundBF16, roundF16 } from "../../dsl/dtypes.ts";
import { convertModel, type ConvertProgress } from "../../llama/convert/convert.ts";
import { CONFIG_FILE, loadConverted, type Quantization, TENSOR_ALIGN } from "../../llama/convert/format.ts";
import { openSource } from "../../llama/convert/source.ts";
import { loadLlama2cCheckpoint } from "../../llama/weights/llama2c.ts";
import {
  randomTensors,
  type StDType,
  TINY,
  type TinyTensors,
  removeTmpDirs,
  tmpDir,
  writeHfDir,
  writeLlama2c,
} from "./fixtures.ts";

afterAll(removeTmpDirs);

/**
 * Checks a converted model's tensors against the source values `want` (already rounded the way the
 * source stores them). f32 must be exact, f16 the round-to-nearest f16 of each value; q4f16_1
 * matrices within the quantizer's bound, half a step plus f16 rounding, with the step read from the
 * stored scales: |w - deq| <= scale * (0.5 + 2^-6) + |w| * 2^-11 (see test/quant).
 */
function checkAgainst(dir: string, want: TinyTensors, q: Quantization): void {
  const m = loadConverted(dir);
  try {
    expect(m.quantization).toBe(q);
    for (const [name, { data }] of want) {
      const got = m.readF32(name);
      expect(got.length, name).toBe(data.length);
      const quantized = q === "q4f16_1" && !name.includes("norm"); // every matrix; norms stay f16
      if (!quantized) {
        const expected = q === "f32" ? data : Float32Array.from(data, roundF16);
        expect(Array.from(got), name).toEqual(Array.from(expected));
        continue;
      }
      const scales = m.readQ4(name).scales;
      let worst = 0;
      for (let i = 0; i < data.length; i++) {
        const scale = f16FromBits(scales[Math.floor(i / 32)]!);
        const err = Math.abs(data[i]! - got[i]!);
        const bound = scale * (0.5 + 2 ** -6) + Math.abs(data[i]!) * 2 ** -11;
        if (err > bound) throw new Error(`${name}[${i}]: |${data[i]} - ${got[i]}| = ${err} > ${bound}`);
        worst = Math.max(worst, err / scale);
      }
      // Quantization really happened (the values are not stored exactly).
      expect(worst, name).toBeGreaterThan(0.3);
    }
  } finally {
    m.close();
  }
}

describe("convertModel from a llama2.c checkpoint", () => {
  const src = tmpDir("l2c");
  const t = randomTensors(TINY, 11);
  const ckpt = path.join(src, "model.bin");
  writeLlama2c(ckpt, TINY, t);
  const tokenizer = path.join(src, "tokenizer.bin");
  fs.writeFileSync(tokenizer, Buffer.from("not parsed by the converter, only copied"));

  it("streams the same tensors as llama/weights/llama2c.ts loads", () => {
    const s = openSource(ckpt);
    try {
      const w = loadLlama2cCheckpoint(ckpt);
      expect(s.config).toEqual(w.config);
      const byName = new Map(s.tensors.map((spec) => [spec.name, s.read(spec)]));
      expect(byName.get("model.layers.1.self_attn.k_proj.weight")).toEqual(w.layers[1]!.wk);
      expect(byName.get("model.layers.0.mlp.down_proj.weight")).toEqual(w.layers[0]!.w2);
      expect(byName.get("lm_head.weight")).toEqual(w.classifier);
      for (const [name, { data }] of t) expect(byName.get(name), name).toEqual(data);
    } finally {
      s.close();
    }
  });

  for (const q of ["f32", "f16", "q4f16_1"] as const) {
    it(`round-trips through ${q}`, () => {
      const out = path.join(tmpDir("out"), "model");
      const events: ConvertProgress[] = [];
      const manifest = convertModel(ckpt, out, {
        quantization: q,
        tokenizer,
        onProgress: (p) => events.push(p),
      });
      expect(events.length).toBe(t.size);
      expect(events.at(-1)).toMatchObject({ done: t.size, total: t.size });
      expect(manifest.model.ropeLayout).toBe("interleaved");
      expect(manifest.tokenizer).toEqual({
        kind: "llama2c",
        file: "tokenizer.bin",
        files: ["tokenizer.bin"],
      });
      expect(fs.readFileSync(path.join(out, "tokenizer.bin"))).toEqual(fs.readFileSync(tokenizer));
      checkAgainst(out, t, q);
      const m = loadConverted(out);
      try {
        m.verify();
        expect(m.tokenizerPath()).toBe(path.join(out, "tokenizer.bin"));
        const w = m.loadWeights();
        expect(w.config.nKvHeads).toBe(TINY.kvHeads);
        expect(w.classifier).not.toBe(w.tokenEmbedding);
      } finally {
        m.close();
      }
    });
  }

  it("stores q4f16_1 as MLC does: u32 [N, K/8] codes and f16 [N, K/32] scales, 64-byte aligned", () => {
    const out = tmpDir("out-q4");
    const man = convertModel(ckpt, out, { quantization: "q4f16_1" });
    expect(man.tensors["model.layers.0.mlp.down_proj.q_weight"]).toMatchObject({
      dtype: "u32",
      shape: [64, 12],
    });
    expect(man.tensors["model.layers.0.mlp.down_proj.q_scale"]).toMatchObject({
      dtype: "f16",
      shape: [64, 3],
    });
    expect(man.tensors["model.norm.weight"]).toMatchObject({ dtype: "f16", shape: [64] });
    for (const e of Object.values(man.tensors)) expect(e.offset % TENSOR_ALIGN).toBe(0);
  });

  it("splits shards at the size bound", () => {
    const out = tmpDir("out-shards");
    const max = 8192;
    const man = convertModel(ckpt, out, { quantization: "f32", maxShardBytes: max });
    expect(man.shards.length).toBeGreaterThan(3);
    for (const s of man.shards) {
      const inShard = Object.values(man.tensors).filter((e) => e.shard === s.file);
      // Over the bound only when a single tensor alone is larger.
      if (s.bytes > max) expect(inShard.length).toBe(1);
      expect(fs.statSync(path.join(out, s.file)).size).toBe(s.bytes);
    }
    checkAgainst(out, t, "f32");
  });
});

describe("convertModel from a Hugging Face directory", () => {
  const t = randomTensors({ ...TINY, shared: true }, 22);
  // A mix of dtypes, as real checkpoints ship F16/BF16 (norms in F32 here).
  const dtypeOf = (name: string): StDType =>
    name.includes("norm") ? "F32" : name.includes("mlp") ? "BF16" : "F16";
  const hf = path.join(tmpDir("hf"), "llama");
  writeHfDir(hf, { ...TINY, shared: true }, t, { shards: 3, dtypeOf });
  fs.writeFileSync(path.join(hf, "tokenizer.json"), JSON.stringify({ model: { type: "BPE" } }));
  fs.writeFileSync(path.join(hf, "tokenizer_config.json"), JSON.stringify({ bos_token: "<s>" }));
  // What the source holds after its own rounding: the reference for the converted values.
  const stored: TinyTensors = new Map(
    [...t].map(([n, v]) => {
      const r = dtypeOf(n) === "F16" ? roundF16 : dtypeOf(n) === "BF16" ? roundBF16 : (x: number) => x;
      return [n, { shape: v.shape, data: Float32Array.from(v.data, r) }];
    }),
  );

  for (const q of ["f16", "q4f16_1"] as const) {
    it(`round-trips through ${q}`, () => {
      const out = tmpDir("hf-out");
      const man = convertModel(hf, out, { quantization: q });
      expect(man.model).toMatchObject({
        ropeLayout: "half",
        sharedClassifier: true,
        ropeTheta: 500000,
        normEps: 1e-6,
      });
      expect(man.tensors["lm_head.weight"] ?? man.tensors["lm_head.q_weight"]).toBeUndefined();
      expect(man.tokenizer).toEqual({
        kind: "hf",
        file: "tokenizer.json",
        files: ["tokenizer.json", "tokenizer_config.json"],
      });
      checkAgainst(out, stored, q);
      const m = loadConverted(out);
      try {
        const w = m.loadWeights();
        expect(w.classifier).toBe(w.tokenEmbedding);
      } finally {
        m.close();
      }
    });
  }
});
