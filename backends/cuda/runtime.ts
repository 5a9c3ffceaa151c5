// The CUDA runtime: the shared DriverRuntime over libcuda, plus what is CUDA's own: cuInit and
// the primary context, device attributes, PTX loading through the driver's JIT with its logs,
// and the opt-in for more than 48 KB of dynamic shared memory.
import { koffi, NativeLibraryUnavailableError } from "../gpu-common/koffi.ts";
import { DriverRuntime, type DriverApi } from "../gpu-common/driver-runtime.ts";
import type { DeviceInfo, GpuRuntime } from "../gpu-common/runtime.ts";
import { cudaBindings, describeCudaError, type CudaBindings } from "./driver.ts";
import { CudaError, CudaUnavailableError } from "./errors.ts";

// CUdevice_attribute values (cuda.h, CUDA 13).
const ATTR = {
  maxThreadsPerBlock: 1,
  sharedMemPerBlock: 8,
  warpSize: 10,
  registersPerBlock: 12,
  multiprocessors: 16,
  memoryClockKHz: 36,
  memoryBusWidthBits: 37,
  l2CacheBytes: 38,
  ccMajor: 75,
  ccMinor: 76,
  sharedMemPerMultiprocessor: 81,
  sharedMemPerBlockOptin: 97,
} as const;

// CUjit_option values.
const JIT_INFO_LOG_BUFFER = 3;
const JIT_INFO_LOG_BUFFER_SIZE_BYTES = 4;
const JIT_ERROR_LOG_BUFFER = 5;
const JIT_ERROR_LOG_BUFFER_SIZE_BYTES = 6;
const JIT_LOG_VERBOSE = 12;
const LOG_BYTES = 1 << 16;
const FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8;
const FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT = 9;

export interface CudaRuntimeOptions {
  /** Device ordinal (default 0). */
  device?: number;
  /**
   * The share of each multiprocessor's unified L1/shared memory that every kernel prefers as
   * shared memory, in percent (CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT); default the
   * driver's choice per kernel, or TKC_CUDA_SHARED_CARVEOUT. Kernels whose carveouts differ cannot
   * share a multiprocessor, so a kernel launched early (programmatic dependent launch) beside
   * one of another carveout waits for it to drain; one carveout for all keeps them overlapping.
   * 100 for every kernel made the 7B decode step 21.6% slower on an H200 (its kernels lean on
   * L1; bench/results/decode-gemv-ring-ab-h200.json).
   */
  sharedCarveout?: number;
}

/** Opens the CUDA driver on one device; throws CudaUnavailableError when there is none. */
export function createCudaRuntime(options: CudaRuntimeOptions = {}): GpuRuntime {
  let b: CudaBindings;
  try {
    b = cudaBindings();
  } catch (e) {
    if (e instanceof NativeLibraryUnavailableError) throw new CudaUnavailableError(e.message);
    throw e;
  }
  const check = (status: number, call: string): void => {
    if (status === 0) return;
    const d = describeCudaError(b, status);
    throw new CudaError(call, status, d.name, d.description);
  };
  const unavailable = (status: number, what: string): never => {
    const d = describeCudaError(b, status);
    throw new CudaUnavailableError(
      `${what} failed with ${d.name}: ${d.description}; no usable NVIDIA GPU here.`,
    );
  };

  const initStatus = b.init(0);
  if (initStatus !== 0) unavailable(initStatus, "cuInit");
  const count = [0];
  check(b.deviceGetCount(count), "cuDeviceGetCount");
  const ordinal = options.device ?? 0;
  if (ordinal < 0 || ordinal >= count[0]!) {
    throw new CudaUnavailableError(`CUDA device ${ordinal} does not exist (this machine has ${count[0]}).`);
  }
  const dev = [0];
  check(b.deviceGet(dev, ordinal), "cuDeviceGet");
  const ctx: unknown[] = [null];
  check(b.primaryCtxRetain(ctx, dev[0]), "cuDevicePrimaryCtxRetain");
  check(b.ctxSetCurrent(ctx[0]), "cuCtxSetCurrent");
  const device = queryDevice(b, dev[0]!, ordinal, check);

  const envCarveout = process.env.TKC_CUDA_SHARED_CARVEOUT;
  const carveout = options.sharedCarveout ?? (envCarveout ? Number(envCarveout) : undefined);
  if (carveout !== undefined && !(Number.isInteger(carveout) && carveout >= 0 && carveout <= 100))
    throw new Error(`the shared memory carveout is a whole percentage from 0 to 100, not ${carveout}`);
  const api: DriverApi = {
    calls: b.calls,
    check,
    device,
    loadModule: (image) => loadModule(b, image),
    setMaxDynamicShared(fn, bytes, info) {
      const limit = info.sharedMemPerBlockOptin;
      if (bytes > limit) {
        throw new Error(
          `${bytes} bytes of dynamic shared memory requested; ${info.name} allows at most ${limit} per block`,
        );
      }
      check(
        b.funcSetAttribute(fn, FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, bytes),
        "cuFuncSetAttribute",
      );
    },
    ...(carveout === undefined
      ? {}
      : {
          configureFunction: (fn: unknown) =>
            check(
              b.funcSetAttribute(fn, FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT, carveout),
              "cuFuncSetAttribute",
            ),
        }),
    release: () => check(b.primaryCtxRelease(dev[0]), "cuDevicePrimaryCtxRelease_v2"),
  };
  return new DriverRuntime(api);
}

function queryDevice(
  b: CudaBindings,
  dev: number,
  ordinal: number,
  check: (s: number, c: string) => void,
): DeviceInfo {
  // Attributes the driver may have retired (memory clock) read as undefined instead of failing.
  const attr = (a: number): number | undefined => {
    const out = [0];
    return b.deviceGetAttribute(out, a, dev) === 0 ? out[0] : undefined;
  };
  const must = (a: number, what: string): number => {
    const v = attr(a);
    if (v === undefined) throw new Error(`cuDeviceGetAttribute(${what}) failed`);
    return v;
  };
  const nameBuf = new Uint8Array(256);
  check(b.deviceGetName(nameBuf, nameBuf.length, dev), "cuDeviceGetName");
  const name = new TextDecoder().decode(
    nameBuf.subarray(0, nameBuf.indexOf(0) < 0 ? 256 : nameBuf.indexOf(0)),
  );
  const mem = [0];
  check(b.deviceTotalMem(mem, dev), "cuDeviceTotalMem_v2");
  const version = [0];
  check(b.driverGetVersion(version), "cuDriverGetVersion");
  const major = must(ATTR.ccMajor, "compute capability major");
  const minor = must(ATTR.ccMinor, "compute capability minor");
  const clock = attr(ATTR.memoryClockKHz);
  const bus = attr(ATTR.memoryBusWidthBits);
  return {
    api: "cuda",
    ordinal,
    name,
    arch: `sm_${major}${minor}`,
    computeCapability: [major, minor],
    multiprocessors: must(ATTR.multiprocessors, "multiprocessor count"),
    warpSize: must(ATTR.warpSize, "warp size"),
    maxThreadsPerBlock: must(ATTR.maxThreadsPerBlock, "max threads per block"),
    sharedMemPerBlock: must(ATTR.sharedMemPerBlock, "shared memory per block"),
    sharedMemPerBlockOptin:
      attr(ATTR.sharedMemPerBlockOptin) ?? must(ATTR.sharedMemPerBlock, "shared memory"),
    sharedMemPerMultiprocessor: attr(ATTR.sharedMemPerMultiprocessor),
    registersPerBlock: attr(ATTR.registersPerBlock),
    l2CacheBytes: attr(ATTR.l2CacheBytes),
    totalMemoryBytes: Number(mem[0]),
    memoryClockKHz: clock || undefined,
    memoryBusWidthBits: bus || undefined,
    theoreticalBandwidthGBs: clock && bus ? (2 * clock * 1e3 * (bus / 8)) / 1e9 : undefined,
    driverVersion: version[0],
  };
}

/** cuModuleLoadDataEx with info and error log buffers, so a bad PTX shows ptxas's complaint. */
function loadModule(b: CudaBindings, image: string | Uint8Array): { handle: unknown; log: string } {
  const k = koffi();
  // The driver wants NUL-terminated PTX; a binary image is passed as is.
  const bytes = typeof image === "string" ? Buffer.from(image + "\0", "utf8") : image;
  const info = k.alloc("char", LOG_BYTES);
  const err = k.alloc("char", LOG_BYTES);
  try {
    new Uint8Array(k.view(info, 1))[0] = 0;
    new Uint8Array(k.view(err, 1))[0] = 0;
    const options = Int32Array.of(
      JIT_INFO_LOG_BUFFER,
      JIT_INFO_LOG_BUFFER_SIZE_BYTES,
      JIT_ERROR_LOG_BUFFER,
      JIT_ERROR_LOG_BUFFER_SIZE_BYTES,
      JIT_LOG_VERBOSE,
    );
    // Option values are pointer-sized: buffer addresses, sizes and flags cast to void *.
    const values = BigUint64Array.of(
      BigInt(k.address(info)),
      BigInt(LOG_BYTES),
      BigInt(k.address(err)),
      BigInt(LOG_BYTES),
      1n,
    );
    const out: unknown[] = [null];
    const status = b.moduleLoadDataEx(out, bytes, options.length, options, values);
    const infoLog = (k.decode(info, "char", -1) as string).trim();
    if (status !== 0) {
      const d = describeCudaError(b, status);
      const errLog = (k.decode(err, "char", -1) as string).trim();
      throw new CudaError("cuModuleLoadDataEx", status, d.name, d.description, errLog || infoLog);
    }
    return { handle: out[0], log: infoLog };
  } finally {
    k.free(info);
    k.free(err);
  }
}
