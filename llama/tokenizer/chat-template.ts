/**
 * The Llama-2 chat prompt format, as Meta's reference `chat_completion` builds it
 * (llama/generation.py):
 *
 *   <s>[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user 1} [/INST] {answer 1} </s><s>[INST] {user 2} [/INST]
 *
 * Each user/assistant exchange is encoded on its own with BOS and EOS, the final user turn with BOS
 * only; the system prompt is folded into the first user turn; contents are trimmed. BOS/EOS are
 * token ids, not text (a user typing "<s>" must not produce a BOS token), so the template yields
 * segments of text, each with its BOS/EOS flags, and encodeLlama2Chat encodes them one by one.
 */
import type { Tokenizer } from "./types.ts";

/** Structurally the same as llama/serve/engine.ts's ChatMessage. */
export interface ChatMessage {
  readonly role: "system" | "user" | "assistant";
  readonly content: string;
}

export interface ChatSegment {
  readonly text: string;
  readonly bos: boolean;
  readonly eos: boolean;
}

const B_INST = "[INST]";
const E_INST = "[/INST]";
const B_SYS = "<<SYS>>\n";
const E_SYS = "\n<</SYS>>\n\n";

// Python's str.strip() with no argument strips whitespace; JS trim() strips the same set plus
// U+FEFF, close enough for prompts.
const strip = (s: string): string => s.trim();

/** The conversation as segments to encode; the last message must be the user's. */
export function llama2ChatSegments(messages: readonly ChatMessage[]): ChatSegment[] {
  if (messages.length === 0) throw new Error("chat template: no messages");
  let dialog = [...messages];
  if (dialog[0]!.role === "system") {
    const next = dialog[1];
    if (!next || next.role !== "user")
      throw new Error("chat template: a system message must be followed by a user message");
    dialog = [
      { role: "user", content: B_SYS + dialog[0]!.content + E_SYS + next.content },
      ...dialog.slice(2),
    ];
  }
  dialog.forEach((m, i) => {
    const want = i % 2 === 0 ? "user" : "assistant";
    if (m.role !== want)
      throw new Error(
        `chat template: message ${i + (messages.length - dialog.length)} is from ${m.role}; Llama-2 chat needs ` +
          `an optional system message, then user and assistant turns alternating, starting with user`,
      );
  });
  if (dialog[dialog.length - 1]!.role !== "user")
    throw new Error("chat template: the last message must be from the user");
  const segments: ChatSegment[] = [];
  for (let i = 0; i + 1 < dialog.length; i += 2)
    segments.push({
      text: `${B_INST} ${strip(dialog[i]!.content)} ${E_INST} ${strip(dialog[i + 1]!.content)} `,
      bos: true,
      eos: true,
    });
  segments.push({
    text: `${B_INST} ${strip(dialog[dialog.length - 1]!.content)} ${E_INST}`,
    bos: true,
    eos: false,
  });
  return segments;
}

/** The prompt as text, BOS/EOS written as <s> and </s>: for display and logs, not for encoding. */
export function renderLlama2Chat(messages: readonly ChatMessage[]): string {
  return llama2ChatSegments(messages)
    .map((s) => `${s.bos ? "<s>" : ""}${s.text}${s.eos ? "</s>" : ""}`)
    .join("");
}

/** Token ids of the conversation, ready for generation of the assistant's next answer. */
export function encodeLlama2Chat(tokenizer: Tokenizer, messages: readonly ChatMessage[]): number[] {
  return llama2ChatSegments(messages).flatMap((s) => tokenizer.encode(s.text, { bos: s.bos, eos: s.eos }));
}
