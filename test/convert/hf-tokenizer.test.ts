import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { convertModel } from "../../llama/convert/convert.ts";
import { loadConverted } from "../../llama/convert/format.ts";
import { loadModelTokenizer } from "../../llama/convert/tokenizer.ts";
import { HfTokenizer, loadHfTokenizer } from "../../llama/tokenizer/hf.ts";
import { TokenTextStream } from "../../llama/tokenizer/types.ts";
import { randomTensors, removeTmpDirs, TINY, tmpDir, writeHfDir } from "./fixtures.ts";

afterAll(removeTmpDirs);

const special = (id: number, content: string) => ({
  id,
  content,
  single_word: false,
  lstrip: false,
  rstrip: false,
  normalized: false,
  special: true,
});

/**
 * Llama 2's tokenizer.json shape (SentencePiece BPE converted by HF): a "▁" prepended and spaces
 * replaced by "▁", byte fallback tokens <0x00>..<0xFF> at ids 3..258, then our tiny vocabulary.
 */
function llama2Json(): Record<string, unknown> {
  const vocab: Record<string, number> = { "<unk>": 0, "<s>": 1, "</s>": 2 };
  for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`] = 3 + b;
  // ids 259.. in this order
  ["▁", "h", "e", "l", "o", "w", "r", "d", "▁h", "ll", "▁he", "▁hell", "▁hello", "or", "▁w"].forEach(
    (p, i) => (vocab[p] = 259 + i),
  );
  return {
    version: "1.0",
    added_tokens: [special(0, "<unk>"), special(1, "<s>"), special(2, "</s>")],
    normalizer: {
      type: "Sequence",
      normalizers: [
        { type: "Prepend", prepend: "▁" },
        { type: "Replace", pattern: { String: " " }, content: "▁" },
      ],
    },
    pre_tokenizer: null,
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      pair: [],
      special_tokens: { "<s>": { id: "<s>", ids: [1], tokens: ["<s>"] } },
    },
    decoder: {
      type: "Sequence",
      decoders: [
        { type: "Replace", pattern: { String: "▁" }, content: " " },
        { type: "ByteFallback" },
        { type: "Fuse" },
        { type: "Strip", content: " ", start: 1, stop: 0 },
      ],
    },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: "<unk>",
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      vocab,
      merges: ["▁ h", "l l", "▁h e", "▁he ll", "▁hell o", "o r", "▁ w"],
    },
  };
}

/** GPT-2 / Llama 3 style byte-level BPE: a space is "Ġ", byte 0xC3 is "Ã", byte 0xA9 is "©". */
function byteLevelJson(): Record<string, unknown> {
  const pieces = ["h", "i", "Ġ", "t", "e", "r", "Ã", "©", "!", "hi", "Ġt", "Ġth", "er", "Ġther", "Ġthere"];
  const vocab = Object.fromEntries(pieces.map((p, i) => [p, i]));
  return {
    version: "1.0",
    added_tokens: [special(15, "<|end|>"), special(16, "<|begin|>")],
    normalizer: null,
    pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: null,
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: "",
      end_of_word_suffix: "",
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges: [
        ["h", "i"],
        ["Ġ", "t"],
        ["Ġt", "h"],
        ["e", "r"],
        ["Ġth", "er"],
        ["Ġther", "e"],
      ],
    },
  };
}

describe("HfTokenizer, Llama 2 (SentencePiece-style) tokenizer.json", () => {
  const tok = new HfTokenizer(llama2Json());

  it("encodes with BPE merges by rank and byte fallback, BOS/EOS only when asked", () => {
    // "▁hello▁world": ▁h, ll, ▁he, ▁hell, ▁hello; o+r; ▁+w -> ▁hello ▁w or l d
    expect(tok.encode("hello world")).toEqual([271, 273, 272, 262, 266]);
    expect(tok.encode("hello world", { bos: true, eos: true })).toEqual([1, 271, 273, 272, 262, 266, 2]);
    // é is not in the vocabulary: its UTF-8 bytes C3 A9 as byte tokens 3 + 0xC3, 3 + 0xA9.
    expect(tok.encode("hé")).toEqual([267, 3 + 0xc3, 3 + 0xa9]);
    expect(tok.vocabSize).toBe(274);
    expect([tok.bosId, tok.eosId]).toEqual([1, 2]);
  });

  it("decodes token by token to bytes, dropping the dummy-prefix space at the start", () => {
    expect(tok.decode([1, 271, 273, 272, 262, 266, 2])).toBe("hello world");
    expect(tok.decode([271, 273])).toBe("hello w");
    expect(Array.from(tok.decodePiece(271, 273))).toEqual([0x20, 0x77]); // " w" mid-text
    expect(Array.from(tok.decodePiece(-1, 273))).toEqual([0x77]);
    const s = new TokenTextStream(tok, 1);
    expect([267, 3 + 0xc3, 3 + 0xa9].map((t) => s.push(t))).toEqual(["h", "", "é"]);
    expect(tok.decode(tok.encode("hé héllo"))).toBe("hé héllo");
    expect(() => tok.decodePiece(-1, 274)).toThrow(/token id 274 is outside the vocabulary \(0\.\.273\)/);
  });
});

describe("HfTokenizer, byte-level BPE tokenizer.json", () => {
  const config = { bos_token: "<|begin|>", eos_token: { content: "<|end|>", special: true } };
  const tok = new HfTokenizer(byteLevelJson(), config);

  it("encodes, with BOS/EOS named by tokenizer_config.json", () => {
    // pre-tokens "hi", "Ġthere", "ĠÃ©", "!"
    expect(tok.encode("hi there é!", { bos: true })).toEqual([16, 9, 14, 2, 6, 7, 8]);
    expect([tok.bosId, tok.eosId, tok.vocabSize]).toEqual([16, 15, 17]);
  });

  it("decodes each char of a piece to its byte, holding split UTF-8 back", () => {
    expect(Array.from(tok.decodePiece(-1, 6))).toEqual([0xc3]);
    const s = new TokenTextStream(tok);
    expect([16, 9, 14, 2, 6, 7, 8, 15].map((t) => s.push(t))).toEqual([
      "",
      "hi",
      " there",
      " ",
      "",
      "é",
      "!",
      "",
    ]);
    expect(tok.decode([9, 14, 2, 6])).toBe("hi there \ufffd");
  });

  it("takes explicit BOS/EOS ids over the config, and checks them", () => {
    expect(new HfTokenizer(byteLevelJson(), config, { bosId: 0, eosId: 8 }).bosId).toBe(0);
    expect(() => new HfTokenizer(byteLevelJson(), config, { eosId: 99 })).toThrow(
      /EOS id 99 is outside the vocabulary/,
    );
    expect(() => new HfTokenizer(byteLevelJson(), {})).toThrow(
      /cannot tell the BOS token: <s>, <\|begin_of_text\|>, <bos> not in the vocabulary/,
    );
  });
});

describe("loadModelTokenizer on a converted HF model", () => {
  it("copies tokenizer.json along and loads it with the model's BOS/EOS", () => {
    const dims = { ...TINY, vocab: 280 };
    const src = tmpDir("hf-tok");
    writeHfDir(src, dims, randomTensors(dims, 4));
    fs.writeFileSync(path.join(src, "tokenizer.json"), JSON.stringify(llama2Json()));
    const out = tmpDir("hf-tok-out");
    convertModel(src, out, { quantization: "q4f16_1" });
    const m = loadConverted(out);
    try {
      const tok = loadModelTokenizer(m);
      expect(tok.encode("hello world", { bos: true })).toEqual([1, 271, 273, 272, 262, 266]);
      expect(tok.decode([1, 271, 273, 272, 262, 266, 2])).toBe("hello world");
    } finally {
      m.close();
    }
    const small = { ...TINY, vocab: 100 };
    const src2 = tmpDir("hf-tok2");
    writeHfDir(src2, small, randomTensors(small, 4));
    fs.writeFileSync(path.join(src2, "tokenizer.json"), JSON.stringify(llama2Json()));
    const out2 = tmpDir("hf-tok2-out");
    convertModel(src2, out2, { quantization: "f16" });
    const m2 = loadConverted(out2);
    try {
      expect(() => loadModelTokenizer(m2)).toThrow(
        /tokenizer\.json: 274 tokens, more than the model's vocabulary of 100/,
      );
    } finally {
      m2.close();
    }
  });
});

describe("loadHfTokenizer", () => {
  it("reads tokenizer.json and the tokenizer_config.json beside it", () => {
    const d = tmpDir("tok");
    fs.writeFileSync(path.join(d, "tokenizer.json"), JSON.stringify(byteLevelJson()));
    fs.writeFileSync(
      path.join(d, "tokenizer_config.json"),
      JSON.stringify({ bos_token: "<|begin|>", eos_token: "<|end|>" }),
    );
    const tok = loadHfTokenizer(path.join(d, "tokenizer.json"));
    expect(tok.decode(tok.encode("hi there"))).toBe("hi there");
    expect(tok.decodeMode).toBe("bytelevel");
  });

  it("names the file when it is not a tokenizer", () => {
    const d = tmpDir("tok-bad");
    const f = path.join(d, "tokenizer.json");
    fs.writeFileSync(f, "{ not json");
    expect(() => loadHfTokenizer(f)).toThrow(/tokenizer\.json: not valid JSON/);
    fs.writeFileSync(f, JSON.stringify({ version: "1.0" }));
    expect(() => loadHfTokenizer(f)).toThrow(
      /tokenizer\.json: not a Hugging Face tokenizer\.json \(no "model" object\)/,
    );
    expect(() => loadHfTokenizer(path.join(d, "missing.json"))).toThrow(/missing\.json: cannot read/);
  });
});
