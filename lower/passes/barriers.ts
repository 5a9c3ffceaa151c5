/**
 * Pass `barriers`: inserts `syncThreads()` so that no thread reads a shared buffer before the
 * other threads' writes to it are done, and no thread overwrites it while others may still read
 * the old contents — including across iterations of an enclosing loop (the next tile's fetch
 * must wait for the current tile's readers).
 *
 * Every thread runs the whole body (SPMD), so a barrier may only sit where all threads arrive
 * together: in uniform control flow (conditions and loop bounds that do not depend on the thread
 * index or on memory). Walking each statement list in order, the pass keeps the shared buffers
 * read and written since the last barrier; an access that conflicts with them (read after write,
 * write after read, write after write) gets a barrier before the statement, at the innermost
 * uniform point. A loop's body is walked until the state flowing around its back edge is stable.
 *
 * An atomic on a global buffer publishes what the block wrote to global memory before it (the
 * last block of a grid to finish reads the others' results): a barrier goes between the block's
 * global stores and the atomic.
 *
 * The analysis is conservative: it assumes any two threads may touch the same element. Inside
 * divergent code (a statement under a thread-dependent branch, treated as one unit) a shared
 * buffer may be written and accessed again only at the same index (each thread its own element)
 * or when the branch admits one thread only; otherwise the pass refuses, as it does for barriers
 * and warp shuffles that already sit in divergent code.
 */
import type { Buffer, Expr, For, PrimFunc, Stmt, Var } from "../ir/nodes.ts";
import { bufferCopies } from "../schedule/cache_read_write.ts";
import { barrier, buffer, isAsyncScope, isWarpCollective, seq } from "../ir/build.ts";
import { sameExpr } from "../ir/equal.ts";
import { printExpr } from "../ir/printer.ts";
import { atomicAccesses, walk } from "../ir/transform.ts";
import { LoweringError } from "./errors.ts";
import { DISJOINT_WRITES } from "./disjoint_writes.ts";
import { warpPrivateBuffers } from "./warp_private.ts";
import { requireLaunch } from "./launch.ts";
import { Uniformity } from "./uniform.ts";
import { threadAxisOf } from "./device_ops.ts";
import type { Target } from "./target.ts";

const P = "barriers";

interface Pending {
  readonly reads: ReadonlySet<Buffer>;
  readonly writes: ReadonlySet<Buffer>;
  /**
   * Shared buffers with asynchronous copies (copyAsync) in flight: their writes land at the
   * thread's waitAsync, so a barrier before it orders nothing; waitAsync makes them pending
   * writes again (a barrier goes between it and other threads' reads), and only waitAsync(0)
   * retires them.
   */
  readonly inFlight: ReadonlySet<Buffer>;
}
const EMPTY: Pending = { reads: new Set(), writes: new Set(), inFlight: new Set() };
const union = (a: Pending, b: Pending): Pending => ({
  reads: new Set([...a.reads, ...b.reads]),
  writes: new Set([...a.writes, ...b.writes]),
  inFlight: new Set([...a.inFlight, ...b.inFlight]),
});
const sameSet = (a: ReadonlySet<Buffer>, b: ReadonlySet<Buffer>): boolean =>
  a.size === b.size && [...b].every((x) => a.has(x));
const samePending = (a: Pending, b: Pending): boolean =>
  sameSet(a.reads, b.reads) && sameSet(a.writes, b.writes) && sameSet(a.inFlight, b.inFlight);

/**
 * Stands for every global buffer: stores to global memory write it and an atomic on a global
 * buffer reads it, so that the block's global writes are done (a barrier) before one thread's
 * atomic publishes them to other blocks (nodes.ts Atomic).
 */
const GLOBAL_WRITES = buffer("global memory", "u8", [], "global");

/** The shared-memory accesses of a statement (or expression), and its global writes and atomics. */
function sharedAccesses(n: Stmt | Expr): {
  reads: Set<Buffer>;
  writes: Set<Buffer>;
  inFlight: Set<Buffer>;
  list: { buffer: Buffer; index: Expr; write: boolean }[];
} {
  const out = {
    reads: new Set<Buffer>(),
    writes: new Set<Buffer>(),
    inFlight: new Set<Buffer>(),
    list: [] as { buffer: Buffer; index: Expr; write: boolean }[],
  };
  const access = (b: Buffer, indices: readonly Expr[], write: boolean) => {
    if (b.scope === "global" && write) out.writes.add(GLOBAL_WRITES);
    if (b.scope !== "shared") return;
    (write ? out.writes : out.reads).add(b);
    out.list.push({ buffer: b, index: indices[0]!, write });
  };
  walk(n, (x) => {
    // An asynchronous copy's write lands at the thread's waitAsync (Pending.inFlight), not here.
    if (x.kind === "store" && x.async) {
      out.inFlight.add(x.buffer);
      out.list.push({ buffer: x.buffer, index: x.indices[0]!, write: true });
    } else if (x.kind === "load" || x.kind === "store") access(x.buffer, x.indices, x.kind === "store");
    if (x.kind === "atomic") {
      if (x.buffer.scope === "global") out.reads.add(GLOBAL_WRITES);
      for (const a of atomicAccesses(x)) access(a.buffer, a.indices, a.write);
    }
  });
  return out;
}

/** The names of the buffers a loop double-buffers (lower/schedule doubleBuffer's annotation). */
function doubleBuffered(s: For): Set<string> {
  return new Set(bufferCopies(s.annotations).keys());
}

const without = (p: Pending, names: ReadonlySet<string>): Pending => ({
  reads: new Set([...p.reads].filter((b) => !names.has(b.name))),
  writes: new Set([...p.writes].filter((b) => !names.has(b.name))),
  inFlight: p.inFlight,
});

/**
 * Whether every iteration of `loop` but (possibly) the first runs a block barrier: one at the top
 * level of its body, or of a branch `if (v > min)` there (v the loop variable; a software-pipelined
 * loop's first iteration only loads).
 */
function barrierAfterFirst(body: Stmt, loop: For): boolean {
  switch (body.kind) {
    case "barrier":
      return body.scope === "shared";
    case "seq":
      return body.body.some((c) => barrierAfterFirst(c, loop));
    case "let":
    case "allocate":
    case "block":
      return barrierAfterFirst(body.body, loop);
    case "if": {
      const c = body.cond;
      const afterFirst =
        c.kind === "binary" && c.op === ">" && c.a === loop.loopVar && sameExpr(c.b, loop.min);
      return afterFirst && !body.else && barrierAfterFirst(body.then, loop);
    }
    default:
      return false;
  }
}

/** The buffers whose accesses in `a` conflict with the pending ones (empty: none). */
function conflicts(p: Pending, a: Pending): Buffer[] {
  const out = new Set<Buffer>();
  for (const b of a.reads) if (p.writes.has(b)) out.add(b);
  // Global stores are ordered only before an atomic (GLOBAL_WRITES), not among themselves.
  for (const b of a.writes) if (b !== GLOBAL_WRITES && (p.reads.has(b) || p.writes.has(b))) out.add(b);
  // An asynchronous copy must not overwrite what others may still read or write; against other
  // copies in flight a barrier would order nothing (they land at waits).
  for (const b of a.inFlight) if (p.reads.has(b) || p.writes.has(b)) out.add(b);
  return [...out];
}

class Sync {
  private readonly uniformity: Uniformity;
  private readonly threadAxes = new Map<Var, number>();

  /** Shared buffers each warp only touches its own part of (warp_private.ts): a warp barrier orders them. */
  private readonly warpPrivate: ReadonlySet<Buffer>;

  constructor(
    f: PrimFunc,
    private readonly block: readonly number[],
    target?: Target,
  ) {
    this.uniformity = new Uniformity(f);
    this.warpPrivate = target ? warpPrivateBuffers(f, target) : new Set();
  }

  private isUniform(e: Expr): boolean {
    return this.uniformity.isUniform(e);
  }

  walk(s: Stmt, pending: Pending): [Stmt, Pending] {
    switch (s.kind) {
      case "barrier":
        if (s.scope === "async_commit") return [s, pending];
        if (s.scope === "async_wait")
          return [
            s,
            {
              reads: pending.reads,
              writes: new Set([...pending.writes, ...pending.inFlight]),
              inFlight: s.pending === 0 ? new Set() : pending.inFlight,
            },
          ];
        return [s, { ...EMPTY, inFlight: pending.inFlight }];
      case "prefetch":
        return [s, pending];
      case "seq": {
        const out: Stmt[] = [];
        let p = pending;
        for (const c of s.body) {
          const [c2, p2] = this.walk(c, p);
          out.push(c2);
          p = p2;
        }
        return [seq(out), p];
      }
      case "allocate": {
        const [body, p] = this.walk(s.body, pending);
        return [{ ...s, body }, p];
      }
      case "block": {
        const [body, p] = this.walk(s.body, pending);
        return [{ ...s, body }, p];
      }
      case "let": {
        this.uniformity.bind(s.v, s.value);
        const axis = threadAxisOf(s.value);
        if (axis !== undefined) this.threadAxes.set(s.v, axis);
        const [pre, p0] = this.leaf(s.value, pending);
        const [body, p] = this.walk(s.body, p0);
        return [seq([...pre, { ...s, body }]), p];
      }
      case "if":
        if (!this.isUniform(s.cond)) return this.divergent(s, pending);
        {
          const [then, pt] = this.walk(s.then, pending);
          const [otherwise, pe] = s.else ? this.walk(s.else, pending) : [undefined, pending];
          return [{ ...s, then, ...(otherwise ? { else: otherwise } : {}) }, union(pt, pe)];
        }
      case "for": {
        if (!this.isUniform(s.min) || !this.isUniform(s.extent)) return this.divergent(s, pending);
        this.uniformity.bind(s.loopVar, s.min, s.extent);
        // The lanes of a vectorized loop run at once, each at its own elements (vectorize.ts): one access.
        if (s.forKind === "vectorized") return this.leafStmt(s, pending);
        // So are the steps of a copy that write different elements (disjoint_writes.ts).
        if (s.annotations[DISJOINT_WRITES]) return this.leafStmt(s, pending);
        // A conflict with what precedes the loop is settled once, before it, not in every iteration.
        const clash = conflicts(pending, sharedAccesses(s.body));
        const pre = clash.length ? [this.barrierFor(clash)] : [];
        const before = pre.length ? this.after(pre[0]!, pending, EMPTY) : pending;
        // Walk the body until what flows around the back edge is covered by what it started with.
        const doubled = doubleBuffered(s);
        let entry = before;
        for (;;) {
          const [body, end] = this.walk(s.body, entry);
          // The next iteration touches the other half of a double buffer (doubleBuffer): what this
          // one leaves pending there conflicts only with the iteration after, and a block barrier
          // that every iteration but the first runs orders it before that one.
          const carried = doubled.size && barrierAfterFirst(body, s) ? without(end, doubled) : end;
          const next = union(entry, carried);
          if (samePending(entry, next)) return [seq([...pre, { ...s, body }]), union(before, end)];
          entry = next;
        }
      }
      case "store":
      case "atomic":
        return this.leafStmt(s, pending);
    }
  }

  /** A barrier before `n` when its accesses conflict with the pending ones. */
  private leaf(n: Stmt | Expr, pending: Pending): [Stmt[], Pending] {
    const a = sharedAccesses(n);
    const clash = conflicts(pending, a);
    if (clash.length) {
      const b = this.barrierFor(clash);
      return [[b], this.after(b, pending, a)];
    }
    return [[], union(pending, a)];
  }

  /** A warp barrier when every conflicting buffer is private to each warp, else a block barrier. */
  private barrierFor(clash: readonly Buffer[]): Stmt {
    return barrier(clash.every((b) => this.warpPrivate.has(b)) ? "warp" : "shared");
  }

  /** What is still pending after barrier `b` and then the accesses `a`. */
  private after(b: Stmt, pending: Pending, a: Pending): Pending {
    const inFlight = new Set([...pending.inFlight, ...a.inFlight]);
    if (b.kind !== "barrier" || b.scope === "shared")
      return { reads: new Set(a.reads), writes: new Set(a.writes), inFlight };
    // A warp barrier orders the warp-private buffers only; the others stay pending.
    const keep = (s: ReadonlySet<Buffer>) => [...s].filter((x) => !this.warpPrivate.has(x));
    return {
      reads: new Set([...keep(pending.reads), ...a.reads]),
      writes: new Set([...keep(pending.writes), ...a.writes]),
      inFlight,
    };
  }

  private leafStmt(s: Stmt, pending: Pending): [Stmt, Pending] {
    const [pre, p] = this.leaf(s, pending);
    return [seq([...pre, s]), p];
  }

  /** A statement under thread-dependent control flow: one unit, checked for what cannot be synchronised. */
  private divergent(s: Stmt, pending: Pending): [Stmt, Pending] {
    const where =
      s.kind === "if"
        ? `if (${printExpr(s.cond)})`
        : s.kind === "for"
          ? `loop ${s.loopVar.name} (bounds ${printExpr(s.min)}, ${printExpr(s.extent)})`
          : s.kind;
    walk(s, (x) => {
      if (x.kind === "barrier" && !isAsyncScope(x.scope))
        throw new LoweringError(
          P,
          `a barrier sits under ${where}, which depends on the thread index: not every thread would reach it`,
        );
      if (x.kind === "call" && isWarpCollective(x.name))
        throw new LoweringError(
          P,
          `a warp-wide ${x.name === "shfl_xor" ? "shuffle" : "tensor-core product"} sits under ${where}, which depends on the thread index: every lane of the warp must run it`,
        );
    });
    if (!(s.kind === "if" && this.singleThread(s.cond))) {
      const { list } = sharedAccesses(s);
      for (const w of list.filter((x) => x.write))
        for (const o of list)
          if (o !== w && o.buffer === w.buffer && !sameExpr(o.index, w.index))
            throw new LoweringError(
              P,
              `under ${where} (thread-dependent), shared buffer ${w.buffer.name} is written at [${printExpr(w.index)}] and ${o.write ? "written" : "read"} at [${printExpr(o.index)}]; other threads' accesses cannot be ordered by a barrier there`,
            );
    }
    return this.leafStmt(s, pending);
  }

  /** Whether a condition admits one thread of the block (tx == c && ty == c' ... on every used axis). */
  private singleThread(cond: Expr): boolean {
    const pinned = new Set<number>();
    const visit = (c: Expr): void => {
      if (c.kind === "binary" && c.op === "&&") return (visit(c.a), visit(c.b));
      if (c.kind !== "binary" || c.op !== "==" || c.b.kind !== "const") return;
      const x = c.a;
      const axis = x.kind === "var" ? this.threadAxes.get(x) : threadAxisOf(x);
      if (axis !== undefined) pinned.add(axis);
    };
    visit(cond);
    return this.block.every((b, axis) => b === 1 || pinned.has(axis));
  }
}

export function barriersPass(f: PrimFunc, target?: Target): PrimFunc {
  const launch = requireLaunch(f, P);
  const [body] = new Sync(f, launch.block, target).walk(f.body, EMPTY);
  return { ...f, body };
}
