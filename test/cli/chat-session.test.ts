// ChatSession reuses its KV cache across turns: each turn must produce exactly what a fresh
// generation over the whole conversation produces. Checked on stories15M in both chat formats
// (the Llama-2 template is only text plus BOS/EOS ids, so a llama2.c tokenizer can encode it).
import { beforeAll, describe, expect, it } from "vitest";
import { ChatSession } from "../../cli/chat-session.ts";
import { loadModel, type LoadedModel } from "../../cli/load-model.ts";
import { generateText } from "../../llama/generate.ts";
import { encodeLlama2Chat } from "../../llama/tokenizer/chat-template.ts";
import { runInProcess } from "./run.ts";

let m: LoadedModel;
beforeAll(async () => {
  m = await loadModel({ device: "cpu" });
});

async function say(s: ChatSession, line: string): Promise<string> {
  let text = "";
  const it = s.turn(line);
  for (let r = await it.next(); !r.done; r = await it.next()) text += r.value;
  return text;
}

const fresh = async (promptTokens: number[], maxTokens: number) =>
  (await generateText(m.model, m.tokenizer, { promptTokens, maxTokens, temperature: 0, topP: 1, seed: 1 }))
    .text;

describe("ChatSession", () => {
  it("plain format: the second turn continues the document, prefilling only new tokens", async () => {
    const s = new ChatSession(m.model, m.tokenizer, {
      format: "plain",
      temperature: 0,
      topP: 1,
      seed: 1,
      maxTokens: 9,
    });
    const first = await say(s, "Once upon a time");
    expect(first).toBe(", there was a little girl named Lily");
    const second = await say(s, "The cat");
    // The document is the prompt, the tokens generated for it (not their re-encoded text) and the new line.
    const prompt = m.tokenizer.encode("Once upon a time", { bos: true });
    const opts = { promptTokens: prompt, maxTokens: 9, temperature: 0, topP: 1, seed: 1 };
    const { tokens: generated } = await generateText(m.model, m.tokenizer, opts);
    const doc = [...prompt, ...generated, ...m.tokenizer.encode("The cat")];
    expect(second).toBe(await fresh(doc, 9));
    expect(second.length).toBeGreaterThan(10);
    expect(s.lastStats).toMatchObject({ promptTokens: doc.length, prefilledTokens: 3, generatedTokens: 9 });
  });

  it("llama-2 format: rewinds to the common prefix when the re-rendered history differs", async () => {
    const opts = {
      format: "llama-2",
      system: "Be brief.",
      temperature: 0,
      topP: 1,
      seed: 1,
      maxTokens: 6,
    } as const;
    const s = new ChatSession(m.model, m.tokenizer, opts);
    const a1 = await say(s, "Tell me a story.");
    const a2 = await say(s, "Another one.");
    const messages = [
      { role: "system", content: "Be brief." },
      { role: "user", content: "Tell me a story." },
      { role: "assistant", content: a1.trim() },
      { role: "user", content: "Another one." },
    ] as const;
    const tokens = encodeLlama2Chat(m.tokenizer, messages);
    expect(a2).toBe(await fresh(tokens, 6));
    expect(s.lastStats!.prefilledTokens).toBeLessThan(tokens.length);
    expect(s.lastStats!.prefilledTokens).toBeGreaterThan(1);
  });

  it("reset forgets the conversation; overlong messages are refused without ending the session", async () => {
    const s = new ChatSession(m.model, m.tokenizer, {
      format: "plain",
      temperature: 0,
      topP: 1,
      seed: 1,
      maxTokens: 4,
    });
    const a = await say(s, "Once upon a time");
    s.reset();
    expect(s.lastStats).toBeUndefined();
    expect(await say(s, "Once upon a time")).toBe(a);
    await expect(say(s, "dog ".repeat(300))).rejects.toThrow(/context holds 256/);
    expect(await say(s, "")).not.toBe(""); // an empty line lets the model go on
  });
});

describe("tkc chat commands (in process)", () => {
  it("/reset, /reload, /help and unknown commands", async () => {
    const input = "Once upon a time\n/reset\n/stats\n/reload\nOnce upon a time\n/nope\n/help\n";
    const r = await runInProcess(["chat", "--temperature", "0", "--max-tokens", "4"], input);
    expect(r.code).toBe(0);
    const lines = r.stdout.split("\n");
    expect(lines.slice(0, 4)).toEqual([
      ", there was a",
      "[conversation and KV cache cleared]",
      "[no answer yet]",
      expect.stringMatching(/^\[loaded stories15M .* on cpu; conversation cleared\]$/),
    ]);
    expect(lines[4]).toBe(", there was a");
    expect(lines[5]).toBe("[unknown command /nope; /help lists them]");
    expect(r.stdout).toContain("/reload [model]");
  });
});
