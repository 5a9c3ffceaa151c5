/** The shape of one `tkc` subcommand. Each lives in its own file under cli/commands/. */

/** Where a command reads and writes; main() passes the process streams, tests may pass others. */
export interface Io {
  readonly stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
}

export interface Command {
  readonly name: string;
  /** One line for `tkc --help`. */
  readonly summary: string;
  /** The full text of `tkc NAME --help`. */
  readonly help: string;
  /** Runs with the arguments after the command name; resolves to the exit code. */
  run(argv: readonly string[], io: Io): Promise<number>;
}

export const processIo = (): Io => ({ stdin: process.stdin, stdout: process.stdout, stderr: process.stderr });
