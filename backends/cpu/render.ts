/**
 * Renders loop IR (or device IR) to JavaScript source. The source is readable on purpose: it is
 * what `tkc dump --target cpu` prints, and it is the executable definition of tkc's semantics
 * (see semantics.ts for the rules each construct follows).
 */
import { DTYPES, bf16Bits, bf16FromBits, f16Bits, f16FromBits, type DType } from "../../dsl/dtypes.ts";
import type { Buffer, Expr, PrimFunc, Stmt, Var } from "../../lower/ir/nodes.ts";
import { add, letStmt, load, seq, store, variable } from "../../lower/ir/build.ts";

export interface RenderOptions {
  /** Check every index against its dimension and throw a RangeError naming the buffer (default true). */
  readonly boundsCheck?: boolean;
}

const ident = (name: string, id: number): string => `${name.replace(/[^A-Za-z0-9_]/g, "_")}_${id}`;

export function storageCtor(dtype: DType): string {
  switch (dtype) {
    case "f32":
      return "Float32Array";
    case "f16":
    case "bf16":
      return "Uint16Array";
    case "i64":
      return "Float64Array";
    case "i32":
      return "Int32Array";
    case "u32":
      return "Uint32Array";
    case "i8":
      return "Int8Array";
    case "u8":
    case "bool":
      return "Uint8Array";
  }
}

function literal(value: number, dtype: DType): string {
  let v = value;
  switch (dtype) {
    case "f32":
      v = Math.fround(value);
      break;
    case "f16":
      v = f16FromBits(f16Bits(value));
      break;
    case "bf16":
      v = bf16FromBits(bf16Bits(value));
      break;
    case "i32":
      v = value | 0;
      break;
    case "u32":
      v = value >>> 0;
      break;
    case "i8":
      v = (value << 24) >> 24;
      break;
    case "u8":
      v = value & 255;
      break;
    case "bool":
      return value ? "true" : "false";
    case "i64":
      v = Math.trunc(value);
  }
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "Infinity";
  if (v === -Infinity) return "-Infinity";
  return Object.is(v, -0) ? "-0" : String(v);
}

/** Wraps an exact JavaScript result into dtype d. */
function wrap(d: DType, text: string): string {
  switch (d) {
    case "f32":
      return `Math.fround(${text})`;
    case "f16":
      return `rt.r16(${text})`;
    case "bf16":
      return `rt.rb16(${text})`;
    case "i32":
      return `((${text}) | 0)`;
    case "u32":
      return `((${text}) >>> 0)`;
    case "i8":
      return `(((${text}) << 24) >> 24)`;
    case "u8":
      return `((${text}) & 255)`;
    case "i64":
      return `(${text})`;
    case "bool":
      return `(${text})`;
  }
}

export class JsRenderer {
  private readonly names = new Map<Var | Buffer, string>();
  private readonly scalarLocals = new Set<Buffer>();
  private readonly check: boolean;

  constructor(opts: RenderOptions = {}) {
    this.check = opts.boundsCheck ?? true;
  }

  name(x: Var | Buffer): string {
    let n = this.names.get(x);
    if (!n) this.names.set(x, (n = ident(x.name, x.id)));
    return n;
  }

  expr(e: Expr): string {
    switch (e.kind) {
      case "const":
        return literal(e.value, e.dtype);
      case "var":
        return this.name(e);
      case "binary":
        return this.binary(e.op, this.expr(e.a), this.expr(e.b), e.a.dtype);
      case "unary": {
        const a = this.expr(e.a);
        if (e.op === "not") return `(!${a})`;
        if (e.op === "bitnot") return wrap(e.dtype, `~${a}`);
        return DTYPES[e.dtype].kind === "float" ? `(-${a})` : wrap(e.dtype, `-${a}`);
      }
      case "cast":
        return this.cast(e.value, e.dtype);
      case "load": {
        if (this.scalarLocals.has(e.buffer)) return this.name(e.buffer);
        const raw = `${this.name(e.buffer)}[${this.index(e.buffer, e.indices)}]`;
        if (e.dtype === "f16") return `rt.F16[${raw}]`;
        if (e.dtype === "bf16") return `rt.BF16[${raw}]`;
        if (e.dtype === "bool") return `(${raw} !== 0)`;
        return raw;
      }
      case "call":
        return this.call(
          e.name,
          e.args.map((a) => this.expr(a)),
          e.dtype,
        );
      case "select":
        return `(${this.expr(e.cond)} ? ${this.expr(e.t)} : ${this.expr(e.f)})`;
    }
  }

  private binary(op: string, a: string, b: string, d: DType): string {
    const kind = DTYPES[d].kind;
    const float = kind === "float";
    switch (op) {
      case "+":
      case "-":
        return wrap(d, `${a} ${op} ${b}`);
      case "*":
        return float || d === "i64" ? wrap(d, `${a} * ${b}`) : wrap(d, `Math.imul(${a}, ${b})`);
      case "/":
        return float
          ? wrap(d, `${a} / ${b}`)
          : d === "i64"
            ? `Math.trunc(${a} / ${b})`
            : wrap(d, `(${a} / ${b}) | 0`);
      case "%":
        return float
          ? wrap(d, `${a} % ${b}`)
          : d === "i64"
            ? `(${a} % ${b} || 0)`
            : wrap(d, `(${a} % ${b}) | 0`);
      case "floordiv":
        return wrap(d, `Math.floor(${a} / ${b})`);
      case "floormod":
        return wrap(d, `${a} - Math.floor(${a} / ${b}) * ${b}`);
      case "min":
        return float ? `rt.fmin(${a}, ${b})` : `Math.min(${a}, ${b})`;
      case "max":
        return float ? `rt.fmax(${a}, ${b})` : `Math.max(${a}, ${b})`;
      case "&":
      case "|":
      case "^":
        if (d === "i64") throw new Error("tkc cpu: bit operations on i64 are not supported");
        return wrap(d, `${a} ${op} ${b}`);
      case "<<":
        if (d === "i64") throw new Error("tkc cpu: shifts on i64 are not supported");
        return wrap(d, `${a} << ${b}`);
      case ">>":
        if (d === "i64") throw new Error("tkc cpu: shifts on i64 are not supported");
        return kind === "uint" ? `(${a} >>> ${b})` : `(${a} >> ${b})`;
      case "==":
        return `(${a} === ${b})`;
      case "!=":
        return `(${a} !== ${b})`;
      default:
        return `(${a} ${op} ${b})`;
    }
  }

  private cast(value: Expr, to: DType): string {
    const from = value.dtype;
    const a = this.expr(value);
    if (from === to) return a;
    if (to === "bool") return `(${a} !== 0)`;
    const src = from === "bool" ? `(${a} ? 1 : 0)` : a;
    const toKind = DTYPES[to].kind;
    if (toKind === "float") return to === "f32" ? `Math.fround(${src})` : wrap(to, src);
    if (DTYPES[from].kind === "float") return `rt.f2i(${src}, "${to}")`;
    if (to === "i64") return src;
    return wrap(to, src);
  }

  private call(name: string, args: string[], d: DType): string {
    const [a, b, c] = args;
    switch (name) {
      case "exp":
      case "log":
      case "sqrt":
      case "tanh":
      case "sin":
      case "cos":
      case "floor":
      case "ceil":
      case "exp2":
      case "log2":
        return wrap(d, name === "exp2" ? `2 ** ${a}` : `Math.${name}(${a})`);
      case "bitcast":
        return d === "f32" ? `rt.f32FromBits(${a})` : `rt.bitsOfF32(${a})`;
      case "pack_f16x2":
        return `rt.packF16x2(${a}, ${b})`;
      case "unpack_f16x2":
        return `rt.unpackF16x2(${a}, ${b})`;
      case "fma_f16x2":
        return `rt.fmaF16x2(${a}, ${b}, ${c})`;
      case "rsqrt":
        return wrap(d, `1 / Math.sqrt(${a})`);
      case "erf":
        return wrap(d, `rt.erf(${a})`);
      case "round":
        return wrap(d, `rt.rne(${a})`);
      case "pow":
        return wrap(d, `Math.pow(${a}, ${b})`);
      case "fma":
        return wrap(d, `${a} * ${b} + ${c}`);
      case "abs":
        return DTYPES[d].kind === "float" ? `Math.abs(${a})` : wrap(d, `Math.abs(${a})`);
      default:
        throw new Error(`tkc cpu: the intrinsic ${name} has no CPU rendering in this context`);
    }
  }

  /** Row-major flat index (honouring storageAlign strides), bounds-checked when asked. */
  protected index(buf: Buffer, indices: readonly Expr[]): string {
    const idx = indices.map((i) => this.expr(i));
    if (this.check) return `ix_${this.name(buf)}(${idx.join(", ")})`;
    return flatIndex(idx, this.strideExprs(buf));
  }

  private strideExprs(buf: Buffer): string[] {
    const dims = (buf.allocShape ?? buf.shape).map((d) => this.expr(d));
    const strides: string[] = [];
    let acc = "1";
    for (let k = dims.length - 1; k >= 0; k--) {
      strides.unshift(acc);
      acc = acc === "1" ? dims[k]! : `${acc} * ${dims[k]}`;
    }
    return strides;
  }

  /** Declares a buffer's bounds-checking index function (checked mode). */
  indexHelper(buf: Buffer): string {
    if (!this.check || this.scalarLocals.has(buf)) return "";
    const n = this.name(buf);
    const params = buf.shape.map((_, k) => `i${k}`);
    const checks = buf.shape
      .map((d, k) => {
        const ext = this.expr(d);
        return `if (!(i${k} >= 0 && i${k} < ${ext})) rt.oob(${JSON.stringify(buf.name)}, ${k}, i${k}, ${ext});`;
      })
      .join(" ");
    return `const ix_${n} = (${params.join(", ")}) => { ${checks} return ${flatIndex(params, this.strideExprs(buf))}; };`;
  }

  stmt(s: Stmt, ind: string): string[] {
    const inner = ind + "  ";
    switch (s.kind) {
      case "for": {
        const v = this.name(s.loopVar);
        const note = s.forKind === "serial" ? "" : ` // ${s.thread ?? s.forKind}`;
        return [
          `${ind}for (let ${v} = ${this.expr(s.min)}, ${v}_end = ${v} + ${this.expr(s.extent)}; ${v} < ${v}_end; ${v}++) {${note}`,
          ...this.stmt(s.body, inner),
          `${ind}}`,
        ];
      }
      case "block":
        return [`${ind}// block ${s.name}`, ...this.stmt(s.body, ind)];
      case "store": {
        const v = this.expr(s.value);
        if (this.scalarLocals.has(s.buffer)) return [`${ind}${this.name(s.buffer)} = ${v};`];
        const target = `${this.name(s.buffer)}[${this.index(s.buffer, s.indices)}]`;
        const d = s.buffer.dtype;
        const enc =
          d === "f16"
            ? `rt.f16b(${v})`
            : d === "bf16"
              ? `rt.bf16b(${v})`
              : d === "bool"
                ? `(${v} ? 1 : 0)`
                : v;
        return [`${ind}${target} = ${enc};`];
      }
      case "allocate": {
        const b = s.buffer;
        const n = this.name(b);
        if (b.scope === "local" && b.shape.every((d) => d.kind === "const" && d.value === 1)) {
          this.scalarLocals.add(b);
          return [`${ind}let ${n} = ${b.dtype === "bool" ? "false" : "0"};`, ...this.stmt(s.body, ind)];
        }
        const size = (b.allocShape ?? b.shape).map((d) => this.expr(d)).join(" * ");
        return [
          `${ind}const ${n} = new ${storageCtor(b.dtype)}(${size});`,
          `${ind}${this.indexHelper(b)}`,
          ...this.stmt(s.body, ind),
        ];
      }
      case "if": {
        const out = [`${ind}if (${this.expr(s.cond)}) {`, ...this.stmt(s.then, inner)];
        if (s.else) out.push(`${ind}} else {`, ...this.stmt(s.else, inner));
        out.push(`${ind}}`);
        return out;
      }
      case "seq":
        return s.body.flatMap((b) => this.stmt(b, ind));
      case "let":
        return [
          `${ind}{`,
          `${inner}const ${this.name(s.v)} = ${this.expr(s.value)};`,
          ...this.stmt(s.body, inner),
          `${ind}}`,
        ];
      case "barrier":
        return [`${ind}// barrier(${s.scope})`];
      case "prefetch":
        return [`${ind}// prefetchL2(${this.name(s.buffer)})`];
      case "atomic": {
        // JavaScript runs one thread at a time: a read, the addition and the write are indivisible.
        const old = variable(`atomic_${s.buffer.name}`, s.buffer.dtype);
        const body = [store(s.buffer, s.indices, add(old, s.value))];
        if (s.result) body.push(store(s.result.buffer, s.result.indices, old));
        return this.stmt(letStmt(old, load(s.buffer, s.indices), seq(body)), ind);
      }
    }
  }

  /** The source of a function `(args, rt) => void` reading buffers, scalars and symbols from args. */
  func(f: PrimFunc): string {
    const lines: string[] = [`// tkc cpu kernel ${f.name}`];
    for (const sym of f.symbols)
      lines.push(`const ${this.name(sym)} = args.symbols[${JSON.stringify(sym.name)}];`);
    for (const p of f.params) {
      if (p.kind === "buffer")
        lines.push(`const ${this.name(p.buffer)} = args.buffers[${JSON.stringify(p.buffer.name)}];`);
      else lines.push(`const ${this.name(p.v)} = args.scalars[${JSON.stringify(p.v.name)}];`);
    }
    for (const p of f.params) if (p.kind === "buffer") lines.push(this.indexHelper(p.buffer));
    lines.push(...this.stmt(f.body, ""));
    return lines.filter((l) => l.trim() !== "").join("\n");
  }
}

function flatIndex(idx: readonly string[], strides: readonly string[]): string {
  const terms = idx.map((i, k) => (strides[k] === "1" ? i : `${i} * ${strides[k]}`));
  return terms.length === 0 ? "0" : terms.join(" + ");
}

export function renderJs(f: PrimFunc, opts: RenderOptions = {}): string {
  return new JsRenderer(opts).func(f);
}
