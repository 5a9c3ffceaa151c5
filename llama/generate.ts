/**
 * Text generation over any model that implements LanguageModel: the CPU reference today, the
 * kernel-built model later. The loop is llama2.c's: feed the prompt, sample a token, feed it back,
 * until a stop token, the token budget or the end of the context.
 */
import type { LlamaConfig } from "./config.ts";
import { Sampler } from "./sampler.ts";
import { TokenTextStream, type Tokenizer } from "./tokenizer/types.ts";

export type { Tokenizer, EncodeOptions } from "./tokenizer/types.ts";

export type MaybePromise<T> = T | Promise<T>;

/**
 * A causal language model with its own KV cache. Positions are absolute: a call at position p
 * attends to cached positions 0..p-1, which earlier calls must have filled; calling again at an
 * earlier position overwrites from there on (rewinding). The returned logits ([vocabSize]) may be a
 * buffer the model reuses: they are valid until the next call, so copy them to keep them.
 */
export interface LanguageModel {
  readonly config: LlamaConfig;
  /** Forgets every cached position. */
  reset(): void;
  /** Runs tokens at positions startPos, startPos+1, ...; returns the logits after the last one. */
  prefill(tokens: readonly number[], startPos: number): MaybePromise<Float32Array>;
  /** Runs one token at `pos`; returns the logits for the next position. */
  decode(token: number, pos: number): MaybePromise<Float32Array>;
  /**
   * Optional greedy decoding without handing out logits: runs `token` at `pos`, then `steps - 1`
   * more steps each fed the token the one before chose (argmax of the logits, the lowest index on
   * ties), and returns the `steps` tokens chosen.
   */
  decodeGreedy?(token: number, pos: number, steps?: number): MaybePromise<ArrayLike<number>>;
  /** With decodeGreedy: how many steps a call should run when the caller wants many. */
  readonly greedySteps?: number;
  /**
   * Optional decodeGreedy without the wait: enqueues the steps and returns a function that waits
   * for their tokens, unchecked (-1 where the logits held a NaN: checkedGreedyTokens); `token`
   * undefined continues the steps enqueued last (which end at `pos`) from the token their last
   * step chose, on the device. Every returned function must be called, so that the read's
   * resources return to the device.
   */
  enqueueGreedy?(
    token: number | undefined,
    pos: number,
    steps: number,
  ): () => MaybePromise<ArrayLike<number>>;
  /** With enqueueGreedy: whether to enqueue the next steps before reading the last ones' tokens. */
  readonly greedyAhead?: boolean;
}

/**
 * Tokens greedy steps from `pos` chose on a device, checked: argmax gives -1 where the logits held a
 * NaN (a broken model), which is reported with the position after which it happened.
 */
export function checkedGreedyTokens(tokens: ArrayLike<number>, pos: number, vocabSize: number): number[] {
  const out = Array.from(tokens);
  const bad = out.findIndex((t) => !(t >= 0 && t < vocabSize));
  if (bad >= 0)
    throw new Error(`tkc: the logits after position ${pos + bad} hold a NaN (argmax gave ${out[bad]})`);
  return out;
}

export interface GenerateOptions {
  /** Text to continue; BOS is prepended. Omit it (and promptTokens) to start from BOS alone. */
  readonly prompt?: string;
  /** Already-encoded prompt (BOS included if wanted); takes precedence over `prompt`. */
  readonly promptTokens?: readonly number[];
  /** Most tokens to generate (not counting the prompt). */
  readonly maxTokens: number;
  /** 0 means greedy. */
  readonly temperature: number;
  /** Nucleus sampling mass; <= 0 or >= 1 turns it off. */
  readonly topP: number;
  readonly seed: number;
  /** Tokens that end generation without being emitted; default: EOS and BOS (see below). */
  readonly stopTokens?: readonly number[];
  readonly signal?: AbortSignal;
}

/** One generated token and the text it completes ("" while a UTF-8 character is still partial). */
export interface GeneratedPiece {
  readonly token: number;
  readonly text: string;
}

export type StopReason = "eos" | "length" | "context" | "aborted";

export interface GenerateStats {
  readonly promptTokens: number;
  readonly generatedTokens: number;
  /** Prompt tokens per second of model time in prefill. */
  readonly prefillTokensPerSecond: number;
  /** Tokens per second of model time in decode (each decode step runs one token). */
  readonly decodeTokensPerSecond: number;
  readonly prefillSeconds: number;
  readonly decodeSeconds: number;
  readonly stopReason: StopReason;
  /** The stop token that ended generation when stopReason is "eos". */
  readonly stopToken?: number;
  /** Text left in the UTF-8 decoder at the end (an incomplete character, as U+FFFD); usually "". */
  readonly trailingText: string;
}

/**
 * Streams generated tokens; the generator's return value is the statistics. Timings count only the
 * time spent inside the model, not the time the consumer takes between pieces.
 *
 * Stop tokens default to EOS and BOS: llama2.c's models (trained on BOS-delimited stories) end a
 * text by starting the next one with BOS, which llama2.c's run.c treats as the end.
 */
export async function* generate(
  model: LanguageModel,
  tokenizer: Tokenizer,
  options: GenerateOptions,
): AsyncGenerator<GeneratedPiece, GenerateStats> {
  const { maxTokens, signal } = options;
  if (!Number.isInteger(maxTokens) || maxTokens < 0)
    throw new Error(`maxTokens must be a non-negative integer, got ${maxTokens}`);
  if (tokenizer.vocabSize > model.config.vocabSize)
    throw new Error(
      `the tokenizer has ${tokenizer.vocabSize} tokens but the model's vocabulary only ${model.config.vocabSize}`,
    );
  const ctx = model.config.contextLength;
  const prompt = options.promptTokens
    ? [...options.promptTokens]
    : options.prompt
      ? tokenizer.encode(options.prompt, { bos: true })
      : [tokenizer.bosId];
  if (prompt.length === 0) throw new Error("the prompt has no tokens (include BOS to start from scratch)");
  if (prompt.length > ctx)
    throw new Error(`the prompt has ${prompt.length} tokens, the context holds ${ctx}`);
  const stop = new Set(options.stopTokens ?? [tokenizer.eosId, tokenizer.bosId]);
  const sampler = new Sampler(options);
  const text = new TokenTextStream(tokenizer, prompt[prompt.length - 1]);

  let prefillSeconds = 0;
  let decodeSeconds = 0;
  let generated = 0;
  let decodeSteps = 0;
  let stopReason: StopReason = "length";
  let stopToken: number | undefined;
  const finish = (): GenerateStats => ({
    promptTokens: prompt.length,
    generatedTokens: generated,
    prefillSeconds,
    decodeSeconds,
    prefillTokensPerSecond: prefillSeconds > 0 ? prompt.length / prefillSeconds : 0,
    decodeTokensPerSecond: decodeSeconds > 0 ? decodeSteps / decodeSeconds : 0,
    stopReason,
    stopToken,
    trailingText: text.flush(),
  });

  if (maxTokens === 0) return finish();
  if (signal?.aborted) {
    stopReason = "aborted";
    return finish();
  }
  model.reset();
  let t0 = performance.now();
  let logits = await model.prefill(prompt, 0);
  prefillSeconds = (performance.now() - t0) / 1000;
  // Position of the token that the next sample will be.
  let pos = prompt.length;
  // Greedy decoding on the model's device where it can: only token ids come back, greedySteps of
  // them a call (the steps past a stop token are wasted, and the cache positions they wrote are
  // rewritten before anything reads them).
  const greedy = options.temperature === 0 && model.decodeGreedy ? model.decodeGreedy.bind(model) : undefined;
  // Where the model reads one batch's tokens without waiting for the next (CUDA), the next batch
  // is enqueued before this one is read, so the GPU runs on while the host handles the tokens.
  const ahead =
    greedy && model.greedyAhead && model.enqueueGreedy ? model.enqueueGreedy.bind(model) : undefined;
  let pending: { pos: number; steps: number; wait: () => MaybePromise<ArrayLike<number>> } | undefined;
  const queued: number[] = [];
  let next = sampler.sample(logits);
  try {
    for (;;) {
      const token = next;
      if (stop.has(token)) {
        stopReason = "eos";
        stopToken = token;
        break;
      }
      generated++;
      yield { token, text: text.push(token) };
      if (generated >= maxTokens) {
        stopReason = "length";
        break;
      }
      // The token just produced needs a forward pass at `pos` to predict another.
      if (pos >= ctx) {
        stopReason = "context";
        break;
      }
      if (signal?.aborted) {
        stopReason = "aborted";
        break;
      }
      t0 = performance.now();
      if (greedy && queued.length === 0) {
        const steps = Math.max(1, Math.min(model.greedySteps ?? 1, maxTokens - generated, ctx - pos));
        if (ahead) {
          const batch = pending?.pos === pos ? pending : { pos, steps, wait: ahead(token, pos, steps) };
          const nextPos = batch.pos + batch.steps;
          const nextSteps = Math.min(
            model.greedySteps ?? 1,
            maxTokens - generated - batch.steps,
            ctx - nextPos,
          );
          pending =
            nextSteps > 0
              ? { pos: nextPos, steps: nextSteps, wait: ahead(undefined, nextPos, nextSteps) }
              : undefined;
          queued.push(...checkedGreedyTokens(await batch.wait(), batch.pos, model.config.vocabSize));
        } else queued.push(...Array.from(await greedy(token, pos, steps)));
      } else if (!greedy) logits = await model.decode(token, pos);
      decodeSeconds += (performance.now() - t0) / 1000;
      next = greedy ? queued.shift()! : sampler.sample(logits);
      decodeSteps++;
      pos++;
    }
  } finally {
    // Steps enqueued past the end (a stop token, the caller leaving early): their tokens are
    // dropped, but their read is waited for so that its resources return to the device.
    if (pending) await pending.wait();
  }
  return finish();
}

/** Runs generate() to the end and collects its tokens, text and statistics. */
export async function generateText(
  model: LanguageModel,
  tokenizer: Tokenizer,
  options: GenerateOptions,
): Promise<{ tokens: number[]; text: string; stats: GenerateStats }> {
  const it = generate(model, tokenizer, options);
  const tokens: number[] = [];
  let text = "";
  for (;;) {
    const r = await it.next();
    if (r.done) return { tokens, text: text + r.value.trailingText, stats: r.value };
    tokens.push(r.value.token);
    text += r.value.text;
  }
}
