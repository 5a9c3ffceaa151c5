// libcuda.so.1 (the CUDA driver API) through koffi: the entry points a runtime needs, the `_v2`
// ones where they exist (what cuda.h's macros resolve to). Handles are `void *`, device pointers
// uint64. Binding happens when a runtime is created, never at import.
import { bindFirst, cString, loadFirst, type KoffiLib } from "../gpu-common/koffi.ts";
import { makeCall, type Call, type DriverCalls } from "../gpu-common/driver-runtime.ts";
import { CudaUnavailableError } from "./errors.ts";

/** Where to look for the driver library; TKC_LIBCUDA, when set, is the only place looked at. */
export function libcudaCandidates(): string[] {
  const env = process.env.TKC_LIBCUDA;
  return env
    ? [env]
    : ["libcuda.so.1", "libcuda.so", "/usr/lib/x86_64-linux-gnu/libcuda.so.1", "/usr/lib64/libcuda.so.1"];
}

export interface CudaBindings {
  lib: KoffiLib;
  calls: DriverCalls;
  init: Call;
  driverGetVersion: Call;
  deviceGetCount: Call;
  deviceGet: Call;
  deviceGetName: Call;
  deviceGetAttribute: Call;
  deviceTotalMem: Call;
  primaryCtxRetain: Call;
  primaryCtxRelease: Call;
  ctxSetCurrent: Call;
  moduleLoadDataEx: Call;
  funcSetAttribute: Call;
  /** cuGetErrorName / cuGetErrorString take a `const char **` out parameter. */
  getErrorName: (code: number, out: unknown[]) => number;
  getErrorString: (code: number, out: unknown[]) => number;
}

let cached: CudaBindings | undefined;

export function cudaBindings(): CudaBindings {
  if (cached) return cached;
  const lib = loadFirst(
    libcudaCandidates(),
    (detail) =>
      new CudaUnavailableError(
        `libcuda.so.1 (the NVIDIA driver's CUDA library) could not be loaded (${detail}); this needs a ` +
          `machine with an NVIDIA GPU and its driver installed, or TKC_LIBCUDA pointing at libcuda.so.1.`,
      ),
  );
  const bind = (...protos: string[]): Call => {
    let fn;
    try {
      fn = bindFirst(lib, protos);
    } catch {
      throw new CudaUnavailableError(
        `the loaded libcuda does not export ${protos.map((p) => /(\w+)\(/.exec(p)![1]).join(" or ")}; ` +
          `the NVIDIA driver is too old for tkc (it needs CUDA 12 or newer).`,
      );
    }
    return makeCall(/(\w+)\(/.exec(protos[0]!)![1]!, fn);
  };
  /** cuLaunchKernelEx where the driver exports it (programmatic dependent launch needs it). */
  const optionalLaunchEx = (): { launchEx?: Call } => {
    try {
      return {
        launchEx: bind("int cuLaunchKernelEx(const void *config, void *f, void *params, void *extra)"),
      };
    } catch {
      return {};
    }
  };
  /** Page-locked host memory, for copies that do not hold the host (downloadLater). */
  const optionalHostMemory = (): Pick<DriverCalls, "hostAlloc" | "hostFree" | "dtohAsyncToHost"> => {
    try {
      return {
        hostAlloc: bind("int cuMemAllocHost_v2(_Out_ void **pp, size_t bytes)"),
        hostFree: bind("int cuMemFreeHost(void *p)"),
        dtohAsyncToHost: bind(
          "int cuMemcpyDtoHAsync_v2(uint64_t dst, uint64_t src, size_t bytes, void *stream)",
        ),
      };
    } catch {
      return {};
    }
  };
  // Signatures follow cuda.h; CUdeviceptr is a 64-bit integer, every handle a void *.
  const calls: DriverCalls = {
    malloc: bind("int cuMemAlloc_v2(_Out_ uint64_t *dptr, size_t bytes)"),
    free: bind("int cuMemFree_v2(uint64_t dptr)"),
    htod: bind("int cuMemcpyHtoD_v2(uint64_t dst, const void *src, size_t bytes)"),
    dtoh: bind("int cuMemcpyDtoH_v2(_Out_ void *dst, uint64_t src, size_t bytes)"),
    dtod: bind("int cuMemcpyDtoD_v2(uint64_t dst, uint64_t src, size_t bytes)"),
    htodAsync: bind("int cuMemcpyHtoDAsync_v2(uint64_t dst, const void *src, size_t bytes, void *stream)"),
    dtohAsync: bind("int cuMemcpyDtoHAsync_v2(_Out_ void *dst, uint64_t src, size_t bytes, void *stream)"),
    dtodAsync: bind("int cuMemcpyDtoDAsync_v2(uint64_t dst, uint64_t src, size_t bytes, void *stream)"),
    memsetD8: bind("int cuMemsetD8_v2(uint64_t dst, uint8_t value, size_t n)"),
    memsetD8Async: bind("int cuMemsetD8Async(uint64_t dst, uint8_t value, size_t n, void *stream)"),
    moduleUnload: bind("int cuModuleUnload(void *module)"),
    getFunction: bind("int cuModuleGetFunction(_Out_ void **fn, void *module, const char *name)"),
    funcGetAttribute: bind("int cuFuncGetAttribute(_Out_ int *value, int attrib, void *fn)"),
    launch: bind(
      "int cuLaunchKernel(void *f, uint gx, uint gy, uint gz, uint bx, uint by, uint bz, uint sharedBytes, void *stream, void *params, void *extra)",
    ),
    ...optionalLaunchEx(),
    ...optionalHostMemory(),
    streamCreate: bind("int cuStreamCreate(_Out_ void **stream, uint flags)"),
    streamDestroy: bind("int cuStreamDestroy_v2(void *stream)"),
    streamSynchronize: bind("int cuStreamSynchronize(void *stream)"),
    eventCreate: bind("int cuEventCreate(_Out_ void **event, uint flags)"),
    eventRecord: bind("int cuEventRecord(void *event, void *stream)"),
    eventSynchronize: bind("int cuEventSynchronize(void *event)"),
    eventElapsed: bind(
      "int cuEventElapsedTime_v2(_Out_ float *ms, void *start, void *end)",
      "int cuEventElapsedTime(_Out_ float *ms, void *start, void *end)",
    ),
    eventDestroy: bind("int cuEventDestroy_v2(void *event)"),
    beginCapture: bind("int cuStreamBeginCapture_v2(void *stream, int mode)"),
    endCapture: bind("int cuStreamEndCapture(void *stream, _Out_ void **graph)"),
    instantiate: withTrailing(
      bind("int cuGraphInstantiateWithFlags(_Out_ void **exec, void *graph, uint64_t flags)"),
      0,
    ),
    graphLaunch: bind("int cuGraphLaunch(void *exec, void *stream)"),
    graphExecDestroy: bind("int cuGraphExecDestroy(void *exec)"),
    graphDestroy: bind("int cuGraphDestroy(void *graph)"),
    deviceSynchronize: bind("int cuCtxSynchronize(void)"),
  };
  cached = {
    lib,
    calls,
    init: bind("int cuInit(uint flags)"),
    driverGetVersion: bind("int cuDriverGetVersion(_Out_ int *version)"),
    deviceGetCount: bind("int cuDeviceGetCount(_Out_ int *count)"),
    deviceGet: bind("int cuDeviceGet(_Out_ int *device, int ordinal)"),
    deviceGetName: bind("int cuDeviceGetName(_Out_ uint8_t *name, int len, int device)"),
    deviceGetAttribute: bind("int cuDeviceGetAttribute(_Out_ int *value, int attrib, int device)"),
    deviceTotalMem: bind("int cuDeviceTotalMem_v2(_Out_ size_t *bytes, int device)"),
    primaryCtxRetain: bind("int cuDevicePrimaryCtxRetain(_Out_ void **ctx, int device)"),
    primaryCtxRelease: bind("int cuDevicePrimaryCtxRelease_v2(int device)"),
    ctxSetCurrent: bind("int cuCtxSetCurrent(void *ctx)"),
    moduleLoadDataEx: bind(
      "int cuModuleLoadDataEx(_Out_ void **module, const void *image, uint n, const int *options, void *values)",
    ),
    funcSetAttribute: bind("int cuFuncSetAttribute(void *fn, int attrib, int value)"),
    getErrorName: bind("int cuGetErrorName(int code, _Out_ void **str)"),
    getErrorString: bind("int cuGetErrorString(int code, _Out_ void **str)"),
  };
  return cached;
}

/** Appends fixed trailing arguments, so the generic runtime can call with the common prefix. */
function withTrailing(c: Call, ...rest: unknown[]): Call {
  return makeCall(c.name, (...args: unknown[]) => c(...args, ...rest));
}

/** "CUDA_ERROR_X" and its description, or placeholders when the driver doesn't know the code. */
export function describeCudaError(b: CudaBindings, code: number): { name: string; description: string } {
  const n: unknown[] = [null];
  const s: unknown[] = [null];
  const name = b.getErrorName(code, n) === 0 ? cString(n[0]) : `CUDA error ${code}`;
  const description = b.getErrorString(code, s) === 0 ? cString(s[0]) : "unknown error";
  return { name, description };
}
