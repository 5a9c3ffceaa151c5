/**
 * Flag parsing shared by every command: node:util parseArgs in strict mode, with its errors turned
 * into UsageError (exit code 2) that name the command and point at its help.
 */
import { parseArgs, type ParseArgsConfig } from "node:util";

/** A mistake in how tkc was called. main() prints it with a pointer to --help and exits 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

type Options = NonNullable<ParseArgsConfig["options"]>;

/** Parses `argv` against `options`; unknown flags, missing values and stray positionals are UsageErrors. */
export function parseFlags<const O extends Options>(
  command: string,
  argv: readonly string[],
  options: O,
  positionals: { min: number; max: number; name?: string } = { min: 0, max: 0 },
) {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options, strict: true, allowPositionals: positionals.max > 0 });
  } catch (e) {
    // For unknown options Node adds a sentence on passing positionals that start with "-", which
    // misleads more than it helps; its other messages (e.g. on "--seed -1") are kept whole.
    const err = e as Error & { code?: string };
    const msg = err.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" ? err.message.split(/\.\s/)[0]! : err.message;
    throw new UsageError(`tkc ${command}: ${msg.replace(/\.$/, "")}`);
  }
  const n = parsed.positionals.length;
  const what = positionals.name ?? "argument";
  if (n < positionals.min) throw new UsageError(`tkc ${command}: missing ${what}`);
  if (n > positionals.max)
    throw new UsageError(
      `tkc ${command}: unexpected argument '${parsed.positionals[positionals.max]}'` +
        (positionals.max === 0 ? " (this command takes only --flags)" : ""),
    );
  return parsed;
}

/** An integer flag within [min, max]; undefined stays undefined (the caller supplies the default). */
export function intFlag(command: string, flag: string, v: string | undefined, min: number, max = Infinity) {
  if (v === undefined) return undefined;
  const n = /^-?\d+$/.test(v.trim()) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max)
    throw new UsageError(`tkc ${command}: --${flag} must be an integer ${range(min, max)}, got '${v}'`);
  return n;
}

/** A finite number flag within [min, max]. */
export function numberFlag(
  command: string,
  flag: string,
  v: string | undefined,
  min: number,
  max = Infinity,
) {
  if (v === undefined) return undefined;
  const n = v.trim() === "" ? NaN : Number(v);
  if (!Number.isFinite(n) || n < min || n > max)
    throw new UsageError(`tkc ${command}: --${flag} must be a number ${range(min, max)}, got '${v}'`);
  return n;
}

/** One of a fixed set of words. */
export function choiceFlag<const C extends string>(
  command: string,
  flag: string,
  v: string | undefined,
  choices: readonly C[],
): C | undefined {
  if (v === undefined) return undefined;
  if (!(choices as readonly string[]).includes(v))
    throw new UsageError(`tkc ${command}: --${flag} must be one of ${choices.join(", ")}, got '${v}'`);
  return v as C;
}

const range = (min: number, max: number) => (max === Infinity ? `>= ${min}` : `from ${min} to ${max}`);
