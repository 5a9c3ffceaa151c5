// The LLVM backend's entry points: textual LLVM IR in, PTX or an HSA code object out.
export { compileLLVM, linkHsaco, type CompileOptions, type CompileResult } from "./compile.ts";
export { LLVMError, LLVMUnavailableError } from "./llvm-c.ts";
export {
  amdgpuResources,
  parseAmdhsaMetadata,
  parsePtxasVerbose,
  ptxResources,
  ResourceToolUnavailableError,
  type KernelResources,
} from "./resources.ts";
export { targetMachineSpec, waveSize, type AmdgcnArch, type LLVMTarget, type NvptxArch } from "./target.ts";
