/**
 * tkc's command-line entry point (bin/tkc.mjs imports this through tsx). Dispatches to one
 * command from the table in commands/index.ts; usage mistakes exit 2, runtime failures exit 1.
 */
import { UsageError } from "./args.ts";
import { processIo, type Command, type Io } from "./command.ts";
import { commands } from "./commands/index.ts";

export function topHelp(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  const lines = commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
  return [
    "tkc: the Typed Kernel Compiler, and a Llama model built from its kernels",
    "",
    "Usage: tkc <command> [flags]",
    "",
    "Commands:",
    ...lines,
    "",
    "Run 'tkc <command> --help' for a command's flags.",
    "",
  ].join("\n");
}

const wantsHelp = (argv: readonly string[]): boolean => {
  const end = argv.indexOf("--"); // after "--", "-h" is data, not a flag
  return (end < 0 ? argv : argv.slice(0, end)).some((a) => a === "--help" || a === "-h");
};

export async function main(argv: readonly string[], io: Io = processIo()): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    io.stderr.write(topHelp());
    return 2;
  }
  if (name === "--help" || name === "-h") {
    io.stdout.write(topHelp());
    return 0;
  }
  if (name === "help") {
    const cmd = rest[0] === undefined ? undefined : find(rest[0]);
    if (rest[0] !== undefined && !cmd) return unknown(rest[0], io);
    io.stdout.write(cmd ? cmd.help : topHelp());
    return 0;
  }
  const cmd = find(name);
  if (!cmd) return unknown(name, io);
  if (wantsHelp(rest)) {
    io.stdout.write(cmd.help);
    return 0;
  }
  try {
    return await cmd.run(rest, io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr.write(`${e.message}\nRun 'tkc ${cmd.name} --help' for usage.\n`);
      return 2;
    }
    // Runtime failures (missing file, bad checkpoint): the message, not a stack trace, unless asked.
    const err = e as Error;
    io.stderr.write(`tkc ${cmd.name}: error: ${err?.message ?? String(e)}\n`);
    if (process.env.TKC_DEBUG) io.stderr.write(`${err?.stack ?? ""}\n`);
    return 1;
  }
}

const find = (name: string): Command | undefined => commands.find((c) => c.name === name);

function unknown(name: string, io: Io): number {
  const hint = name.startsWith("-") ? "a command must come first" : `unknown command '${name}'`;
  io.stderr.write(`tkc: ${hint}. Commands: ${commands.map((c) => c.name).join(", ")}. Run 'tkc --help'.\n`);
  return 2;
}
