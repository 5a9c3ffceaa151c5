/** Small helpers shared by the model-running commands. */
import type { GenerateStats } from "../../llama/generate.ts";
import { numberFlag, UsageError } from "../args.ts";

export const randomSeed = (): number => Math.floor(Math.random() * 2 ** 31);

const rate = (tokens: number, perSecond: number) => (tokens > 0 ? `${perSecond.toFixed(1)} tok/s` : "-");

/** e.g. "prompt 5 tokens, prefill 120.3 tok/s; generated 64 tokens, decode 31.2 tok/s; stop: length" */
export function formatStats(
  s: Pick<
    GenerateStats,
    "promptTokens" | "generatedTokens" | "prefillTokensPerSecond" | "decodeTokensPerSecond"
  > & {
    stopReason: string;
  },
): string {
  return (
    `prompt ${s.promptTokens} tokens, prefill ${rate(s.promptTokens, s.prefillTokensPerSecond)}; ` +
    `generated ${s.generatedTokens} tokens, decode ${rate(s.generatedTokens - 1, s.decodeTokensPerSecond)}; ` +
    `stop: ${s.stopReason}`
  );
}

/**
 * Routes Ctrl+C to `handler` while installed (so a command can stop cleanly and print what it has);
 * a second Ctrl+C exits at once. Returns the uninstaller.
 */
export function onInterrupt(handler: () => void): () => void {
  let count = 0;
  const listener = () => {
    if (++count > 1) process.exit(130);
    handler();
  };
  process.on("SIGINT", listener);
  return () => process.off("SIGINT", listener);
}

/** --top-p: a probability mass in (0, 1]. */
export function topPFlag(command: string, v: string | undefined): number | undefined {
  const p = numberFlag(command, "top-p", v, 0, 1);
  if (p === 0)
    throw new UsageError(`tkc ${command}: --top-p must be greater than 0 (use --temperature 0 for greedy)`);
  return p;
}
