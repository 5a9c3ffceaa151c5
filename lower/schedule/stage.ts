/**
 * Stages, the unit computeAt and its relatives move: the statement that holds a block in the
 * sequence it shares with the other stage involved (its loop nest, with any scratch buffers
 * allocated inside). Blocks are labels over stores, so a block's stage carries along whatever else
 * its loop nest computes (a reduction's init and update move together).
 *
 * Here: finding the two stages, shrinking a stage's outer loops to the region the other side needs
 * (region.ts) with guards where that region may leave the loops' original ranges, moving it,
 * compacting an intermediate buffer whose accesses all end up inside the target loop, and telling
 * whether a nest initializes what it reads (an init before its update).
 */
import * as B from "../ir/build.ts";
import type { Buffer, Expr, For, PrimFunc, Stmt, Var } from "../ir/nodes.ts";
import { rewriteStmt, substitute } from "../ir/transform.ts";
import { accessesIn, allocatedIn, blocksUnder, describeAccess, loadsIn, storesIn } from "./analysis.ts";
import { ScheduleError } from "./errors.ts";
import { blockPath, findPath, loopPath, replaceStmt, type Path } from "./state.ts";
import { printExpr } from "../ir/printer.ts";
import {
  accessIntervals,
  accessesOf,
  combine,
  constAffine,
  constDiff,
  fromAffine,
  loopRanges,
  provablyLE,
  simplifyIndex,
  threadLoops,
  toAffine,
  type Env,
  type Interval,
  bounds,
  type AccessSite,
} from "./region.ts";

export const names = (bufs: Iterable<Buffer>): string => [...bufs].map((b) => b.name).join(", ");
export const isParam = (f: PrimFunc, b: Buffer): boolean =>
  f.params.some((p) => p.kind === "buffer" && p.buffer === b);
export const fors = (p: Path): For[] => p.filter((s): s is For => s.kind === "for");

/** Buffers a statement stores to (or loads from) that live outside it. */
export function outputsOf(s: Stmt): Set<Buffer> {
  const inner = allocatedIn(s);
  return new Set(
    storesIn(s)
      .map((x) => x.buffer)
      .filter((b) => !inner.has(b)),
  );
}
export function inputsOf(s: Stmt): Set<Buffer> {
  const inner = allocatedIn(s);
  return new Set(
    loadsIn(s)
      .map((x) => x.buffer)
      .filter((b) => !inner.has(b)),
  );
}

/** The first access to a buffer inside a statement, as `t[i][j] (block "t")`. */
export function whoAccesses(s: Stmt, buf: Buffer, kind: "load" | "store" | "any"): string | undefined {
  const a = accessesIn(s).find((x) => x.buffer === buf && (kind === "any" || x.kind === kind));
  return a && describeAccess(a);
}

/** Two statements' places in the sequence that holds both (their lowest common ancestor). */
export interface Siblings {
  readonly common: Path;
  readonly body: readonly Stmt[];
  readonly a: number;
  readonly b: number;
}
export function siblings(P: string, pa: Path, pb: Path, what: string): Siblings {
  let n = 0;
  while (n < pa.length && n < pb.length && pa[n] === pb[n]) n++;
  if (n === pa.length || n === pb.length) throw new ScheduleError(P, `${what}: one contains the other`);
  const lca = pa[n - 1]!;
  if (lca.kind !== "seq") throw new ScheduleError(P, `${what}: they are in different branches of an if`);
  return { common: pa.slice(0, n), body: lca.body, a: lca.body.indexOf(pa[n]!), b: lca.body.indexOf(pb[n]!) };
}

/** The outer perfect loop nest of a stage. */
export const chainOf = (s: Stmt): For[] => (s.kind === "for" ? [s, ...chainOf(s.body)] : []);

/**
 * The range each loop of the stage's outer nest must cover so the accesses `(buffer, dim) ->
 * interval` are met: a loop whose variable indexes a dimension as `v + c` (and nothing else of
 * those buffers) gets that dimension's interval shifted by -c; other loops keep their range.
 * For a stage's own stores, a loop that some store's indices do not use is a reduction loop
 * for it and keeps its whole range too.
 */
export function neededRanges(
  stage: Stmt,
  accesses: readonly { buffer: Buffer; indices: readonly Expr[] }[],
  wanted: ReadonlyMap<Buffer, readonly (Interval | undefined)[]>,
  kind: "stores" | "loads",
): Map<Var, Interval> {
  const out = new Map<Var, Interval>();
  const blocked = new Set<Var>();
  const chain = new Set(chainOf(stage).map((l) => l.loopVar));
  for (const acc of accesses) {
    const dims = wanted.get(acc.buffer);
    if (!dims) continue;
    if (kind === "stores") {
      const used = new Set(acc.indices.flatMap((i) => [...(toAffine(i)?.terms.keys() ?? chain)]));
      for (const v of chain) if (!used.has(v)) blocked.add(v);
    }
    acc.indices.forEach((idx, d) => {
      const a = toAffine(idx);
      const vars = a ? [...a.terms.keys()].filter((v) => chain.has(v)) : [...chain];
      const single = a && vars.length === 1 && a.terms.size === 1 && a.terms.get(vars[0]!) === 1;
      if (!single || !dims[d]) return vars.forEach((v) => blocked.add(v));
      const v = vars[0]!;
      const c = constAffine(a.c);
      const iv = { lo: combine(dims[d].lo, c, -1), hi: combine(dims[d].hi, c, -1) };
      const prev = out.get(v);
      if (!prev) return void out.set(v, iv);
      const dl = constDiff(prev.lo, iv.lo);
      const dh = constDiff(prev.hi, iv.hi);
      if (dl === undefined || dh === undefined) blocked.add(v);
      else out.set(v, { lo: dl <= 0 ? prev.lo : iv.lo, hi: dh >= 0 ? prev.hi : iv.hi });
    });
  }
  for (const v of blocked) out.delete(v);
  return out;
}

/**
 * The stage with its outer loops restricted to `needed`: each loop runs from 0 over the needed
 * extent with its variable shifted by the needed minimum (a loop of extent 1 disappears), guarded
 * where the new range might leave the old one. The guards go innermost, around the body of the
 * stage's outer loop nest (as split puts its tail guards), so the nest stays perfect for fuse and
 * reorder; a loop whose bounds read memory keeps the guards of the loops outside it above it.
 */
export function shrinkStage(
  stage: Stmt,
  needed: ReadonlyMap<Var, Interval>,
  env: Env,
  opts: { clamp?: boolean } = {},
): Stmt {
  // A copy clamps its source loads into the old ranges instead (see isSharedCopy).
  const clamp = (body: Stmt, v: Var, lo: Expr | undefined, hi: Expr | undefined): Stmt => {
    let x: Expr = v;
    if (hi) x = B.binary("min", x, hi);
    if (lo) x = B.binary("max", x, lo);
    const map = new Map([[v, x]]);
    return rewriteStmt(body, {
      stmt: (st) => (st.kind === "store" ? { ...st, value: substitute(st.value, map) } : st),
    });
  };
  const guard = (s: Stmt, conds: readonly Expr[]): Stmt =>
    conds.length
      ? B.ifThen(
          conds.reduce((x, y) => B.binary("&&", x, y)),
          s,
        )
      : s;
  const rec = (s: Stmt, pending: readonly Expr[]): Stmt => {
    if (s.kind !== "for") return guard(s, pending);
    if (pending.length && (loadsIn(s.min).length || loadsIn(s.extent).length))
      return guard(rec(s, []), pending);
    const iv = needed.get(s.loopVar);
    if (!iv) {
      const body = rec(s.body, pending);
      return body === s.body ? s : { ...s, body };
    }
    const off = fromAffine(iv.lo);
    const extent = fromAffine(combine(combine(iv.hi, iv.lo, -1), constAffine(1)));
    const v: Expr = s.loopVar;
    const conds: Expr[] = [...pending];
    // Written over the original variable; the substitution below shifts it with the loop.
    const below = !provablyLE(s.min, off, env);
    const above = !provablyLE(B.add(off, extent), B.add(s.min, s.extent), env);
    const last = simplifyIndex(B.sub(B.add(s.min, s.extent), B.i32c(1)));
    if (!opts.clamp && below) conds.push(B.binary(">=", v, s.min));
    if (!opts.clamp && above) conds.push(B.binary("<", v, simplifyIndex(B.add(s.min, s.extent))));
    const inner = rec(s.body, conds);
    const guarded = opts.clamp
      ? clamp(inner, s.loopVar, below ? s.min : undefined, above ? last : undefined)
      : inner;
    if (extent.kind === "const" && extent.value === 1)
      return substitute(guarded, new Map([[s.loopVar, off]]));
    return {
      ...s,
      min: B.i32c(0),
      extent,
      body: substitute(guarded, new Map([[s.loopVar, simplifyIndex(B.add(v, off))]])),
    };
  };
  const simplifyConds = (st: Stmt): Stmt =>
    rewriteStmt(st, {
      stmt: (x) => (x.kind === "if" ? { ...x, cond: simplifyCond(x.cond) } : x),
    });
  const simplifyCond = (e: Expr): Expr =>
    e.kind === "binary" && (e.op === "&&" || e.op === "<" || e.op === ">=")
      ? B.binary(
          e.op,
          e.op === "&&" ? simplifyCond(e.a) : simplifyIndex(e.a),
          e.op === "&&" ? simplifyCond(e.b) : simplifyIndex(e.b),
        )
      : e;
  return simplifyConds(simplifyIndices(rec(stage, [])));
}

/**
 * Whether a stage is a copy into a shared buffer, as cacheRead makes it: its outer loop nest holds
 * one store, `cache[v0 + c0][v1 + c1]... = src[...]` (a load, perhaps converted), one loop variable
 * per index. Moved into a loop, such a copy need not be guarded where its new range leaves the old
 * one: an iteration past the old range writes an element of the cache that no reader reads (the
 * readers read what the old range covered, where the copy is injective), so it may copy anything,
 * and its load is clamped into the old range instead (shrinkStage's `clamp`). The threads of a
 * block then copy in lockstep, with no divergent branch, and the loads stay contiguous for
 * vectorized copies.
 */
export function isSharedCopy(stage: Stmt): boolean {
  const chain = chainOf(stage);
  const stores = storesIn(stage);
  if (stores.length !== 1 || blocksUnder(stage).length !== 1) return false;
  const st = stores[0]!;
  const value = st.value.kind === "cast" ? st.value.value : st.value;
  if (st.buffer.scope !== "shared" || value.kind !== "load" || loadsIn(value).length !== 1) return false;
  if (chain.some((l) => loadsIn(l.min).length || loadsIn(l.extent).length)) return false;
  const vars = st.indices.map((i) => {
    const a = toAffine(i);
    const v = a && a.terms.size === 1 ? [...a.terms][0]! : undefined;
    return v && v[1] === 1 ? v[0] : undefined;
  });
  return (
    vars.every((v) => v && chain.some((l) => l.loopVar === v)) &&
    new Set(vars).size === vars.length &&
    chain.every((l) => vars.includes(l.loopVar))
  );
}

function simplifyIndices(s: Stmt): Stmt {
  return rewriteStmt(s, {
    expr: (e) => (e.kind === "load" ? { ...e, indices: e.indices.map(simplifyIndex) } : e),
    stmt: (st) => (st.kind === "store" ? { ...st, indices: st.indices.map(simplifyIndex) } : st),
  });
}

/**
 * Removes `from` and puts `stage` into `loop`'s body: a producer just before the first statement
 * that reads its outputs, a consumer just after the last that writes its inputs (so stages moved
 * one after the other keep their order).
 */
export function moveStage(
  f: PrimFunc,
  from: Stmt,
  loop: For,
  stage: Stmt,
  at: "producer" | "consumer",
  bufs: ReadonlySet<Buffer>,
): PrimFunc {
  const kids = loop.body.kind === "seq" ? loop.body.body : [loop.body];
  const touches = (s: Stmt): boolean =>
    at === "producer"
      ? loadsIn(s).some((l) => bufs.has(l.buffer))
      : storesIn(s).some((x) => bufs.has(x.buffer));
  const k =
    at === "producer" ? kids.findIndex(touches) : kids.length - 1 - [...kids].reverse().findIndex(touches);
  const placed = [
    ...kids.slice(0, k + (at === "consumer" ? 1 : 0)),
    stage,
    ...kids.slice(k + (at === "consumer" ? 1 : 0)),
  ];
  const body = rewriteStmt(f.body, {
    preStmt: (s) => (s === from ? B.nop() : s === loop ? { ...loop, body: B.seq(placed) } : undefined),
    stmt: (s) => (s.kind === "seq" && s.body.some((x) => x.kind === "seq") ? B.seq(s.body) : s),
  });
  return { ...f, body };
}

/**
 * Shrinks an allocated buffer to the part one iteration of `loopName` touches, when every access
 * to it is inside that loop (threads of a block share a "shared" buffer, so its region spans them).
 * Dimensions whose extent would depend on a loop keep their whole range.
 */
export function compactUnder(f: PrimFunc, loopName: string, buf: Buffer): PrimFunc {
  if (isParam(f, buf)) return f;
  const { loop, path } = loopPath(f, loopName, "compact");
  if (accessesOf(f.body, buf, "any").length !== accessesOf(loop.body, buf, "any").length) return f;
  const relax = loopRanges(threadLoops(fors(path), buf.scope));
  const dims = accessIntervals(loop.body, buf, "any", relax);
  if (!dims) return f;
  const symbols = new Set(f.symbols);
  const region = dims.map((iv, d) => {
    const ext = iv && combine(combine(iv.hi, iv.lo, -1), constAffine(1));
    const ok = ext && [...ext.terms.keys()].every((v) => symbols.has(v)) && (ext.terms.size > 0 || ext.c > 0);
    return ok
      ? { min: fromAffine(iv.lo), extent: fromAffine(ext) }
      : { min: B.i32c(0), extent: buf.shape[d]! };
  });
  const same = region.every(
    (r, d) =>
      r.min.kind === "const" &&
      r.min.value === 0 &&
      toAffine(r.extent) &&
      constDiff(toAffine(r.extent)!, toAffine(buf.shape[d]!) ?? constAffine(NaN)) === 0,
  );
  if (same) return f;
  const small = B.buffer(
    buf.name,
    buf.dtype,
    region.map((r) => r.extent),
    buf.scope,
  );
  const shift = (idx: readonly Expr[]): Expr[] => idx.map((x, d) => simplifyIndex(B.sub(x, region[d]!.min)));
  const body = rewriteStmt(f.body, {
    expr: (e) => (e.kind === "load" && e.buffer === buf ? B.load(small, shift(e.indices)) : e),
    stmt: (s) =>
      s.kind === "store" && s.buffer === buf
        ? B.store(small, shift(s.indices), s.value)
        : s.kind === "allocate" && s.buffer === buf
          ? B.allocate(small, s.body)
          : s,
  });
  return { ...f, body };
}

/**
 * Finds the block's stage and the loop's nest as siblings (producer first in `a`). A stage
 * that is an allocation over several statements (the frontend scopes `const t = local(...)` over
 * the rest of its block) is not one stage: its allocation is hoisted around the shared sequence
 * so the statement holding the block becomes the stage.
 */
export function placeStage(
  f: PrimFunc,
  P: string,
  blockName: string,
  loopName: string,
  role: "producer" | "consumer",
): { func: PrimFunc; sib: Siblings; loop: For; lp: Path } {
  for (;;) {
    const { path: bp } = blockPath(f, blockName, P);
    const { loop, path: lp } = loopPath(f, loopName, P);
    if (bp.includes(loop))
      throw new ScheduleError(P, `block ${blockName} is already inside loop ${loopName}`);
    const sib =
      role === "producer"
        ? siblings(P, bp, lp, `block ${blockName} and loop ${loopName}`)
        : siblings(P, lp, bp, `loop ${loopName} and block ${blockName}`);
    const root = sib.body[role === "producer" ? sib.a : sib.b]!;
    if (root.kind !== "allocate" || root.body.kind !== "seq") return { func: f, sib, loop, lp };
    const seq = sib.common[sib.common.length - 1]!;
    const spliced = sib.body.flatMap((s) => (s === root ? [root.body] : [s]));
    f = replaceStmt(f, seq, B.allocate(root.buffer, B.seq(spliced)));
  }
}

/** Loop ranges that hold at a place: every enclosing loop ranges over its domain. */
export const envAt = (path: Path, extra: readonly For[] = []): Env => ({
  relax: loopRanges([...fors(path), ...extra]),
});

/**
 * Whether some read of `buf` under `s` may see a value written before `s`: each load needs an
 * earlier store that does not read the buffer and that, per iteration of the innermost loop
 * around both, covers what the load reads (an init before its update).
 */
export function readBeforeWritten(s: Stmt, buf: Buffer): boolean {
  const sites = accessesOf(s, buf, "any");
  const covers = (w: AccessSite, r: AccessSite): boolean => {
    let common = 0;
    while (common < w.loops.length && w.loops[common] === r.loops[common]) common++;
    const wEnv = { relax: loopRanges(w.loops.slice(common)), lets: w.lets };
    const rEnv = { relax: loopRanges(r.loops.slice(common)), lets: r.lets };
    return r.indices.every((idx, d) => {
      const wi = bounds(w.indices[d]!, wEnv);
      const ri = bounds(idx, rEnv);
      return !!wi && !!ri && (constDiff(ri.lo, wi.lo) ?? -1) >= 0 && (constDiff(ri.hi, wi.hi) ?? 1) <= 0;
    });
  };
  return sites.some(
    (r, k) =>
      r.kind === "load" &&
      !sites
        .slice(0, k)
        .some((w) => w.kind === "store" && !loadsIn(w.value!).some((l) => l.buffer === buf) && covers(w, r)),
  );
}

/**
 * Moves the guards `ifs` (all on the path from the function body down to `loop`, none with an
 * else) below `loop`: `if (c) { alloc t; init; for (ko) { body }; rest }` becomes
 * `alloc t; if (c) init; for (ko) { if (c) body }; if (c) rest`. The loop then runs in every
 * thread, so a stage shared by the threads of a block (a cooperative copy into shared memory) can
 * go inside it, outside the guard, where a barrier can follow it. A guard is a pure condition
 * (no loads), so testing it in each place computes the same; it cannot move below a loop whose
 * bounds, or a let whose value, read memory (the guard may be what keeps those reads in bounds).
 */
export function sinkGuards(f: PrimFunc, P: string, loop: For, ifs: ReadonlySet<Stmt>): PrimFunc {
  const outer = findPath(f, (s) => ifs.has(s));
  if (!outer) return f;
  const name = loop.loopVar.name;
  const onPath = new Set<Stmt>(findPath(f, (s) => s === loop) ?? []);
  const guard = (s: Stmt, conds: readonly Expr[]): Stmt =>
    conds.length
      ? B.ifThen(
          conds.reduce((x, y) => B.binary("&&", x, y)),
          s,
        )
      : s;
  const refuse = (conds: readonly Expr[], why: string): never => {
    throw new ScheduleError(
      P,
      `the guard ${conds.map(printExpr).join(" && ")} around loop ${name} depends on the threads that share the stage; it cannot move inside ${name}: ${why}`,
    );
  };
  const sink = (s: Stmt, conds: readonly Expr[]): Stmt => {
    if (s === loop) return { ...loop, body: guard(loop.body, conds) };
    switch (s.kind) {
      case "if": {
        if (ifs.has(s)) {
          if (s.else) refuse([s.cond], "it has an else branch");
          if (loadsIn(s.cond).length) refuse([s.cond], "it reads memory");
          return sink(s.then, [...conds, s.cond]);
        }
        const intoThen = onPath.has(s.then);
        const then = intoThen ? sink(s.then, conds) : guard(s.then, conds);
        const otherwise = s.else && (intoThen ? guard(s.else, conds) : sink(s.else, conds));
        return { ...s, then, ...(otherwise ? { else: otherwise } : {}) };
      }
      case "seq":
        return B.seq(s.body.map((b) => (onPath.has(b) ? sink(b, conds) : guard(b, conds))));
      case "allocate":
      case "block":
        return { ...s, body: sink(s.body, conds) };
      case "let":
        if (conds.length && loadsIn(s.value).length)
          refuse(conds, `the value of ${s.v.name}, computed on the way, reads memory`);
        return { ...s, body: sink(s.body, conds) };
      case "for":
        if (conds.length && (loadsIn(s.min).length || loadsIn(s.extent).length))
          refuse(conds, `the bounds of loop ${s.loopVar.name}, on the way, read memory`);
        return { ...s, body: sink(s.body, conds) };
      default:
        return guard(s, conds);
    }
  };
  const top = outer[outer.length - 1]!;
  return replaceStmt(f, top, sink(top, []));
}
