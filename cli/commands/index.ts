/**
 * The command table. Adding a command: write cli/commands/NAME.ts exporting a Command, and list it
 * here; main() derives the top-level help and dispatch from this array.
 */
import type { Command } from "../command.ts";
import { chatCommand } from "./chat.ts";
import { compileCommand } from "./compile.ts";
import { convertCommand } from "./convert.ts";
import { dumpCommand } from "./dump.ts";
import { generateCommand } from "./generate.ts";
import { serveCommand } from "./serve.ts";

export const commands: readonly Command[] = [
  generateCommand,
  chatCommand,
  serveCommand,
  convertCommand,
  compileCommand,
  dumpCommand,
];
