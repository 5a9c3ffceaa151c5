/**
 * One request's generation: prompt → tokens, context check, stop strings, token counting.
 * Independent of HTTP so both the JSON and the streaming paths share it.
 */
import { setImmediate as nextTurn } from "node:timers/promises";
import type { Engine } from "./engine.ts";
import { ApiError, badRequest } from "./errors.ts";
import type { ChatRequest, CompletionRequest } from "./request.ts";
import { StopMatcher } from "./stop.ts";

export interface Prepared {
  readonly promptTokens: readonly number[];
  /** Tokens we will let the engine generate: the request's max_tokens clamped to the context left. */
  readonly maxTokens: number;
  /** True when the clamp (not the request) set maxTokens, so "length" then means "context full". */
  readonly clamped: boolean;
}

export interface Outcome {
  readonly text: string;
  readonly promptTokens: number;
  readonly completionTokens: number;
  readonly finishReason: "stop" | "length";
}

/** Encodes the prompt and checks it against the context; all failures are 400s naming the field. */
export function prepare(engine: Engine, req: CompletionRequest | ChatRequest): Prepared {
  const param = req.kind === "chat" ? "messages" : "prompt";
  let promptTokens: number[];
  try {
    promptTokens = req.kind === "chat" ? engine.encodeChat(req.messages) : engine.encodePrompt(req.prompt);
  } catch (e) {
    throw badRequest(`Could not encode the ${param}: ${(e as Error).message}`, param);
  }
  const ctx = engine.contextLength;
  if (promptTokens.length >= ctx)
    throw badRequest(
      `This model's maximum context length is ${ctx} tokens, but the ${param} takes ${promptTokens.length} tokens ` +
        `(no room left to generate). Shorten the ${param}.`,
      param,
      "context_length_exceeded",
    );
  const room = ctx - promptTokens.length;
  const wanted = req.maxTokens ?? room;
  return { promptTokens, maxTokens: Math.min(wanted, room), clamped: wanted > room };
}

/**
 * Runs the generation, calling `onText` with each piece of visible text (stop strings removed).
 * Returns normally when the signal aborts (the caller knows why); engine failures become 500s.
 */
export async function run(
  engine: Engine,
  prep: Prepared,
  req: CompletionRequest | ChatRequest,
  signal: AbortSignal,
  onText: (text: string) => void | Promise<void>,
): Promise<Outcome> {
  const stop = new StopMatcher(req.stop);
  // No seed: draw one, so unseeded requests differ from each other as OpenAI's do.
  const seed = req.seed ?? Math.floor(Math.random() * 2 ** 31);
  const params = { maxTokens: prep.maxTokens, temperature: req.temperature, topP: req.topP, seed, signal };
  let text = "";
  let completionTokens = 0;
  let finishReason: "stop" | "length" = "length";
  const emit = async (t: string) => {
    if (t === "") return;
    text += t;
    await onText(t);
  };
  const gen = engine.generate(prep.promptTokens, params);
  try {
    for (;;) {
      const step = await gen.next();
      if (step.done) {
        finishReason = step.value.finishReason;
        const tail = stop.push(step.value.trailingText ?? "");
        await emit(tail.text + (tail.stopped ? "" : stop.flush()));
        if (tail.stopped) finishReason = "stop";
        break;
      }
      completionTokens++;
      const { text: visible, stopped } = stop.push(step.value.text);
      await emit(visible);
      if (stopped) {
        finishReason = "stop";
        break;
      }
      // Let the event loop run between tokens: model code is synchronous, and without this a
      // client's disconnect (and every other request) would go unseen until the generation ends.
      await nextTurn();
      if (signal.aborted) break;
    }
  } catch (e) {
    if (signal.aborted)
      return { text, promptTokens: prep.promptTokens.length, completionTokens, finishReason };
    throw e instanceof ApiError ? e : new ApiError(500, `Generation failed: ${(e as Error).message}`);
  } finally {
    await gen.return(undefined as never); // frees the engine when we stop early (stop string, abort)
  }
  return { text, promptTokens: prep.promptTokens.length, completionTokens, finishReason };
}
