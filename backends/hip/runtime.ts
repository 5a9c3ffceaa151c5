// The HIP runtime (AMD GPUs): the shared DriverRuntime over libamdhip64, whose module API mirrors
// CUDA's driver API call for call. Loads HSA code objects made by backends/llvm (compileLLVM for
// an amdgcn target, `hsaco`). It cannot be exercised on a machine without ROCm; without the
// library it fails with HipUnavailableError, one sentence.
import { bindFirst, cString, loadFirst, NativeLibraryUnavailableError } from "../gpu-common/koffi.ts";
import { DriverRuntime, makeCall, type Call, type DriverCalls } from "../gpu-common/driver-runtime.ts";
import type { DeviceInfo, GpuRuntime } from "../gpu-common/runtime.ts";

export class HipUnavailableError extends Error {
  override name = "HipUnavailableError";
}

export class HipError extends Error {
  override name = "HipError";
  constructor(
    readonly call: string,
    readonly code: number,
    readonly errorName: string,
  ) {
    super(`${call} failed: ${errorName} (${code})`);
  }
}

/** TKC_LIBAMDHIP, when set, is the only place looked at. */
export function libamdhipCandidates(): string[] {
  const env = process.env.TKC_LIBAMDHIP;
  if (env) return [env];
  return ["libamdhip64.so.6", "libamdhip64.so.7", "libamdhip64.so", "/opt/rocm/lib/libamdhip64.so"];
}

// hipDeviceAttribute_t values of ROCm 6 (they differ from CUDA's).
const ATTR = {
  l2CacheBytes: 19,
  ccMajor: 23,
  maxThreadsPerBlock: 56,
  memoryBusWidthBits: 59,
  memoryClockKHz: 60,
  ccMinor: 61,
  multiprocessors: 63,
  registersPerBlock: 71,
  sharedMemPerBlock: 74,
  sharedMemPerBlockOptin: 75,
  sharedMemPerMultiprocessor: 76,
  warpSize: 87,
} as const;

export interface HipRuntimeOptions {
  device?: number;
}

export function createHipRuntime(options: HipRuntimeOptions = {}): GpuRuntime {
  let lib;
  try {
    lib = loadFirst(
      libamdhipCandidates(),
      (detail) =>
        new HipUnavailableError(
          `libamdhip64 (the ROCm HIP runtime) could not be loaded (${detail}); this needs a machine with an ` +
            `AMD GPU and ROCm 6 installed (apt-get install hip-runtime-amd), or TKC_LIBAMDHIP pointing at it.`,
        ),
    );
  } catch (e) {
    if (e instanceof NativeLibraryUnavailableError) throw new HipUnavailableError(e.message);
    throw e;
  }
  const bind = (proto: string): Call => {
    const name = /(\w+)\(/.exec(proto)![1]!;
    try {
      return makeCall(name, bindFirst(lib, [proto]));
    } catch {
      throw new HipUnavailableError(
        `the loaded libamdhip64 does not export ${name}; tkc needs ROCm 6 or newer.`,
      );
    }
  };
  const errorName = bind("const char *hipGetErrorName(int code)") as unknown as (code: number) => string;
  const check = (status: number, call: string): void => {
    if (status !== 0) throw new HipError(call, status, cString(errorName(status)));
  };

  // hipDeviceptr_t is a void *; passing it as uint64 is the same in the x86-64 calling convention.
  const calls: DriverCalls = {
    malloc: bind("int hipMalloc(_Out_ uint64_t *ptr, size_t bytes)"),
    free: bind("int hipFree(uint64_t ptr)"),
    htod: bind("int hipMemcpyHtoD(uint64_t dst, const void *src, size_t bytes)"),
    dtoh: bind("int hipMemcpyDtoH(_Out_ void *dst, uint64_t src, size_t bytes)"),
    dtod: bind("int hipMemcpyDtoD(uint64_t dst, uint64_t src, size_t bytes)"),
    htodAsync: bind("int hipMemcpyHtoDAsync(uint64_t dst, const void *src, size_t bytes, void *stream)"),
    dtohAsync: bind("int hipMemcpyDtoHAsync(_Out_ void *dst, uint64_t src, size_t bytes, void *stream)"),
    dtodAsync: bind("int hipMemcpyDtoDAsync(uint64_t dst, uint64_t src, size_t bytes, void *stream)"),
    memsetD8: bind("int hipMemsetD8(uint64_t dst, uint8_t value, size_t n)"),
    memsetD8Async: bind("int hipMemsetD8Async(uint64_t dst, uint8_t value, size_t n, void *stream)"),
    moduleUnload: bind("int hipModuleUnload(void *module)"),
    getFunction: bind("int hipModuleGetFunction(_Out_ void **fn, void *module, const char *name)"),
    funcGetAttribute: bind("int hipFuncGetAttribute(_Out_ int *value, int attrib, void *fn)"),
    launch: bind(
      "int hipModuleLaunchKernel(void *f, uint gx, uint gy, uint gz, uint bx, uint by, uint bz, uint sharedBytes, void *stream, void *params, void *extra)",
    ),
    streamCreate: bind("int hipStreamCreateWithFlags(_Out_ void **stream, uint flags)"),
    streamDestroy: bind("int hipStreamDestroy(void *stream)"),
    streamSynchronize: bind("int hipStreamSynchronize(void *stream)"),
    eventCreate: bind("int hipEventCreateWithFlags(_Out_ void **event, uint flags)"),
    eventRecord: bind("int hipEventRecord(void *event, void *stream)"),
    eventSynchronize: bind("int hipEventSynchronize(void *event)"),
    eventElapsed: bind("int hipEventElapsedTime(_Out_ float *ms, void *start, void *end)"),
    eventDestroy: bind("int hipEventDestroy(void *event)"),
    beginCapture: bind("int hipStreamBeginCapture(void *stream, int mode)"),
    endCapture: bind("int hipStreamEndCapture(void *stream, _Out_ void **graph)"),
    instantiate: ((c: Call) => makeCall(c.name, (exec, graph) => c(exec, graph, null, null, 0)))(
      bind(
        "int hipGraphInstantiate(_Out_ void **exec, void *graph, void *errorNode, void *log, size_t logSize)",
      ),
    ),
    graphLaunch: bind("int hipGraphLaunch(void *exec, void *stream)"),
    graphExecDestroy: bind("int hipGraphExecDestroy(void *exec)"),
    graphDestroy: bind("int hipGraphDestroy(void *graph)"),
    deviceSynchronize: bind("int hipDeviceSynchronize(void)"),
    // Page-locked host memory, for copies that do not hold the host (downloadLater).
    hostAlloc: ((c: Call) => makeCall(c.name, (out, bytes) => c(out, bytes, 0)))(
      bind("int hipHostMalloc(_Out_ void **ptr, size_t bytes, uint flags)"),
    ),
    hostFree: bind("int hipHostFree(void *ptr)"),
    dtohAsyncToHost: bind("int hipMemcpyDtoHAsync(uint64_t dst, uint64_t src, size_t bytes, void *stream)"),
  };

  const init = bind("int hipInit(uint flags)");
  const status = init(0);
  if (status !== 0) {
    throw new HipUnavailableError(
      `hipInit failed with ${cString(errorName(status))}; no usable AMD GPU here.`,
    );
  }
  const count = [0];
  check(bind("int hipGetDeviceCount(_Out_ int *count)")(count), "hipGetDeviceCount");
  const ordinal = options.device ?? 0;
  if (ordinal < 0 || ordinal >= count[0]!) {
    throw new HipUnavailableError(`HIP device ${ordinal} does not exist (this machine has ${count[0]}).`);
  }
  check(bind("int hipSetDevice(int device)")(ordinal), "hipSetDevice");
  const device = queryDevice(bind, check, ordinal);

  const moduleLoad = bind("int hipModuleLoadData(_Out_ void **module, const void *image)");
  return new DriverRuntime({
    calls,
    check,
    device,
    loadModule(image) {
      if (typeof image === "string")
        throw new Error("HIP loads code objects (compileLLVM(...).hsaco), not text");
      const out: unknown[] = [null];
      check(moduleLoad(out, image), "hipModuleLoadData");
      return { handle: out[0], log: "" };
    },
    setMaxDynamicShared(_fn, bytes, info) {
      // AMD needs no opt-in: a launch may use all of the LDS a workgroup can have.
      if (bytes > info.sharedMemPerBlockOptin) {
        throw new Error(
          `${bytes} bytes of dynamic LDS requested; ${info.name} allows at most ${info.sharedMemPerBlockOptin}`,
        );
      }
    },
    release() {},
  });
}

function queryDevice(
  bind: (p: string) => Call,
  check: (s: number, c: string) => void,
  ordinal: number,
): DeviceInfo {
  const getAttr = bind("int hipDeviceGetAttribute(_Out_ int *value, int attrib, int device)");
  const attr = (a: number): number | undefined => {
    const out = [0];
    return getAttr(out, a, ordinal) === 0 ? out[0] : undefined;
  };
  const nameBuf = new Uint8Array(256);
  check(
    bind("int hipDeviceGetName(_Out_ uint8_t *name, int len, int device)")(nameBuf, 256, ordinal),
    "hipDeviceGetName",
  );
  const end = nameBuf.indexOf(0);
  const mem = [0];
  check(bind("int hipDeviceTotalMem(_Out_ size_t *bytes, int device)")(mem, ordinal), "hipDeviceTotalMem");
  const clock = attr(ATTR.memoryClockKHz);
  const bus = attr(ATTR.memoryBusWidthBits);
  const shared = attr(ATTR.sharedMemPerBlock) ?? 65536;
  return {
    api: "hip",
    ordinal,
    name: new TextDecoder().decode(nameBuf.subarray(0, end < 0 ? 256 : end)),
    computeCapability: [attr(ATTR.ccMajor) ?? 0, attr(ATTR.ccMinor) ?? 0],
    multiprocessors: attr(ATTR.multiprocessors) ?? 0,
    warpSize: attr(ATTR.warpSize) ?? 64,
    maxThreadsPerBlock: attr(ATTR.maxThreadsPerBlock) ?? 1024,
    sharedMemPerBlock: shared,
    sharedMemPerBlockOptin: attr(ATTR.sharedMemPerBlockOptin) || shared,
    sharedMemPerMultiprocessor: attr(ATTR.sharedMemPerMultiprocessor),
    registersPerBlock: attr(ATTR.registersPerBlock),
    l2CacheBytes: attr(ATTR.l2CacheBytes),
    totalMemoryBytes: Number(mem[0]),
    memoryClockKHz: clock || undefined,
    memoryBusWidthBits: bus || undefined,
    theoreticalBandwidthGBs: clock && bus ? (2 * clock * 1e3 * (bus / 8)) / 1e9 : undefined,
  };
}
