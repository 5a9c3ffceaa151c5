/**
 * The IR verifier: the invariants every stage must keep, checked on a whole function. Passes and
 * schedule tests run it after each step, so a bad rewrite is caught where it happens, with a
 * message that names the node and where it sits (`for i > block "y": ...`).
 *
 * Checked: every variable is bound by an enclosing loop or let, or is a param or symbol; every
 * buffer is a param or allocated around its use; loads and stores index with one integer per
 * dimension; a store's value has the buffer's dtype; binary operands agree in dtype; conditions
 * are bool; a thread axis is bound at most once on any path, and only by a "thread" loop.
 */
import { isInt } from "../../dsl/dtypes.ts";
import type { Buffer, Expr, PrimFunc, Stmt, ThreadTag, Var } from "./nodes.ts";
import { printExpr } from "./printer.ts";

export class VerifyError extends Error {
  constructor(
    readonly func: string,
    readonly problems: readonly string[],
  ) {
    super(`tkc verify: ${func}: ${problems.length} problem(s):\n  ${problems.join("\n  ")}`);
    this.name = "VerifyError";
  }
}

const THREAD_TAGS: ReadonlySet<string> = new Set([
  "blockIdx.x",
  "blockIdx.y",
  "blockIdx.z",
  "threadIdx.x",
  "threadIdx.y",
  "threadIdx.z",
]);

/** Every problem found in f, each a message naming the node; empty when f is valid. */
export function verifyFunc(f: PrimFunc): string[] {
  return new Verifier(f).run();
}

/** Throws a VerifyError listing every problem when f is not valid. */
export function assertValid(f: PrimFunc): void {
  const problems = verifyFunc(f);
  if (problems.length) throw new VerifyError(f.name, problems);
}

class Verifier {
  private readonly problems: string[] = [];
  private readonly vars = new Set<Var>();
  private readonly buffers = new Set<Buffer>();
  private readonly threads = new Set<ThreadTag>();
  private readonly where: string[] = [];

  constructor(private readonly f: PrimFunc) {}

  run(): string[] {
    for (const s of this.f.symbols) this.vars.add(s);
    for (const p of this.f.params) {
      if (p.kind === "scalar") this.vars.add(p.v);
      else this.buffers.add(p.buffer);
    }
    for (const p of this.f.params) if (p.kind === "buffer") this.bufferShape(p.buffer);
    this.stmt(this.f.body);
    return this.problems;
  }

  private report(message: string): void {
    this.problems.push(`${this.where.length ? this.where.join(" > ") + ": " : ""}${message}`);
  }

  private bufferShape(b: Buffer): void {
    for (const d of [...b.shape, ...(b.allocShape ?? [])]) {
      this.expr(d);
      if (!isInt(d.dtype))
        this.report(`buffer ${b.name}: dimension ${printExpr(d)} is ${d.dtype}, not an integer`);
    }
  }

  private access(what: string, b: Buffer, indices: readonly Expr[]): void {
    if (!this.buffers.has(b))
      this.report(`${what}: buffer ${b.name} is neither a parameter nor allocated around this use`);
    if (indices.length !== b.shape.length)
      this.report(`${what}: ${indices.length} indices for a buffer of rank ${b.shape.length}`);
    for (const i of indices) {
      this.expr(i);
      if (!isInt(i.dtype)) this.report(`${what}: index ${printExpr(i)} is ${i.dtype}, not an integer`);
    }
  }

  private expr(e: Expr): void {
    const text = (): string => printExpr(e);
    switch (e.kind) {
      case "const":
        return;
      case "var":
        if (!this.vars.has(e))
          this.report(`variable ${e.name} is used outside any loop or let that binds it`);
        return;
      case "binary":
        this.expr(e.a);
        this.expr(e.b);
        if (e.a.dtype !== e.b.dtype)
          this.report(`${text()}: operands of ${e.op} are ${e.a.dtype} and ${e.b.dtype}`);
        else if ((e.op === "&&" || e.op === "||") && e.a.dtype !== "bool")
          this.report(`${text()}: operands of ${e.op} must be bool, not ${e.a.dtype}`);
        return;
      case "unary":
        this.expr(e.a);
        if (e.op === "not" && e.a.dtype !== "bool")
          this.report(`${text()}: ! needs a bool operand, not ${e.a.dtype}`);
        return;
      case "cast":
        return this.expr(e.value);
      case "load":
        this.access(`load ${text()}`, e.buffer, e.indices);
        if (e.dtype !== e.buffer.dtype)
          this.report(`load ${text()} is ${e.dtype} but ${e.buffer.name} holds ${e.buffer.dtype}`);
        return;
      case "call":
        return e.args.forEach((a) => this.expr(a));
      case "select":
        this.expr(e.cond);
        this.expr(e.t);
        this.expr(e.f);
        if (e.cond.dtype !== "bool") this.report(`${text()}: the condition is ${e.cond.dtype}, not bool`);
        if (e.t.dtype !== e.f.dtype) this.report(`${text()}: the branches are ${e.t.dtype} and ${e.f.dtype}`);
        return;
    }
  }

  /** Binds v for the duration of `inside`; rebinding a variable already in scope is an error. */
  private bindVar(v: Var, binder: string, inside: () => void): void {
    if (this.vars.has(v)) this.report(`${binder} binds ${v.name} again while it is already bound`);
    this.vars.add(v);
    inside();
    this.vars.delete(v);
  }

  private nested(label: string, inside: () => void): void {
    this.where.push(label);
    inside();
    this.where.pop();
  }

  private stmt(s: Stmt): void {
    switch (s.kind) {
      case "for": {
        const label = `for ${s.loopVar.name}`;
        this.expr(s.min);
        this.expr(s.extent);
        for (const [what, e] of [
          ["min", s.min],
          ["extent", s.extent],
        ] as const)
          if (!isInt(e.dtype))
            this.report(`${label}: the ${what} ${printExpr(e)} is ${e.dtype}, not an integer`);
        if (!isInt(s.loopVar.dtype))
          this.report(`${label}: the loop variable is ${s.loopVar.dtype}, not an integer`);
        const tag = s.thread;
        if ((s.forKind === "thread") !== (tag !== undefined))
          this.report(
            `${label}: a thread tag goes with the "thread" loop kind (kind ${s.forKind}, tag ${tag ?? "none"})`,
          );
        if (tag !== undefined && !THREAD_TAGS.has(tag)) this.report(`${label}: unknown thread tag ${tag}`);
        const rebound = tag !== undefined && this.threads.has(tag);
        if (rebound) this.report(`${label}: ${tag} is bound again inside a loop already bound to it`);
        if (tag && !rebound) this.threads.add(tag);
        this.bindVar(s.loopVar, label, () => this.nested(label, () => this.stmt(s.body)));
        if (tag && !rebound) this.threads.delete(tag);
        return;
      }
      case "block":
        return this.nested(`block ${JSON.stringify(s.name)}`, () => this.stmt(s.body));
      case "store": {
        const what = `store to ${s.buffer.name}${s.indices.map((i) => `[${printExpr(i)}]`).join("")}`;
        this.access(what, s.buffer, s.indices);
        this.expr(s.value);
        if (s.value.dtype !== s.buffer.dtype)
          this.report(`${what}: the value is ${s.value.dtype} but ${s.buffer.name} holds ${s.buffer.dtype}`);
        if (
          s.async &&
          (s.buffer.scope !== "shared" || s.value.kind !== "load" || s.value.buffer.scope !== "global")
        )
          this.report(`${what}: an asynchronous copy goes from a global buffer's element to a shared one`);
        return;
      }
      case "atomic": {
        const what = `atomicAdd on ${s.buffer.name}${s.indices.map((i) => `[${printExpr(i)}]`).join("")}`;
        this.access(what, s.buffer, s.indices);
        this.expr(s.value);
        if (s.buffer.scope === "local") this.report(`${what}: atomics update global or shared buffers`);
        if (!["i32", "u32", "f32"].includes(s.buffer.dtype))
          this.report(`${what}: atomics add i32, u32 or f32 elements, not ${s.buffer.dtype}`);
        if (s.value.dtype !== s.buffer.dtype)
          this.report(`${what}: the value is ${s.value.dtype} but ${s.buffer.name} holds ${s.buffer.dtype}`);
        if (s.result) {
          this.access(`${what}'s result`, s.result.buffer, s.result.indices);
          if (s.result.buffer.dtype !== s.buffer.dtype)
            this.report(`${what}: its result goes to ${s.result.buffer.name} of ${s.result.buffer.dtype}`);
        }
        return;
      }
      case "prefetch": {
        const what = `prefetch of ${s.buffer.name}${s.indices.map((i) => `[${printExpr(i)}]`).join("")}`;
        if (s.buffer.scope !== "global") this.report(`${what}: only global buffers are prefetched`);
        this.access(what, s.buffer, s.indices);
        this.expr(s.count);
        if (s.count.dtype !== "i32") this.report(`${what}: the count is ${s.count.dtype}, not i32`);
        return;
      }
      case "allocate": {
        const b = s.buffer;
        if (this.buffers.has(b)) this.report(`buffer ${b.name} is allocated again while it is already live`);
        this.bufferShape(b);
        this.buffers.add(b);
        this.stmt(s.body);
        this.buffers.delete(b);
        return;
      }
      case "if":
        this.expr(s.cond);
        if (s.cond.dtype !== "bool")
          this.report(`if (${printExpr(s.cond)}): the condition is ${s.cond.dtype}, not bool`);
        this.nested("if", () => this.stmt(s.then));
        if (s.else) this.nested("else", () => this.stmt(s.else!));
        return;
      case "seq":
        return s.body.forEach((b) => this.stmt(b));
      case "let":
        this.expr(s.value);
        if (s.value.dtype !== s.v.dtype)
          this.report(
            `const ${s.v.name} = ${printExpr(s.value)}: the value is ${s.value.dtype} but ${s.v.name} is ${s.v.dtype}`,
          );
        return this.bindVar(s.v, `const ${s.v.name}`, () => this.stmt(s.body));
      case "barrier":
        if ((s.scope === "async_wait") !== (s.pending !== undefined))
          this.report(`barrier ${s.scope}: a pending count belongs to (and only to) waitAsync`);
        return;
    }
  }
}
