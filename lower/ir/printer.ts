/**
 * Prints IR as readable TypeScript-like text: the form golden tests compare and `tkc dump` shows.
 * Distinct variables or buffers that share a name get numbered suffixes in order of appearance,
 * so the text is deterministic and unambiguous.
 */
import type { Barrier, Buffer, Expr, PrimFunc, Stmt, Var } from "./nodes.ts";

const BARRIER_CALLS: Record<Barrier["scope"], string> = {
  shared: "syncThreads",
  warp: "syncWarp",
  grid: "waitForPreviousGrid",
  dependents: "launchDependents",
  async_commit: "commitAsync",
  async_wait: "waitAsync",
};

const PRECEDENCE: Record<string, number> = {
  "||": 1,
  "&&": 2,
  "|": 3,
  "^": 4,
  "&": 5,
  "==": 6,
  "!=": 6,
  "<": 7,
  "<=": 7,
  ">": 7,
  ">=": 7,
  "<<": 8,
  ">>": 8,
  "+": 9,
  "-": 9,
  "*": 10,
  "/": 10,
  "%": 10,
};

class Namer {
  private readonly names = new Map<Var | Buffer, string>();
  private readonly taken = new Map<string, number>();
  name(x: Var | Buffer): string {
    let n = this.names.get(x);
    if (n === undefined) {
      const count = this.taken.get(x.name) ?? 0;
      n = count === 0 ? x.name : `${x.name}_${count}`;
      this.taken.set(x.name, count + 1);
      this.names.set(x, n);
    }
    return n;
  }
}

function formatNumber(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "Infinity";
  if (v === -Infinity) return "-Infinity";
  if (Object.is(v, -0)) return "-0";
  return String(v);
}

export class Printer {
  private readonly namer = new Namer();

  expr(e: Expr, parent = 0): string {
    switch (e.kind) {
      case "const":
        if (e.dtype === "i32") return formatNumber(e.value);
        if (e.dtype === "bool") return e.value ? "true" : "false";
        return `${e.dtype}(${formatNumber(e.value)})`;
      case "var":
        return this.namer.name(e);
      case "binary": {
        if (e.op === "min" || e.op === "max" || e.op === "floordiv" || e.op === "floormod")
          return `${e.op}(${this.expr(e.a)}, ${this.expr(e.b)})`;
        // Integer division is idiv in the DSL: `/` would read as float division.
        if (e.op === "/" && e.dtype !== "f32" && e.dtype !== "f16" && e.dtype !== "bf16")
          return `idiv(${this.expr(e.a)}, ${this.expr(e.b)})`;
        const p = PRECEDENCE[e.op]!;
        const text = `${this.expr(e.a, p)} ${e.op} ${this.expr(e.b, p + 1)}`;
        return p < parent ? `(${text})` : text;
      }
      case "unary": {
        const op = e.op === "neg" ? "-" : e.op === "not" ? "!" : "~";
        return `${op}${this.expr(e.a, 11)}`;
      }
      case "cast":
        return `${e.dtype}(${this.expr(e.value)})`;
      case "load":
        return `${this.namer.name(e.buffer)}${e.indices.map((i) => `[${this.expr(i)}]`).join("")}`;
      case "call":
        return `${e.name}(${e.args.map((a) => this.expr(a)).join(", ")})`;
      case "select":
        return `select(${this.expr(e.cond)}, ${this.expr(e.t)}, ${this.expr(e.f)})`;
    }
  }

  bufferType(b: Buffer): string {
    return `${b.dtype}, [${b.shape.map((d) => this.expr(d)).join(", ")}]`;
  }

  stmt(s: Stmt, indent: string): string[] {
    const ind = indent + "  ";
    switch (s.kind) {
      case "for": {
        const v = this.namer.name(s.loopVar);
        const lo = this.expr(s.min);
        // A loop written `i = a; i < b` has extent b - a: print b back.
        const ext = s.extent;
        const hi =
          lo === "0"
            ? this.expr(ext)
            : ext.kind === "binary" && ext.op === "-" && this.expr(ext.b) === lo
              ? this.expr(ext.a)
              : `${lo} + ${this.expr(ext, 9)}`;
        const notes: string[] = [];
        if (s.forKind === "thread") notes.push(s.thread ?? "thread");
        else if (s.forKind !== "serial") notes.push(s.forKind);
        for (const [k, val] of Object.entries(s.annotations)) notes.push(`${k}=${JSON.stringify(val)}`);
        const note = notes.length ? ` // ${notes.join(", ")}` : "";
        return [
          `${indent}for (let ${v} = ${lo}; ${v} < ${hi}; ${v}++) {${note}`,
          ...this.stmt(s.body, ind),
          `${indent}}`,
        ];
      }
      case "block": {
        const notes = Object.entries(s.annotations ?? {}).map(([k, val]) => `${k}=${JSON.stringify(val)}`);
        const note = notes.length ? ` // ${notes.join(", ")}` : "";
        return [`${indent}block ${JSON.stringify(s.name)} {${note}`, ...this.stmt(s.body, ind), `${indent}}`];
      }
      case "store": {
        const at = `${this.namer.name(s.buffer)}${s.indices.map((i) => `[${this.expr(i)}]`).join("")}`;
        return [
          `${indent}${s.async ? `copyAsync(${at}, ${this.expr(s.value)})` : `${at} = ${this.expr(s.value)}`};`,
        ];
      }
      case "atomic": {
        const at = (b: Buffer, ix: readonly Expr[]) =>
          `${this.namer.name(b)}${ix.map((i) => `[${this.expr(i)}]`).join("")}`;
        const call = `atomicAdd(${at(s.buffer, s.indices)}, ${this.expr(s.value)});`;
        return [`${indent}${s.result ? `${at(s.result.buffer, s.result.indices)} = ` : ""}${call}`];
      }
      case "prefetch":
        return [
          `${indent}prefetchL2(${this.namer.name(s.buffer)}${s.indices.map((i) => `[${this.expr(i)}]`).join("")}${s.count.kind === "const" && s.count.value === 1 ? "" : `, ${this.expr(s.count)}`});`,
        ];
      case "allocate": {
        const b = s.buffer;
        const strides = b.allocShape ? `, strides [${b.allocShape.map((x) => this.expr(x)).join(", ")}]` : "";
        return [
          `${indent}const ${this.namer.name(b)} = ${b.scope}(${this.bufferType(b)}${strides});`,
          ...this.stmt(s.body, indent),
        ];
      }
      case "if": {
        const out = [`${indent}if (${this.expr(s.cond)}) {`, ...this.stmt(s.then, ind)];
        if (s.else) out.push(`${indent}} else {`, ...this.stmt(s.else, ind));
        out.push(`${indent}}`);
        return out;
      }
      case "seq":
        return s.body.flatMap((b) => this.stmt(b, indent));
      case "let":
        return [
          `${indent}const ${this.namer.name(s.v)} = ${this.expr(s.value)};`,
          ...this.stmt(s.body, indent),
        ];
      case "barrier":
        return [`${indent}${BARRIER_CALLS[s.scope]}(${s.pending ?? ""});`];
    }
  }

  func(f: PrimFunc): string {
    for (const sym of f.symbols) this.namer.name(sym);
    const params = f.params.map((p) =>
      p.kind === "buffer"
        ? `${this.namer.name(p.buffer)}: Tensor<${this.bufferType(p.buffer)}>`
        : `${this.namer.name(p.v)}: ${p.v.dtype}`,
    );
    const attrs = Object.entries(f.attrs);
    const head = attrs.length
      ? [`// attrs: ${attrs.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(", ")}`]
      : [];
    if (f.launch) {
      const l = f.launch;
      head.push(
        `// launch: grid [${l.grid.map((g) => this.expr(g)).join(", ")}], block [${l.block.join(", ")}], warp ${l.warpSize}, shared ${l.sharedBytes} bytes`,
      );
    }
    return (
      [...head, `function ${f.name}(${params.join(", ")}) {`, ...this.stmt(f.body, "  "), "}"].join("\n") +
      "\n"
    );
  }
}

export const printFunc = (f: PrimFunc): string => new Printer().func(f);
export const printStmt = (s: Stmt): string => new Printer().stmt(s, "").join("\n");
export const printExpr = (e: Expr): string => new Printer().expr(e);
