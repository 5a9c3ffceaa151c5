/**
 * A schedule: a function being rewritten by primitives, and the trace of the calls that did it.
 * The trace is JSON; replaying it on the unscheduled function gives the same IR, so a tuned
 * schedule is data that can be cached and shipped per target.
 *
 * Each primitive family lives in its own file as pure functions `(func, ...args) => { func, result }`;
 * this class only records and dispatches.
 */
import type { KernelDef } from "../../dsl/kernel.ts";
import { lowerKernel } from "../frontend/lower.ts";
import type { For, PrimFunc } from "../ir/nodes.ts";
import { ScheduleError } from "./errors.ts";
import { loopsOf } from "./state.ts";
import { walk } from "../ir/transform.ts";
import { PRIMITIVES, type PrimitiveName } from "./registry.ts";

export type JsonValue =
  string | number | boolean | null | readonly JsonValue[] | { readonly [k: string]: JsonValue };

export interface TraceStep {
  readonly op: PrimitiveName;
  readonly args: readonly JsonValue[];
  readonly result: JsonValue;
}

export interface Trace {
  readonly version: 1;
  readonly func: string;
  readonly steps: readonly TraceStep[];
}

export class Schedule {
  private current: PrimFunc;
  private readonly steps: TraceStep[] = [];

  constructor(readonly original: PrimFunc) {
    this.current = original;
  }

  static of(k: KernelDef | PrimFunc): Schedule {
    return new Schedule(k.kind === "kernel" ? lowerKernel(k) : k);
  }

  get func(): PrimFunc {
    return this.current;
  }

  get trace(): Trace {
    return { version: 1, func: this.original.name, steps: [...this.steps] };
  }

  /** Applies one primitive by name and records it. */
  apply(op: PrimitiveName, ...args: JsonValue[]): JsonValue {
    const prim = PRIMITIVES[op];
    if (!prim) throw new ScheduleError(op, "unknown primitive");
    const { func, result } = prim(this.current, ...args);
    this.current = func;
    this.steps.push({ op, args, result: result ?? null });
    return result ?? null;
  }

  /** The names of the loops around a block, outermost first. */
  getLoops(block: string): string[] {
    return loopsOf(this.current, block).map((l: For) => l.loopVar.name);
  }

  /**
   * The loop named `name` and its copies (`name_1`, `name_2`, ...: a helper's loop inlined at
   * several call sites, which the frontend names apart), in program order, for a schedule to
   * apply a primitive to each.
   */
  loopCopies(name: string): string[] {
    const copy = new RegExp(`^${name.replace(/[^A-Za-z0-9_]/g, "\\$&")}(_\\d+)?$`);
    const names: string[] = [];
    walk(this.current.body, (n) => {
      if (n.kind === "for" && copy.test(n.loopVar.name)) names.push(n.loopVar.name);
    });
    return names;
  }

  split(loop: string, factors: readonly (number | null)[]): string[] {
    return this.apply("split", loop, factors) as string[];
  }
  fuse(...loops: string[]): string {
    return this.apply("fuse", ...loops) as string;
  }
  /** Reorders loops; end with `{ reassociate: true }` to let reduction loops swap (see loop_transformation.ts). */
  reorder(...loops: (string | { reassociate: boolean })[]): void {
    this.apply("reorder", ...loops);
  }
  bind(loop: string, thread: string): void {
    this.apply("bind", loop, thread);
  }
  vectorize(loop: string): void {
    this.apply("vectorize", loop);
  }
  unroll(loop: string): void {
    this.apply("unroll", loop);
  }
  parallel(loop: string): void {
    this.apply("parallel", loop);
  }
  annotate(target: string, key: string, value: string | number | boolean): void {
    this.apply("annotate", target, key, value);
  }
  cacheRead(block: string, buffer: string, scope: "shared" | "local"): string {
    return this.apply("cacheRead", block, buffer, scope) as string;
  }
  cacheWrite(block: string, buffer: string, scope: "shared" | "local"): string {
    return this.apply("cacheWrite", block, buffer, scope) as string;
  }
  setScope(buffer: string, scope: "global" | "shared" | "local"): void {
    this.apply("setScope", buffer, scope);
  }
  storageAlign(buffer: string, axis: number, factor: number, offset: number): void {
    this.apply("storageAlign", buffer, axis, factor, offset);
  }
  /**
   * Doubles (or multiplies: `buffers` copies) a shared buffer along a loop (iteration i uses copy
   * i % buffers): see cache_read_write.ts.
   */
  doubleBuffer(buffer: string, loop: string, buffers = 2): void {
    if (buffers === 2) this.apply("doubleBuffer", buffer, loop);
    else this.apply("doubleBuffer", buffer, loop, buffers);
  }
  computeAt(block: string, loop: string): void {
    this.apply("computeAt", block, loop);
  }
  reverseComputeAt(block: string, loop: string): void {
    this.apply("reverseComputeAt", block, loop);
  }
  computeInline(block: string): void {
    this.apply("computeInline", block);
  }
  reverseComputeInline(block: string): void {
    this.apply("reverseComputeInline", block);
  }
  rfactor(loop: string): string {
    return this.apply("rfactor", loop) as string;
  }
  decomposeReduction(block: string, loop: string): string {
    return this.apply("decomposeReduction", block, loop) as string;
  }
  /** Replaces the nest at `loop` with a tensor-core instruction (tensorize.ts); `lane` names the warp-lane loop. */
  tensorize(loop: string, intrinsic: "mma_m16n8k16" | "wgmma_m64n128k16", lane: string): void {
    this.apply("tensorize", loop, intrinsic, lane);
  }
}

/** Replays a trace on an unscheduled function. */
export function replay(f: PrimFunc, trace: Trace): Schedule {
  if (trace.version !== 1)
    throw new ScheduleError("replay", `unknown trace version ${String(trace.version)}`);
  if (trace.func !== f.name)
    throw new ScheduleError("replay", `the trace is for ${trace.func}, not ${f.name}`);
  const s = new Schedule(f);
  for (const step of trace.steps) s.apply(step.op, ...step.args);
  return s;
}

export const traceToJson = (t: Trace): string => JSON.stringify(t, null, 2);
export function traceFromJson(text: string): Trace {
  const t = JSON.parse(text) as Trace;
  if (!t || t.version !== 1 || !Array.isArray(t.steps)) throw new ScheduleError("replay", "not a tkc trace");
  return t;
}
