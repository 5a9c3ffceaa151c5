/** Errors in a kernel's source: each names file:line:col, shows the line, and says what to write instead. */
import { ts } from "ts-morph";
import path from "node:path";

export class KernelError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly column: number,
    readonly problem: string,
    readonly hint: string | undefined,
    readonly sourceLine: string,
  ) {
    super(KernelError.format(file, line, column, problem, hint, sourceLine));
    this.name = "KernelError";
  }

  static format(
    file: string,
    line: number,
    column: number,
    problem: string,
    hint: string | undefined,
    src: string,
  ) {
    const rel = path.relative(process.cwd(), file) || file;
    const gutter = String(line).length;
    const caret = " ".repeat(Math.max(0, column - 1)) + "^";
    const lines = [
      `${rel}:${line}:${column}: ${problem}`,
      `  ${String(line)} | ${src}`,
      `  ${" ".repeat(gutter)} | ${caret}`,
    ];
    if (hint) lines.push(`  hint: ${hint}`);
    return lines.join("\n");
  }
}

/** Builds a KernelError located at a node. */
export function errorAt(node: ts.Node, problem: string, hint?: string): KernelError {
  const sf = node.getSourceFile();
  const start = node.getStart(sf);
  const { line, character } = sf.getLineAndCharacterOfPosition(start);
  const text = sf.text.split(/\r?\n/)[line] ?? "";
  return new KernelError(sf.fileName, line + 1, character + 1, problem, hint, text);
}
