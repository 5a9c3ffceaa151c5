// CUDA's two failure modes: the driver (or a GPU) is not there at all, and a call failed.

/** libcuda could not be loaded or initialized: no NVIDIA driver, or no usable GPU. */
export class CudaUnavailableError extends Error {
  override name = "CudaUnavailableError";
}

/** A driver call returned an error; `code` is the CUresult, `errorName` e.g. CUDA_ERROR_INVALID_PTX. */
export class CudaError extends Error {
  override name = "CudaError";
  constructor(
    readonly call: string,
    readonly code: number,
    readonly errorName: string,
    readonly description: string,
    readonly log = "",
  ) {
    super(`${call} failed: ${errorName} (${code}): ${description}${log ? `\n${log}` : ""}`);
  }
}
