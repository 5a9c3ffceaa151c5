/**
 * Generic traversal: a post-order rewriter and a visitor. Rewriters return the same object when
 * nothing changed, so unchanged subtrees are shared and identity checks stay cheap.
 */
import type { Atomic, Buffer, Expr, Node, PrimFunc, Stmt, Var } from "./nodes.ts";

export interface Rewriter {
  /** Called after the children are rewritten; return the replacement (or the node itself). */
  expr?(e: Expr): Expr;
  stmt?(s: Stmt): Stmt;
  /** Called before descending; return a node to replace the whole subtree without visiting it. */
  preStmt?(s: Stmt): Stmt | undefined;
  preExpr?(e: Expr): Expr | undefined;
}

const sameArray = <T>(a: readonly T[], b: readonly T[]): boolean => a.every((x, i) => x === b[i]);

export function rewriteExpr(e: Expr, r: Rewriter): Expr {
  const pre = r.preExpr?.(e);
  if (pre) return pre;
  let out: Expr = e;
  switch (e.kind) {
    case "const":
    case "var":
      break;
    case "binary": {
      const a = rewriteExpr(e.a, r);
      const b = rewriteExpr(e.b, r);
      if (a !== e.a || b !== e.b) out = { ...e, a, b };
      break;
    }
    case "unary": {
      const a = rewriteExpr(e.a, r);
      if (a !== e.a) out = { ...e, a };
      break;
    }
    case "cast": {
      const value = rewriteExpr(e.value, r);
      if (value !== e.value) out = { ...e, value };
      break;
    }
    case "load": {
      const indices = e.indices.map((i) => rewriteExpr(i, r));
      if (!sameArray(indices, e.indices)) out = { ...e, indices };
      break;
    }
    case "call": {
      const args = e.args.map((a) => rewriteExpr(a, r));
      if (!sameArray(args, e.args)) out = { ...e, args };
      break;
    }
    case "select": {
      const cond = rewriteExpr(e.cond, r);
      const t = rewriteExpr(e.t, r);
      const f = rewriteExpr(e.f, r);
      if (cond !== e.cond || t !== e.t || f !== e.f) out = { ...e, cond, t, f };
      break;
    }
  }
  return r.expr ? r.expr(out) : out;
}

export function rewriteStmt(s: Stmt, r: Rewriter): Stmt {
  const pre = r.preStmt?.(s);
  if (pre) return pre;
  const ex = (e: Expr): Expr => rewriteExpr(e, r);
  let out: Stmt = s;
  switch (s.kind) {
    case "for": {
      const min = ex(s.min);
      const extent = ex(s.extent);
      const body = rewriteStmt(s.body, r);
      if (min !== s.min || extent !== s.extent || body !== s.body) out = { ...s, min, extent, body };
      break;
    }
    case "block": {
      const body = rewriteStmt(s.body, r);
      if (body !== s.body) out = { ...s, body };
      break;
    }
    case "store": {
      const indices = s.indices.map(ex);
      const value = ex(s.value);
      if (value !== s.value || !sameArray(indices, s.indices)) out = { ...s, indices, value };
      break;
    }
    case "allocate": {
      const body = rewriteStmt(s.body, r);
      if (body !== s.body) out = { ...s, body };
      break;
    }
    case "if": {
      const cond = ex(s.cond);
      const then = rewriteStmt(s.then, r);
      const otherwise = s.else ? rewriteStmt(s.else, r) : undefined;
      if (cond !== s.cond || then !== s.then || otherwise !== s.else)
        out = { kind: "if", cond, then, ...(otherwise ? { else: otherwise } : {}) };
      break;
    }
    case "seq": {
      const body = s.body.map((b) => rewriteStmt(b, r));
      if (!sameArray(body, s.body)) out = { ...s, body };
      break;
    }
    case "let": {
      const value = ex(s.value);
      const body = rewriteStmt(s.body, r);
      if (value !== s.value || body !== s.body) out = { ...s, value, body };
      break;
    }
    case "prefetch": {
      const indices = s.indices.map(ex);
      const count = ex(s.count);
      if (count !== s.count || !sameArray(indices, s.indices)) out = { ...s, indices, count };
      break;
    }
    case "atomic": {
      const indices = s.indices.map(ex);
      const value = ex(s.value);
      const resultIndices = s.result?.indices.map(ex);
      if (
        value !== s.value ||
        !sameArray(indices, s.indices) ||
        (s.result && !sameArray(resultIndices!, s.result.indices))
      )
        out = {
          ...s,
          indices,
          value,
          ...(s.result ? { result: { ...s.result, indices: resultIndices! } } : {}),
        };
      break;
    }
    case "barrier":
      break;
  }
  return r.stmt ? r.stmt(out) : out;
}

export function rewriteFunc(f: PrimFunc, r: Rewriter): PrimFunc {
  const body = rewriteStmt(f.body, r);
  return body === f.body ? f : { ...f, body };
}

/** Visits every node in pre-order; return false from `visit` to skip a node's children. */
export function walk(n: Node, visit: (n: Node) => boolean | void): void {
  if (visit(n) === false) return;
  switch (n.kind) {
    case "const":
    case "var":
    case "barrier":
      return;
    case "binary":
      walk(n.a, visit);
      walk(n.b, visit);
      return;
    case "unary":
      walk(n.a, visit);
      return;
    case "cast":
      walk(n.value, visit);
      return;
    case "load":
      n.indices.forEach((i) => walk(i, visit));
      return;
    case "call":
      n.args.forEach((a) => walk(a, visit));
      return;
    case "select":
      walk(n.cond, visit);
      walk(n.t, visit);
      walk(n.f, visit);
      return;
    case "for":
      walk(n.min, visit);
      walk(n.extent, visit);
      walk(n.body, visit);
      return;
    case "block":
    case "allocate":
      walk(n.body, visit);
      return;
    case "store":
      n.indices.forEach((i) => walk(i, visit));
      walk(n.value, visit);
      return;
    case "prefetch":
      n.indices.forEach((i) => walk(i, visit));
      walk(n.count, visit);
      return;
    case "atomic":
      n.indices.forEach((i) => walk(i, visit));
      walk(n.value, visit);
      n.result?.indices.forEach((i) => walk(i, visit));
      return;
    case "if":
      walk(n.cond, visit);
      walk(n.then, visit);
      if (n.else) walk(n.else, visit);
      return;
    case "seq":
      n.body.forEach((b) => walk(b, visit));
      return;
    case "let":
      walk(n.value, visit);
      walk(n.body, visit);
      return;
  }
}

const STMT_KINDS: ReadonlySet<string> = new Set([
  "for",
  "block",
  "store",
  "allocate",
  "if",
  "seq",
  "let",
  "barrier",
  "prefetch",
  "atomic",
]);
export const isStmt = (n: Node): n is Stmt => STMT_KINDS.has(n.kind);

/** Replaces variables by expressions. */
export function substitute<T extends Expr | Stmt>(n: T, map: ReadonlyMap<Var, Expr>): T {
  if (map.size === 0) return n;
  const r: Rewriter = { expr: (e) => (e.kind === "var" ? (map.get(e) ?? e) : e) };
  return (isStmt(n) ? rewriteStmt(n, r) : rewriteExpr(n as Expr, r)) as T;
}

/** Replaces buffers (in loads, stores and allocations) by other buffers. */
export function replaceBuffers(s: Stmt, map: ReadonlyMap<Buffer, Buffer>): Stmt {
  return rewriteStmt(s, {
    expr: (e) => (e.kind === "load" && map.has(e.buffer) ? { ...e, buffer: map.get(e.buffer)! } : e),
    stmt: (st) => {
      if (st.kind === "atomic") return remapAtomic(st, (b) => map.get(b) ?? b);
      if ((st.kind === "store" || st.kind === "prefetch") && map.has(st.buffer))
        return { ...st, buffer: map.get(st.buffer)! };
      if (st.kind === "allocate" && map.has(st.buffer)) return { ...st, buffer: map.get(st.buffer)! };
      return st;
    },
  });
}

/** An atomic with its target and result buffers replaced by `remap`'s (itself where none changes). */
export function remapAtomic(a: Atomic, remap: (b: Buffer) => Buffer): Atomic {
  const buffer = remap(a.buffer);
  const result = a.result && remap(a.result.buffer);
  if (buffer === a.buffer && result === a.result?.buffer) return a;
  return { ...a, buffer, ...(a.result ? { result: { ...a.result, buffer: result! } } : {}) };
}

/**
 * The buffer accesses of an atomic as a load and a store of its target and a store of its result:
 * what analyses that look for loads and stores (walk) should see of it.
 */
export function atomicAccesses(a: Atomic): { buffer: Buffer; indices: readonly Expr[]; write: boolean }[] {
  return [
    { buffer: a.buffer, indices: a.indices, write: false },
    { buffer: a.buffer, indices: a.indices, write: true },
    ...(a.result ? [{ buffer: a.result.buffer, indices: a.result.indices, write: true }] : []),
  ];
}

/** Whether any node of n (n included) satisfies `test`; the walk stops at the first. */
export function someNode(n: Node, test: (x: Node) => boolean): boolean {
  let found = false;
  walk(n, (x) => {
    if (found) return false;
    found = test(x);
    return !found;
  });
  return found;
}

export const usesVar = (n: Node, v: Var): boolean => someNode(n, (x) => x === v);

/** Whether evaluating n reads memory (any load). */
export const hasLoad = (n: Node): boolean => someNode(n, (x) => x.kind === "load");

export function collectVars(n: Node): Set<Var> {
  const out = new Set<Var>();
  walk(n, (x) => {
    if (x.kind === "var") out.add(x);
  });
  return out;
}

/** Whether s accesses or allocates buffer b (loads, stores, atomics and their results, prefetches). */
export const usesBuffer = (s: Stmt, b: Buffer): boolean =>
  someNode(
    s,
    (n) =>
      ((n.kind === "load" || n.kind === "store" || n.kind === "allocate" || n.kind === "prefetch") &&
        n.buffer === b) ||
      (n.kind === "atomic" && atomicAccesses(n).some((a) => a.buffer === b)),
  );
