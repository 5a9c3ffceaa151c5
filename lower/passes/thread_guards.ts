/**
 * Pass `thread_guards` (tail handling): every loop bound to a thread axis becomes a `let` of the
 * thread (or block) index, and a loop narrower than the launch along its axis runs under a guard:
 *
 *     for (let tx = 0; tx < 40; tx++) { body }  // threadIdx.x, block [256, 1, 1]
 *   becomes
 *     const tx = thread_id(0);
 *     if (tx < 40) { body }
 *
 * Guards for extents that do not divide evenly are already in the body (split inserts them); this
 * pass adds those the launch shape makes necessary. After it, no thread loops remain.
 *
 * A guard that depends on the thread index must not hide a cross-thread combination (the blocks
 * cross_thread_reduction marks `all_threads`): every thread has to reach its shuffles and
 * barriers. Such a guard is pushed inside, onto the statements around the combination:
 *
 *     if (row < m) { init; partials; ALLREDUCE; combine; rest }
 *   becomes
 *     const cond = row < m;
 *     if (cond) { init }  partials-under-cond  ALLREDUCE  if (cond) { combine }  if (cond) { rest }
 *
 * A thread outside the guard keeps its partial at the identity, so it adds nothing. Lets that
 * load memory read it only where the guard holds (`select(cond, value, 0)`).
 */
import type { Expr, PrimFunc, Stmt, Var } from "../ir/nodes.ts";
import { add, binary, constant, ifThen, letStmt, nop, select, seq, unary, variable } from "../ir/build.ts";
import { sameExpr } from "../ir/equal.ts";
import { printExpr } from "../ir/printer.ts";
import { hasLoad, rewriteStmt, someNode } from "../ir/transform.ts";
import { namesIn } from "../schedule/state.ts";
import { ALL_THREADS, blockIndex, threadIndex } from "./device_ops.ts";
import { LoweringError } from "./errors.ts";
import { AXIS_OF, isBlockTag, requireLaunch } from "./launch.ts";
import type { Target } from "./target.ts";
import { Uniformity } from "./uniform.ts";

const P = "thread_guards";

const hasAllThreads = (s: Stmt): boolean =>
  someNode(s, (n) => n.kind === "block" && Boolean(n.annotations?.[ALL_THREADS]));

/** s with the guard `c` pushed onto every statement but the all-threads blocks. */
function predicate(s: Stmt, c: Var): Stmt {
  if (!hasAllThreads(s)) return ifThen(c, s);
  switch (s.kind) {
    case "block":
      return s.annotations?.[ALL_THREADS] ? s : { ...s, body: predicate(s.body, c) };
    case "seq":
      return seq(s.body.map((b) => predicate(b, c)));
    case "allocate":
      return { ...s, body: predicate(s.body, c) };
    case "let": {
      const value = hasLoad(s.value) ? select(c, s.value, constant(0, s.value.dtype)) : s.value;
      return { ...s, value, body: predicate(s.body, c) };
    }
    case "for":
      if (hasLoad(s.min) || hasLoad(s.extent))
        throw new LoweringError(
          P,
          `loop ${s.loopVar.name} has bounds read from memory and holds a cross-thread reduction under a thread-dependent guard`,
        );
      return { ...s, body: predicate(s.body, c) };
    case "if": {
      const cond = hasLoad(s.cond) ? select(c, s.cond, constant(0, "bool")) : s.cond;
      return { ...s, cond, then: predicate(s.then, c), ...(s.else ? { else: predicate(s.else, c) } : {}) };
    }
    default:
      return ifThen(c, s);
  }
}

/** Pushes thread-dependent guards off the all-threads blocks they enclose. */
function liftSyncs(f: PrimFunc, body: Stmt): Stmt {
  const u = new Uniformity(f);
  const used = namesIn(f);
  const fresh = (): Var => {
    let name = "cond";
    for (let n = 1; used.has(name); n++) name = `cond_${n}`;
    used.add(name);
    return variable(name, "bool");
  };
  const visit = (s: Stmt): Stmt => {
    switch (s.kind) {
      case "let":
        u.bind(s.v, s.value);
        return { ...s, body: visit(s.body) };
      case "for":
        u.bind(s.loopVar, s.min, s.extent);
        return { ...s, body: visit(s.body) };
      case "if": {
        const then = visit(s.then);
        const otherwise = s.else ? visit(s.else) : undefined;
        if (u.isUniform(s.cond) || !(hasAllThreads(then) || (otherwise && hasAllThreads(otherwise))))
          return { ...s, then, ...(otherwise ? { else: otherwise } : {}) };
        if (otherwise && hasAllThreads(otherwise))
          throw new LoweringError(
            P,
            `the else branch of if (${printExpr(s.cond)}), which depends on the thread index, holds a cross-thread reduction`,
          );
        const c = fresh();
        return letStmt(
          c,
          s.cond,
          seq([predicate(then, c), otherwise ? ifThen(unary("not", c), otherwise) : nop()]),
        );
      }
      case "seq":
        return seq(s.body.map(visit));
      case "block":
      case "allocate":
        return { ...s, body: visit(s.body) };
      default:
        return s;
    }
  };
  return visit(body);
}

export function threadGuardsPass(f: PrimFunc, _target?: Target): PrimFunc {
  const launch = requireLaunch(f, P);
  const body = rewriteStmt(f.body, {
    stmt: (s): Stmt => {
      if (s.kind !== "for" || s.forKind !== "thread" || !s.thread) return s;
      const axis = AXIS_OF[s.thread];
      const isBlock = isBlockTag(s.thread);
      const id = isBlock ? blockIndex(axis) : threadIndex(axis);
      const full: Expr = isBlock ? launch.grid[axis] : constant(launch.block[axis], "i32");
      const body = sameExpr(s.extent, full)
        ? s.body
        : ifThen(binary("<", s.loopVar, add(s.min, s.extent)), s.body);
      return letStmt(s.loopVar, add(s.min, id), body);
    },
  });
  return { ...f, body: liftSyncs(f, body) };
}
