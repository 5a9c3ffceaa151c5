/**
 * What generation needs from a tokenizer. Pieces are decoded to bytes, not strings: a token may
 * carry part of a UTF-8 character (byte-fallback tokens in SentencePiece, byte-level BPE in
 * Hugging Face tokenizers), so text is assembled by a streaming UTF-8 decoder (TokenTextStream).
 */
export interface EncodeOptions {
  /** Prepend the BOS token. */
  readonly bos?: boolean;
  /** Append the EOS token. */
  readonly eos?: boolean;
}

export interface Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number;
  readonly eosId: number;
  encode(text: string, options?: EncodeOptions): number[];
  /**
   * The bytes `token` contributes to the text when it follows `prev` (the previous token, or -1 at
   * the start). `prev` matters: SentencePiece drops the leading space of the piece after BOS.
   */
  decodePiece(prev: number, token: number): Uint8Array;
  /** Text of a whole token sequence (malformed UTF-8 becomes U+FFFD). */
  decode(tokens: readonly number[]): string;
}

/**
 * Turns a stream of tokens into text, holding back the bytes of a UTF-8 character that is split
 * across tokens until it is complete.
 */
export class TokenTextStream {
  private readonly utf8 = new TextDecoder("utf-8");
  private prev: number;

  constructor(
    private readonly tokenizer: Tokenizer,
    /** The token before the first one pushed (e.g. the last prompt token), or -1. */
    prev = -1,
  ) {
    this.prev = prev;
  }

  /** Text completed by `token`; "" while a multi-byte character is still partial. */
  push(token: number): string {
    const bytes = this.tokenizer.decodePiece(this.prev, token);
    this.prev = token;
    return this.utf8.decode(bytes, { stream: true });
  }

  /** Ends the stream: an incomplete trailing character comes out as U+FFFD. */
  flush(): string {
    return this.utf8.decode();
  }
}

/** decode() for any tokenizer, built on decodePiece. */
export function decodeTokens(tokenizer: Tokenizer, tokens: readonly number[]): string {
  const s = new TokenTextStream(tokenizer);
  let text = "";
  for (const t of tokens) text += s.push(t);
  return text + s.flush();
}
