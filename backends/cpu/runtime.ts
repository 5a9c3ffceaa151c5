/**
 * Runs kernels on the CPU: lowers a kernel declared with kernel(...) through the frontend, then
 * compiles its IR (exec.ts).
 */
import type { KernelDef } from "../../dsl/kernel.ts";
import type { PrimFunc } from "../../lower/ir/nodes.ts";
import { lowerKernel } from "../../lower/frontend/lower.ts";
import type { RenderOptions } from "./render.ts";
import { compileCpu, type CpuKernel } from "./exec.ts";

export { bindArgs, compileCpu, type CpuKernel, type KernelArgs } from "./exec.ts";

/** Compiles a kernel (or IR) for the CPU. */
export function cpuKernel(k: KernelDef | PrimFunc, opts: RenderOptions = {}): CpuKernel {
  return compileCpu(k.kind === "kernel" ? lowerKernel(k) : k, opts);
}
