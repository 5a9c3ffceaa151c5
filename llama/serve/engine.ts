/**
 * What the HTTP server needs from a model. The server knows nothing about Llama: it asks the
 * engine to turn a prompt or chat messages into tokens (to count them and check them against the
 * context) and to stream the tokens of one generation. Tests plug in fake engines to reach edge
 * cases (slow tokens, stop strings split across tokens) that a real model hits only by chance.
 */

export interface ChatMessage {
  readonly role: "system" | "user" | "assistant";
  readonly content: string;
}

export interface EngineParams {
  /** Most tokens to generate; the server has already clamped it to what the context leaves. */
  readonly maxTokens: number;
  /** 0 means greedy (argmax). */
  readonly temperature: number;
  readonly topP: number;
  readonly seed: number;
  /** Aborts the generation (client gone, or server closing). */
  readonly signal: AbortSignal;
}

/** One generated token and the text it completes (may be "" while a UTF-8 sequence is partial). */
export interface EngineToken {
  readonly token: number;
  readonly text: string;
}

/** How a generation ended on the engine's side: "stop" at end-of-sequence, "length" at maxTokens. */
export interface EngineResult {
  readonly finishReason: "stop" | "length";
  /** Text the engine still held at the end (e.g. an incomplete UTF-8 character as U+FFFD). */
  readonly trailingText?: string;
}

export interface Engine {
  /** The id shown by GET /v1/models and echoed in responses. */
  readonly modelId: string;
  /** Most tokens (prompt plus generated) a sequence may hold. */
  readonly contextLength: number;
  /** Token ids for a completion prompt, BOS included. Throws a plain Error on input it cannot encode. */
  encodePrompt(prompt: string): number[];
  /** Token ids for a chat conversation rendered for this model, BOS included. */
  encodeChat(messages: readonly ChatMessage[]): number[];
  /** Streams one generation. Stopping iteration early (return()) must free the engine promptly. */
  generate(promptTokens: readonly number[], params: EngineParams): AsyncGenerator<EngineToken, EngineResult>;
}
