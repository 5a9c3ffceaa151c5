/**
 * Loop kinds and annotations: bind, vectorize, unroll, parallel, annotate. Binding, vectorizing
 * and parallelizing run a loop's iterations at once, so each checks that no iteration depends on
 * another (dependence.ts: carriedDependences); unroll only changes how the code is emitted.
 */
import type { Block, Buffer, Expr, For, PrimFunc, ThreadTag, Var } from "../ir/nodes.ts";
import { add, constant, isConst, variable } from "../ir/build.ts";
import { collectVars, substitute, walk } from "../ir/transform.ts";
import { sameExpr } from "../ir/equal.ts";
import { printExpr } from "../ir/printer.ts";
import {
  CROSS_THREAD_REDUCTION,
  accessesIn,
  affineCoefficient,
  allocatedIn,
  dependsOn,
  describeAccess,
  loopsUnder,
  reductionUpdates,
  storesIn,
} from "./analysis.ts";
import { carriedDependences } from "./dependence.ts";
import { ScheduleError } from "./errors.ts";
import { registerPrimitives, type PrimitiveResult } from "./registry.ts";
import { findPath, loopPath, replaceStmt, type Path } from "./state.ts";

export const THREAD_TAGS: readonly ThreadTag[] = [
  "blockIdx.x",
  "blockIdx.y",
  "blockIdx.z",
  "threadIdx.x",
  "threadIdx.y",
  "threadIdx.z",
];

/** The widest vector any target has: 16 lanes of f32 fill a 512-bit register. */
export const MAX_VECTOR_LANES = 16;

function serialLoop(f: PrimFunc, name: string, primitive: string): { loop: For; path: Path } {
  const { loop, path } = loopPath(f, name, primitive);
  if (loop.forKind !== "serial")
    throw new ScheduleError(
      primitive,
      `loop ${name} is already ${loop.forKind === "thread" ? `bound to ${loop.thread ?? "a thread axis"}` : loop.forKind}`,
    );
  return { loop, path };
}

function bind(f: PrimFunc, name: string, tag: string): PrimitiveResult {
  const P = "bind";
  if (!(THREAD_TAGS as readonly string[]).includes(tag))
    throw new ScheduleError(
      P,
      `unknown thread axis ${JSON.stringify(tag)}; use one of ${THREAD_TAGS.join(", ")}`,
    );
  const thread = tag as ThreadTag;
  const { loop, path } = serialLoop(f, name, P);
  const isBlockAxis = thread.startsWith("blockIdx");
  const around = path.filter((s): s is For => s.kind === "for" && s !== loop);
  const inside = loopsUnder(loop.body);
  const twice = [...around, ...inside].filter((l) => l.thread === thread);
  for (const other of twice) {
    if (isBlockAxis)
      throw new ScheduleError(
        P,
        `loop ${name} is ${around.includes(other) ? "inside" : "around"} loop ${other.loopVar.name}, already bound to ${thread}: an axis can be bound only once on any path (thread-block axes without exception)`,
      );
    const [outer, inner] = around.includes(other) ? [other, loop] : [loop, other];
    const why = whyNotCooperative(f, outer, inner, around.includes(other) ? path : undefined);
    if (why)
      throw new ScheduleError(
        P,
        `loop ${name} is ${around.includes(other) ? "inside" : "around"} loop ${other.loopVar.name}, already bound to ${thread}: an axis can be bound only once on any path, but for a loop inside that spreads a copy into shared memory over the threads (cooperative fetching); here ${why}`,
      );
  }
  const misplaced = isBlockAxis
    ? around.find((l) => l.thread?.startsWith("threadIdx"))
    : inside.find((l) => l.thread?.startsWith("blockIdx"));
  if (misplaced)
    throw new ScheduleError(
      P,
      `thread-block loops must enclose thread loops, but ${name} would nest the wrong way around ${misplaced.loopVar.name} (${misplaced.thread})`,
    );
  // Each thread has its own local memory and each thread block its own shared memory: such
  // buffers are taken to carry nothing between iterations unless they accumulate a reduction.
  const accumulators = new Set(reductionUpdates(loop).map((s) => s.buffer));
  const isPrivate = (b: Buffer): boolean =>
    !accumulators.has(b) && (b.scope === "local" || (isBlockAxis && b.scope === "shared"));
  // A shared buffer filled only by loops inside that are bound to this same axis is filled by the
  // threads together, the same way in every iteration (whyNotCooperative): nothing to race on.
  const cooperative = new Set(
    twice.filter((l) => inside.includes(l)).flatMap((l) => storesIn(l.body).map((st) => st.buffer)),
  );
  const filledTogether = (b: Buffer): boolean =>
    cooperative.has(b) &&
    storesIn(loop.body)
      .filter((st) => st.buffer === b)
      .every((st) => twice.some((l) => inside.includes(l) && storesIn(l.body).includes(st)));
  const deps = carriedDependences(loop, {
    ignore: (b) => isPrivate(b) || filledTogether(b),
    allowReductions: !isBlockAxis,
  });
  const dep = deps[0];
  if (dep?.kind === "reduction" && isBlockAxis)
    throw new ScheduleError(
      P,
      `${dep.message}; a reduction across thread blocks is not supported: bind ${name} to a threadIdx axis (a cross-thread reduction), or rfactor it first`,
    );
  if (dep) {
    const hint =
      dep.write.buffer.scope === "shared" && !isBlockAxis
        ? `; if computeAt placed a copy into ${dep.write.buffer.name} inside ${name} before ${name} was bound, its tile covers one thread's part: bind the thread loops first, then computeAt the shared cache (its tile then spans the threads of the block) and bind the copy loops (cooperative fetching)`
        : "";
    throw new ScheduleError(P, `the threads of ${thread} would race: ${dep.message}${hint}`);
  }
  const annotations = { ...loop.annotations };
  if (!isBlockAxis) {
    const reduced = [...accumulators].map((b) => b.name);
    if (reduced.length) annotations[CROSS_THREAD_REDUCTION] = reduced.join(",");
  }
  // Thread indices start at 0: shift the loop so its variable does too.
  let { loopVar, body } = loop;
  if (!isConst(loop.min, 0)) {
    loopVar = variable(loop.loopVar.name, loop.loopVar.dtype);
    body = substitute(body, new Map([[loop.loopVar, add(loopVar, loop.min)]]));
  }
  const bound: For = {
    ...loop,
    loopVar,
    min: constant(0, loopVar.dtype),
    body,
    forKind: "thread",
    thread,
    annotations,
  };
  return { func: replaceStmt(f, loop, bound) };
}

/**
 * Cooperative fetching (TVM's pattern): a loop nested inside another loop bound to the same
 * threadIdx axis shares its index, so thread t runs only iteration t of each. That computes what
 * the serial nest computes when the inner loop does the same work in every iteration of the
 * thread loops down to the outer one (its body uses none of their variables: thread loops between
 * the two are parallel loops of their own, which it may follow) and its effects are visible to the
 * whole block: it writes only shared buffers (each iteration its own elements, which the race
 * check of the inner loop shows), or buffers allocated inside it. The barriers pass then puts a
 * syncThreads() between the copy and its readers. `path` leads to the inner loop when known.
 * Returns why not, or undefined when the two loops may share the axis.
 */
function whyNotCooperative(f: PrimFunc, outer: For, inner: For, path?: Path): string | undefined {
  const [o, i] = [outer.loopVar.name, inner.loopVar.name];
  if (!sameExpr(outer.extent, inner.extent))
    return `nested loops on one axis share its index, so they need the same extent (${printExpr(inner.extent)} for ${i}, ${printExpr(outer.extent)} for ${o})`;
  const toInner = path ?? findPath(f, (s) => s === inner)!;
  const lets = new Map<Var, Expr>();
  for (const s of toInner) if (s.kind === "let") lets.set(s.v, substitute(s.value, lets));
  // The thread loops down to the outer one; those between it and the inner loop are parallel
  // loops of their own (or cooperative ones), which the inner loop may follow.
  const threadVars = toInner
    .slice(0, toInner.indexOf(outer) + 1)
    .filter((s): s is For => s.kind === "for" && (s === outer || isThreadLoop(s)))
    .map((l) => l.loopVar);
  const used = [...collectVars(inner)];
  const t = threadVars.find((t) => used.some((v) => v === t || (lets.has(v) && dependsOn(lets.get(v)!, t))));
  if (t)
    return `thread t would run only iteration t of ${i}, which is the serial nest only if ${i} does the same work in every iteration of the thread loops around it, but it uses ${t.name}`;
  const inside = allocatedIn(inner.body);
  const global = storesIn(inner.body).find((st) => !inside.has(st.buffer) && st.buffer.scope !== "shared");
  if (global)
    return `each thread would run only its own iteration of ${i}, which writes ${global.buffer.name} (${global.buffer.scope} memory) that the other threads would not see: only stores into shared memory can be spread this way`;
  return undefined;
}

const isThreadLoop = (l: For): boolean => l.forKind === "thread" && !!l.thread?.startsWith("threadIdx");

function vectorize(f: PrimFunc, name: string): PrimitiveResult {
  const P = "vectorize";
  const { loop } = serialLoop(f, name, P);
  const v = loop.loopVar;
  if (loop.extent.kind !== "const")
    throw new ScheduleError(
      P,
      `loop ${name} has a symbolic extent; split it with a constant inner factor and vectorize that`,
    );
  if (loop.extent.value > MAX_VECTOR_LANES)
    throw new ScheduleError(
      P,
      `loop ${name} has ${loop.extent.value} iterations, more than ${MAX_VECTOR_LANES} lanes (the widest vector register, 512 bits, holds 16 f32); split it first`,
    );
  const nested = loopsUnder(loop.body)[0];
  if (nested)
    throw new ScheduleError(P, `loop ${name} is not innermost: loop ${nested.loopVar.name} is inside it`);
  walk(loop.body, (n) => {
    if (n.kind === "barrier")
      throw new ScheduleError(P, `loop ${name} contains a barrier, which vector lanes cannot wait on`);
    if (n.kind === "allocate")
      throw new ScheduleError(
        P,
        `loop ${name} allocates ${n.buffer.name} in every iteration; vectorize a loop inside the allocation`,
      );
  });
  for (const a of accessesIn(loop.body)) {
    const dims = a.expanded;
    const last = dims.length - 1;
    const stride = last >= 0 ? affineCoefficient(dims[last]!, v) : 0;
    const outer = dims.slice(0, last).some((d) => affineCoefficient(d, v) !== 0);
    if (outer || (stride !== 0 && stride !== 1))
      throw new ScheduleError(
        P,
        `vectorizing a non-unit stride access to ${describeAccess(a)}: ${v.name} may only step the last index, by 1`,
      );
  }
  const dep = carriedDependences(loop)[0];
  if (dep?.kind === "reduction")
    throw new ScheduleError(
      P,
      `${dep.message}; every lane would write the same element: vectorize a spatial loop, or rfactor this one`,
    );
  if (dep) throw new ScheduleError(P, `the vector lanes would depend on each other: ${dep.message}`);
  return { func: replaceStmt(f, loop, { ...loop, forKind: "vectorized" }) };
}

function unroll(f: PrimFunc, name: string): PrimitiveResult {
  const P = "unroll";
  const { loop } = serialLoop(f, name, P);
  if (loop.extent.kind !== "const")
    throw new ScheduleError(
      P,
      `loop ${name} has a symbolic extent; split it with a constant inner factor and unroll that`,
    );
  return { func: replaceStmt(f, loop, { ...loop, forKind: "unrolled" }) };
}

function parallel(f: PrimFunc, name: string): PrimitiveResult {
  const P = "parallel";
  const { loop } = serialLoop(f, name, P);
  const dep = carriedDependences(loop)[0];
  if (dep) throw new ScheduleError(P, `loop ${name} carries a dependence: ${dep.message}`);
  return { func: replaceStmt(f, loop, { ...loop, forKind: "parallel" }) };
}

function annotate(
  f: PrimFunc,
  target: string,
  key: string,
  value: string | number | boolean,
): PrimitiveResult {
  const P = "annotate";
  if (typeof key !== "string" || key === "") throw new ScheduleError(P, `the key must be a non-empty string`);
  if (
    !["string", "number", "boolean"].includes(typeof value) ||
    (typeof value === "number" && !Number.isFinite(value))
  )
    throw new ScheduleError(P, `the value for ${key} must be a string, a finite number or a boolean`);
  const loop = findPath(f, (s) => s.kind === "for" && s.loopVar.name === target)?.at(-1) as For | undefined;
  const blk = findPath(f, (s) => s.kind === "block" && s.name === target)?.at(-1) as Block | undefined;
  if (loop && blk) throw new ScheduleError(P, `${target} names both a loop and a block`);
  if (loop)
    return { func: replaceStmt(f, loop, { ...loop, annotations: { ...loop.annotations, [key]: value } }) };
  if (blk)
    return { func: replaceStmt(f, blk, { ...blk, annotations: { ...blk.annotations, [key]: value } }) };
  throw new ScheduleError(P, `no loop or block named ${target} in ${f.name}`);
}

registerPrimitives({ bind, vectorize, unroll, parallel, annotate });
export { bind, vectorize, unroll, parallel, annotate };
