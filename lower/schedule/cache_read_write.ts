/**
 * Caches and storage: cacheRead, cacheWrite, setScope, storageAlign, doubleBuffer.
 *
 * A cache is a new buffer of the original's shape in a faster scope, with a copy block between
 * it and the original; computeAt / reverseComputeAt then move the copy next to its use, which
 * compacts the cache to the tile one iteration touches (compute_at.ts).
 */
import * as B from "../ir/build.ts";
import type { Allocate, Buffer, Expr, For, PrimFunc, Scope, Stmt, Var } from "../ir/nodes.ts";
import { printExpr } from "../ir/printer.ts";
import { replaceBuffers, rewriteStmt, someNode, walk } from "../ir/transform.ts";
import { allocatedIn, loadsIn, storesIn } from "./analysis.ts";
import { ScheduleError } from "./errors.ts";
import { registerPrimitives, type PrimitiveResult } from "./registry.ts";
import { blockPath, freshName, loopPath, namesIn, replaceStmt, type Path } from "./state.ts";
import {
  accessesOf,
  accessIntervals,
  accessRegion,
  bounds,
  constDiff,
  intervalToRange,
  loopRanges,
  simplifyIndex,
  type Interval,
  type Region,
  freeOf,
  toAffine,
  type Range,
} from "./region.ts";
import { readBeforeWritten } from "./stage.ts";

const CACHE_SCOPES: readonly string[] = ["shared", "local"];

/** A buffer by name: a parameter, or an allocation (with its node). */
export function findBuffer(f: PrimFunc, name: string, P: string): { buffer: Buffer; alloc?: Allocate } {
  for (const p of f.params) if (p.kind === "buffer" && p.buffer.name === name) return { buffer: p.buffer };
  let alloc: Allocate | undefined;
  walk(f.body, (n) => {
    if (alloc) return false;
    if (n.kind === "allocate" && n.buffer.name === name) alloc = n;
    return undefined;
  });
  if (!alloc) throw new ScheduleError(P, `no buffer named ${name} in ${f.name}`);
  return { buffer: alloc.buffer, alloc };
}

function checkScope(P: string, scope: unknown, allowed: readonly string[]): asserts scope is Scope {
  if (typeof scope !== "string" || !allowed.includes(scope))
    throw new ScheduleError(P, `scope ${JSON.stringify(scope)} is not one of ${allowed.join(", ")}`);
}

/** Allocates `cache` next to `buffer`: inside its allocation, or around the body for a parameter. */
function allocateBeside(body: Stmt, buffer: Buffer, alloc: Allocate | undefined, cache: Buffer): Stmt {
  if (!alloc) return B.allocate(cache, body);
  return rewriteStmt(body, {
    preStmt: (s) =>
      s.kind === "allocate" && s.buffer === buffer
        ? B.allocate(buffer, B.allocate(cache, s.body))
        : undefined,
  });
}

/** A block copying `region` of `from` into `to`, over fresh loops ax0, ax1, ... */
function copyNest(f: PrimFunc, name: string, from: Buffer, to: Buffer, region: Region): Stmt {
  const used = namesIn(f);
  const vars: Var[] = region.map((_, d) => {
    let n = `ax${d}`;
    for (let k = 1; used.has(n); k++) n = `ax${d}_${k}`;
    used.add(n);
    return B.variable(n);
  });
  const idx = region.map((r, d) => simplifyIndex(B.add(vars[d]!, r.min)));
  let nest: Stmt = B.block(name, B.store(to, idx, B.load(from, idx)));
  for (let d = region.length - 1; d >= 0; d--) nest = B.forLoop(vars[d]!, B.i32c(0), region[d]!.extent, nest);
  return nest;
}

function cacheRead(f: PrimFunc, blockName: string, bufferName: string, scope: string): PrimitiveResult {
  const P = "cacheRead";
  checkScope(P, scope, CACHE_SCOPES);
  const { block, path } = blockPath(f, blockName, P);
  const { buffer, alloc } = findBuffer(f, bufferName, P);
  if (!loadsIn(block.body).some((l) => l.buffer === buffer))
    throw new ScheduleError(P, `block ${blockName} does not read ${bufferName}`);
  if (storesIn(block.body).some((s) => s.buffer === buffer))
    throw new ScheduleError(P, `block ${blockName} also writes ${bufferName}; cache it with cacheWrite`);
  // The copy goes before the outermost loop around the block in which the buffer does not change.
  const loops = path.filter((s): s is For => s.kind === "for");
  const at: Stmt =
    loops.find((l) => !storesIn(l).some((s) => s.buffer === buffer) && !allocatedIn(l).has(buffer)) ?? block;
  const inner = path.slice(path.indexOf(at));
  const region = blockRegion(block.body, buffer, inner, "read");
  const name = freshName(f, `${bufferName}_${scope}`);
  const cache = B.buffer(name, buffer.dtype, buffer.shape, scope);
  const copy = copyNest(f, name, buffer, cache, region);
  const redirected = replaceLoads(block.body, buffer, cache);
  const body = rewriteStmt(f.body, {
    preStmt: (s) =>
      s === at
        ? B.seq([
            copy,
            rewriteStmt(at, { preStmt: (x) => (x === block ? { ...block, body: redirected } : undefined) }),
          ])
        : undefined,
  });
  return { func: { ...f, body: allocateBeside(body, buffer, alloc, cache) }, result: name };
}

function replaceLoads(s: Stmt, from: Buffer, to: Buffer): Stmt {
  return rewriteStmt(s, {
    expr: (e) => (e.kind === "load" && e.buffer === from ? B.load(to, e.indices) : e),
  });
}

/** The region a statement under `path` (from the relaxed statement down) touches, loops and lets on the path included. */
function blockRegion(s: Stmt, buffer: Buffer, path: Path, access: "read" | "write"): Region {
  const loops = path.filter((x): x is For => x.kind === "for");
  const lets = new Map(path.flatMap((x) => (x.kind === "let" ? [[x.v, x.value] as const] : [])));
  return accessRegion(s, buffer, access, loopRanges(loops), lets)!;
}

function cacheWrite(f: PrimFunc, blockName: string, bufferName: string, scope: string): PrimitiveResult {
  const P = "cacheWrite";
  checkScope(P, scope, CACHE_SCOPES);
  const { block, path } = blockPath(f, blockName, P);
  const { buffer, alloc } = findBuffer(f, bufferName, P);
  if (!storesIn(block.body).some((s) => s.buffer === buffer))
    throw new ScheduleError(P, `block ${blockName} does not write ${bufferName}`);
  // Every access in the block's outermost loop goes to the cache; the copy back follows the loop.
  const nest: Stmt = path.find((s) => s.kind === "for") ?? block;
  const where = nest === block ? `block ${blockName}` : `loop ${(nest as For).loopVar.name}`;
  if (allocatedIn(nest).has(buffer)) throw new ScheduleError(P, `${bufferName} is allocated inside ${where}`);
  if (underCondition(nest, buffer))
    throw new ScheduleError(
      P,
      `${bufferName} is written under a condition inside ${where}; the copy back could copy unwritten elements`,
    );
  const region = writtenRegion(P, nest, buffer, where);
  checkInitialized(P, nest, buffer, where);
  const name = freshName(f, `${bufferName}_${scope}`);
  const cache = B.buffer(name, buffer.dtype, buffer.shape, scope);
  const back = copyNest(f, name, cache, buffer, region.map(intervalToRange));
  const body = rewriteStmt(f.body, {
    preStmt: (s) =>
      s === nest ? B.seq([replaceBuffers(nest, new Map([[buffer, cache]])), back]) : undefined,
  });
  return { func: { ...f, body: allocateBeside(body, buffer, alloc, cache) }, result: name };
}

function underCondition(s: Stmt, buffer: Buffer): boolean {
  return someNode(s, (n) => n.kind === "if" && storesIn(n).some((st) => st.buffer === buffer));
}

/** The written region, which the copy back reads whole: one store must cover it without gaps. */
function writtenRegion(P: string, nest: Stmt, buffer: Buffer, where: string): Interval[] {
  const dims = accessIntervals(nest, buffer, "write");
  if (!dims || dims.some((d) => !d))
    throw new ScheduleError(P, `cannot bound the indices ${buffer.name} is written at inside ${where}`);
  const all = dims as Interval[];
  const covering = accessesOf(nest, buffer, "write").some(({ indices, loops }) => {
    const relax = loopRanges(loops);
    return indices.every((idx, d) => {
      const iv = bounds(idx, { relax });
      return (
        iv &&
        constDiff(iv.lo, all[d]!.lo) === 0 &&
        constDiff(iv.hi, all[d]!.hi) === 0 &&
        isGapFree(idx, relax)
      );
    });
  });
  if (!covering)
    throw new ScheduleError(
      P,
      `no single store covers what ${where} writes of ${buffer.name} without gaps; the copy back would copy unwritten elements`,
    );
  return all;
}

/** Reads inside the nest must see values written inside it: the cache starts uninitialized. */
function checkInitialized(P: string, nest: Stmt, buffer: Buffer, where: string): void {
  if (readBeforeWritten(nest, buffer))
    throw new ScheduleError(
      P,
      `${where} reads ${buffer.name} before writing it there; the cache would start uninitialized (initialize ${buffer.name} inside the same nest)`,
    );
}

/**
 * Whether an index takes every value between its bounds as the relaxed loops range: an affine
 * sum whose coefficients, smallest first, never skip past what the smaller terms reach (the
 * mixed-radix shape `io * 3 + ii` with ii < 3 that tiling makes).
 */
export function isGapFree(e: Expr, relax: ReadonlyMap<Var, Range>): boolean {
  const a = toAffine(e);
  if (!a) return false;
  const terms = [...a.terms]
    .filter(([v]) => relax.has(v))
    .map(([v, c]) => ({ c: Math.abs(c), range: relax.get(v)! }))
    .sort((x, y) => x.c - y.c);
  let reach = 0;
  for (const t of terms) {
    if (t.c > reach + 1 || !freeOf(t.range.min, new Set(relax.keys()))) return false;
    if (t.range.extent.kind !== "const") return t === terms[terms.length - 1];
    reach += t.c * (t.range.extent.value - 1);
  }
  return true;
}

function setScope(f: PrimFunc, bufferName: string, scope: string): PrimitiveResult {
  const P = "setScope";
  checkScope(P, scope, ["global", "shared", "local"]);
  const { buffer, alloc } = findBuffer(f, bufferName, P);
  if (!alloc) throw new ScheduleError(P, `${bufferName} is a parameter: global params cannot change scope`);
  if (buffer.scope === scope) return { func: f };
  const moved = B.buffer(buffer.name, buffer.dtype, buffer.shape, scope, buffer.allocShape);
  return { func: { ...f, body: replaceBuffers(f.body, new Map([[buffer, moved]])) } };
}

/**
 * Pads the allocated extent of dimension axis + 1 so the stride of `axis` (the product of the
 * allocated extents inside it) is congruent to offset modulo factor, as TVM's storage_align:
 * rows of a shared tile then start on different banks.
 */
function storageAlign(
  f: PrimFunc,
  bufferName: string,
  axis: number,
  factor: number,
  offset: number,
): PrimitiveResult {
  const P = "storageAlign";
  const { buffer, alloc } = findBuffer(f, bufferName, P);
  if (!alloc) throw new ScheduleError(P, `${bufferName} is a parameter: its layout belongs to the caller`);
  const rank = buffer.shape.length;
  if (!Number.isInteger(axis) || axis < 0 || axis >= rank)
    throw new ScheduleError(P, `${bufferName} has ${rank} dimensions; axis ${axis} is not one of them`);
  if (axis === rank - 1)
    throw new ScheduleError(P, `axis ${axis} is the last dimension of ${bufferName}: its stride is always 1`);
  if (!Number.isInteger(factor) || factor <= 0)
    throw new ScheduleError(P, `factor ${factor} is not a positive integer`);
  if (!Number.isInteger(offset) || offset < 0 || offset >= factor)
    throw new ScheduleError(P, `offset ${offset} is not in [0, ${factor})`);
  const dims = (buffer.allocShape ?? buffer.shape).map((d) => (d.kind === "const" ? d.value : undefined));
  if (dims.some((d) => d === undefined))
    throw new ScheduleError(P, `${bufferName} has a symbolic extent; storageAlign needs static extents`);
  const ext = dims as number[];
  const inner = ext.slice(axis + 2).reduce((a, b) => a * b, 1);
  let pad = 0;
  while (pad < factor && ((ext[axis + 1]! + pad) * inner) % factor !== offset) pad++;
  if (pad === factor)
    throw new ScheduleError(
      P,
      `no padding of dimension ${axis + 1} makes ${bufferName}'s stride ${offset} modulo ${factor}`,
    );
  if (pad === 0) return { func: f };
  const allocShape: Expr[] = ext.map((e, d) => B.i32c(d === axis + 1 ? e + pad : e));
  const aligned = B.buffer(buffer.name, buffer.dtype, buffer.shape, buffer.scope, allocShape);
  return { func: { ...f, body: replaceBuffers(f.body, new Map([[buffer, aligned]])) } };
}

/**
 * The loop annotation doubleBuffer leaves, one key per buffer: `double_buffer:<name>`, its value
 * the number of copies (true: 2, as annotated before copies could be more). The barriers pass
 * (lower/passes/barriers.ts) reads it: iterations i and i + 1 of the loop touch different copies of
 * the buffer, so only a barrier inside the body orders iteration i's accesses before iteration
 * i + copies'. The LLVM renderer's wgmma pipeline (backends/llvm/render-wgmma.ts) reads the count:
 * with three copies, products reading one may still run past the next iteration's barrier.
 */
export const DOUBLE_BUFFER_KEY = "double_buffer:";

/** The copies of each buffer a loop's doubleBuffer annotation names (name to count). */
export function bufferCopies(annotations: Readonly<Record<string, unknown>>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [k, v] of Object.entries(annotations))
    if (k.startsWith(DOUBLE_BUFFER_KEY) && (v === true || typeof v === "number"))
      out.set(k.slice(DOUBLE_BUFFER_KEY.length), v === true ? 2 : v);
  return out;
}

/**
 * Doubles a shared buffer written and read inside a loop, as TVM's double_buffer: iteration i
 * uses half i & 1 (a new first dimension of 2), so a thread may fill the next iteration's half
 * while others still read this one. In a software-pipelined loop (stage i staged, then used, in
 * iteration i) that removes the barrier before each stage's writes; the barrier between a stage's
 * writes and its reads stays. Every access to the buffer must be inside the loop.
 *
 * `buffers` copies (3 or more) instead of 2: iteration i uses copy i % buffers. Plain loads and
 * stores gain nothing from a third copy; asynchronous readers do (Hopper's wgmma products, which
 * may then keep running while the next stage is staged past a barrier).
 */
function doubleBuffer(f: PrimFunc, bufferName: string, loopName: string, buffers = 2): PrimitiveResult {
  const P = "doubleBuffer";
  if (!Number.isInteger(buffers) || buffers < 2 || buffers > 8)
    throw new ScheduleError(P, `buffers must be an integer from 2 to 8; got ${buffers}`);
  const { buffer, alloc } = findBuffer(f, bufferName, P);
  if (!alloc)
    throw new ScheduleError(P, `${bufferName} is a parameter: only buffers the kernel allocates can double`);
  if (buffer.scope !== "shared")
    throw new ScheduleError(
      P,
      `${bufferName} is ${buffer.scope}; doubleBuffer is for shared buffers, which threads share across iterations`,
    );
  const { loop, path } = loopPath(f, loopName, P);
  if (!path.includes(alloc))
    throw new ScheduleError(
      P,
      `loop ${loopName} is not inside ${bufferName}'s allocation: allocate the buffer outside the loop`,
    );
  if (loop.forKind === "thread" || loop.forKind === "vectorized" || loop.forKind === "parallel")
    throw new ScheduleError(
      P,
      `loop ${loopName} is ${loop.forKind}; double buffering alternates along a serial loop`,
    );
  const count = (n: Stmt) => {
    let c = 0;
    walk(n, (x) => {
      if ((x.kind === "load" || x.kind === "store") && x.buffer === buffer) c++;
    });
    return c;
  };
  const inside = count(loop.body);
  if (inside === 0) throw new ScheduleError(P, `loop ${loopName} does not access ${bufferName}`);
  if (count(alloc.body) !== inside)
    throw new ScheduleError(
      P,
      `${bufferName} is also accessed outside loop ${loopName}; every access must be inside it so that each iteration has its half`,
    );
  const doubled = B.buffer(
    buffer.name,
    buffer.dtype,
    [B.i32c(buffers), ...buffer.shape],
    buffer.scope,
    buffer.allocShape ? [B.i32c(buffers), ...buffer.allocShape] : undefined,
  );
  const powerOfTwo = (buffers & (buffers - 1)) === 0;
  if (!powerOfTwo && !(loop.min.kind === "const" && loop.min.value >= 0))
    throw new ScheduleError(
      P,
      `loop ${loopName} starts at ${printExpr(loop.min)}; ${buffers} copies are indexed by ${loopName} % ${buffers}, which needs a loop from a constant 0 or more (or a power-of-two count of copies)`,
    );
  const copy = powerOfTwo
    ? B.binary("&", loop.loopVar, B.i32c(buffers - 1))
    : // Unsigned (the loop counts from 0 up), so the index's range is known to the backends.
      B.cast("i32", B.binary("%", B.cast("u32", loop.loopVar), B.constant(buffers, "u32")));
  const body = rewriteStmt(loop.body, {
    expr: (e) =>
      e.kind === "load" && e.buffer === buffer ? { ...e, buffer: doubled, indices: [copy, ...e.indices] } : e,
    stmt: (st) =>
      st.kind === "store" && st.buffer === buffer
        ? { ...st, buffer: doubled, indices: [copy, ...st.indices] }
        : st,
  });
  const annotated: Stmt = {
    ...loop,
    body,
    annotations: { ...loop.annotations, [DOUBLE_BUFFER_KEY + buffer.name]: buffers === 2 ? true : buffers },
  };
  const inAlloc = replaceStmt({ ...f, body: alloc.body }, loop, annotated).body;
  return { func: replaceStmt(f, alloc, { ...alloc, buffer: doubled, body: inAlloc }) };
}

registerPrimitives({ cacheRead, cacheWrite, setScope, storageAlign, doubleBuffer });
