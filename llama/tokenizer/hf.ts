/**
 * Hugging Face tokenizer.json tokenizers (Llama 2's SentencePiece-style BPE with byte fallback,
 * Llama 3's byte-level BPE, ...) through @huggingface/tokenizers, a dependency-free pure-JS port of
 * the `tokenizers` crate used by transformers.js.
 *
 * The library does the encoding. Decoding is ours, because tkc's Tokenizer interface decodes token
 * by token to bytes (a token may hold part of a UTF-8 character) and the library only decodes whole
 * sequences to strings. We read the decoder the tokenizer.json declares:
 * - ByteLevel: each char of a token stands for one byte (GPT-2's bytes_to_unicode table).
 * - SentencePiece style (Replace "▁" -> " ", ByteFallback, Strip / Metaspace): "<0xAB>" pieces are one
 *   byte, "▁" is a space, and the first piece of the text (at the start or right after BOS) loses
 *   its leading space, as SentencePiece's dummy prefix is removed.
 * - Anything else: the library's decode of the token alone (whole characters only).
 * Special tokens (BOS, EOS and added tokens marked special) decode to nothing, as in llama2c.ts.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { Tokenizer as HfLibTokenizer } from "@huggingface/tokenizers";
import { type EncodeOptions, type Tokenizer, decodeTokens } from "./types.ts";

type Json = Record<string, unknown>;
type DecodeMode = "bytelevel" | "sentencepiece" | "library";

const EMPTY = new Uint8Array(0);
const utf8 = new TextEncoder();

/** GPT-2's bytes_to_unicode: printable bytes map to themselves, the rest to U+0100 onwards. */
function unicodeToBytes(): Map<string, number> {
  const map = new Map<string, number>();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    map.set(String.fromCodePoint(printable ? b : 256 + n++), b);
  }
  return map;
}

/** The decoder component types a tokenizer.json declares (flattening Sequence). */
function decoderTypes(d: unknown): string[] {
  if (typeof d !== "object" || d === null) return [];
  const j = d as Json;
  if (j.type === "Sequence" && Array.isArray(j.decoders)) return j.decoders.flatMap(decoderTypes);
  return typeof j.type === "string" ? [j.type] : [];
}

/** A token's name from tokenizer_config.json: a string or an AddedToken object `{ content }`. */
function tokenName(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (typeof v === "object" && v !== null && typeof (v as Json).content === "string")
    return (v as Json).content as string;
  return undefined;
}

export interface HfTokenizerOptions {
  /** BOS/EOS ids; by default from tokenizer_config.json's bos_token/eos_token, else <s>, </s> and kin. */
  readonly bosId?: number;
  readonly eosId?: number;
  /** Names the source in error messages. */
  readonly where?: string;
}

export class HfTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly decodeMode: DecodeMode;
  private readonly lib: HfLibTokenizer;
  private readonly pieces: (string | undefined)[];
  private readonly special: Set<number>;
  private readonly byteOf = unicodeToBytes();
  private readonly where: string;

  constructor(json: Json, config: Json = {}, opts: HfTokenizerOptions = {}) {
    const where = (this.where = opts.where ?? "tokenizer.json");
    if (typeof json !== "object" || json === null || typeof json.model !== "object" || json.model === null)
      throw new Error(`${where}: not a Hugging Face tokenizer.json (no "model" object)`);
    try {
      this.lib = new HfLibTokenizer(json, config);
    } catch (e) {
      throw new Error(`${where}: cannot build the tokenizer: ${(e as Error).message}`);
    }
    const vocab = this.lib.get_vocab(true);
    let max = -1;
    for (const id of vocab.values()) max = Math.max(max, id);
    if (max < 0) throw new Error(`${where}: the vocabulary is empty`);
    this.vocabSize = max + 1;
    this.pieces = new Array<string | undefined>(this.vocabSize);
    for (const [piece, id] of vocab) this.pieces[id] = piece;
    this.special = new Set<number>();
    for (const t of (Array.isArray(json.added_tokens) ? json.added_tokens : []) as Json[])
      if (t.special === true && typeof t.id === "number") this.special.add(t.id);

    const find = (explicit: number | undefined, configKey: string, names: string[], what: string): number => {
      if (explicit !== undefined) {
        if (!Number.isInteger(explicit) || explicit < 0 || explicit >= this.vocabSize)
          throw new Error(
            `${where}: ${what} id ${explicit} is outside the vocabulary (0..${this.vocabSize - 1})`,
          );
        return explicit;
      }
      const named = tokenName(config[configKey]);
      for (const n of named !== undefined ? [named] : names) {
        const id = this.lib.token_to_id(n);
        if (id !== undefined) return id;
      }
      throw new Error(
        `${where}: cannot tell the ${what} token: ${named !== undefined ? `"${named}" from tokenizer_config.json` : names.join(", ")} not in the vocabulary`,
      );
    };
    this.bosId = find(opts.bosId, "bos_token", ["<s>", "<|begin_of_text|>", "<bos>"], "BOS");
    this.eosId = find(opts.eosId, "eos_token", ["</s>", "<|end_of_text|>", "<eos>"], "EOS");
    this.special.add(this.bosId).add(this.eosId);

    const types = decoderTypes(json.decoder);
    if (types.includes("ByteLevel")) this.decodeMode = "bytelevel";
    else if (types.includes("Metaspace") || (types.includes("Replace") && types.includes("ByteFallback")))
      this.decodeMode = "sentencepiece";
    else this.decodeMode = "library";
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    // add_special_tokens: false, since BOS/EOS are the caller's choice here (Llama 2's tokenizer.json
    // would otherwise add BOS through its post-processor whether asked or not).
    const ids = this.lib.encode(text, { add_special_tokens: false }).ids;
    if (options.bos) ids.unshift(this.bosId);
    if (options.eos) ids.push(this.eosId);
    return ids;
  }

  decodePiece(prev: number, token: number): Uint8Array {
    if (!Number.isInteger(token) || token < 0 || token >= this.vocabSize)
      throw new Error(`token id ${token} is outside the vocabulary (0..${this.vocabSize - 1})`);
    if (this.special.has(token)) return EMPTY;
    const piece = this.pieces[token];
    if (piece === undefined)
      throw new Error(`${this.where}: token id ${token} has no piece (a hole in the vocabulary)`);
    if (this.decodeMode === "bytelevel") {
      const out: number[] = [];
      for (const ch of piece) {
        const b = this.byteOf.get(ch);
        // An added token that is not byte-level encoded (e.g. written as plain text): take its UTF-8.
        if (b === undefined) return utf8.encode(piece);
        out.push(b);
      }
      return Uint8Array.from(out);
    }
    if (this.decodeMode === "sentencepiece") {
      const m = /^<0x([0-9A-Fa-f]{2})>$/.exec(piece);
      if (m) return Uint8Array.of(parseInt(m[1]!, 16));
      const text = piece.replace(/\u2581/g, " ");
      const first = prev < 0 || prev === this.bosId;
      return utf8.encode(first && text.startsWith(" ") ? text.slice(1) : text);
    }
    return utf8.encode(this.lib.decode([token], { skip_special_tokens: true }));
  }

  decode(tokens: readonly number[]): string {
    return decodeTokens(this, tokens);
  }

  /** The token's piece as written in tokenizer.json (for debugging). */
  pieceText(token: number): string | undefined {
    return this.pieces[token];
  }
}

/**
 * Loads a tokenizer.json, with tokenizer_config.json from the same directory when it is there
 * (it names the BOS/EOS tokens and options such as legacy handling of spaces).
 */
export function loadHfTokenizer(file: string, opts: HfTokenizerOptions = {}): HfTokenizer {
  const readJson = (p: string): Json => {
    let text: string;
    try {
      text = fs.readFileSync(p, "utf8");
    } catch (e) {
      throw new Error(`${p}: cannot read: ${(e as Error).message}`);
    }
    try {
      const j = JSON.parse(text) as unknown;
      if (typeof j !== "object" || j === null || Array.isArray(j)) throw new Error("not a JSON object");
      return j as Json;
    } catch (e) {
      throw new Error(`${p}: not valid JSON: ${(e as Error).message}`);
    }
  };
  const configPath = path.join(path.dirname(file), "tokenizer_config.json");
  const config = fs.existsSync(configPath) ? readJson(configPath) : {};
  return new HfTokenizer(readJson(file), config, { ...opts, where: opts.where ?? file });
}
