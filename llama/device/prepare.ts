/** From an OpSpec to the IR a backend compiles: lower, retype, specialise, then schedule. */
import { lowerKernel } from "../../lower/frontend/lower.ts";
import type { PrimFunc } from "../../lower/ir/nodes.ts";
import { retype, scalarsFromMemory, specialize } from "../../lower/ir/specialize.ts";
import { Schedule } from "../../lower/schedule/index.ts";
import type { OpSpec } from "./types.ts";

export function specializedFunc(spec: OpSpec): PrimFunc {
  let f = lowerKernel(spec.kernel);
  if (spec.retype) f = retype(f, spec.retype.from, spec.retype.to);
  if (spec.specialize) f = specialize(f, spec.specialize);
  if (spec.scalarsInMemory?.length) f = scalarsFromMemory(f, spec.scalarsInMemory);
  return { ...f, name: spec.key.replace(/[^A-Za-z0-9_]/g, "_") };
}

/** The scheduled loop IR for a GPU target (the unscheduled IR when the op has no schedule). */
export function scheduledFunc(spec: OpSpec, target: string): PrimFunc {
  const s = new Schedule(specializedFunc(spec));
  spec.schedule?.(s, target);
  return s.func;
}
