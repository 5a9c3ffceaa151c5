/**
 * Structural equality of IR up to renaming (alpha-equivalence): two functions are equal when they
 * differ only in the names (and ids) of their variables and buffers. Variables and buffers are
 * paired where they are bound (params, symbols, loops, lets, allocations) and must then be used
 * consistently: the pairing is a bijection, so `x + y` never equals `x + x`.
 *
 * Block names, function names, attributes, annotations, loop kinds and constants are compared
 * exactly. With `{ names: true }` variable and buffer names must match too (trace replays produce
 * identical names, so their tests ask for that).
 */
import type { Buffer, Expr, PrimFunc, Stmt, Var } from "./nodes.ts";
import { printExpr } from "./printer.ts";

export interface EqualOptions {
  /** Also require variables and buffers to carry the same names. */
  readonly names?: boolean;
}

/** Plain structural equality with variables and buffers compared by identity (no renaming). */
export function sameExpr(a: Expr, b: Expr): boolean {
  if (a === b) return true;
  return new Matcher({ identity: true }).expr(a, b);
}

/** Plain structural equality of index tuples, variables compared by identity. */
export const sameIndices = (a: readonly Expr[], b: readonly Expr[]): boolean =>
  a.length === b.length && a.every((x, i) => sameExpr(x, b[i]!));

export function exprEqual(a: Expr, b: Expr, opts: EqualOptions = {}): boolean {
  return new Matcher(opts).expr(a, b);
}

export function stmtEqual(a: Stmt, b: Stmt, opts: EqualOptions = {}): boolean {
  return new Matcher(opts).stmt(a, b);
}

export function funcEqual(a: PrimFunc, b: PrimFunc, opts: EqualOptions = {}): boolean {
  return funcDifference(a, b, opts) === undefined;
}

/** Describes the first difference between two functions, or undefined when they are equal. */
export function funcDifference(a: PrimFunc, b: PrimFunc, opts: EqualOptions = {}): string | undefined {
  const m = new Matcher(opts);
  m.func(a, b);
  return m.difference;
}

type Annotations = Readonly<Record<string, string | number | boolean>> | undefined;

function sameRecord(a: Annotations, b: Annotations): boolean {
  const ea = Object.entries(a ?? {});
  const eb = b ?? {};
  return ea.length === Object.keys(eb).length && ea.every(([k, v]) => Object.is(eb[k], v));
}

class Matcher {
  private readonly vars = new Map<Var, Var>();
  private readonly varsBack = new Map<Var, Var>();
  private readonly bufs = new Map<Buffer, Buffer>();
  private readonly bufsBack = new Map<Buffer, Buffer>();
  difference: string | undefined;
  /** Where the walk is, for the difference message. */
  private readonly where: string[] = [];

  constructor(private readonly opts: EqualOptions & { identity?: boolean }) {}

  private fail(what: string): false {
    this.difference ??= `${this.where.length ? this.where.join(" > ") + ": " : ""}${what}`;
    return false;
  }

  private pairVar(a: Var, b: Var): boolean {
    if (this.opts.identity) return a === b || this.fail(`variable ${a.name} vs ${b.name}`);
    if (a.dtype !== b.dtype) return this.fail(`variable ${a.name}: dtype ${a.dtype} vs ${b.dtype}`);
    if (this.opts.names && a.name !== b.name) return this.fail(`variable named ${a.name} vs ${b.name}`);
    const fa = this.vars.get(a);
    const fb = this.varsBack.get(b);
    if (fa === undefined && fb === undefined) {
      this.vars.set(a, b);
      this.varsBack.set(b, a);
      return true;
    }
    return (fa === b && fb === a) || this.fail(`variable ${a.name} does not correspond to ${b.name}`);
  }

  private pairBuffer(a: Buffer, b: Buffer): boolean {
    if (this.opts.identity) return a === b || this.fail(`buffer ${a.name} vs ${b.name}`);
    const fa = this.bufs.get(a);
    const fb = this.bufsBack.get(b);
    if (fa !== undefined || fb !== undefined)
      return (fa === b && fb === a) || this.fail(`buffer ${a.name} does not correspond to ${b.name}`);
    if (this.opts.names && a.name !== b.name) return this.fail(`buffer named ${a.name} vs ${b.name}`);
    if (a.dtype !== b.dtype || a.scope !== b.scope)
      return this.fail(`buffer ${a.name}: ${a.scope} ${a.dtype} vs ${b.scope} ${b.dtype}`);
    this.where.push(`buffer ${a.name}`);
    if (a.shape.length !== b.shape.length) return this.fail(`rank ${a.shape.length} vs ${b.shape.length}`);
    if (!this.exprs(a.shape, b.shape)) return this.fail("shapes differ");
    if ((a.allocShape === undefined) !== (b.allocShape === undefined))
      return this.fail("only one has padded strides");
    if (a.allocShape && b.allocShape && !this.exprs(a.allocShape, b.allocShape))
      return this.fail("padded strides differ");
    this.where.pop();
    this.bufs.set(a, b);
    this.bufsBack.set(b, a);
    return true;
  }

  private exprs(a: readonly Expr[], b: readonly Expr[]): boolean {
    return a.length === b.length && a.every((x, i) => this.expr(x, b[i]!));
  }

  expr(a: Expr, b: Expr): boolean {
    if (a.kind !== b.kind || a.dtype !== b.dtype) return this.mismatch(a, b);
    switch (a.kind) {
      case "const":
        return Object.is(a.value, (b as typeof a).value) || this.mismatch(a, b);
      case "var":
        return this.pairVar(a, b as Var);
      case "binary": {
        const y = b as typeof a;
        return (a.op === y.op || this.mismatch(a, b)) && this.expr(a.a, y.a) && this.expr(a.b, y.b);
      }
      case "unary": {
        const y = b as typeof a;
        return (a.op === y.op || this.mismatch(a, b)) && this.expr(a.a, y.a);
      }
      case "cast":
        return this.expr(a.value, (b as typeof a).value);
      case "load": {
        const y = b as typeof a;
        return (
          this.pairBuffer(a.buffer, y.buffer) && (this.exprs(a.indices, y.indices) || this.mismatch(a, b))
        );
      }
      case "call": {
        const y = b as typeof a;
        if (a.name !== y.name || a.args.length !== y.args.length) return this.mismatch(a, b);
        return this.exprs(a.args, y.args);
      }
      case "select": {
        const y = b as typeof a;
        return this.expr(a.cond, y.cond) && this.expr(a.t, y.t) && this.expr(a.f, y.f);
      }
    }
  }

  private mismatch(a: Expr, b: Expr): false {
    return this.fail(`${printExpr(a)} vs ${printExpr(b)}`);
  }

  stmt(a: Stmt, b: Stmt): boolean {
    if (a.kind !== b.kind) return this.fail(`a ${a.kind} statement vs a ${b.kind} statement`);
    switch (a.kind) {
      case "for": {
        const y = b as typeof a;
        const label = `for ${a.loopVar.name}`;
        this.where.push(label);
        if (!this.expr(a.min, y.min) || !this.expr(a.extent, y.extent)) return false;
        if (!this.pairVar(a.loopVar, y.loopVar)) return false;
        if (a.forKind !== y.forKind || a.thread !== y.thread)
          return this.fail(`${a.thread ?? a.forKind} vs ${y.thread ?? y.forKind}`);
        if (!sameRecord(a.annotations, y.annotations)) return this.fail(`annotations differ`);
        this.where.pop();
        return this.nested(label, a.body, y.body);
      }
      case "block": {
        const y = b as typeof a;
        if (a.name !== y.name)
          return this.fail(`block ${JSON.stringify(a.name)} vs ${JSON.stringify(y.name)}`);
        if (!sameRecord(a.annotations, y.annotations))
          return this.fail(`block ${a.name}: annotations differ`);
        return this.nested(`block ${JSON.stringify(a.name)}`, a.body, y.body);
      }
      case "store": {
        const y = b as typeof a;
        return (
          (a.async === y.async || this.fail("one store is asynchronous, the other not")) &&
          this.pairBuffer(a.buffer, y.buffer) &&
          this.exprs(a.indices, y.indices) &&
          this.expr(a.value, y.value)
        );
      }
      case "prefetch": {
        const y = b as typeof a;
        return (
          this.pairBuffer(a.buffer, y.buffer) &&
          this.exprs(a.indices, y.indices) &&
          this.expr(a.count, y.count)
        );
      }
      case "atomic": {
        const y = b as typeof a;
        if (a.op !== y.op) return this.fail(`atomic ${a.op} against ${y.op}`);
        if ((a.result === undefined) !== (y.result === undefined))
          return this.fail("only one atomic keeps its old value");
        return (
          this.pairBuffer(a.buffer, y.buffer) &&
          this.exprs(a.indices, y.indices) &&
          this.expr(a.value, y.value) &&
          (!a.result ||
            (this.pairBuffer(a.result.buffer, y.result!.buffer) &&
              this.exprs(a.result.indices, y.result!.indices)))
        );
      }
      case "allocate": {
        const y = b as typeof a;
        return this.pairBuffer(a.buffer, y.buffer) && this.stmt(a.body, y.body);
      }
      case "if": {
        const y = b as typeof a;
        if (!this.expr(a.cond, y.cond)) return false;
        if ((a.else === undefined) !== (y.else === undefined))
          return this.fail("only one if has an else branch");
        return this.nested("if", a.then, y.then) && (!a.else || this.nested("else", a.else, y.else!));
      }
      case "seq": {
        const y = b as typeof a;
        if (a.body.length !== y.body.length)
          return this.fail(`a sequence of ${a.body.length} statements vs ${y.body.length}`);
        return a.body.every((s, i) => this.stmt(s, y.body[i]!));
      }
      case "let": {
        const y = b as typeof a;
        return this.expr(a.value, y.value) && this.pairVar(a.v, y.v) && this.stmt(a.body, y.body);
      }
      case "barrier":
        return (
          (a.scope === (b as typeof a).scope && a.pending === (b as typeof a).pending) ||
          this.fail("barrier scopes differ")
        );
    }
  }

  private nested(label: string, a: Stmt, b: Stmt): boolean {
    this.where.push(label);
    const ok = this.stmt(a, b);
    if (ok) this.where.pop();
    return ok;
  }

  func(a: PrimFunc, b: PrimFunc): boolean {
    if (a.name !== b.name) return this.fail(`function ${a.name} vs ${b.name}`);
    if (!sameRecord(a.attrs, b.attrs)) return this.fail("function attributes differ");
    if (a.symbols.length !== b.symbols.length) return this.fail("different numbers of symbols");
    if (!a.symbols.every((s, i) => this.pairVar(s, b.symbols[i]!))) return false;
    if (a.params.length !== b.params.length) return this.fail("different numbers of parameters");
    for (let i = 0; i < a.params.length; i++) {
      const p = a.params[i]!;
      const q = b.params[i]!;
      if (p.kind !== q.kind) return this.fail(`parameter ${i}: a ${p.kind} vs a ${q.kind}`);
      if (p.kind === "buffer" && !this.pairBuffer(p.buffer, (q as typeof p).buffer)) return false;
      if (p.kind === "scalar" && !this.pairVar(p.v, (q as typeof p).v)) return false;
    }
    return this.stmt(a.body, b.body);
  }
}
