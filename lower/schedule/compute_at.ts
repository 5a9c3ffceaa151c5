/**
 * Moving stages: computeAt puts a producer's loop nest under a loop of its consumer, computing per
 * iteration only what that iteration reads; reverseComputeAt puts a consumer's nest under a loop
 * of its producer, consuming per iteration what that iteration wrote. Each refuses where the
 * move could change a value: other readers outside the loop, writes in between, a reduction that
 * would not be whole, a loop whose iterations do not hand over final values (see stage.ts for
 * what a stage is and how it shrinks). The inlining primitives of this family are in
 * compute_inline.ts; all four are registered here.
 */
import * as B from "../ir/build.ts";
import type { Buffer, Expr, For, PrimFunc, Stmt, Var } from "../ir/nodes.ts";
import { rewriteStmt, substitute } from "../ir/transform.ts";
import { accessesIn, dependsOn, describeAccess, loadsIn, storesIn } from "./analysis.ts";
import { ScheduleError } from "./errors.ts";
import { registerPrimitives, type PrimitiveResult } from "./registry.ts";
import {
  accessIntervals,
  accessesOf,
  constDiff,
  fromAffine,
  loopRanges,
  provablyLE,
  threadLoops,
  toAffine,
  type Env,
  type Interval,
} from "./region.ts";
import {
  chainOf,
  compactUnder,
  envAt,
  fors,
  inputsOf,
  isParam,
  isSharedCopy,
  moveStage,
  names,
  neededRanges,
  outputsOf,
  placeStage,
  readBeforeWritten,
  shrinkStage,
  sinkGuards,
  whoAccesses,
} from "./stage.ts";
import { computeInline, reverseComputeInline } from "./compute_inline.ts";

function computeAt(f: PrimFunc, blockName: string, loopName: string): PrimitiveResult {
  const P = "computeAt";
  f = sinkThreadGuards(P, f, blockName, loopName);
  const { func: g, sib, loop, lp } = placeStage(f, P, blockName, loopName, "producer");
  f = g;
  const stage = sib.body[sib.a]!;
  if (sib.a > sib.b)
    throw new ScheduleError(
      P,
      `block ${blockName} runs after loop ${loopName}: it cannot produce anything the loop reads`,
    );
  const outputs = outputsOf(stage);
  if (outputs.size === 0)
    throw new ScheduleError(P, `block ${blockName}'s nest writes no buffer that outlives it`);
  const readUnder = [...outputs].filter((b) => loadsIn(loop.body).some((l) => l.buffer === b));
  if (readUnder.length === 0)
    throw new ScheduleError(
      P,
      `computeAt into a non-ancestor: nothing under loop ${loopName} reads ${names(outputs)}, which block ${blockName} produces`,
    );
  const between = sib.body.slice(sib.a + 1, sib.b + 1);
  for (const w of outputs) {
    if (isParam(f, w))
      throw new ScheduleError(
        P,
        `block ${blockName} writes parameter ${w.name}, which must be written whole; computeAt would compute only what loop ${loopName} reads`,
      );
    const loadsOutside = accessesOf(f.body, w, "read").length - accessesOf(stage, w, "read").length;
    if (loadsOutside !== accessesOf(loop.body, w, "read").length) {
      const rest = rewriteStmt(f.body, { preStmt: (s) => (s === stage || s === loop ? B.nop() : undefined) });
      const other = whoAccesses(rest, w, "load") ?? "a statement elsewhere";
      throw new ScheduleError(
        P,
        `computeAt into a non-ancestor: ${w.name} is also read outside loop ${loopName}, at ${other}, which would see only what the loop needs`,
      );
    }
    checkWholeReduction(P, stage, w, blockName, loopName);
    if (accessesOf(f.body, w, "write").length !== accessesOf(stage, w, "write").length)
      throw new ScheduleError(
        P,
        `${w.name} is also written outside block ${blockName}'s nest; moving the nest would reorder the writes`,
      );
  }
  for (const x of inputsOf(stage)) {
    if (outputs.has(x)) continue;
    const writer = between.map((s) => whoAccesses(s, x, "store")).find((y) => y);
    if (writer)
      throw new ScheduleError(
        P,
        `block ${blockName} reads ${x.name}, which is written before or inside loop ${loopName}, at ${writer}`,
      );
  }
  const relax = (w: Buffer): Map<Var, { min: Expr; extent: Expr }> =>
    loopRanges(
      threadLoops(
        fors(lp).filter((l) => !sib.common.includes(l)),
        w.scope,
      ),
    );
  const wanted = new Map(readUnder.map((w) => [w, accessIntervals(loop.body, w, "read", relax(w))!]));
  const needed = neededRanges(stage, storesIn(stage), wanted, "stores");
  const moved = shrinkStage(stage, needed, envAt(lp, chainOf(stage)), { clamp: isSharedCopy(stage) });
  let out = moveStage(f, stage, loop, moved, "producer", outputs);
  for (const w of outputs) out = compactUnder(out, loopName, w);
  return { func: out };
}

/**
 * A stage that fills a shared buffer for the threads of a block (its region spans the threadIdx
 * loops around the target loop) runs in every thread, each doing its part once the copy loops are
 * bound (cooperative fetching). Guards between those thread loops and the target loop that depend
 * on the thread (split's tail guards: `if (i_0 * 8 + i_1 < m)`) would keep some threads from their
 * part and leave the barrier after the stage under thread-dependent control flow, so they move
 * inside the target loop, onto the statements the stage is not placed among (sinkGuards). The
 * other guards on the way move too where they can (a loop bound to threads later makes them
 * thread-dependent as well); the stage then also runs where they are false, which a copy into
 * shared memory may (its loads are clamped into bounds).
 */
function sinkThreadGuards(P: string, f: PrimFunc, blockName: string, loopName: string): PrimFunc {
  const { func: g, sib, loop, lp } = placeStage(f, P, blockName, loopName, "producer");
  if (sib.a > sib.b) return f;
  if (![...outputsOf(sib.body[sib.a]!)].some((b) => b.scope === "shared")) return f;
  const between = fors(lp).filter((l) => !sib.common.includes(l));
  const threads = threadLoops(between, "shared").map((l) => l.loopVar);
  const lets = new Map<Var, Expr>();
  const required = new Set<Stmt>();
  const optional = new Set<Stmt>();
  for (const s of lp.slice(sib.common.length)) {
    if (s.kind === "let") lets.set(s.v, substitute(s.value, lets));
    if (s.kind !== "if") continue;
    if (threads.some((t) => dependsOn(s.cond, t, lets))) required.add(s);
    else if (!s.else && loadsIn(s.cond).length === 0) optional.add(s);
  }
  if (required.size + optional.size === 0) return f;
  try {
    return sinkGuards(g, P, loop, new Set([...required, ...optional]));
  } catch (e) {
    // An optional guard that cannot move stays; the required ones must.
    if (!(e instanceof ScheduleError)) throw e;
    return required.size ? sinkGuards(g, P, loop, required) : f;
  }
}

/** A nest that accumulates into w must start the accumulation itself, or moving it recomputes wrongly. */
function checkWholeReduction(P: string, stage: Stmt, w: Buffer, blockName: string, loopName: string): void {
  if (!readBeforeWritten(stage, w)) return;
  const load = accessesIn(stage).find((a) => a.buffer === w && a.kind === "load")!;
  throw new ScheduleError(
    P,
    `block ${blockName}'s nest accumulates into ${w.name} (${describeAccess(load)}) but does not initialize it; the reduction cannot be computed whole inside loop ${loopName}`,
  );
}

function reverseComputeAt(f: PrimFunc, blockName: string, loopName: string): PrimitiveResult {
  const P = "reverseComputeAt";
  const { func: g, sib, loop, lp } = placeStage(f, P, blockName, loopName, "consumer");
  f = g;
  const producerRoot = sib.body[sib.a]!;
  const stage = sib.body[sib.b]!;
  if (sib.a > sib.b)
    throw new ScheduleError(
      P,
      `block ${blockName} runs before loop ${loopName}: it cannot consume what the loop produces`,
    );
  const produced = [...inputsOf(stage)].filter((b) => storesIn(loop.body).some((s) => s.buffer === b));
  if (produced.length === 0)
    throw new ScheduleError(P, `block ${blockName}'s nest reads nothing that loop ${loopName} writes`);
  const between = sib.body.slice(sib.a + 1, sib.b);
  for (const o of outputsOf(stage)) {
    const other = [producerRoot, ...between].map((s) => whoAccesses(s, o, "any")).find((x) => x);
    if (other)
      throw new ScheduleError(
        P,
        `block ${blockName} writes ${o.name}, which is also used before it, at ${other}`,
      );
  }
  for (const x of inputsOf(stage)) {
    const writers = produced.includes(x) ? between : [producerRoot, ...between];
    const writer = writers.map((s) => whoAccesses(s, x, "store")).find((y) => y);
    if (writer)
      throw new ScheduleError(
        P,
        `block ${blockName} reads ${x.name}, which is written before it, at ${writer}`,
      );
  }
  const nestLoops = fors(lp).filter((l) => !sib.common.includes(l));
  const wanted = new Map<Buffer, (Interval | undefined)[]>();
  for (const t of produced) {
    checkFinal(P, producerRoot, loop, t, loopName);
    const relax = loopRanges(threadLoops(nestLoops, t.scope));
    wanted.set(t, accessIntervals(loop.body, t, "write", relax)!);
  }
  const reads = loadsIn(stage).filter((l) => wanted.has(l.buffer));
  const needed = neededRanges(stage, reads, wanted, "loads");
  checkPartition(P, nestLoops, produced, stage, needed, blockName);
  checkCoverage(P, producerRoot, stage, produced, needed, envAt(sib.common), blockName);
  const moved = shrinkStage(stage, needed, envAt(lp, chainOf(stage)));
  // Every read of a produced buffer must fall inside what this iteration of the loop wrote.
  for (const t of produced) {
    const readIv = accessIntervals(moved, t, "read", loopRanges(threadLoops(nestLoops, t.scope)))!;
    wanted.get(t)!.forEach((w, d) => {
      const r = readIv[d];
      const ok = w && r && (constDiff(r.lo, w.lo) ?? -1) >= 0 && (constDiff(r.hi, w.hi) ?? 1) <= 0;
      if (!ok)
        throw new ScheduleError(
          P,
          `block ${blockName} reads ${t.name} (dimension ${d}) beyond what one iteration of loop ${loopName} writes`,
        );
    });
  }
  let out = moveStage(f, stage, loop, moved, "consumer", new Set(produced));
  for (const t of produced) out = compactUnder(out, loopName, t);
  return { func: out };
}

/** t's values must be final after each iteration of `loop`: no write to it follows the loop. */
function checkFinal(P: string, root: Stmt, loop: For, t: Buffer, loopName: string): void {
  let passed = false;
  let late: string | undefined;
  const visit = (s: Stmt): void => {
    if (s === loop) {
      passed = true;
      return;
    }
    if (passed && !late) late = whoAccesses(s, t, "store");
    if (late || passed) return;
    if (s.kind === "seq") s.body.forEach(visit);
    else if (s.kind === "if") [s.then, ...(s.else ? [s.else] : [])].forEach(visit);
    else if ("body" in s) visit(s.body as Stmt);
  };
  visit(root);
  if (late)
    throw new ScheduleError(
      P,
      `${t.name} is written again after loop ${loopName}, at ${late}; its values are not final inside the loop`,
    );
}

/**
 * Every loop from the shared sequence down to the target loop must hand each consumer iteration
 * to exactly one of its iterations: it writes disjoint slices of a produced buffer along a
 * dimension whose consumer loop follows it. A loop that revisits elements (a reduction) cannot.
 */
function checkPartition(
  P: string,
  nestLoops: readonly For[],
  produced: readonly Buffer[],
  stage: Stmt,
  needed: ReadonlyMap<Var, Interval>,
  blockName: string,
): void {
  const followed = (t: Buffer, d: number): boolean =>
    loadsIn(stage).some((l) => {
      if (l.buffer !== t) return false;
      const a = toAffine(l.indices[d]!);
      return !!a && [...a.terms.keys()].some((v) => needed.has(v));
    });
  for (const L of nestLoops) {
    const ok = produced.some((t) => {
      const ivs = accessIntervals(
        L.body,
        t,
        "write",
        loopRanges(threadLoops(nestLoops, t.scope).filter((x) => x !== L)),
      );
      return (ivs ?? []).some((iv, d) => {
        const ext = iv && constDiff(iv.hi, iv.lo);
        const coef = iv?.lo.terms.get(L.loopVar) ?? 0;
        return ext !== undefined && coef !== 0 && ext + 1 <= Math.abs(coef) && followed(t, d);
      });
    });
    if (!ok)
      throw new ScheduleError(
        P,
        `iterations of loop ${L.loopVar.name} do not write disjoint parts of ${names(produced)} that block ${blockName} follows (a reduction loop, or a dimension the block reads whole): the values are not final inside it`,
      );
  }
}

/** The producer must write everything the consumer's loops read over their original ranges. */
function checkCoverage(
  P: string,
  root: Stmt,
  stage: Stmt,
  produced: readonly Buffer[],
  needed: ReadonlyMap<Var, Interval>,
  env: Env,
  blockName: string,
): void {
  for (const l of chainOf(stage)) {
    if (!needed.has(l.loopVar)) continue;
    for (const t of produced) {
      const reads = accessesOf(stage, t, "read");
      const whole = accessIntervals(root, t, "write", env.relax)!;
      for (const r of reads)
        r.indices.forEach((idx, d) => {
          const a = toAffine(idx);
          if (!a || a.terms.get(l.loopVar) !== 1 || a.terms.size !== 1) return;
          const w = whole[d];
          const lo = B.add(l.min, B.i32c(a.c));
          const hi = B.add(B.add(l.min, l.extent), B.i32c(a.c - 1));
          if (!w || !provablyLE(fromAffine(w.lo), lo, env) || !provablyLE(hi, fromAffine(w.hi), env))
            throw new ScheduleError(
              P,
              `block ${blockName} reads ${t.name} over loop ${l.loopVar.name}'s whole range, more than the producer is shown to write`,
            );
        });
    }
  }
}

registerPrimitives({ computeAt, reverseComputeAt, computeInline, reverseComputeInline });
