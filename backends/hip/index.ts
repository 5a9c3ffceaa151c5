// HIP backend: the runtime for AMD GPUs (HSA code objects from backends/llvm go in).
export {
  createHipRuntime,
  HipError,
  HipUnavailableError,
  libamdhipCandidates,
  type HipRuntimeOptions,
} from "./runtime.ts";
