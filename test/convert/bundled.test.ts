import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { f16FromBits } from "../../dsl/dtypes.ts";
import { bundledModelFile, bundledTokenizerFile } from "../../llama/bundled.ts";
import { convertModel } from "../../llama/convert/convert.ts";
import { loadConverted } from "../../llama/convert/format.ts";
import { loadLlama2cCheckpoint } from "../../llama/weights/llama2c.ts";
import { loadModelTokenizer } from "../../llama/convert/tokenizer.ts";
import { removeTmpDirs, tmpDir } from "./fixtures.ts";

afterAll(removeTmpDirs);

describe("the bundled stories15M checkpoint", () => {
  it("converts to q4f16_1 and loads back within the quantization bound", () => {
    const out = path.join(tmpDir("stories"), "q4");
    const man = convertModel(bundledModelFile(), out, {
      quantization: "q4f16_1",
      tokenizer: bundledTokenizerFile(),
    });
    const src = loadLlama2cCheckpoint(bundledModelFile());
    expect(man.model).toEqual(src.config);
    expect(man.model).toMatchObject({
      dim: 288,
      nLayers: 6,
      nHeads: 6,
      vocabSize: 32000,
      sharedClassifier: true,
    });
    // About 4.5 bits a weight (4-bit codes + an f16 scale per 32): 15M weights in about 8.5 MB.
    expect(man.shards.reduce((a, s) => a + s.bytes, 0)).toBeLessThan(10e6);
    const m = loadConverted(out);
    try {
      const tok = loadModelTokenizer(m);
      expect(tok.vocabSize).toBe(32000);
      expect(tok.decode(tok.encode("Once upon a time", { bos: true }))).toBe("Once upon a time");
      for (const [name, want] of [
        ["model.embed_tokens.weight", src.tokenEmbedding],
        ["model.layers.5.mlp.down_proj.weight", src.layers[5]!.w2],
        ["model.layers.2.self_attn.q_proj.weight", src.layers[2]!.wq],
      ] as const) {
        const got = m.readF32(name);
        const scales = m.readQ4(name).scales;
        for (let i = 0; i < want.length; i++) {
          const bound =
            f16FromBits(scales[Math.floor(i / 32)]!) * (0.5 + 2 ** -6) + Math.abs(want[i]!) * 2 ** -11;
          if (!(Math.abs(want[i]! - got[i]!) <= bound))
            throw new Error(`${name}[${i}]: ${want[i]} vs ${got[i]}`);
        }
      }
    } finally {
      m.close();
    }
  });
});
