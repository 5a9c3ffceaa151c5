/**
 * The Engine the server uses for a real model: llama/generate.ts's loop over any LanguageModel
 * (the CPU reference today, kernel-built models later) and its tokenizer.
 */
import { generate, type LanguageModel, type Tokenizer } from "../generate.ts";
import { encodeLlama2Chat } from "../tokenizer/chat-template.ts";
import type { ChatMessage, Engine, EngineParams, EngineResult, EngineToken } from "./engine.ts";

/**
 * How chat messages become a prompt. "llama-2": Meta's [INST] template (chat models). "plain": the
 * messages' contents concatenated into one document to continue, for models that are not chat
 * models (stories15M writes stories): user text starts a new phrase (a space before it), assistant
 * text is what the model wrote to continue the previous message (joined as is).
 */
export type ChatFormat = "llama-2" | "plain";

export function plainChatDocument(messages: readonly ChatMessage[]): string {
  let doc = "";
  for (const m of messages) {
    if (m.content === "") continue;
    const needsSpace = m.role !== "assistant" && doc !== "" && !/\s$/.test(doc) && !/^\s/.test(m.content);
    doc += (needsSpace ? " " : "") + m.content;
  }
  return doc;
}

export class ModelEngine implements Engine {
  readonly contextLength: number;

  constructor(
    readonly modelId: string,
    private readonly model: LanguageModel,
    private readonly tokenizer: Tokenizer,
    readonly chatFormat: ChatFormat,
  ) {
    this.contextLength = model.config.contextLength;
  }

  encodePrompt(prompt: string): number[] {
    // An empty prompt means "start from BOS", as llama2.c does with no prompt.
    return prompt === "" ? [this.tokenizer.bosId] : this.tokenizer.encode(prompt, { bos: true });
  }

  encodeChat(messages: readonly ChatMessage[]): number[] {
    if (this.chatFormat === "llama-2") return encodeLlama2Chat(this.tokenizer, messages);
    return this.encodePrompt(plainChatDocument(messages));
  }

  async *generate(
    promptTokens: readonly number[],
    p: EngineParams,
  ): AsyncGenerator<EngineToken, EngineResult> {
    const it = generate(this.model, this.tokenizer, {
      promptTokens,
      maxTokens: p.maxTokens,
      temperature: p.temperature,
      topP: p.topP,
      seed: p.seed,
      signal: p.signal,
    });
    try {
      for (;;) {
        const r = await it.next();
        if (r.done) {
          // "context" (the KV cache is full) is a length limit too, in OpenAI's terms.
          const finishReason = r.value.stopReason === "eos" ? "stop" : "length";
          return { finishReason, trailingText: r.value.trailingText };
        }
        yield r.value;
      }
    } finally {
      await it.return(undefined as never);
    }
  }
}
