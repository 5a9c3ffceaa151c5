/** Evaluates integer IR expressions on the host: launch dimensions, buffer sizes. */
import type { Expr } from "./nodes.ts";
import { printExpr } from "./printer.ts";

export function evalInt(e: Expr, env: Readonly<Record<string, number>>): number {
  const ev = (x: Expr) => evalInt(x, env);
  switch (e.kind) {
    case "const":
      return e.value;
    case "var": {
      const v = env[e.name];
      if (v === undefined) throw new Error(`tkc: no value for ${e.name} in ${printExpr(e)}`);
      return v;
    }
    case "binary": {
      const a = ev(e.a);
      const b = ev(e.b);
      switch (e.op) {
        case "+":
          return a + b;
        case "-":
          return a - b;
        case "*":
          return a * b;
        case "/":
          return Math.trunc(a / b);
        case "%":
          return a % b;
        case "floordiv":
          return Math.floor(a / b);
        case "floormod":
          return a - Math.floor(a / b) * b;
        case "min":
          return Math.min(a, b);
        case "max":
          return Math.max(a, b);
        case "<<":
          return a << b;
        case ">>":
          return a >> b;
        case "&":
          return a & b;
        case "|":
          return a | b;
        case "^":
          return a ^ b;
      }
      break;
    }
    case "select":
      return evalInt(e.cond, env) ? ev(e.t) : ev(e.f);
    case "cast":
      return ev(e.value);
  }
  throw new Error(`tkc: cannot evaluate ${printExpr(e)} on the host`);
}
