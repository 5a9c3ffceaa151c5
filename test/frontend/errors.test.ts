import { describe, expect, test } from "vitest";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { bad } from "../fixtures/bad-kernels.ts";
import { lowerKernel } from "../../lower/frontend/lower.ts";
import { KernelError } from "../../lower/frontend/errors.ts";

const fixture = path.join(path.dirname(fileURLToPath(import.meta.url)), "../fixtures/bad-kernels.ts");
const lines = fs.readFileSync(fixture, "utf8").split("\n");

/** Where each kernel's marked error is: the marker line inside that kernel and its token's column. */
function expectedLocation(name: string): { line: number; column: number } {
  const start = lines.findIndex((l) => l.includes(`function ${name}(`));
  expect(start, `kernel ${name} in the fixture`).toBeGreaterThanOrEqual(0);
  let end = lines.findIndex((l, i) => i > start && l.includes("kernel(function "));
  if (end < 0) end = lines.length;
  // A marker inside the kernel, or `@bad(name)` anywhere (in a helper the kernel calls).
  for (let i = 0; i < lines.length; i++) {
    const m = /\/\/ @bad(?:\((\w+)\))? (.+)$/.exec(lines[i]!);
    if (!m || (m[1] ? m[1] !== name : i < start || i >= end)) continue;
    const code = lines[i]!.slice(0, lines[i]!.indexOf("// @bad"));
    const col = code.indexOf(m[2]!.trim());
    expect(col, `token ${m[2]} on line ${i + 1}`).toBeGreaterThanOrEqual(0);
    return { line: i + 1, column: col + 1 };
  }
  throw new Error(`no @bad marker for ${name}`);
}

const expectations: Record<keyof typeof bad, RegExp> = {
  whileLoop: /while loops are not supported.*\n[\s\S]*hint: write a counted loop/,
  stringValue: /strings are not supported/,
  mismatchedStore:
    /type mismatch: the value stored into y is f32 but f16 is needed[\s\S]*hint: convert it explicitly: f16\(\.\.\.\)/,
  mismatchedBinary: /type mismatch: f32 \* f16/,
  intDivision: /\/ on integers \(i32\) is ambiguous[\s\S]*idiv\(a, b\)/,
  mathExp: /Math\.exp is a float64 host function[\s\S]*import \{ exp \}/,
  recursion: /recursion is not supported/,
  mutableClosure: /mutableGlobal is mutable state outside the kernel/,
  notCompileTime: new RegExp(
    `notConstant is not a compile-time constant: this expression cannot be evaluated at compile time \\(bad-kernels\\.ts:${lines.findIndex((l) => l.startsWith("const notConstant")) + 1}:`,
  ),
  objectLiteral: /object and array values are not supported/,
  throwStatement: /exceptions are not supported/,
  tryStatement: /exceptions are not supported/,
  breakStatement: /break is not supported/,
  returnStatement: /return is not supported in a kernel/,
  wrongRank: /x has 2 dimensions but 1 index is given[\s\S]*x\[i0\]\[i1\]/,
  floatIndex: /an index must be an integer, got f32/,
  forOf: /for-of and for-in loops are not supported/,
  downwardLoop: /loops count upward/,
  assignLoopVar: /the loop variable i is changed in the loop body/,
  untypedParam: /parameter scale has type number, which is no tkc dtype/,
  expOfInt: /exp needs a float \(f32, f16 or bf16\), got i32[\s\S]*exp\(f32\(x\)\)/,
  ambiguousLet: /the dtype of s is ambiguous[\s\S]*let s = i32\(0\)/,
  asCast: /`as` changes only the type checker's view/,
  signedLogicalShift: />>> on the signed i32/,
  closureInKernel: /closures are not supported inside kernels/,
  assignConst: /c is constant/,
  localWithLet: /declare scratch tensors with const/,
  idivFloat: /idiv needs integers, got f32/,
  uintNegate: /cannot negate a u32/,
  prefetchLocal:
    /prefetchL2 takes one element of a kernel's tensor parameter[\s\S]*hint: write the element access/,
  prefetchValue: /prefetchL2\(\.\.\.\) has no value[\s\S]*hint: call it as a statement/,
};

describe("the frontend refuses bad kernels with file:line:col and a hint", () => {
  test("there are at least 20 distinct bad kernels", () => {
    expect(Object.keys(bad).length).toBeGreaterThanOrEqual(20);
  });
  for (const [name, pattern] of Object.entries(expectations)) {
    test(name, () => {
      const def = bad[name as keyof typeof bad];
      let err: unknown;
      try {
        lowerKernel(def);
      } catch (e) {
        err = e;
      }
      expect(err, `${name} must be refused`).toBeInstanceOf(KernelError);
      const ke = err as KernelError;
      expect(ke.message).toMatch(pattern);
      const where = expectedLocation(name);
      expect(path.resolve(ke.file)).toBe(fixture);
      expect({ line: ke.line, column: ke.column }).toEqual(where);
      // The message starts with file:line:col and shows the source line with a caret under the column.
      expect(ke.message.split("\n")[0]).toMatch(
        new RegExp(`bad-kernels\\.ts:${where.line}:${where.column}: `),
      );
      expect(ke.message).toContain(lines[where.line - 1]);
    });
  }
});
