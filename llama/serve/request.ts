/**
 * Validation of OpenAI request bodies into one normalized shape. Every bad field gets a 400 that
 * names the field (`param`), as OpenAI does. Fields we do not implement but that clients commonly
 * send with neutral values (user, presence_penalty 0, logprobs false, n 1) are accepted; ones that
 * would change the result in a way we cannot honour are refused rather than silently ignored.
 */
import type { ChatMessage } from "./engine.ts";
import { badRequest } from "./errors.ts";

export interface SamplingRequest {
  readonly model: string | undefined;
  /** Undefined means "until end-of-sequence or the context is full". */
  readonly maxTokens: number | undefined;
  readonly temperature: number;
  readonly topP: number;
  readonly seed: number | undefined;
  readonly stop: readonly string[];
  readonly stream: boolean;
  readonly includeUsage: boolean;
}

export interface CompletionRequest extends SamplingRequest {
  readonly kind: "completion";
  readonly prompt: string;
}

export interface ChatRequest extends SamplingRequest {
  readonly kind: "chat";
  readonly messages: readonly ChatMessage[];
}

type Body = Record<string, unknown>;

const MAX_STOPS = 16;

function asObject(body: unknown): Body {
  if (typeof body !== "object" || body === null || Array.isArray(body))
    throw badRequest("The request body must be a JSON object.");
  return body as Body;
}

const present = (b: Body, k: string): boolean => b[k] !== undefined && b[k] !== null;

function number(b: Body, k: string, dflt: number, min: number, max: number, integer = false): number {
  if (!present(b, k)) return dflt;
  const v = b[k];
  const kind = integer ? "an integer" : "a number";
  if (typeof v !== "number" || !Number.isFinite(v) || (integer && !Number.isInteger(v)))
    throw badRequest(`'${k}' must be ${kind}, got ${JSON.stringify(v)}.`, k);
  if (v < min || v > max) throw badRequest(`'${k}' must be between ${min} and ${max}, got ${v}.`, k);
  return v;
}

function boolean(b: Body, k: string): boolean {
  if (!present(b, k)) return false;
  if (typeof b[k] !== "boolean")
    throw badRequest(`'${k}' must be a boolean, got ${JSON.stringify(b[k])}.`, k);
  return b[k] as boolean;
}

function stops(b: Body): string[] {
  if (!present(b, "stop")) return [];
  const v = b.stop;
  const list = typeof v === "string" ? [v] : v;
  if (!Array.isArray(list) || list.some((s) => typeof s !== "string" || s.length === 0))
    throw badRequest("'stop' must be a non-empty string or an array of non-empty strings.", "stop");
  if (list.length > MAX_STOPS) throw badRequest(`'stop' may hold at most ${MAX_STOPS} strings.`, "stop");
  return list as string[];
}

/** Refuses fields whose non-default values we cannot honour, so clients are not silently misled. */
function unsupported(b: Body, k: string, neutral: (v: unknown) => boolean): void {
  if (present(b, k) && !neutral(b[k])) throw badRequest(`'${k}' is not supported by this server.`, k);
}

function sampling(b: Body, maxTokensKeys: readonly string[]): SamplingRequest {
  if (present(b, "model") && typeof b.model !== "string")
    throw badRequest("'model' must be a string.", "model");
  unsupported(b, "n", (v) => v === 1);
  unsupported(b, "best_of", (v) => v === 1);
  unsupported(b, "logprobs", (v) => v === false || v === 0);
  unsupported(b, "top_logprobs", (v) => v === 0);
  unsupported(b, "echo", (v) => v === false);
  unsupported(b, "suffix", (v) => v === "");
  unsupported(b, "tools", (v) => Array.isArray(v) && v.length === 0);
  unsupported(b, "frequency_penalty", (v) => v === 0);
  unsupported(b, "presence_penalty", (v) => v === 0);
  let maxTokens: number | undefined;
  for (const k of maxTokensKeys)
    if (present(b, k)) maxTokens = number(b, k, 0, 1, Number.MAX_SAFE_INTEGER, true);
  const stream = boolean(b, "stream");
  let includeUsage = false;
  if (present(b, "stream_options")) {
    const o = b.stream_options;
    if (typeof o !== "object" || o === null || Array.isArray(o))
      throw badRequest("'stream_options' must be an object.", "stream_options");
    if (!stream)
      throw badRequest("'stream_options' is only allowed when 'stream' is true.", "stream_options");
    includeUsage = boolean(o as Body, "include_usage");
  }
  return {
    model: b.model as string | undefined,
    maxTokens,
    temperature: number(b, "temperature", 1, 0, 2),
    topP: topP(b),
    seed: present(b, "seed") ? number(b, "seed", 0, 0, Number.MAX_SAFE_INTEGER, true) : undefined,
    stop: stops(b),
    stream,
    includeUsage,
  };
}

function topP(b: Body): number {
  const p = number(b, "top_p", 1, 0, 1);
  if (p === 0)
    throw badRequest("'top_p' must be greater than 0 (use temperature 0 for greedy decoding).", "top_p");
  return p;
}

/** OpenAI's completions default is 16 tokens; we keep it so clients see the behaviour they expect. */
export const COMPLETION_DEFAULT_MAX_TOKENS = 16;

export function parseCompletionRequest(body: unknown): CompletionRequest {
  const b = asObject(body);
  if (!present(b, "prompt")) throw badRequest("'prompt' is required (use \"\" to start from BOS).", "prompt");
  let prompt = b.prompt;
  // Clients (and the openai SDK) may send a batch of prompts; we serve exactly one.
  if (Array.isArray(prompt) && prompt.length === 1 && typeof prompt[0] === "string") prompt = prompt[0];
  if (typeof prompt !== "string")
    throw badRequest("'prompt' must be a string (batches and token-id prompts are not supported).", "prompt");
  const s = sampling(b, ["max_tokens"]);
  return { ...s, maxTokens: s.maxTokens ?? COMPLETION_DEFAULT_MAX_TOKENS, kind: "completion", prompt };
}

export function parseChatRequest(body: unknown): ChatRequest {
  const b = asObject(body);
  if (!Array.isArray(b.messages) || b.messages.length === 0)
    throw badRequest("'messages' must be a non-empty array.", "messages");
  const messages = b.messages.map((m, i) => message(m, i));
  return { ...sampling(b, ["max_tokens", "max_completion_tokens"]), kind: "chat", messages };
}

function message(m: unknown, i: number): ChatMessage {
  const param = `messages[${i}]`;
  if (typeof m !== "object" || m === null) throw badRequest(`${param} must be an object.`, param);
  const { role, content } = m as Body;
  // "developer" is the newer name OpenAI gives the system role.
  const r = role === "developer" ? "system" : role;
  if (r !== "system" && r !== "user" && r !== "assistant")
    throw badRequest(
      `${param}.role must be "system", "user" or "assistant", got ${JSON.stringify(role)}.`,
      param,
    );
  if (typeof content === "string") return { role: r, content };
  // Content parts: only text parts can reach a text-only model.
  if (Array.isArray(content)) {
    const texts = content.map((p, j) => {
      const part = p as Body;
      if (typeof p !== "object" || p === null || part.type !== "text" || typeof part.text !== "string")
        throw badRequest(`${param}.content[${j}] must be a {type: "text", text} part.`, param);
      return part.text;
    });
    return { role: r, content: texts.join("") };
  }
  throw badRequest(`${param}.content must be a string or an array of text parts.`, param);
}
