/**
 * The device IR's barriers for the LLVM renderer (but asynchronous copies' commits and waits,
 * render-async.ts): the wait for the previous grid and the trigger for the next (programmatic
 * dependent launch, flavor.ts), the block barrier, and the warp barrier (NVIDIA's bar.warp.sync;
 * on AMD a wavefront runs in lockstep, so only a compiler barrier).
 */
import type { Barrier } from "../../lower/ir/nodes.ts";
import type { Flavor } from "./flavor.ts";

/** What a barrier needs from the renderer. */
export interface BarrierBuilder {
  readonly fl: Flavor;
  emit(line: string): void;
  declare(text: string): void;
}

export function barrier(
  b: BarrierBuilder,
  scope: Exclude<Barrier["scope"], "async_commit" | "async_wait">,
): void {
  const nvptx = b.fl.target.kind === "nvptx";
  if (scope === "dependents") for (const l of b.fl.launchDependents()) b.emit(l);
  else if (scope === "grid") for (const l of b.fl.gridDependencyWait()) b.emit(l);
  else if (scope === "shared") {
    for (const l of b.fl.barrier()) b.emit(l);
    b.declare(nvptx ? "declare void @llvm.nvvm.barrier0()" : "declare void @llvm.amdgcn.s.barrier()");
  } else if (nvptx) {
    b.emit("call void @llvm.nvvm.bar.warp.sync(i32 -1)");
    b.declare("declare void @llvm.nvvm.bar.warp.sync(i32)");
  } else {
    // A wavefront runs in lockstep; the barrier only stops the compiler moving memory accesses.
    b.emit("call void @llvm.amdgcn.wave.barrier()");
    b.declare("declare void @llvm.amdgcn.wave.barrier()");
  }
}
