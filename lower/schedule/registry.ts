/** Every schedule primitive by name: the trace refers to them this way. */
import type { PrimFunc } from "../ir/nodes.ts";
import type { JsonValue } from "./schedule.ts";
import { ScheduleError } from "./errors.ts";

export type PrimitiveResult = { func: PrimFunc; result?: JsonValue };
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Primitive = (f: PrimFunc, ...args: any[]) => PrimitiveResult;

export type PrimitiveName =
  | "split"
  | "fuse"
  | "reorder"
  | "bind"
  | "vectorize"
  | "unroll"
  | "parallel"
  | "annotate"
  | "cacheRead"
  | "cacheWrite"
  | "setScope"
  | "storageAlign"
  | "doubleBuffer"
  | "computeAt"
  | "reverseComputeAt"
  | "computeInline"
  | "reverseComputeInline"
  | "rfactor"
  | "decomposeReduction"
  | "tensorize";

/** Until its family file is imported, a primitive says which import registers it. */
const notYet =
  (name: string): Primitive =>
  () => {
    throw new ScheduleError(
      name,
      "is not registered: import lower/schedule/index.ts, which registers every primitive",
    );
  };

/** Filled in by the primitive family files (see index.ts, which imports them all). */
export const PRIMITIVES: Record<PrimitiveName, Primitive> = {
  split: notYet("split"),
  fuse: notYet("fuse"),
  reorder: notYet("reorder"),
  bind: notYet("bind"),
  vectorize: notYet("vectorize"),
  unroll: notYet("unroll"),
  parallel: notYet("parallel"),
  annotate: notYet("annotate"),
  cacheRead: notYet("cacheRead"),
  cacheWrite: notYet("cacheWrite"),
  setScope: notYet("setScope"),
  storageAlign: notYet("storageAlign"),
  doubleBuffer: notYet("doubleBuffer"),
  computeAt: notYet("computeAt"),
  reverseComputeAt: notYet("reverseComputeAt"),
  computeInline: notYet("computeInline"),
  reverseComputeInline: notYet("reverseComputeInline"),
  rfactor: notYet("rfactor"),
  decomposeReduction: notYet("decomposeReduction"),
  tensorize: notYet("tensorize"),
};

export function registerPrimitives(prims: Partial<Record<PrimitiveName, Primitive>>): void {
  Object.assign(PRIMITIVES, prims);
}
