/** Compiling a library needs LLVM and the frontend: kept apart from library.ts, which GPU machines load. */
import type { KernelArtifact } from "../../backends/gpu-common/kernel.ts";
import { buildArtifact } from "../../backends/llvm/artifact.ts";
import { lowerToDevice } from "../../lower/passes/pipeline.ts";
import { scheduledFunc } from "./prepare.ts";
import { gpuTarget, type Library } from "./library.ts";
import type { OpSpec } from "./types.ts";

/** One op scheduled, lowered and compiled for a GPU target ("sm_90", "gfx1100", ...). */
export function compileOp(spec: OpSpec, targetName: string): KernelArtifact {
  const t = gpuTarget(targetName);
  const device = lowerToDevice(scheduledFunc(spec, t.name), t.lowering);
  const { llvm: _ir, ...art } = buildArtifact(device, t.llvm, { resources: t.llvm.kind === "nvptx" });
  return art;
}

/** Compiles ops (LLVM needed: run this where libLLVM 19 is installed). */
export function compileLibrary(
  specs: readonly OpSpec[],
  targetName: string,
  onProgress?: (done: number, total: number, key: string) => void,
): Library {
  const t = gpuTarget(targetName);
  const kernels: Record<string, KernelArtifact> = {};
  specs.forEach((spec, i) => {
    kernels[spec.key] = compileOp(spec, t.name);
    onProgress?.(i + 1, specs.length, spec.key);
  });
  return { target: t.name, kernels };
}
