/**
 * Loop kinds and annotations: bind, vectorize, unroll, parallel, annotate. Binding, vectorizing
 * and parallelizing run a loop's iterations at once, so each checks that no iteration depends on
 * another (analysis.ts: carriedDependences); unroll only changes how the code is emitted.
 */
import type { Block, Buffer, For, PrimFunc, ThreadTag } from "../ir/nodes.ts";
import { add, constant, isConst, variable } from "../ir/build.ts";
import { substitute, walk } from "../ir/transform.ts";
import {
  CROSS_THREAD_REDUCTION,
  accessesIn,
  affineCoefficient,
  carriedDependences,
  describeAccess,
  loopsUnder,
  reductionUpdates,
} from "./analysis.ts";
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
  const twice = [...around, ...inside].find((l) => l.thread === thread);
  if (twice)
    throw new ScheduleError(
      P,
      `loop ${name} is ${around.includes(twice) ? "inside" : "around"} loop ${twice.loopVar.name}, already bound to ${thread}: an axis can be bound only once on any path`,
    );
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
  const deps = carriedDependences(loop, { ignore: isPrivate, allowReductions: !isBlockAxis });
  const dep = deps[0];
  if (dep?.kind === "reduction" && isBlockAxis)
    throw new ScheduleError(
      P,
      `${dep.message}; a reduction across thread blocks is not supported: bind ${name} to a threadIdx axis (a cross-thread reduction), or rfactor it first`,
    );
  if (dep) throw new ScheduleError(P, `the threads of ${thread} would race: ${dep.message}`);
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
