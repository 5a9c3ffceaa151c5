/** From an OpSpec to the IR a backend compiles: lower, retype, specialise, then schedule. */
import { lowerKernel } from "../../lower/frontend/lower.ts";
import type { PrimFunc } from "../../lower/ir/nodes.ts";
import { retype, scalarsFromMemory, specialize } from "../../lower/ir/specialize.ts";
import { Schedule } from "../../lower/schedule/index.ts";
import { DEPENDENTS_LAUNCH, MIN_BLOCKS_PER_SM, withInvariantBuffers } from "../../lower/passes/launch.ts";
import type { OpSpec } from "./types.ts";

export function specializedFunc(spec: OpSpec): PrimFunc {
  let f = lowerKernel(spec.kernel);
  if (spec.retype) f = retype(f, spec.retype.from, spec.retype.to);
  if (spec.specialize) f = specialize(f, spec.specialize);
  if (spec.scalarsInMemory?.length) {
    f = scalarsFromMemory(f, spec.scalarsInMemory);
    // The step's values (position, length) are written only between steps, by the host or by the
    // step's last op (recordToken): no kernel writes them while one that reads them may run, so
    // under programmatic dependent launch they are read before the wait for the previous kernel.
    f = withInvariantBuffers(
      f,
      spec.scalarsInMemory.map((n) => `${n}_mem`),
    );
  }
  if (spec.dependentsLaunch) f = { ...f, attrs: { ...f.attrs, [DEPENDENTS_LAUNCH]: spec.dependentsLaunch } };
  if (spec.minBlocksPerSM) f = { ...f, attrs: { ...f.attrs, [MIN_BLOCKS_PER_SM]: spec.minBlocksPerSM } };
  return { ...f, name: spec.key.replace(/[^A-Za-z0-9_]/g, "_") };
}

/** The scheduled loop IR for a GPU target (the unscheduled IR when the op has no schedule). */
export function scheduledFunc(spec: OpSpec, target: string): PrimFunc {
  const s = new Schedule(specializedFunc(spec));
  spec.schedule?.(s, target);
  return s.func;
}
