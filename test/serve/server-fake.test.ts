// Server edge cases against a scripted engine: errors, stop strings, queueing, disconnects.
import * as net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { startServer, type RunningServer } from "../../llama/serve/server.ts";
import { FakeEngine } from "./fake-engine.ts";

let srv: RunningServer | undefined;
afterEach(async () => {
  await srv?.close();
  srv = undefined;
});

async function serve(engine: FakeEngine, maxBodyBytes?: number): Promise<RunningServer> {
  srv = await startServer(engine, { port: 0 }, { maxBodyBytes });
  return srv;
}

const post = (s: RunningServer, path: string, body: unknown, init: RequestInit = {}) =>
  fetch(`${s.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
    ...init,
  });

async function expectError(r: Response, status: number, param?: string | null, code?: string) {
  expect(r.status).toBe(status);
  const j = (await r.json()) as { error: { message: string; type: string; param: unknown; code: unknown } };
  expect(typeof j.error.message).toBe("string");
  expect(j.error.message.length).toBeGreaterThan(10);
  expect(j.error.type).toBe("invalid_request_error");
  if (param !== undefined) expect(j.error.param).toBe(param);
  if (code !== undefined) expect(j.error.code).toBe(code);
  return j.error;
}

/** Reads an SSE body into its data payloads (bounded by the stream's end). */
async function sseEvents(r: Response): Promise<string[]> {
  const text = await r.text();
  return text
    .split("\n\n")
    .filter((e) => e.length > 0)
    .map((e) => {
      expect(e.startsWith("data: ")).toBe(true);
      return e.slice(6);
    });
}

describe("serve (fake engine)", () => {
  it("answers malformed requests with 4xx JSON errors and stays up", async () => {
    const s = await serve(new FakeEngine(), 1024);
    await expectError(await post(s, "/v1/completions", "{not json"), 400, null, "invalid_json");
    await expectError(await post(s, "/v1/completions", ""), 400);
    await expectError(await post(s, "/v1/completions", [1, 2]), 400);
    await expectError(await post(s, "/v1/completions", { prompt: 3 }), 400, "prompt");
    await expectError(await post(s, "/v1/completions", {}), 400, "prompt");
    await expectError(await post(s, "/v1/completions", { prompt: "", temperature: 5 }), 400, "temperature");
    await expectError(await post(s, "/v1/completions", { prompt: "", max_tokens: 1.5 }), 400, "max_tokens");
    await expectError(await post(s, "/v1/completions", { prompt: "", top_p: 0 }), 400, "top_p");
    await expectError(await post(s, "/v1/completions", { prompt: "", stop: [""] }), 400, "stop");
    await expectError(await post(s, "/v1/completions", { prompt: "", n: 2 }), 400, "n");
    await expectError(await post(s, "/v1/completions", { prompt: "a\u0000" }), 400, "prompt");
    await expectError(
      await post(s, "/v1/completions", { prompt: "", model: "gpt-4" }),
      404,
      "model",
      "model_not_found",
    );
    await expectError(await post(s, "/v1/chat/completions", { messages: [] }), 400, "messages");
    await expectError(
      await post(s, "/v1/chat/completions", { messages: [{ role: "bot", content: "x" }] }),
      400,
    );
    await expectError(
      await post(s, "/v1/completions", { prompt: "x".repeat(2000) }),
      413,
      null,
      "body_too_large",
    );
    await expectError(await fetch(`${s.url}/v1/nope`), 404, null, "not_found");
    const wrong = await fetch(`${s.url}/v1/completions`);
    expect(wrong.headers.get("allow")).toBe("POST");
    await expectError(wrong, 405);
    await expectError(
      await post(s, "/v1/completions", { prompt: "x".repeat(63) }),
      400,
      "prompt",
      "context_length_exceeded",
    );
    // Still serving after all of that.
    const ok = await post(s, "/v1/completions", { prompt: "hi", max_tokens: 5 });
    expect(ok.status).toBe(200);
    const j = (await ok.json()) as any;
    expect(j.choices[0]).toMatchObject({ text: "Hello", finish_reason: "length" });
    expect(j.usage).toEqual({ prompt_tokens: 3, completion_tokens: 5, total_tokens: 8 });
  });

  it("cuts at stop strings split across tokens, streaming or not, and clamps to the context", async () => {
    const s = await serve(new FakeEngine("abc-STOP-def", 0, 20));
    const body = { prompt: "p", max_tokens: 50, stop: ["ZZ", "-STOP"] };
    const j = (await (await post(s, "/v1/completions", body)).json()) as any;
    expect(j.choices[0]).toMatchObject({ text: "abc", finish_reason: "stop" });
    expect(j.usage.completion_tokens).toBe(8); // tokens through the one that completed "-STOP"
    const events = await sseEvents(await post(s, "/v1/completions", { ...body, stream: true }));
    expect(events.at(-1)).toBe("[DONE]");
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
    expect(chunks.map((c) => c.choices[0].text).join("")).toBe("abc");
    expect(chunks.at(-1).choices[0].finish_reason).toBe("stop");
    // Stop text held back as a possible prefix is released when it turns out not to be one.
    const held = (await (await post(s, "/v1/completions", { prompt: "p", stop: "-STOX" })).json()) as any;
    expect(held.choices[0].text).toBe("abc-STOP-def");
    // 18-token prompt + BOS in a 20-token context leaves room for one token: "length".
    const full = (await (
      await post(s, "/v1/completions", { prompt: "x".repeat(18), max_tokens: 10 })
    ).json()) as any;
    expect(full.choices[0]).toMatchObject({ text: "a", finish_reason: "length" });
  });

  it("streams chat chunks with a role first, and usage when asked", async () => {
    const s = await serve(new FakeEngine("Hi there"));
    const r = await post(s, "/v1/chat/completions", {
      messages: [{ role: "user", content: [{ type: "text", text: "yo" }] }],
      stream: true,
      stream_options: { include_usage: true },
    });
    expect(r.headers.get("content-type")).toContain("text/event-stream");
    const events = await sseEvents(r);
    expect(events.at(-1)).toBe("[DONE]");
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
    expect(chunks[0].choices[0].delta).toEqual({ role: "assistant", content: "" });
    expect(chunks.map((c) => c.choices[0]?.delta?.content ?? "").join("")).toBe("Hi there");
    expect(chunks.at(-2).choices[0].finish_reason).toBe("stop");
    expect(chunks.at(-1)).toMatchObject({ choices: [], usage: { completion_tokens: 8 } });
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
  });

  it("runs one generation at a time and answers every queued request in full", async () => {
    const engine = new FakeEngine("0123456789", 2);
    const s = await serve(engine);
    const replies = await Promise.all(
      [0, 1, 2, 3, 4].map((i) =>
        post(s, "/v1/completions", { prompt: `r${i}`, max_tokens: 100, stream: i % 2 === 0 }).then((r) =>
          i % 2 === 0 ? r.text() : r.json().then((j: any) => j.choices[0].text as string),
        ),
      ),
    );
    expect(engine.maxActive).toBe(1);
    expect(engine.runs.map((r) => r.prompt).sort()).toEqual(["r0", "r1", "r2", "r3", "r4"]);
    for (const [i, reply] of replies.entries()) {
      if (i % 2 === 1) expect(reply).toBe("0123456789");
      else expect(reply.endsWith("data: [DONE]\n\n")).toBe(true);
    }
  });

  it("aborts a generation whose client disconnects mid-stream, then serves the queue", async () => {
    const engine = new FakeEngine("x".repeat(2000), 5, 4096);
    const s = await serve(engine);
    const ac = new AbortController();
    const r = await post(
      s,
      "/v1/completions",
      { prompt: "a", max_tokens: 2000, stream: true },
      { signal: ac.signal },
    );
    const queued = post(s, "/v1/completions", { prompt: "b", max_tokens: 3 });
    // A request that gives up while still queued must never reach the engine.
    const leaver = new AbortController();
    const gone = post(s, "/v1/completions", { prompt: "c", max_tokens: 3 }, { signal: leaver.signal }).catch(
      (e: Error) => e.name,
    );
    const reader = r.body!.getReader();
    for (let got = 0; got < 3; got++) expect((await reader.read()).done).toBe(false); // a few chunks arrive
    leaver.abort();
    expect(await gone).toBe("AbortError");
    ac.abort();
    const next = (await (await queued).json()) as any;
    expect(next.choices[0].text).toBe("xxx");
    expect(engine.runs[0]).toMatchObject({ prompt: "a", aborted: true, finished: true });
    expect(engine.runs[0]!.produced).toBeLessThan(2000);
    expect(engine.runs.map((x) => x.prompt)).toEqual(["a", "b"]);
  });

  it("lists the model and answers CORS preflight", async () => {
    const s = await serve(new FakeEngine());
    expect(await (await fetch(`${s.url}/v1/models`)).json()).toMatchObject({
      data: [{ id: "fake", object: "model" }],
    });
    expect((await fetch(`${s.url}/v1/models/fake`)).status).toBe(200);
    await expectError(await fetch(`${s.url}/v1/models/other`), 404, "model", "model_not_found");
    await expectError(await fetch(`${s.url}/v1/models/%E0`), 404, "model", "model_not_found");
    // A request target that URL parsing rejects must get an answer, not crash the server.
    const raw = await new Promise<string>((resolve, reject) => {
      const sock = net.connect(s.port, "127.0.0.1", () =>
        sock.end("GET http://[ HTTP/1.1\r\nHost: x\r\n\r\n"),
      );
      let data = "";
      sock.on("data", (d) => (data += d.toString()));
      sock.on("end", () => resolve(data));
      sock.on("error", reject);
    });
    expect(raw).toMatch(/^HTTP\/1\.1 (400|404)/);
    expect((await fetch(`${s.url}/v1/models`)).status).toBe(200);
    const pre = await fetch(`${s.url}/v1/completions`, { method: "OPTIONS" });
    expect(pre.status).toBe(204);
    expect(pre.headers.get("access-control-allow-origin")).toBe("*");
  });
});
