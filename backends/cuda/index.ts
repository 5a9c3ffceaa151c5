// CUDA backend: the driver-API runtime (PTX from backends/llvm goes in through loadModule).
export { createCudaRuntime, type CudaRuntimeOptions } from "./runtime.ts";
export { CudaError, CudaUnavailableError } from "./errors.ts";
export { libcudaCandidates } from "./driver.ts";
