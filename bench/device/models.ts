import { headDim, type LlamaConfig } from "../../llama/config.ts";
import type { KernelLlama } from "../../llama/model.ts";
import { argmax } from "../../llama/sampler.ts";
import { matrixShape, type MatrixName } from "../../llama/weights/source.ts";

export { LLAMA2_7B } from "../../llama/presets.ts";

/** A named set of op choices for an A/B library (the runners' --variant name={json}). */
export interface ChoicesVariant {
  readonly name: string;
  /** Op choices over the device's; a null unsets one. */
  readonly choices: Readonly<Record<string, unknown>>;
}

/** Parses `name={op choices as JSON}` (the name in letters, digits and -). */
export function parseChoicesVariant(arg: string, flag = "--variant"): ChoicesVariant {
  const m = /^([A-Za-z0-9-]+)=(\{.*\})$/.exec(arg);
  if (!m) throw new Error(`${flag} takes name={op choices as JSON}, got ${arg}`);
  try {
    return { name: m[1]!, choices: JSON.parse(m[2]!) as Record<string, unknown> };
  } catch (e) {
    throw new Error(`${flag} ${arg}: the op choices after = are not JSON (${(e as Error).message})`);
  }
}

/** A runner flag's whole number of at least 1 (`text` as given), or an error naming the flag. */
export function positiveInteger(text: string, flag: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1)
    throw new Error(`${flag} takes a whole number of at least 1, got ${text}`);
  return n;
}

/** `base` with a variant's choices over it, those set to null removed. */
export function withChoices<T extends object>(base: T, variant: ChoicesVariant | undefined): T {
  const merged: Record<string, unknown> = { ...base, ...variant?.choices };
  for (const [k, v] of Object.entries(merged)) if (v === null) delete merged[k];
  return merged as T;
}

/** The KV cache length the decode benchmark allocates: a 512-token prompt plus 512 generated. */
export const DECODE_CONTEXT = 1100;

/**
 * Bytes one decode step reads: every weight once (q4f16_1: half a byte per weight and an f16 scale
 * per 32, plus the token's embedding row; f16: two bytes per weight, the embedding on the host)
 * and the KV cache up to position avgPos.
 */
export function decodeBytesPerToken(config: LlamaConfig, format: "q4f16_1" | "f16", avgPos: number): number {
  const perWeight = format === "q4f16_1" ? 0.5 + 2 / 32 : 2;
  const matrix = (m: MatrixName) => {
    const [n, k] = matrixShape(config, m);
    return n * k * perWeight;
  };
  const weights =
    (matrix("qkv") + matrix("o") + matrix("gateUp") + matrix("down")) * config.nLayers +
    matrix("lmHead") +
    (format === "q4f16_1" ? config.dim * 2 : 0);
  return weights + config.nLayers * 2 * avgPos * config.nKvHeads * headDim(config) * 2;
}

/**
 * Greedy decode from token 1 at positions 1..steps; tokens per second. "device": argmax on the
 * device, token ids read back, model.greedySteps steps a call, each call enqueued before the last
 * one's tokens are read where the model does so (KernelLlama.enqueueGreedy, greedyAhead: what
 * generate() does); "wait": the same, each call's tokens read before the next is enqueued (the
 * GPU idles while the host reads and launches again); "step": one step a wait; "host": the logits
 * read back and argmax on the host (the seventh session's measure).
 */
export function greedyDecodeTokPerS(
  model: KernelLlama,
  steps: number,
  argmaxOn: "device" | "wait" | "step" | "host" = "device",
): number {
  let token = 1;
  const start = performance.now();
  if (argmaxOn === "device" && model.greedyAhead) {
    let wait = model.enqueueGreedy(token, 1, Math.min(model.greedySteps, steps));
    for (let pos = 1 + Math.min(model.greedySteps, steps); ;) {
      const n = Math.min(model.greedySteps, steps + 1 - pos);
      const next = n > 0 ? model.enqueueGreedy(undefined, pos, n) : undefined;
      wait();
      if (!next) break;
      wait = next;
      pos += n;
    }
    return steps / ((performance.now() - start) / 1e3);
  }
  for (let pos = 1; pos <= steps;) {
    if (argmaxOn === "host") {
      token = argmax(model.decode(token, pos));
      pos++;
    } else {
      const n = Math.min(argmaxOn === "step" ? 1 : model.greedySteps, steps + 1 - pos);
      token = model.decodeGreedy(token, pos, n)[n - 1]!;
      pos += n;
    }
  }
  return steps / ((performance.now() - start) / 1e3);
}

/**
 * Prefill of `prompt` from position 0, timed twice: the first call loads the prefill kernels (the
 * driver compiles their PTX: hundreds of milliseconds, once per process and cached by the driver
 * across processes) and allocates the prefill buffers; the second is the steady state.
 */
export function prefillTokPerS(
  model: KernelLlama,
  prompt: readonly number[],
): { first: number; warm: number } {
  const timed = (): number => {
    model.reset();
    const t0 = performance.now();
    model.prefill(prompt, 0);
    return prompt.length / ((performance.now() - t0) / 1e3);
  };
  const first = timed();
  return { first, warm: timed() };
}

/** stories15M's greedy text from the CPU kernel model (build-model.ts): tokens, text, and each token's lead. */
export interface ExpectedText {
  readonly tokens: readonly number[];
  readonly text: string;
  /** Each chosen token's logit over the runner-up's in the CPU model (absent in older files). */
  readonly margins?: readonly number[];
}

/**
 * A device's greedy text against the CPU kernel model's: equal (a shorter run equal as far as it
 * goes), the first token that differs (-1: none), and the CPU's lead of its token there over the
 * runner-up, which tells a near tie (another order of roundings flips it) from a wrong result.
 */
export function compareGreedyText(
  got: { readonly tokens: readonly number[]; readonly text: string },
  expected: ExpectedText,
): { same: boolean; firstDiff: number; cpuMargin?: number; describe: string } {
  const want = expected.tokens.slice(0, got.tokens.length);
  const firstDiff = got.tokens.findIndex((t, i) => t !== want[i]);
  const same = firstDiff < 0 && (got.tokens.length < expected.tokens.length || got.text === expected.text);
  const cpuMargin = firstDiff >= 0 ? expected.margins?.[firstDiff] : undefined;
  const describe =
    `${got.tokens.length} tokens, first difference at ${firstDiff}` +
    (cpuMargin === undefined
      ? ""
      : `, where the CPU's token led the runner-up by ${cpuMargin.toPrecision(3)}`);
  return { same, firstDiff, ...(cpuMargin === undefined ? {} : { cpuMargin }), describe };
}
