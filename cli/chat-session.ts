/**
 * A chat conversation that keeps its KV cache between turns: each turn prefills only the tokens
 * that differ from what the cache already holds, then decodes. (llama/generate.ts starts every call
 * from an empty cache, which suits independent requests but would re-read the whole history every
 * turn here.)
 *
 * Two formats (see llama/serve/model-engine.ts):
 * - "llama-2": messages rendered with the Llama-2 chat template, re-encoded each turn; the common
 *   prefix with the cached tokens is reused, the rest is prefilled.
 * - "plain": for models that are not chat models (stories15M writes stories): the conversation is
 *   one growing document; each user line is appended as text to continue (an empty line just lets
 *   the model go on) and the model's continuation is appended after it.
 * When the next turn would not fit the context, the oldest history is dropped (and the caller told).
 */
import type { LanguageModel, Tokenizer } from "../llama/generate.ts";
import { Sampler } from "../llama/sampler.ts";
import type { ChatMessage } from "../llama/serve/engine.ts";
import type { ChatFormat } from "../llama/serve/model-engine.ts";
import { encodeLlama2Chat } from "../llama/tokenizer/chat-template.ts";
import { TokenTextStream } from "../llama/tokenizer/types.ts";

export interface TurnStats {
  readonly promptTokens: number;
  /** Tokens actually run through prefill this turn (the rest came from the cache). */
  readonly prefilledTokens: number;
  readonly generatedTokens: number;
  readonly prefillTokensPerSecond: number;
  readonly decodeTokensPerSecond: number;
  readonly stopReason: "eos" | "length" | "context" | "aborted";
  /** True when old history was dropped to make this turn fit. */
  readonly truncated: boolean;
}

export interface SessionOptions {
  readonly format: ChatFormat;
  readonly system?: string;
  readonly temperature: number;
  readonly topP: number;
  readonly seed: number;
  /** Most tokens per answer; default: until end of text or the context is full. */
  readonly maxTokens?: number;
}

export class ChatSession {
  /** Tokens of the conversation; the first `cached` of them are in the model's KV cache. */
  private tokens: number[] = [];
  private cached = 0;
  private messages: ChatMessage[] = [];
  private sampler: Sampler;
  lastStats: TurnStats | undefined;

  constructor(
    private model: LanguageModel,
    private tokenizer: Tokenizer,
    private readonly opts: SessionOptions,
  ) {
    this.sampler = new Sampler(opts);
  }

  /** Forgets the conversation and the KV cache (and restarts the sampler's random sequence). */
  reset(): void {
    this.tokens = [];
    this.cached = 0;
    this.messages = [];
    this.model.reset();
    this.sampler = new Sampler(this.opts);
    this.lastStats = undefined;
  }

  /** Swaps in another model (/reload); the conversation starts over. */
  replaceModel(model: LanguageModel, tokenizer: Tokenizer): void {
    this.model = model;
    this.tokenizer = tokenizer;
    this.reset();
  }

  /** Streams the answer to `line`; the generator's return value is the turn's statistics. */
  async *turn(line: string, signal?: AbortSignal): AsyncGenerator<string, TurnStats> {
    const ctx = this.model.config.contextLength;
    const { tokens: prompt, truncated } = this.promptFor(line, ctx);
    // Reuse the cached prefix, but always run at least one token: its logits start the answer.
    let start = 0;
    while (start < this.cached && start < prompt.length - 1 && this.tokens[start] === prompt[start]) start++;
    const text = new TokenTextStream(this.tokenizer, prompt[prompt.length - 1]);
    const generated: number[] = [];
    let stopReason: TurnStats["stopReason"] = "length";
    // The end-of-text token, when sampled, stays in the history (not yet in the cache): in the
    // plain format what follows it starts a new text, as in llama2.c's BOS-delimited training data.
    let stopToken: number[] = [];
    const budget = Math.min(this.opts.maxTokens ?? Infinity, ctx - prompt.length);
    let t0 = performance.now();
    let logits = await this.model.prefill(prompt.slice(start), start);
    const prefillSeconds = (performance.now() - t0) / 1000;
    let cached = prompt.length;
    let decodeSeconds = 0;
    try {
      for (;;) {
        const token = this.sampler.sample(logits);
        if (token === this.tokenizer.eosId || token === this.tokenizer.bosId) {
          stopReason = "eos";
          stopToken = [token];
          break;
        }
        generated.push(token);
        const piece = text.push(token);
        if (piece) yield piece;
        if (generated.length >= budget) {
          stopReason = prompt.length + generated.length >= ctx ? "context" : "length";
          break;
        }
        // Give the event loop a turn: Ctrl+C (the abort signal) and output need it.
        await new Promise((resolve) => setImmediate(resolve));
        if (signal?.aborted) {
          stopReason = "aborted";
          break;
        }
        t0 = performance.now();
        logits = await this.model.decode(token, cached);
        decodeSeconds += (performance.now() - t0) / 1000;
        cached++;
      }
      const tail = text.flush();
      if (tail) yield tail;
    } finally {
      // Record what the cache now holds even if the consumer stopped early.
      this.tokens = [...prompt, ...generated, ...stopToken];
      this.cached = cached;
      if (this.opts.format === "llama-2")
        this.messages.push({ role: "assistant", content: this.tokenizer.decode(generated).trim() });
    }
    const prefilled = prompt.length - start;
    this.lastStats = {
      promptTokens: prompt.length,
      prefilledTokens: prefilled,
      generatedTokens: generated.length,
      prefillTokensPerSecond: prefillSeconds > 0 ? prefilled / prefillSeconds : 0,
      decodeTokensPerSecond: decodeSeconds > 0 ? (cached - prompt.length) / decodeSeconds : 0,
      stopReason,
      truncated,
    };
    return this.lastStats;
  }

  /** The prompt tokens for the next turn, dropping old history until it fits the context. */
  private promptFor(line: string, ctx: number): { tokens: number[]; truncated: boolean } {
    const tooLong = (n: number) =>
      new Error(`that message takes ${n} tokens; the context holds ${ctx}, leaving no room for an answer`);
    if (this.opts.format === "llama-2") {
      this.messages.push({ role: "user", content: line });
      let truncated = false;
      for (;;) {
        const sys: ChatMessage[] = this.opts.system ? [{ role: "system", content: this.opts.system }] : [];
        const tokens = encodeLlama2Chat(this.tokenizer, [...sys, ...this.messages]);
        if (tokens.length < ctx) return { tokens, truncated };
        if (this.messages.length === 1) {
          this.messages = [];
          throw tooLong(tokens.length);
        }
        this.messages.splice(0, 2); // the oldest user/assistant exchange
        truncated = true;
      }
    }
    const bos = this.tokenizer.bosId;
    const fresh = () => (line === "" ? [bos] : this.tokenizer.encode(line, { bos: true }));
    if (this.tokens.length === 0) {
      const tokens = fresh();
      if (tokens.length >= ctx) throw tooLong(tokens.length);
      return { tokens, truncated: false };
    }
    const tokens = [...this.tokens, ...(line === "" ? [] : this.tokenizer.encode(line))];
    if (tokens.length < ctx) return { tokens, truncated: false };
    // The document is full: start a new one from this line.
    const restart = fresh();
    if (restart.length >= ctx) throw tooLong(restart.length);
    return { tokens: restart, truncated: true };
  }
}
