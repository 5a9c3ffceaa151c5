import { describe, expect, it } from "vitest";
import { bundledTokenizerFile } from "../../llama/bundled.ts";
import { type LanguageModel, checkedGreedyTokens, generate, generateText } from "../../llama/generate.ts";
import { ReferenceLlama } from "../../llama/reference.ts";
import { loadLlama2cTokenizer } from "../../llama/tokenizer/llama2c.ts";
import { randomWeights, tinyConfig } from "./helpers/random-weights.ts";

// A tiny random model over the real 32000-token vocabulary: fast, and its text exercises byte
// tokens and partial UTF-8 (random models emit arbitrary tokens).
const tokenizer = loadLlama2cTokenizer(bundledTokenizerFile(), 32000);
const weights = randomWeights(tinyConfig({ vocabSize: 32000, contextLength: 64 }), 21, 1.5);
const base = { maxTokens: 40, temperature: 1, topP: 0.9, seed: 17, stopTokens: [] };

/** The same model behind promises, as a GPU model that awaits its device would be. */
function asAsync(m: ReferenceLlama): LanguageModel {
  const later = <T>(v: T) => new Promise<T>((resolve) => setTimeout(() => resolve(v), 0));
  return {
    config: m.config,
    reset: () => m.reset(),
    prefill: (tokens, pos) => later(Float32Array.from(m.prefill(tokens, pos))),
    decode: (token, pos) => later(Float32Array.from(m.decode(token, pos))),
  };
}

describe("generate", () => {
  it("gives the same tokens for sync and async models, and text that decodes the tokens", async () => {
    const sync = await generateText(new ReferenceLlama(weights), tokenizer, { ...base, prompt: "héllo" });
    const async = await generateText(asAsync(new ReferenceLlama(weights)), tokenizer, {
      ...base,
      prompt: "héllo",
    });
    expect(async.tokens).toEqual(sync.tokens);
    expect(sync.tokens.length).toBe(40);
    expect(sync.stats).toMatchObject({
      promptTokens: tokenizer.encode("héllo", { bos: true }).length,
      stopReason: "length",
    });
    // streamed text equals decoding the prompt's last token followed by the generated ones, minus the prompt
    const prompt = tokenizer.encode("héllo", { bos: true });
    expect(sync.text).toBe(tokenizer.decode([...prompt, ...sync.tokens]).slice("héllo".length));
  });

  it("is reproducible for a seed and reuses a model across calls", async () => {
    const m = new ReferenceLlama(weights);
    const a = await generateText(m, tokenizer, base);
    const b = await generateText(m, tokenizer, base);
    const c = await generateText(m, tokenizer, { ...base, seed: 18 });
    expect(b.tokens).toEqual(a.tokens);
    expect(c.tokens).not.toEqual(a.tokens);
  });

  it("stops by length, context and maxTokens 0", async () => {
    const m = new ReferenceLlama(weights, { contextLength: 10 });
    const ctx = await generateText(m, tokenizer, { ...base, maxTokens: 100, promptTokens: [1, 500, 600] });
    // prompt at positions 0..2, generated tokens at positions 3..10: the last one is never fed
    expect(ctx.stats).toMatchObject({ stopReason: "context", generatedTokens: 8, promptTokens: 3 });
    const none = await generateText(m, tokenizer, { ...base, maxTokens: 0 });
    expect(none.stats).toMatchObject({ stopReason: "length", generatedTokens: 0 });
  });

  it("streams pieces one token at a time with stats as the return value", async () => {
    const it = generate(new ReferenceLlama(weights), tokenizer, { ...base, maxTokens: 3 });
    const pieces = [await it.next(), await it.next(), await it.next()];
    for (const p of pieces) expect(p.done).toBe(false);
    const end = await it.next();
    expect(end.done).toBe(true);
    if (end.done)
      expect(end.value).toMatchObject({
        generatedTokens: 3,
        stopReason: "length",
        trailingText: expect.any(String),
      });
  });

  it("rejects bad options and mismatched tokenizers", async () => {
    const m = new ReferenceLlama(weights);
    await expect(generateText(m, tokenizer, { ...base, maxTokens: -1 })).rejects.toThrow(
      "maxTokens must be a non-negative integer, got -1",
    );
    await expect(generateText(m, tokenizer, { ...base, promptTokens: [] })).rejects.toThrow(
      "the prompt has no tokens",
    );
    const small = new ReferenceLlama(randomWeights(tinyConfig(), 1));
    await expect(generateText(small, tokenizer, base)).rejects.toThrow(
      "the tokenizer has 32000 tokens but the model's vocabulary only 300",
    );
  });
});

describe("checkedGreedyTokens", () => {
  it("passes tokens inside the vocabulary and names the position after which a NaN showed", () => {
    expect(checkedGreedyTokens(Int32Array.from([3, 0, 31]), 10, 32)).toEqual([3, 0, 31]);
    expect(() => checkedGreedyTokens(Int32Array.from([3, -1, 4]), 10, 32)).toThrow(
      "tkc: the logits after position 11 hold a NaN (argmax gave -1)",
    );
    expect(() => checkedGreedyTokens([32], 0, 32)).toThrow("after position 0 hold a NaN (argmax gave 32)");
  });
});
