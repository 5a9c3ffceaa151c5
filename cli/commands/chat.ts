/**
 * `tkc chat`: an interactive conversation on the terminal. With stdin not a terminal it reads one
 * message per line until EOF (so scripts and tests can pipe a conversation in).
 */
import * as readline from "node:readline";
import { intFlag, numberFlag, parseFlags } from "../args.ts";
import { ChatSession, type TurnStats } from "../chat-session.ts";
import type { Command, Io } from "../command.ts";
import {
  BUNDLED_MODEL,
  loadModel,
  modelFlags,
  modelFlagsHelp,
  modelSpec,
  type LoadedModel,
} from "../load-model.ts";
import { randomSeed, topPFlag } from "./common.ts";

const NAME = "chat";

const flags = {
  system: { type: "string" },
  "max-tokens": { type: "string", short: "n" },
  temperature: { type: "string", short: "t" },
  "top-p": { type: "string" },
  seed: { type: "string", short: "s" },
  ...modelFlags,
} as const;

const CHAT_HELP = `Commands:
  /help            this list
  /stats           prefill and decode speed of the last answer
  /reset           forget the conversation (and clear the KV cache)
  /reload [model]  load the model again, or another one (same --device); starts over
  /exit            quit (so do Ctrl+D and, at the prompt, Ctrl+C; during an answer Ctrl+C stops it)
`;

export const chatCommand: Command = {
  name: NAME,
  summary: "chat with a model interactively (or over piped stdin)",
  help: `Usage: tkc chat [--system TEXT] [--max-tokens N] [--temperature T] [--top-p P] [--seed S] [model flags]

An interactive conversation; answers stream as they are generated. The KV cache is kept between
turns, so each turn only processes the new tokens. When stdin is not a terminal, each line read is
one message, and tkc exits at the end of input.

Models without a chat template (the bundled ${BUNDLED_MODEL} writes children's stories; it is
not a chat model) are used as plain text continuation: the conversation is one growing text, each
line you type is appended to it, the model continues from there, and an empty line lets it go on.
Hugging Face chat models (whose tokenizer_config.json has the Llama-2 [INST] chat_template) get the
Llama-2 chat format, with --system as the system prompt. When the context fills up, the oldest
turns are dropped.

Flags:
      --system TEXT       system prompt (chat-template models only)
  -n, --max-tokens N      most tokens per answer (default: until end of text or the context is full)
  -t, --temperature T     0 is greedy; default 0.8
      --top-p P           nucleus sampling mass in (0, 1]; default 0.9
  -s, --seed S            sampler seed (default: random)

${modelFlagsHelp}

${CHAT_HELP}`,
  async run(argv, io) {
    const { values } = parseFlags(NAME, argv, flags);
    const opts = {
      system: values.system,
      maxTokens: intFlag(NAME, "max-tokens", values["max-tokens"], 1),
      temperature: numberFlag(NAME, "temperature", values.temperature, 0) ?? 0.8,
      topP: topPFlag(NAME, values["top-p"]) ?? 0.9,
      seed: intFlag(NAME, "seed", values.seed, 0, Number.MAX_SAFE_INTEGER) ?? randomSeed(),
    };
    const spec = modelSpec(NAME, values);
    let loaded = await loadModel(spec);
    const interactive = io.stdin.isTTY === true;
    const note = (s: string) => io.stderr.write(`${s}\n`);
    note(
      `tkc chat: ${loaded.description}; ${loaded.chatFormat === "plain" ? "plain continuation" : "Llama-2 chat"}`,
    );
    if (values.system !== undefined && loaded.chatFormat === "plain")
      note("note: --system is ignored: this model has no chat template");
    if (interactive) note("Type /help for commands.");
    const session = new ChatSession(loaded.model, loaded.tokenizer, { ...opts, format: loaded.chatFormat });

    const rl = readline.createInterface({
      input: io.stdin,
      output: interactive ? io.stdout : undefined,
      terminal: interactive,
    });
    let turn: AbortController | undefined;
    rl.on("SIGINT", () => {
      if (turn) turn.abort();
      else rl.close();
    });
    const prompt = () => interactive && rl.prompt();
    rl.setPrompt("> ");
    prompt();

    const commands: Record<string, (arg: string) => Promise<boolean | void>> = {
      help: async () => void io.stdout.write(CHAT_HELP),
      exit: async () => true,
      quit: async () => true,
      stats: async () => void io.stdout.write(`${describeStats(session.lastStats)}\n`),
      reset: async () => {
        session.reset();
        io.stdout.write("[conversation and KV cache cleared]\n");
      },
      reload: async (arg) => {
        const next: LoadedModel = await loadModel({ ...spec, model: arg || loaded.spec.model });
        loaded = next;
        session.replaceModel(loaded.model, loaded.tokenizer);
        io.stdout.write(`[loaded ${loaded.description}; conversation cleared]\n`);
      },
    };

    for await (const raw of rl) {
      const line = raw.trim();
      if (line.startsWith("/")) {
        const [, name = "", arg = ""] = /^\/(\S*)\s*(.*)$/.exec(line) ?? [];
        const cmd = commands[name];
        if (!cmd) io.stdout.write(`[unknown command /${name}; /help lists them]\n`);
        else {
          try {
            if (await cmd(arg.trim())) break;
          } catch (e) {
            io.stdout.write(`[/${name} failed: ${(e as Error).message}]\n`);
          }
        }
        prompt();
        continue;
      }
      turn = new AbortController();
      try {
        await answer(session, line, turn.signal, io);
      } catch (e) {
        io.stdout.write(`[error: ${(e as Error).message}]\n`);
      } finally {
        turn = undefined;
      }
      prompt();
    }
    rl.close();
    return 0;
  },
};

async function answer(session: ChatSession, line: string, signal: AbortSignal, io: Io): Promise<void> {
  const it = session.turn(line, signal);
  for (;;) {
    const r = await it.next();
    if (r.done) {
      io.stdout.write("\n");
      if (r.value.truncated) io.stdout.write("[the context was full: older history was dropped]\n");
      if (r.value.stopReason === "aborted") io.stdout.write("[stopped]\n");
      return;
    }
    io.stdout.write(r.value);
  }
}

function describeStats(s: TurnStats | undefined): string {
  if (!s) return "[no answer yet]";
  const fromCache = s.promptTokens - s.prefilledTokens;
  const rate = (n: number, r: number) => (n > 0 && r > 0 ? ` at ${r.toFixed(1)} tok/s` : "");
  return (
    `[prefill: ${s.prefilledTokens} tokens${rate(s.prefilledTokens, s.prefillTokensPerSecond)}` +
    (fromCache > 0 ? ` (${fromCache} more from the KV cache)` : "") +
    `; decode: ${s.generatedTokens} tokens${rate(s.generatedTokens - 1, s.decodeTokensPerSecond)}; stop: ${s.stopReason}]`
  );
}
