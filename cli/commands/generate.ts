/** `tkc generate`: one prompt in, streamed text out (stats on stderr), as llama2.c's `run` does. */
import { generate } from "../../llama/generate.ts";
import { intFlag, numberFlag, parseFlags } from "../args.ts";
import type { Command } from "../command.ts";
import { loadModel, modelFlags, modelFlagsHelp, modelSpec } from "../load-model.ts";
import { formatStats, onInterrupt, randomSeed, topPFlag } from "./common.ts";

const NAME = "generate";

const flags = {
  prompt: { type: "string", short: "p" },
  "max-tokens": { type: "string", short: "n" },
  temperature: { type: "string", short: "t" },
  "top-p": { type: "string" },
  seed: { type: "string", short: "s" },
  ...modelFlags,
} as const;

export const generateCommand: Command = {
  name: NAME,
  summary: "continue a prompt, streaming the text to stdout",
  help: `Usage: tkc generate [--prompt TEXT] [--max-tokens N] [--temperature T] [--top-p P] [--seed S] [model flags]

Continues TEXT and streams the generated text (without the prompt) to stdout; timing statistics go
to stderr. With no prompt, generation starts from the BOS token alone.

Flags:
  -p, --prompt TEXT       text to continue (default: none, start from BOS)
  -n, --max-tokens N      most tokens to generate (default: until end of text or the context is full)
  -t, --temperature T     0 is greedy (deterministic); default 1.0
      --top-p P           nucleus sampling mass in (0, 1]; 1 turns it off; default 0.9
  -s, --seed S            sampler seed, an integer >= 0 (default: random; printed with the stats)

${modelFlagsHelp}

Example:
  tkc generate --temperature 0 --max-tokens 64 --prompt "Once upon a time"
`,
  async run(argv, io) {
    const { values } = parseFlags(NAME, argv, flags);
    const maxTokens = intFlag(NAME, "max-tokens", values["max-tokens"], 1);
    const temperature = numberFlag(NAME, "temperature", values.temperature, 0) ?? 1;
    const topP = topPFlag(NAME, values["top-p"]) ?? 0.9;
    const seed = intFlag(NAME, "seed", values.seed, 0, Number.MAX_SAFE_INTEGER) ?? randomSeed();
    const loaded = await loadModel(modelSpec(NAME, values));
    const { model, tokenizer } = loaded;
    const ctx = model.config.contextLength;
    const prompt = values.prompt ?? "";
    const promptTokens = prompt === "" ? [tokenizer.bosId] : tokenizer.encode(prompt, { bos: true });
    if (promptTokens.length >= ctx)
      throw new Error(
        `the prompt takes ${promptTokens.length} tokens; the context holds ${ctx}, leaving no room to generate`,
      );

    const ac = new AbortController();
    const stopInterrupt = onInterrupt(() => ac.abort());
    try {
      const it = generate(model, tokenizer, {
        promptTokens,
        maxTokens: maxTokens ?? ctx - promptTokens.length,
        temperature,
        topP,
        seed,
        signal: ac.signal,
      });
      for (;;) {
        const r = await it.next();
        if (r.done) {
          io.stdout.write(`${r.value.trailingText}\n`);
          io.stderr.write(`${formatStats(r.value)}; seed ${seed}\n`);
          return 0;
        }
        io.stdout.write(r.value.text);
        // Yield to the event loop so Ctrl+C (and stdout flushing) get a turn between tokens.
        await new Promise((resolve) => setImmediate(resolve));
      }
    } finally {
      stopInterrupt();
    }
  },
};
