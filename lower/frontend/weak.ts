/**
 * Typed values of the frontend: an IR expression and whether it is "weak" (literal-derived: its
 * dtype adapts to the other operand), and the host-side folding of two weak constants
 * (expr.ts's type rules).
 */
import * as B from "../ir/build.ts";
import type { Expr } from "../ir/nodes.ts";

export interface Typed {
  readonly e: Expr;
  /** A literal-derived constant whose dtype adapts to its context. */
  readonly weak: boolean;
}

/** A value of fixed dtype. */
export const strong = (e: Expr): Typed => ({ e, weak: false });
/** A literal: i32 when whole and not float, else f32, adapting to its context. */
export const weakNumber = (value: number, float: boolean): Typed => ({
  e: B.constant(value, float || !Number.isInteger(value) ? "f32" : "i32"),
  weak: true,
});

/** op on two weak constants, folded on the host (undefined where op does not fold). */
export function foldWeak(op: string, a: number, b: number, float: boolean): Typed | undefined {
  const num = (v: number, f = float) => weakNumber(v, f);
  switch (op) {
    case "+":
      return num(a + b);
    case "-":
      return num(a - b);
    case "*":
      return num(a * b);
    case "/":
      return num(a / b, !Number.isInteger(a / b) || float);
    case "%":
      return num(a % b);
    case "**":
      return num(a ** b);
    case "&":
      return num(a & b, false);
    case "|":
      return num(a | b, false);
    case "^":
      return num(a ^ b, false);
    case "<<":
      return num(a << b, false);
    case ">>":
      return num(a >> b, false);
    case ">>>":
      return num(a >>> b, false);
  }
  const cmp: Record<string, (x: number, y: number) => boolean> = {
    "==": (x, y) => x === y,
    "!=": (x, y) => x !== y,
    "<": (x, y) => x < y,
    "<=": (x, y) => x <= y,
    ">": (x, y) => x > y,
    ">=": (x, y) => x >= y,
  };
  const f = cmp[op];
  return f ? strong(B.constant(f(a, b) ? 1 : 0, "bool")) : undefined;
}
