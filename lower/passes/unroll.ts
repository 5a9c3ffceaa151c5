/**
 * Pass `unroll`: unrolled loops with a constant extent (up to MAX_UNROLL iterations) become one
 * copy of the body per iteration, the loop variable replaced by its value. Variables, loops and
 * buffers bound inside the body get fresh copies per iteration, so every binding in the device IR
 * stays unique. Longer or symbolic unrolled loops become serial loops annotated `unroll=true`, a
 * hint a renderer may pass on (llvm.loop.unroll.enable). No `unrolled` loop survives this pass.
 */
import type { Buffer, Expr, For, PrimFunc, Stmt, Var } from "../ir/nodes.ts";
import { add, buffer, constant, seq, variable } from "../ir/build.ts";
import { remapAtomic, rewriteStmt, substitute, walk } from "../ir/transform.ts";
import { namesIn } from "../schedule/state.ts";
import type { Target } from "./target.ts";

export const MAX_UNROLL = 256;

/** A copy of s whose let, loop and allocation bindings are fresh, named by `rename`. */
export function freshenBindings(s: Stmt, rename: (name: string) => string): Stmt {
  const vars = new Map<Var, Var>();
  const bufs = new Map<Buffer, Buffer>();
  walk(s, (n) => {
    if (n.kind === "let") vars.set(n.v, variable(rename(n.v.name), n.v.dtype));
    if (n.kind === "for") vars.set(n.loopVar, variable(rename(n.loopVar.name), n.loopVar.dtype));
    if (n.kind === "allocate") {
      const b = n.buffer;
      bufs.set(b, buffer(rename(b.name), b.dtype, b.shape, b.scope, b.allocShape));
    }
  });
  if (!vars.size && !bufs.size) return s;
  return rewriteStmt(s, {
    expr: (e): Expr => {
      if (e.kind === "var") return vars.get(e) ?? e;
      if (e.kind === "load" && bufs.has(e.buffer)) return { ...e, buffer: bufs.get(e.buffer)! };
      return e;
    },
    stmt: (st): Stmt => {
      switch (st.kind) {
        case "let":
          return { ...st, v: vars.get(st.v) ?? st.v };
        case "for":
          return { ...st, loopVar: vars.get(st.loopVar) ?? st.loopVar };
        case "allocate":
        case "store":
        case "prefetch":
          return bufs.has(st.buffer) ? { ...st, buffer: bufs.get(st.buffer)! } : st;
        case "atomic":
          return remapAtomic(st, (b) => bufs.get(b) ?? b);
        default:
          return st;
      }
    },
  });
}

function unrollLoop(loop: For, rename: (name: string) => string): Stmt {
  const n = loop.extent.kind === "const" ? loop.extent.value : Infinity;
  if (n > MAX_UNROLL)
    return { ...loop, forKind: "serial", annotations: { ...loop.annotations, unroll: true } };
  const copies: Stmt[] = [];
  for (let k = 0; k < n; k++) {
    const body = substitute(
      loop.body,
      new Map([[loop.loopVar, add(loop.min, constant(k, loop.loopVar.dtype))]]),
    );
    copies.push(k === 0 ? body : freshenBindings(body, rename));
  }
  return seq(copies);
}

export function unrollPass(f: PrimFunc, _target?: Target): PrimFunc {
  const used = namesIn(f);
  const rename = (base: string): string => {
    let name = base;
    for (let n = 1; used.has(name); n++) name = `${base}_${n}`;
    used.add(name);
    return name;
  };
  // Post-order: inner unrolled loops expand first, and their copies are freshened with the outer ones.
  const body = rewriteStmt(f.body, {
    stmt: (s) => (s.kind === "for" && s.forKind === "unrolled" ? unrollLoop(s, rename) : s),
  });
  return body === f.body ? f : { ...f, body };
}
