/**
 * llama2.c's tokenizer.bin: int32 max_token_length, then per token a float32 score, an int32 byte
 * length and the piece's bytes (SentencePiece's "▁" already turned into " "). Ids 0, 1, 2 are
 * <unk>, BOS and EOS; ids 3..258 are the byte-fallback tokens for bytes 0x00..0xFF, stored in one
 * of two ways:
 * - "hex" (llama2.c since August 2023): the pieces "<0x00>".."<0xFF>".
 * - "char" (July 2023, the bundled stories15M tokenizer): the piece is chr(byte) UTF-8-encoded by
 *   Python, so bytes below 0x80 are one raw byte and bytes 0x80..0xFF take two (e.g. 0xE2 is stored
 *   as C3 A2). Either way the token stands for the single raw byte.
 *
 * encode() follows llama2.c's run.c `encode`: optional BOS, a dummy-prefix " " token when the text
 * is non-empty, one token per UTF-8 code point (falling back to one token per byte, id byte + 3),
 * then repeatedly merge the adjacent pair whose concatenation is the vocabulary piece with the
 * highest score (the leftmost pair on ties), then optional EOS. Where llama2.c's string lookup is
 * ambiguous or C-specific we follow SentencePiece instead: byte tokens and <unk>/BOS/EOS are never
 * found by text lookup and never merge (so "a" is the piece "a", not the byte token for 0x61, which
 * the "char" format also spells "a"), and a NUL character is an ordinary byte, not the end of text.
 */
import { type FileSlice, readSlice, sliceName, toSlice } from "../file-slice.ts";
import { type EncodeOptions, type Tokenizer, decodeTokens } from "./types.ts";

export type ByteTokenFormat = "hex" | "char";

const FIRST_BYTE_TOKEN = 3;
const EMPTY = new Uint8Array(0);
const latin1 = new TextDecoder("latin1");
const utf8 = new TextEncoder();

/** A byte string as a JS string with one char per byte: usable as a Map key and concatenated cheaply. */
const bytesKey = (b: Uint8Array): string => {
  let s = "";
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
  return s;
};

export class Llama2cTokenizer implements Tokenizer {
  readonly bosId = 1;
  readonly eosId = 2;
  readonly vocabSize: number;
  /** Which spelling of byte tokens the file uses. */
  readonly byteTokens: ByteTokenFormat;
  /** Piece bytes as stored in the file. */
  readonly pieces: readonly Uint8Array[];
  readonly scores: Float32Array;
  /** Bytes each token decodes to (byte tokens resolved to their single byte). */
  private readonly decoded: Uint8Array[];
  /** Piece (as a byte string) to id, for every token that text can turn into. */
  private readonly lookup = new Map<string, number>();
  /** Byte string of each mergeable token; null for byte and special tokens. */
  private readonly mergeKey: (string | null)[];
  private readonly dummyPrefixId: number;

  constructor(pieces: Uint8Array[], scores: Float32Array, where: string) {
    this.vocabSize = pieces.length;
    this.pieces = pieces;
    this.scores = scores;
    this.byteTokens = detectByteTokens(pieces, where);
    this.decoded = pieces.map((p, id) => (isByteToken(id) ? Uint8Array.of(id - FIRST_BYTE_TOKEN) : p));
    this.mergeKey = pieces.map((p, id) => (id < FIRST_BYTE_TOKEN || isByteToken(id) ? null : bytesKey(p)));
    this.mergeKey.forEach((k, id) => {
      // Keep the first id of a duplicated piece (deterministic; llama2.c's bsearch picks any).
      if (k !== null && !this.lookup.has(k)) this.lookup.set(k, id);
    });
    const space = this.lookup.get(" ");
    if (space === undefined)
      throw new Error(`${where}: the vocabulary has no " " piece for the dummy prefix`);
    this.dummyPrefixId = space;
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    const tokens: number[] = [];
    if (text.length > 0) tokens.push(this.dummyPrefixId);
    this.pushCodePoints(utf8.encode(text), tokens);
    this.mergePairs(tokens);
    if (options.bos) tokens.unshift(this.bosId);
    if (options.eos) tokens.push(this.eosId);
    return tokens;
  }

  /** One token per UTF-8 code point found in the vocabulary, else one byte token per byte. */
  private pushCodePoints(bytes: Uint8Array, out: number[]): void {
    let i = 0;
    while (i < bytes.length) {
      // A code point is a non-continuation byte plus up to 3 continuation bytes (10xxxxxx); a
      // stray continuation byte starts a code point of its own, as in llama2.c.
      let end = i + 1;
      while (end < bytes.length && (bytes[end] & 0xc0) === 0x80 && end - i < 4) end++;
      const id = this.lookup.get(bytesKey(bytes.subarray(i, end)));
      if (id !== undefined) out.push(id);
      else for (let j = i; j < end; j++) out.push(bytes[j] + FIRST_BYTE_TOKEN);
      i = end;
    }
  }

  /** Greedy BPE: merge the best-scoring adjacent pair until no pair forms a vocabulary piece. */
  private mergePairs(tokens: number[]): void {
    const pairOf = (i: number): number => {
      const a = this.mergeKey[tokens[i]];
      const b = this.mergeKey[tokens[i + 1]];
      if (a === null || b === null) return -1;
      return this.lookup.get(a + b) ?? -1;
    };
    // pair[i]: the token that tokens[i] and tokens[i+1] merge into, or -1.
    const pair: number[] = [];
    for (let i = 0; i + 1 < tokens.length; i++) pair.push(pairOf(i));
    for (;;) {
      let bestScore = -1e10; // llama2.c's floor: pieces scored below it never merge
      let bestIdx = -1;
      for (let i = 0; i < pair.length; i++) {
        const id = pair[i];
        if (id >= 0 && this.scores[id] > bestScore) {
          bestScore = this.scores[id];
          bestIdx = i;
        }
      }
      if (bestIdx < 0) return;
      tokens[bestIdx] = pair[bestIdx];
      tokens.splice(bestIdx + 1, 1);
      pair.splice(bestIdx, 1);
      if (bestIdx > 0) pair[bestIdx - 1] = pairOf(bestIdx - 1);
      if (bestIdx < pair.length) pair[bestIdx] = pairOf(bestIdx);
    }
  }

  decodePiece(prev: number, token: number): Uint8Array {
    if (!Number.isInteger(token) || token < 0 || token >= this.vocabSize)
      throw new Error(`token id ${token} is outside the vocabulary (0..${this.vocabSize - 1})`);
    // BOS and EOS are control tokens: like SentencePiece (and unlike llama2.c, which never prints
    // them) they decode to nothing, so a whole sequence decodes to its text.
    if (token === this.bosId || token === this.eosId) return EMPTY;
    const piece = this.decoded[token];
    // SentencePiece drops the dummy-prefix space of the first piece after BOS (llama2.c PR #89).
    if (prev === this.bosId && !isByteToken(token) && piece[0] === 0x20) return piece.subarray(1);
    return piece;
  }

  decode(tokens: readonly number[]): string {
    return decodeTokens(this, tokens);
  }

  /** A token's piece as readable text, for debugging ("<0x0A>"-style for byte tokens). */
  pieceText(token: number): string {
    if (isByteToken(token))
      return `<0x${(token - FIRST_BYTE_TOKEN).toString(16).toUpperCase().padStart(2, "0")}>`;
    return new TextDecoder().decode(this.pieces[token]);
  }
}

const isByteToken = (id: number): boolean => id >= FIRST_BYTE_TOKEN && id < FIRST_BYTE_TOKEN + 256;

function detectByteTokens(pieces: Uint8Array[], where: string): ByteTokenFormat {
  if (pieces.length < FIRST_BYTE_TOKEN + 256)
    throw new Error(`${where}: ${pieces.length} tokens, too few for byte fallback tokens at ids 3..258`);
  const matches = (spell: (b: number) => string): boolean => {
    for (let b = 0; b < 256; b++) if (latin1.decode(pieces[FIRST_BYTE_TOKEN + b]) !== spell(b)) return false;
    return true;
  };
  const hex = (b: number): string => `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`;
  const char = (b: number): string => latin1.decode(utf8.encode(String.fromCharCode(b)));
  if (matches(hex)) return "hex";
  if (matches(char)) return "char";
  throw new Error(
    `${where}: ids 3..258 are not byte tokens: id 3 is ${JSON.stringify(latin1.decode(pieces[3]))}, expected "<0x00>" or the byte 0x00`,
  );
}

/**
 * Parses tokenizer.bin bytes. `expectedVocab` (the model's vocab_size, which llama2.c passes in
 * because the file does not store it) is checked when given.
 */
export function parseLlama2cTokenizer(
  bytes: Uint8Array,
  where: string,
  expectedVocab?: number,
): Llama2cTokenizer {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 4)
    throw new Error(`${where}: ${bytes.length} bytes, too short for a llama2.c tokenizer`);
  const maxLen = view.getInt32(0, true);
  if (maxLen <= 0 || maxLen > 1 << 16)
    throw new Error(`${where}: max_token_length is ${maxLen}, not a llama2.c tokenizer.bin?`);
  const pieces: Uint8Array[] = [];
  const scores: number[] = [];
  let pos = 4;
  while (pos < bytes.length) {
    const id = pieces.length;
    if (pos + 8 > bytes.length)
      throw new Error(
        `${where}: truncated at token ${id}: needs 8 header bytes at offset ${pos}, file has ${bytes.length}`,
      );
    const score = view.getFloat32(pos, true);
    const len = view.getInt32(pos + 4, true);
    if (len < 0 || len > maxLen)
      throw new Error(
        `${where}: token ${id} at offset ${pos} has length ${len}, outside 0..max_token_length ${maxLen}`,
      );
    if (pos + 8 + len > bytes.length)
      throw new Error(
        `${where}: truncated at token ${id}: its ${len} bytes end at offset ${pos + 8 + len}, file has ${bytes.length}`,
      );
    if (!Number.isFinite(score)) throw new Error(`${where}: token ${id} at offset ${pos} has score ${score}`);
    scores.push(score);
    pieces.push(bytes.slice(pos + 8, pos + 8 + len));
    pos += 8 + len;
  }
  if (expectedVocab !== undefined && pieces.length !== expectedVocab)
    throw new Error(
      `${where}: holds ${pieces.length} tokens, but the model's vocabulary has ${expectedVocab}`,
    );
  return new Llama2cTokenizer(pieces, Float32Array.from(scores), where);
}

/** Loads a tokenizer.bin from a path or a byte range of a container file. */
export function loadLlama2cTokenizer(src: string | FileSlice, expectedVocab?: number): Llama2cTokenizer {
  const slice = toSlice(src);
  return parseLlama2cTokenizer(readSlice(slice), sliceName(slice), expectedVocab);
}
