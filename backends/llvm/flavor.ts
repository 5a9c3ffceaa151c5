/**
 * What differs between NVIDIA and AMD in the LLVM IR tkc emits: target intrinsics, address
 * spaces and the kernel ABI. Everything else in render.ts is shared, so running the NVPTX flavour
 * on a real GPU exercises the AMD flavour's logic too (see ABI.md for what each must emit).
 */
import type { LLVMTarget } from "./target.ts";
import { waveSize } from "./target.ts";

export interface Flavor {
  readonly target: LLVMTarget;
  readonly triple: string;
  readonly waveSize: number;
  /** Address space of private (alloca) memory. */
  readonly allocaSpace: number;
  /** The `define` line's calling-convention prefix. */
  readonly kernelPrefix: string;
  /** A call reading threadIdx/blockIdx along axis 0..2 (returns i32). */
  threadId(axis: number): { intrinsic: string };
  blockId(axis: number): { intrinsic: string };
  /** Lines of a block-wide barrier. */
  barrier(): string[];
  /** The function attributes group body for a kernel with at most maxThreads threads per block. */
  kernelAttributes(maxThreads: number): string;
  /** Module metadata lines that mark @name as a kernel (and ask for minBlocks blocks per multiprocessor). */
  kernelMetadata(name: string, maxThreads: number, minBlocks?: number): string[];
  /** Native float math for f32: the intrinsic name, or undefined when render.ts expands it. */
  mathIntrinsic(name: string): string | undefined;
  /** Lines of the wait for the previous grid (lower/passes/dependency_wait.ts places it). */
  gridDependencyWait(): string[];
  /** Lines that let the next grid launch (placed by the same pass). */
  launchDependents(): string[];
  /** An atomicrmw's synchronisation scope for a global (device) or shared (block) element: ` syncscope(...)` or "". */
  atomicScope(global: boolean): string;
  /** A device-scope fence line (around atomics on global memory). */
  deviceFence(order: "release" | "acquire"): string;
}

const AXES = ["x", "y", "z"] as const;

/** Whether the target has programmatic dependent launch (sm_90 and later). */
const pdl = (target: LLVMTarget): boolean => Number(target.arch.replace(/\D/g, "")) >= 90;

function nvptx(target: LLVMTarget): Flavor {
  return {
    target,
    triple: "nvptx64-nvidia-cuda",
    // LLVM 19's NVPTX selects no scoped fence or atomic: PTX's own fence, and atom's defaults
    // (relaxed, gpu scope; a shared address is the block's anyway).
    atomicScope: () => "",
    deviceFence: () => 'call void asm sideeffect "fence.acq_rel.gpu;", "~{memory}"()',
    waveSize: 32,
    allocaSpace: 0,
    kernelPrefix: "",
    threadId: (a) => ({ intrinsic: `llvm.nvvm.read.ptx.sreg.tid.${AXES[a]}` }),
    blockId: (a) => ({ intrinsic: `llvm.nvvm.read.ptx.sreg.ctaid.${AXES[a]}` }),
    barrier: () => ["call void @llvm.nvvm.barrier0()"],
    kernelAttributes: () => "",
    kernelMetadata: (name, maxThreads, minBlocks) => [
      `!{ptr @${name}, !"kernel", i32 1}`,
      `!{ptr @${name}, !"maxntidx", i32 ${maxThreads}}`,
      // .minnctapersm: ptxas caps registers so that many blocks fit on a multiprocessor.
      ...(minBlocks ? [`!{ptr @${name}, !"minctasm", i32 ${minBlocks}}`] : []),
    ],
    // Programmatic dependent launch (sm_90+): a kernel launched while the previous one in its
    // stream still runs (the CUDA device launches the decode graph's kernels with that attribute)
    // waits until the previous grid has finished and its writes are visible, and lets the next
    // kernel launch early in turn (after its wait, or where LaunchConfig.dependentsLaunch says; at
    // "exit" not at all: a grid's blocks trigger implicitly as they exit): launch latency overlaps
    // the previous kernel's tail. Without the attribute (the default) both return at once.
    gridDependencyWait: () =>
      pdl(target) ? ['call void asm sideeffect "griddepcontrol.wait;", "~{memory}"()'] : [],
    launchDependents: () =>
      pdl(target) ? ['call void asm sideeffect "griddepcontrol.launch_dependents;", "~{memory}"()'] : [],
    mathIntrinsic: (name) =>
      ({
        exp2: "llvm.nvvm.ex2.approx.f",
        log2: "llvm.nvvm.lg2.approx.f",
        sqrt: "llvm.sqrt.f32",
        rsqrt: "llvm.nvvm.rsqrt.approx.f",
        sin: "llvm.nvvm.sin.approx.f",
        cos: "llvm.nvvm.cos.approx.f",
      })[name],
  };
}

function amdgcn(target: LLVMTarget): Flavor {
  return {
    target,
    triple: "amdgcn-amd-amdhsa",
    atomicScope: (global) => ` syncscope("${global ? "agent" : "workgroup"}")`,
    deviceFence: (order) => `fence syncscope("agent") ${order}`,
    waveSize: waveSize(target),
    allocaSpace: 5,
    kernelPrefix: "amdgpu_kernel ",
    threadId: (a) => ({ intrinsic: `llvm.amdgcn.workitem.id.${AXES[a]}` }),
    blockId: (a) => ({ intrinsic: `llvm.amdgcn.workgroup.id.${AXES[a]}` }),
    // As HIP's __syncthreads: fences around s_barrier so LDS writes are visible after it.
    barrier: () => [
      'fence syncscope("workgroup") release',
      "call void @llvm.amdgcn.s.barrier()",
      'fence syncscope("workgroup") acquire',
    ],
    kernelAttributes: (maxThreads) => `"amdgpu-flat-work-group-size"="1,${maxThreads}"`,
    gridDependencyWait: () => [],
    launchDependents: () => [],
    kernelMetadata: () => [],
    mathIntrinsic: (name) =>
      ({
        exp2: "llvm.exp2.f32",
        log2: "llvm.log2.f32",
        sqrt: "llvm.sqrt.f32",
        rsqrt: "llvm.amdgcn.rsq.f32",
        sin: "llvm.sin.f32",
        cos: "llvm.cos.f32",
      })[name],
  };
}

export function flavorFor(target: LLVMTarget): Flavor {
  return target.kind === "nvptx" ? nvptx(target) : amdgcn(target);
}
