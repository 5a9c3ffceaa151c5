// The two LLVM target flavours tkc compiles for, and how each maps to an LLVM target machine.

export type NvptxArch = "sm_80" | "sm_90";
export type AmdgcnArch = "gfx1100" | "gfx90a" | "gfx942";

export type LLVMTarget =
  | {
      kind: "nvptx";
      arch: NvptxArch;
      /** e.g. "+ptx85" (default); PTX ISA version to emit. */ features?: string;
    }
  | {
      kind: "amdgcn";
      arch: AmdgcnArch;
      /** gfx1100 defaults to wave32; gfx9 parts are wave64 only. */ wave64?: boolean;
    };

export interface TargetMachineSpec {
  triple: string;
  cpu: string;
  features: string;
  /** LLVMRelocMode: AMD code objects are shared libraries, so position independent. */
  reloc: number;
}

/** PTX ISA 8.5 is the newest LLVM 19 emits; sm_90 needs at least 7.8, CUDA 12.5+ drivers load 8.5. */
const DEFAULT_PTX = "+ptx85";

export function targetMachineSpec(t: LLVMTarget): TargetMachineSpec {
  if (t.kind === "nvptx") {
    return { triple: "nvptx64-nvidia-cuda", cpu: t.arch, features: t.features ?? DEFAULT_PTX, reloc: 0 };
  }
  const wave64Only = t.arch !== "gfx1100";
  if (wave64Only && t.wave64 === false) {
    throw new Error(`${t.arch} runs wave64 only; wave64: false is valid for gfx1100 alone`);
  }
  // Spell out the wave size so that the code object, the metadata and the shuffles agree.
  const features = wave64Only || t.wave64 ? "+wavefrontsize64" : "+wavefrontsize32";
  return { triple: "amdgcn-amd-amdhsa", cpu: t.arch, features, reloc: 2 /* PIC */ };
}

/** Threads per warp / wavefront that kernels compiled for `t` run with. */
export function waveSize(t: LLVMTarget): 32 | 64 {
  if (t.kind === "nvptx") return 32;
  return t.arch === "gfx1100" && !t.wave64 ? 32 : 64;
}
