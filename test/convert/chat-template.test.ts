import { describe, expect, it } from "vitest";
import {
  encodeLlama2Chat,
  llama2ChatSegments,
  renderLlama2Chat,
  type ChatMessage,
} from "../../llama/tokenizer/chat-template.ts";
import type { EncodeOptions, Tokenizer } from "../../llama/tokenizer/types.ts";

/** A tokenizer that spells each character as its code point: enough to see BOS/EOS placement. */
const charTok: Tokenizer = {
  vocabSize: 0x110000,
  bosId: -1,
  eosId: -2,
  encode: (text: string, o: EncodeOptions = {}) => [
    ...(o.bos ? [-1] : []),
    ...Array.from(text, (c) => c.codePointAt(0)!),
    ...(o.eos ? [-2] : []),
  ],
  decodePiece: () => new Uint8Array(0),
  decode: () => "",
};

describe("Llama-2 chat template", () => {
  it("renders Meta's chat_completion format: system folded into the first user turn", () => {
    const msgs: ChatMessage[] = [
      { role: "system", content: "Be brief." },
      { role: "user", content: "  Hi there \n" },
      { role: "assistant", content: " Hello! " },
      { role: "user", content: "Name a colour." },
    ];
    // Meta strips the merged "<<SYS>>...<</SYS>>\n\n" + user text as a whole, so the user's leading
    // spaces survive after the system block while the trailing " \n" goes.
    expect(renderLlama2Chat(msgs)).toBe(
      "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\n  Hi there [/INST] Hello! </s>" +
        "<s>[INST] Name a colour. [/INST]",
    );
  });

  it("a single user message, no system prompt", () => {
    expect(llama2ChatSegments([{ role: "user", content: "Hello" }])).toEqual([
      { text: "[INST] Hello [/INST]", bos: true, eos: false },
    ]);
  });

  it("encodes each turn with its own BOS, and EOS after each answer", () => {
    const ids = encodeLlama2Chat(charTok, [
      { role: "user", content: "a" },
      { role: "assistant", content: "b" },
      { role: "user", content: "c" },
    ]);
    const text = (s: string) => Array.from(s, (c) => c.codePointAt(0)!);
    expect(ids).toEqual([-1, ...text("[INST] a [/INST] b "), -2, -1, ...text("[INST] c [/INST]")]);
    // "<s>" typed by the user is text, never the BOS id.
    expect(encodeLlama2Chat(charTok, [{ role: "user", content: "<s>" }]).filter((t) => t === -1)).toEqual([
      -1,
    ]);
  });

  it("refuses conversations the format cannot express", () => {
    expect(() => llama2ChatSegments([])).toThrow(/no messages/);
    expect(() => llama2ChatSegments([{ role: "system", content: "x" }])).toThrow(
      /system message must be followed by a user/,
    );
    expect(() =>
      llama2ChatSegments([
        { role: "user", content: "a" },
        { role: "user", content: "b" },
      ]),
    ).toThrow(/message 1 is from user/);
    expect(() =>
      llama2ChatSegments([
        { role: "user", content: "a" },
        { role: "assistant", content: "b" },
      ]),
    ).toThrow(/last message must be from the user/);
    expect(() =>
      llama2ChatSegments([
        { role: "user", content: "a" },
        { role: "system", content: "b" },
        { role: "user", content: "c" },
      ]),
    ).toThrow(/message 1 is from system/);
  });
});
