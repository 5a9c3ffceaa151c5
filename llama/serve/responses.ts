/** The OpenAI response and stream-chunk shapes for completions and chat completions. */
import { randomUUID } from "node:crypto";
import type { Outcome } from "./generation.ts";

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export const usage = (o: Outcome): Usage => ({
  prompt_tokens: o.promptTokens,
  completion_tokens: o.completionTokens,
  total_tokens: o.promptTokens + o.completionTokens,
});

/** Builds every object of one response, so all chunks share its id, timestamp and model. */
export class ResponseShapes {
  readonly id: string;
  readonly created = Math.floor(Date.now() / 1000);

  constructor(
    readonly kind: "completion" | "chat",
    readonly model: string,
  ) {
    this.id = `${kind === "chat" ? "chatcmpl" : "cmpl"}-${randomUUID().replaceAll("-", "")}`;
  }

  private head(object: string) {
    return { id: this.id, object, created: this.created, model: this.model };
  }

  /** The whole, non-streamed response. */
  full(o: Outcome): object {
    if (this.kind === "chat")
      return {
        ...this.head("chat.completion"),
        choices: [
          {
            index: 0,
            message: { role: "assistant", content: o.text },
            logprobs: null,
            finish_reason: o.finishReason,
          },
        ],
        usage: usage(o),
      };
    return {
      ...this.head("text_completion"),
      choices: [{ index: 0, text: o.text, logprobs: null, finish_reason: o.finishReason }],
      usage: usage(o),
    };
  }

  /** The chunk a chat stream opens with: it carries the role, as OpenAI's first delta does. */
  start(): object | undefined {
    if (this.kind !== "chat") return undefined;
    return this.chunk({ role: "assistant", content: "" }, null);
  }

  /** A chunk carrying a piece of text. */
  delta(text: string): object {
    return this.kind === "chat" ? this.chunk({ content: text }, null) : this.chunk(text, null);
  }

  /** The last chunk with choices: no text, just why the generation ended. */
  finish(reason: "stop" | "length"): object {
    return this.kind === "chat" ? this.chunk({}, reason) : this.chunk("", reason);
  }

  /** With stream_options.include_usage: a final chunk with empty choices and the usage. */
  usageChunk(o: Outcome): object {
    const object = this.kind === "chat" ? "chat.completion.chunk" : "text_completion";
    return { ...this.head(object), choices: [], usage: usage(o) };
  }

  private chunk(content: string | object, finish: "stop" | "length" | null): object {
    if (this.kind === "chat")
      return {
        ...this.head("chat.completion.chunk"),
        choices: [{ index: 0, delta: content, logprobs: null, finish_reason: finish }],
      };
    return {
      ...this.head("text_completion"),
      choices: [{ index: 0, text: content, logprobs: null, finish_reason: finish }],
    };
  }
}
