/**
 * A scripted engine for server edge cases: one token per character of `script`, an optional delay
 * per token, and a record of what ran, so tests can see ordering, overlap and aborts.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type {
  ChatMessage,
  Engine,
  EngineParams,
  EngineResult,
  EngineToken,
} from "../../llama/serve/engine.ts";

export interface FakeRun {
  readonly prompt: string;
  produced: number;
  aborted: boolean;
  finished: boolean;
}

export class FakeEngine implements Engine {
  readonly modelId = "fake";
  readonly runs: FakeRun[] = [];
  active = 0;
  maxActive = 0;

  constructor(
    readonly script = "Hello, world! The end.",
    readonly tokenDelayMs = 0,
    readonly contextLength = 64,
  ) {}

  encodePrompt(prompt: string): number[] {
    if (prompt.includes("\u0000")) throw new Error("NUL is not encodable");
    return [1, ...Array.from(prompt, (c) => c.codePointAt(0)!)];
  }

  encodeChat(messages: readonly ChatMessage[]): number[] {
    return this.encodePrompt(messages.map((m) => `${m.role}: ${m.content}\n`).join(""));
  }

  async *generate(
    promptTokens: readonly number[],
    p: EngineParams,
  ): AsyncGenerator<EngineToken, EngineResult> {
    const run: FakeRun = {
      prompt: String.fromCodePoint(...promptTokens.slice(1)),
      produced: 0,
      aborted: false,
      finished: false,
    };
    this.runs.push(run);
    this.maxActive = Math.max(this.maxActive, ++this.active);
    try {
      const chars = Array.from(this.script);
      for (const c of chars) {
        if (run.produced >= p.maxTokens) return { finishReason: "length" };
        if (this.tokenDelayMs > 0) await sleep(this.tokenDelayMs);
        if (p.signal.aborted) {
          run.aborted = true;
          return { finishReason: "stop" };
        }
        run.produced++;
        yield { token: c.codePointAt(0)!, text: c };
      }
      return { finishReason: "stop" };
    } finally {
      run.finished = true;
      if (p.signal.aborted) run.aborted = true;
      this.active--;
    }
  }
}
