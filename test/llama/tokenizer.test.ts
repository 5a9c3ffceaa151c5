import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { bundledTokenizerFile } from "../../llama/bundled.ts";
import { readSlice } from "../../llama/file-slice.ts";
import { loadLlama2cTokenizer, parseLlama2cTokenizer } from "../../llama/tokenizer/llama2c.ts";
import { TokenTextStream } from "../../llama/tokenizer/types.ts";
import { seededRandom } from "./helpers/random-weights.ts";

const tok = loadLlama2cTokenizer(bundledTokenizerFile(), 32000);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tkc-tokenizer-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Serializes a tokenizer.bin: int32 max length, then (f32 score, int32 length, bytes) per token. */
function tokenizerBin(pieces: Uint8Array[], scores: number[]): Uint8Array {
  const size = 4 + pieces.reduce((n, p) => n + 8 + p.length, 0);
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  dv.setInt32(0, Math.max(...pieces.map((p) => p.length)), true);
  let pos = 4;
  pieces.forEach((p, i) => {
    dv.setFloat32(pos, scores[i], true);
    dv.setInt32(pos + 4, p.length, true);
    out.set(p, pos + 8);
    pos += 8 + p.length;
  });
  return out;
}

const enc = (s: string) => new TextEncoder().encode(s);
const hexByte = (b: number) => `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`;

/** A small vocabulary in the current ("<0xXX>") format: specials, 256 byte tokens, then `extra`. */
function smallVocab(extra: [string, number][]): { pieces: Uint8Array[]; scores: number[] } {
  const pieces = [enc("<unk>"), enc("\n<s>\n"), enc("\n</s>\n")];
  for (let b = 0; b < 256; b++) pieces.push(enc(hexByte(b)));
  const scores = pieces.map(() => 0);
  for (const [s, score] of extra) {
    pieces.push(enc(s));
    scores.push(score);
  }
  return { pieces, scores };
}

/** Random text mixing ASCII, accents, CJK, emoji (surrogate pairs), newlines and tabs. */
function randomText(rand: () => number): string {
  const alphabet = [
    ..."abcdefghijklmnopqrstuvwxyz  ABCXYZ.,!?'\"0123456789\n\t",
    "é",
    "ö",
    "ß",
    "ñ",
    "日",
    "本",
    "語",
    "✓",
    "€",
    "🎉",
    "😀",
    "𝔸",
    "\u0301",
  ];
  const n = Math.floor(rand() * 40);
  let s = "";
  for (let i = 0; i < n; i++) s += alphabet[Math.floor(rand() * alphabet.length)];
  return s;
}

describe("llama2.c tokenizer", () => {
  it("encodes the prompt llama2.c's README shows", () => {
    expect(tok.byteTokens).toBe("char");
    expect(tok.encode("I believe the meaning of life is", { bos: true })).toEqual([
      1, 306, 4658, 278, 6593, 310, 2834, 338,
    ]);
  });

  it("adds BOS, EOS and the dummy prefix only as asked", () => {
    expect(tok.encode("")).toEqual([]);
    expect(tok.encode("", { bos: true, eos: true })).toEqual([1, 2]);
    const ids = tok.encode("hello", { eos: true });
    expect(ids[ids.length - 1]).toBe(2);
    expect(tok.decode(ids)).toBe(" hello"); // the dummy prefix space stays without a BOS before it
  });

  it("round-trips random text, non-ASCII included", () => {
    const rand = seededRandom(2024);
    for (let i = 0; i < 200; i++) {
      const s = randomText(rand);
      const ids = tok.encode(s, { bos: true });
      expect(tok.decode(ids)).toBe(s);
      for (const id of ids) expect(id >= 0 && id < 32000).toBe(true);
    }
  });

  it("falls back to byte tokens (byte + 3) for characters outside the vocabulary", () => {
    // U+1F389 (🎉) is not a piece of the Llama vocabulary: its 4 UTF-8 bytes F0 9F 8E 89 become tokens
    const ids = tok.encode("🎉", { bos: true });
    expect(ids).toEqual([1, 29871, 0xf0 + 3, 0x9f + 3, 0x8e + 3, 0x89 + 3]);
  });

  it("streams text without splitting a UTF-8 character across pieces", () => {
    const ids = tok.encode("a🎉b", { bos: true });
    const stream = new TokenTextStream(tok, ids[0]);
    const pieces = ids.slice(1).map((t) => stream.push(t));
    expect(pieces.join("") + stream.flush()).toBe("a🎉b");
    // the emoji's first three byte tokens produce nothing, the fourth the whole character
    const emojiAt = pieces.indexOf("🎉");
    expect(emojiAt).toBeGreaterThan(2);
    expect(pieces.slice(emojiAt - 3, emojiAt)).toEqual(["", "", ""]);
    // an incomplete character at the end comes out as U+FFFD
    const cut = new TokenTextStream(tok, 1);
    expect(cut.push(0xf0 + 3)).toBe("");
    expect(cut.flush()).toBe("\uFFFD");
  });

  it("strips the leading space of the first piece after BOS only", () => {
    const the = tok.encode("the")[0]; // " the"
    expect(new TextDecoder().decode(tok.decodePiece(1, the))).toBe("the");
    expect(new TextDecoder().decode(tok.decodePiece(the, the))).toBe(" the");
    expect(() => tok.decodePiece(1, 32000)).toThrow("token id 32000 is outside the vocabulary (0..31999)");
  });

  it("encodes and decodes the same in the <0xXX> format", () => {
    // rewrite the bundled tokenizer's byte tokens the way current llama2.c exports them
    const raw = readSlice(bundledTokenizerFile());
    const orig = parseLlama2cTokenizer(raw, "bundled");
    const pieces = orig.pieces.map((p, id) => (id >= 3 && id < 259 ? enc(hexByte(id - 3)) : p));
    const hex = parseLlama2cTokenizer(tokenizerBin(pieces, Array.from(orig.scores)), "hex.bin");
    expect(hex.byteTokens).toBe("hex");
    const rand = seededRandom(7);
    for (let i = 0; i < 50; i++) {
      const s = randomText(rand);
      const ids = hex.encode(s, { bos: true });
      expect(ids).toEqual(tok.encode(s, { bos: true }));
      expect(hex.decode(ids)).toBe(s);
    }
  });

  it("merges the best-scoring pair first and the leftmost pair on ties", () => {
    // worked by hand: " aab" starts as [" ", a, a, b]; candidates " a"(-3), "aa"(-5), "ab"(-1):
    // "ab" wins -> [" ", a, ab]; then " a"(-3) -> [" a", ab]; " aab" is not a piece: done.
    const v = smallVocab([
      [" ", -10],
      ["a", -2],
      ["b", -2],
      [" a", -3],
      ["aa", -5],
      ["ab", -1],
    ]);
    const t = parseLlama2cTokenizer(tokenizerBin(v.pieces, v.scores), "small.bin");
    const id = (s: string) => v.pieces.findIndex((p, i) => i >= 259 && new TextDecoder().decode(p) === s);
    expect(t.encode("aab")).toEqual([id(" a"), id("ab")]);
    // ties: "ab" and "ba" both score -1; in " aba" the leftmost ("ab" at index 1) merges first
    const w = smallVocab([
      [" ", -10],
      ["a", -2],
      ["b", -2],
      ["ab", -1],
      ["ba", -1],
    ]);
    const t2 = parseLlama2cTokenizer(tokenizerBin(w.pieces, w.scores), "ties.bin");
    const id2 = (s: string) => w.pieces.findIndex((p, i) => i >= 259 && new TextDecoder().decode(p) === s);
    expect(t2.encode("aba")).toEqual([id2(" "), id2("ab"), id2("a")]);
    // a character outside the vocabulary falls back to bytes, which never merge
    expect(t2.encode("é")).toEqual([id2(" "), 0xc3 + 3, 0xa9 + 3]);
  });

  it("gives clear errors for bad tokenizer files", () => {
    const raw = readSlice(bundledTokenizerFile());
    const cut = path.join(dir, "cut.bin");
    fs.writeFileSync(cut, raw.subarray(0, 1000));
    expect(() => loadLlama2cTokenizer(cut)).toThrow(
      new RegExp(`^${cut}: truncated at token \\d+: .* file has 1000$`),
    );
    expect(() => loadLlama2cTokenizer(bundledTokenizerFile(), 32001)).toThrow(
      /tokenizer\.bin: holds 32000 tokens, but the model's vocabulary has 32001/,
    );
    const neg = new Uint8Array(raw.subarray(0, 20));
    new DataView(neg.buffer).setInt32(8, -5, true);
    expect(() => parseLlama2cTokenizer(neg, "neg.bin")).toThrow(
      "neg.bin: token 0 at offset 4 has length -5, outside 0..max_token_length 27",
    );
    expect(() => parseLlama2cTokenizer(new Uint8Array(Int32Array.of(0).buffer), "zero.bin")).toThrow(
      "zero.bin: max_token_length is 0, not a llama2.c tokenizer.bin?",
    );
    const noBytes = smallVocab([[" ", 0]]);
    noBytes.pieces[3] = enc("x");
    expect(() => parseLlama2cTokenizer(tokenizerBin(noBytes.pieces, noBytes.scores), "nobytes.bin")).toThrow(
      'nobytes.bin: ids 3..258 are not byte tokens: id 3 is "x"',
    );
    const noSpace = smallVocab([["a", 0]]);
    expect(() => parseLlama2cTokenizer(tokenizerBin(noSpace.pieces, noSpace.scores), "nospace.bin")).toThrow(
      'nospace.bin: the vocabulary has no " " piece for the dummy prefix',
    );
  });
});
