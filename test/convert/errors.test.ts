import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { convertModel } from "../../llama/convert/convert.ts";
import { CONFIG_FILE, loadConverted } from "../../llama/convert/format.ts";
import { hfConfigFromJson, readHfConfig } from "../../llama/convert/hf.ts";
import { progressBar } from "../../llama/convert/progress.ts";
import {
  encode,
  hfConfigJson,
  randomTensors,
  TINY,
  removeTmpDirs,
  tmpDir,
  writeHfDir,
  writeLlama2c,
  writeSafetensors,
} from "./fixtures.ts";

afterAll(removeTmpDirs);

describe("config.json", () => {
  it("maps the HF fields and fills HF's defaults", () => {
    const j = hfConfigJson(TINY);
    delete j.num_key_value_heads;
    delete j.rope_theta;
    delete j.tie_word_embeddings;
    j.eos_token_id = [128001, 128009];
    const c = hfConfigFromJson(j);
    expect(c).toEqual({
      dim: 64,
      hiddenDim: 96,
      nLayers: 2,
      nHeads: 4,
      nKvHeads: 4,
      vocabSize: 40,
      normEps: 1e-6,
      ropeTheta: 10000,
      contextLength: 16,
      ropeLayout: "half",
      sharedClassifier: false,
      bosId: 1,
      eosId: 128001,
    });
  });

  it("names a missing or unsupported field", () => {
    for (const field of [
      "hidden_size",
      "intermediate_size",
      "num_hidden_layers",
      "rms_norm_eps",
      "max_position_embeddings",
      "vocab_size",
    ]) {
      const j = hfConfigJson(TINY);
      delete j[field];
      expect(() => hfConfigFromJson(j, "x/config.json")).toThrow(`x/config.json: missing field ${field}`);
    }
    expect(() => hfConfigFromJson({ ...hfConfigJson(TINY), rope_scaling: { rope_type: "llama3" } })).toThrow(
      /rope_scaling .* not supported/,
    );
    expect(() => hfConfigFromJson({ ...hfConfigJson(TINY), model_type: "gpt2" })).toThrow(
      /model_type is "gpt2"/,
    );
    expect(() => hfConfigFromJson({ ...hfConfigJson(TINY), hidden_size: "64" })).toThrow(
      /field hidden_size is not a number/,
    );
    expect(() => hfConfigFromJson({ ...hfConfigJson(TINY), num_key_value_heads: 3 })).toThrow(
      /not a multiple of nKvHeads 3/,
    );
    expect(() => hfConfigFromJson({ ...hfConfigJson(TINY), head_dim: 32 })).toThrow(/head_dim 32 differs/);
    const d = tmpDir("cfg");
    expect(() => readHfConfig(d)).toThrow(/config\.json: cannot read the model config/);
    fs.writeFileSync(path.join(d, "config.json"), "{ nope");
    expect(() => readHfConfig(d)).toThrow(/config\.json: not valid JSON/);
  });
});

describe("conversion errors name the file and the problem", () => {
  const t = randomTensors(TINY, 5);

  it("a truncated llama2.c checkpoint", () => {
    const d = tmpDir("bad-l2c");
    const f = path.join(d, "model.bin");
    writeLlama2c(f, TINY, t);
    fs.truncateSync(f, fs.statSync(f).size - 4);
    expect(() => convertModel(f, path.join(d, "out"), { quantization: "f16" })).toThrow(
      /model\.bin: truncated: .* needs \d+ bytes, file has \d+/,
    );
  });

  it("a HF tensor with the wrong shape, a missing tensor, an unsupported dtype", () => {
    const d = tmpDir("bad-hf");
    writeHfDir(d, TINY, t, { dtypeOf: (n) => (n === "model.norm.weight" ? "I64" : "F32") });
    expect(() => convertModel(d, path.join(d, "out"), { quantization: "f16" })).toThrow(
      /model\.safetensors: tensor model\.norm\.weight has dtype I64; only F32, F16 and BF16/,
    );
    const d2 = tmpDir("bad-hf2");
    const t2 = new Map(t);
    t2.delete("lm_head.weight");
    writeHfDir(d2, TINY, t2);
    expect(() => convertModel(d2, path.join(d2, "out"), { quantization: "f16" })).toThrow(
      /tensor lm_head\.weight is missing \(config\.json says tie_word_embeddings is false\)/,
    );
    const d3 = tmpDir("bad-hf3");
    const t3 = new Map(t);
    t3.set("model.layers.1.self_attn.k_proj.weight", { shape: [64, 64], data: new Float32Array(64 * 64) });
    writeHfDir(d3, TINY, t3);
    expect(() => convertModel(d3, path.join(d3, "out"), { quantization: "f16" })).toThrow(
      /tensor model\.layers\.1\.self_attn\.k_proj\.weight has shape \[64, 64\], config\.json implies \[32, 64\]/,
    );
  });

  it("a truncated HF shard", () => {
    const d = tmpDir("cut-hf");
    writeHfDir(d, TINY, t);
    const f = path.join(d, "model.safetensors");
    fs.truncateSync(f, fs.statSync(f).size - 100);
    expect(() => convertModel(d, path.join(d, "out"), { quantization: "f16" })).toThrow(
      /model\.safetensors: tensor lm_head\.weight: data ends at byte \d+ .* truncated/,
    );
  });

  it("K not a multiple of 32 under q4f16_1, naming the tensor; f16 still works", () => {
    const dims = { ...TINY, hidden: 80 };
    const d = tmpDir("k80");
    writeLlama2c(path.join(d, "m.bin"), dims, randomTensors(dims, 3));
    expect(() => convertModel(path.join(d, "m.bin"), path.join(d, "q"), { quantization: "q4f16_1" })).toThrow(
      /tensor model\.layers\.0\.mlp\.down_proj\.weight: q4f16_1 needs K .* multiple of 32, got K = 80/,
    );
    expect(fs.existsSync(path.join(d, "q", CONFIG_FILE))).toBe(false);
    convertModel(path.join(d, "m.bin"), path.join(d, "f"), { quantization: "f16" });
  });

  it("refuses to overwrite a directory that is not a converted model", () => {
    const d = tmpDir("busy");
    writeLlama2c(path.join(d, "m.bin"), TINY, t);
    expect(() => convertModel(path.join(d, "m.bin"), d, { quantization: "f16" })).toThrow(
      /not empty and holds no tkc-config\.json/,
    );
    expect(() =>
      convertModel(path.join(d, "m.bin"), path.join(d, "o"), { quantization: "q8" as never }),
    ).toThrow(/unknown quantization "q8"/);
  });

  it("reconverts into the same directory, dropping stale shards", () => {
    const d = tmpDir("again");
    writeLlama2c(path.join(d, "m.bin"), TINY, t);
    const out = path.join(d, "o");
    convertModel(path.join(d, "m.bin"), out, { quantization: "f32", maxShardBytes: 4096 });
    const many = fs.readdirSync(out).length;
    const man = convertModel(path.join(d, "m.bin"), out, { quantization: "q4f16_1" });
    expect(fs.readdirSync(out).length).toBe(man.shards.length + 1);
    expect(man.shards.length + 1).toBeLessThan(many);
  });
});

describe("loading a damaged converted model", () => {
  const t = randomTensors(TINY, 9);
  const make = (): string => {
    const d = tmpDir("dmg");
    writeLlama2c(path.join(d, "m.bin"), TINY, t);
    convertModel(path.join(d, "m.bin"), path.join(d, "o"), { quantization: "q4f16_1", maxShardBytes: 16384 });
    return path.join(d, "o");
  };
  const editManifest = (dir: string, edit: (m: Record<string, any>) => void): void => {
    const f = path.join(dir, CONFIG_FILE);
    const m = JSON.parse(fs.readFileSync(f, "utf8")) as Record<string, any>;
    edit(m);
    fs.writeFileSync(f, JSON.stringify(m));
  };

  it("a truncated or missing shard", () => {
    const dir = make();
    fs.truncateSync(path.join(dir, "params_shard_1.bin"), 100);
    expect(() => loadConverted(dir)).toThrow(
      /params_shard_1\.bin: truncated: 100 bytes, tkc-config\.json says \d+/,
    );
    fs.rmSync(path.join(dir, "params_shard_1.bin"));
    expect(() => loadConverted(dir)).toThrow(
      /params_shard_1\.bin: shard listed in tkc-config\.json is missing/,
    );
  });

  it("a manifest whose table disagrees with the config or the shards", () => {
    let dir = make();
    editManifest(dir, (m) => delete m.tensors["model.layers.1.mlp.up_proj.q_scale"]);
    expect(() => loadConverted(dir)).toThrow(
      /tensor model\.layers\.1\.mlp\.up_proj\.q_scale is missing from the tensor table/,
    );
    dir = make();
    editManifest(dir, (m) => (m.tensors["model.norm.weight"].offset = 1e9));
    expect(() => loadConverted(dir)).toThrow(
      /tensor model\.norm\.weight: bytes 1000000000\.\.\d+ lie outside shard/,
    );
    dir = make();
    editManifest(dir, (m) => (m.model.dim = 65));
    expect(() => loadConverted(dir)).toThrow(/dim 65 is not divisible by nHeads 4/);
    dir = make();
    editManifest(dir, (m) => (m.version = 99));
    expect(() => loadConverted(dir)).toThrow(/format version 99 is not supported/);
    expect(() => loadConverted(tmpDir("nothing"))).toThrow(
      /tkc-config\.json: cannot read \(not a converted tkc model directory\?\)/,
    );
  });

  it("flipped bytes caught by verify()", () => {
    const dir = make();
    const f = path.join(dir, "params_shard_0.bin");
    const b = fs.readFileSync(f);
    b[10] ^= 0xff;
    fs.writeFileSync(f, b);
    const m = loadConverted(dir);
    try {
      expect(() => m.verify()).toThrow(/params_shard_0\.bin: SHA-256 [0-9a-f]+ differs/);
    } finally {
      m.close();
    }
  });

  it("a safetensors header with sizes that lie, through the HF path", () => {
    const d = tmpDir("lie-hf");
    fs.writeFileSync(path.join(d, "config.json"), JSON.stringify(hfConfigJson(TINY)));
    const data = new Float32Array(TINY.dim);
    writeSafetensors(
      path.join(d, "model.safetensors"),
      [{ name: "model.norm.weight", dtype: "F32", shape: [TINY.dim], bytes: encode(data, "F32") }],
      (h) => {
        (h["model.norm.weight"] as { shape: number[] }).shape = [TINY.dim * 2];
      },
    );
    expect(() => convertModel(d, path.join(d, "o"), { quantization: "f16" })).toThrow(
      /model\.safetensors: tensor model\.norm\.weight: data_offsets .* needs 512/,
    );
  });
});

describe("progressBar", () => {
  const events = [1, 2, 3].map((done) => ({ done, total: 3, tensor: `t${done}`, bytes: done * 1e6 }));

  it("prints plain lines when not on a terminal", () => {
    const out: string[] = [];
    const bar = progressBar("convert", { isTTY: false, write: (s: string) => out.push(s) }, { every: 2 });
    events.forEach(bar);
    expect(out).toEqual(["convert: 2/3 (66%) 2.0 MB t2\n", "convert: 3/3 (100%) 3.0 MB t3\n"]);
  });

  it("redraws one line on a terminal and ends it", () => {
    const out: string[] = [];
    const bar = progressBar("q4", { isTTY: true, columns: 80, write: (s: string) => out.push(s) });
    events.forEach(bar);
    expect(out[0]!.startsWith("\rq4 [##########....................] 1/3 33% 1.0 MB t1")).toBe(true);
    expect(out.every((s) => !s.slice(0, -1).includes("\n"))).toBe(true);
    expect(out[2]!.endsWith("\n")).toBe(true);
  });
});
