// The server with the real stories15M reference model, driven by the official openai client.
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadModel } from "../../cli/load-model.ts";
import type { Engine, EngineParams, EngineResult, EngineToken } from "../../llama/serve/engine.ts";
import { ModelEngine } from "../../llama/serve/model-engine.ts";
import { startServer, type RunningServer } from "../../llama/serve/server.ts";

/** Wraps the real engine to record, per generation, how many tokens it produced and if it was aborted. */
class Recording implements Engine {
  readonly runs: { tokens: number; aborted: boolean }[] = [];
  constructor(private readonly inner: Engine) {}
  get modelId() {
    return this.inner.modelId;
  }
  get contextLength() {
    return this.inner.contextLength;
  }
  encodePrompt(p: string) {
    return this.inner.encodePrompt(p);
  }
  encodeChat(m: Parameters<Engine["encodeChat"]>[0]) {
    return this.inner.encodeChat(m);
  }
  async *generate(prompt: readonly number[], p: EngineParams): AsyncGenerator<EngineToken, EngineResult> {
    const run = { tokens: 0, aborted: false };
    this.runs.push(run);
    try {
      const it = this.inner.generate(prompt, p);
      for (let r = await it.next(); ; r = await it.next()) {
        if (r.done) return r.value;
        run.tokens++;
        yield r.value;
      }
    } finally {
      run.aborted = p.signal.aborted;
    }
  }
}

const STORY = "Once upon a time, there was a little girl named Lily.";
let srv: RunningServer;
let engine: Recording;
let client: OpenAI;

beforeAll(async () => {
  const m = await loadModel({ device: "cpu" });
  engine = new Recording(new ModelEngine(m.id, m.model, m.tokenizer, m.chatFormat));
  srv = await startServer(engine, { port: 0 });
  client = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: "none", maxRetries: 0, timeout: 60_000 });
});
afterAll(async () => {
  await srv?.close();
});

const greedy = { model: "stories15M", prompt: "", max_tokens: 16, temperature: 0 } as const;

describe("serve (stories15M, openai client)", () => {
  it("lists the model", async () => {
    const list = await client.models.list();
    expect(list.data.map((m) => m.id)).toEqual(["stories15M"]);
  });

  it("completes greedily from BOS, the same text streamed or not", async () => {
    const full = await client.completions.create(greedy);
    const text = full.choices[0]!.text;
    expect(STORY.startsWith(text.slice(0, 40))).toBe(true);
    expect(text.startsWith("Once upon a time")).toBe(true);
    expect(full.choices[0]!.finish_reason).toBe("length");
    expect(full.usage).toEqual({ prompt_tokens: 1, completion_tokens: 16, total_tokens: 17 });

    const stream = await client.completions.create({
      ...greedy,
      stream: true,
      stream_options: { include_usage: true },
    });
    let streamed = "";
    const finish: (string | null)[] = [];
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      for (const c of chunk.choices) {
        streamed += c.text;
        finish.push(c.finish_reason);
      }
    }
    expect(streamed).toBe(text);
    expect(finish.filter((f) => f !== null)).toEqual(["length"]);
    expect(usage?.completion_tokens).toBe(16);
  });

  it("cuts at a stop string and says finish_reason stop", async () => {
    const r = await client.completions.create({ ...greedy, max_tokens: 30, stop: [" Lily", "zzz"] });
    expect(r.choices[0]).toMatchObject({
      text: "Once upon a time, there was a little girl named",
      finish_reason: "stop",
    });
  });

  it("answers a chat completion by continuing the user's text (plain format)", async () => {
    const r = await client.chat.completions.create({
      model: "stories15M",
      messages: [{ role: "user", content: "Once upon a time" }],
      max_tokens: 9, // "Lily" is two tokens, "L" and "ily"
      temperature: 0,
    });
    expect(r.object).toBe("chat.completion");
    expect(r.choices[0]!.message.role).toBe("assistant");
    expect(r.choices[0]!.message.content).toBe(", there was a little girl named Lily");
    expect(r.usage?.prompt_tokens).toBe(5);
  });

  it("answers concurrent requests, each in full", async () => {
    const results = await Promise.all(
      [1, 2, 3].map((seed) => client.completions.create({ ...greedy, max_tokens: 6, temperature: 1, seed })),
    );
    for (const r of results) {
      expect(r.usage?.completion_tokens).toBe(6);
      expect(r.choices[0]!.text.length).toBeGreaterThan(0);
    }
    // Same seed, same text: sampling is reproducible across requests.
    const again = await client.completions.create({ ...greedy, max_tokens: 6, temperature: 1, seed: 2 });
    expect(again.choices[0]!.text).toBe(results[1]!.choices[0]!.text);
  });

  it("rejects a prompt longer than the context with a 400, and stays up", async () => {
    const long = "Once upon a time there was a dog. ".repeat(40);
    const err = await client.completions.create({ ...greedy, prompt: long }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).message).toMatch(
      /maximum context length is 256 tokens/,
    );
    const bad = await fetch(`${srv.url}/v1/chat/completions`, { method: "POST", body: '{"messages": [' });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe("invalid_json");
    const ok = await client.completions.create({ ...greedy, max_tokens: 2 });
    expect(ok.choices[0]!.text).toBe("Once upon");
  });

  it("aborts a generation whose client disconnects mid-stream; the next request is served", async () => {
    const before = engine.runs.length;
    const stream = await client.completions.create({ ...greedy, max_tokens: 200, stream: true });
    let got = 0;
    for await (const chunk of stream) {
      got += chunk.choices.length;
      if (got >= 3) break; // leaving the loop aborts the request
    }
    const next = await client.completions.create({ ...greedy, max_tokens: 3 });
    expect(next.choices[0]!.text).toBe("Once upon a");
    const aborted = engine.runs[before]!;
    expect(aborted.aborted).toBe(true);
    expect(aborted.tokens).toBeLessThan(200);
    expect(engine.runs[before + 1]).toEqual({ tokens: 3, aborted: false });
  });
});
