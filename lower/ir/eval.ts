/** Evaluates integer IR expressions on the host: launch dimensions, buffer sizes. */
import type { Expr } from "./nodes.ts";
import { printExpr } from "./printer.ts";

/** The integer operators evalInt and compileInt evaluate (others are not host-evaluable). */
const BINARY: Record<string, (a: number, b: number) => number> = {
  "+": (a, b) => a + b,
  "-": (a, b) => a - b,
  "*": (a, b) => a * b,
  "/": (a, b) => Math.trunc(a / b),
  "%": (a, b) => a % b,
  floordiv: (a, b) => Math.floor(a / b),
  floormod: (a, b) => a - Math.floor(a / b) * b,
  min: Math.min,
  max: Math.max,
  "<<": (a, b) => a << b,
  ">>": (a, b) => a >> b,
  "&": (a, b) => a & b,
  "|": (a, b) => a | b,
  "^": (a, b) => a ^ b,
};

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
      const op = BINARY[e.op];
      if (op) return op(ev(e.a), ev(e.b));
      break;
    }
    case "select":
      return evalInt(e.cond, env) ? ev(e.t) : ev(e.f);
    case "cast":
      return ev(e.value);
  }
  throw new Error(`tkc: cannot evaluate ${printExpr(e)} on the host`);
}

/**
 * evalInt compiled once into closures, for checks that evaluate one expression at many points
 * (tensorize's layout proofs): the same values, without walking the tree each time.
 */
export function compileInt(e: Expr): (env: Readonly<Record<string, number>>) => number {
  switch (e.kind) {
    case "const": {
      const v = e.value;
      return () => v;
    }
    case "var": {
      const name = e.name;
      return (env) => {
        const v = env[name];
        if (v === undefined) throw new Error(`tkc: no value for ${name} in ${printExpr(e)}`);
        return v;
      };
    }
    case "binary": {
      const op = BINARY[e.op];
      if (!op) break;
      const a = compileInt(e.a);
      const b = compileInt(e.b);
      return (env) => op(a(env), b(env));
    }
    case "select": {
      const c = compileInt(e.cond);
      const t = compileInt(e.t);
      const f = compileInt(e.f);
      return (env) => (c(env) ? t(env) : f(env));
    }
    case "cast":
      return compileInt(e.value);
  }
  return (env) => evalInt(e, env);
}
