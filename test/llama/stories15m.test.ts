import * as fs from "node:fs";
import { describe, expect, it } from "vitest";
import { loadBundledStories15M } from "../../llama/bundled.ts";
import { generate, generateText } from "../../llama/generate.ts";
import { ReferenceLlama } from "../../llama/reference.ts";

// Published in llama2.c's README and in the GUIDE: stories15M's greedy text from BOS.
const PUBLISHED =
  "Once upon a time, there was a little girl named Lily. She loved to play outside in the sunshine. One day, she saw a big, red ball in the sky. It was the sun! She thought it was so pretty.";

interface Llama2cRun {
  args: string;
  temperature: number;
  topP: number;
  seed: number;
  tokens: number[];
}
const fixture = JSON.parse(
  fs.readFileSync(new URL("./fixtures/llama2c-stories15m.json", import.meta.url), "utf8"),
) as {
  runs: Llama2cRun[];
};

const { weights, tokenizer } = loadBundledStories15M();
const model = new ReferenceLlama(weights);

describe("stories15M on the reference model", () => {
  it("greedy generation from BOS starts with llama2.c's published text and equals run.c's", async () => {
    const greedy = fixture.runs[0];
    expect(greedy.temperature).toBe(0);
    const r = await generateText(model, tokenizer, { maxTokens: 256, temperature: 0, topP: 0.9, seed: 1 });
    console.log(`stories15M greedy (${r.stats.decodeTokensPerSecond.toFixed(1)} tok/s decode):\n${r.text}`);
    expect(r.text.startsWith(PUBLISHED)).toBe(true);
    expect(r.tokens).toEqual(greedy.tokens);
    expect(r.stats).toMatchObject({
      promptTokens: 1,
      stopReason: "eos",
      stopToken: 1,
      generatedTokens: r.tokens.length,
    });
    expect(r.stats.decodeTokensPerSecond).toBeGreaterThan(0);
  });

  // Token for token equal to llama2.c's C implementation: checks the forward pass end to end and
  // the RNG, temperature and top-p logic.
  for (const run of fixture.runs.slice(1)) {
    it(`matches llama2.c run.c ${run.args} token for token`, async () => {
      const r = await generateText(model, tokenizer, {
        maxTokens: 256,
        temperature: run.temperature,
        topP: run.topP,
        seed: run.seed,
      });
      expect(r.tokens).toEqual(run.tokens);
      // run.c stops when it samples BOS; so do we (stop reason "eos", stop token 1)
      expect(r.stats).toMatchObject({ stopReason: "eos", stopToken: 1, generatedTokens: run.tokens.length });
    });
  }

  it("continues a prompt: the prompt's tokens are fed, not emitted", async () => {
    const greedy = fixture.runs[0].tokens;
    // "Once upon a time" is the first 4 greedy tokens, so greedy continuation must follow the same path
    const r = await generateText(model, tokenizer, {
      prompt: "Once upon a time",
      maxTokens: 20,
      temperature: 0,
      topP: 0,
      seed: 1,
    });
    expect(tokenizer.encode("Once upon a time", { bos: true })).toEqual([1, ...greedy.slice(0, 4)]);
    expect(r.tokens).toEqual(greedy.slice(4, 24));
    expect(r.text.startsWith(", there was a little girl named Lily.")).toBe(true);
    expect(r.stats).toMatchObject({ promptTokens: 5, generatedTokens: 20, stopReason: "length" });
  });

  it("stops at the end of the context", async () => {
    const short = new ReferenceLlama(weights, { contextLength: 8 });
    const r = await generateText(short, tokenizer, { maxTokens: 100, temperature: 0, topP: 0, seed: 1 });
    // positions 0..7 are fed; the token sampled after position 7 is emitted but never fed
    expect(r.stats.stopReason).toBe("context");
    expect(r.tokens).toEqual(fixture.runs[0].tokens.slice(0, 8));
    await expect(
      generateText(short, tokenizer, {
        promptTokens: Array(9).fill(1),
        maxTokens: 1,
        temperature: 0,
        topP: 0,
        seed: 1,
      }),
    ).rejects.toThrow("the prompt has 9 tokens, the context holds 8");
  });

  it("honours an abort signal and custom stop tokens", async () => {
    const controller = new AbortController();
    const it = generate(model, tokenizer, {
      maxTokens: 50,
      temperature: 0,
      topP: 0,
      seed: 1,
      signal: controller.signal,
    });
    const first = await it.next();
    expect(first.done).toBe(false);
    controller.abort();
    const end = await it.next();
    expect(end.done && end.value.stopReason).toBe("aborted");
    // stopping at the token for " there" (the 6th greedy token)
    const there = fixture.runs[0].tokens[5];
    const r = await generateText(model, tokenizer, {
      maxTokens: 50,
      temperature: 0,
      topP: 0,
      seed: 1,
      stopTokens: [there],
    });
    expect(r.text).toBe("Once upon a time,");
    expect(r.stats).toMatchObject({ stopReason: "eos", stopToken: there, generatedTokens: 5 });
  });
});
