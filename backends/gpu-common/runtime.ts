// The runtime interface every GPU API (CUDA, HIP) implements, so that schedules, benchmarks and
// the model runner are written once. Device pointers are bigints: they are 64-bit addresses, and
// offsets into a buffer are plain bigint arithmetic.
import type { KernelArg } from "./args.ts";

export type DevicePtr = bigint;
export type Dim3 = number | readonly [number, number?, number?];

export interface DeviceInfo {
  api: "cuda" | "hip";
  ordinal: number;
  name: string;
  /** "sm_90" for NVIDIA; the gfx name for AMD where the runtime reports it. */
  arch?: string;
  computeCapability?: [number, number];
  multiprocessors: number;
  warpSize: number;
  maxThreadsPerBlock: number;
  /** Shared memory a block gets without opting in, and the most it can opt in to. */
  sharedMemPerBlock: number;
  sharedMemPerBlockOptin: number;
  sharedMemPerMultiprocessor?: number;
  registersPerBlock?: number;
  l2CacheBytes?: number;
  totalMemoryBytes: number;
  /** Memory clock (kHz) and bus width (bits); absent when the driver no longer reports them. */
  memoryClockKHz?: number;
  memoryBusWidthBits?: number;
  /** 2 * clock * bus width / 8: the DDR peak, an upper bound for the measured copy bandwidth. */
  theoreticalBandwidthGBs?: number;
  driverVersion?: number;
}

export interface KernelAttributes {
  registers: number;
  staticSharedBytes: number;
  localBytes: number;
  maxThreadsPerBlock: number;
}

export interface GpuFunction {
  readonly name: string;
  readonly handle: unknown;
  attributes(): KernelAttributes;
  /** Allows launches with more dynamic shared memory than the default 48 KB (NVIDIA opt-in). */
  setMaxDynamicSharedMemory(bytes: number): void;
}

export interface GpuModule {
  /** The JIT's log (ptxas's info for PTX on CUDA); empty where the API has none. */
  readonly log: string;
  getFunction(name: string): GpuFunction;
  unload(): void;
}

export interface GpuStream {
  readonly handle: unknown;
  synchronize(): void;
  destroy(): void;
}

export interface GpuEvent {
  record(stream?: GpuStream): void;
  synchronize(): void;
  /** Milliseconds from `start` to this event; both must have been recorded and completed. */
  elapsedSince(start: GpuEvent): number;
  destroy(): void;
}

/** An instantiated graph: replays everything captured, with the arguments captured. */
export interface GpuGraph {
  launch(stream: GpuStream): void;
  destroy(): void;
}

export interface LaunchOptions {
  grid: Dim3;
  block: Dim3;
  /** Dynamic shared memory in bytes (default 0). */
  sharedBytes?: number;
  /** Default: the legacy default stream. Must be given while capturing. */
  stream?: GpuStream;
  /**
   * Programmatic dependent launch (CUDA, sm_90+): the kernel may start while the previous kernel
   * on `stream` finishes; it must wait for it itself (tkc's sm_90 kernels begin with
   * griddepcontrol.wait). Ignored where the driver lacks cuLaunchKernelEx, and without a stream.
   */
  programmatic?: boolean;
}

export interface GpuRuntime {
  readonly device: DeviceInfo;
  /** PTX text (CUDA) or a code object (CUDA cubin, HIP hsaco). */
  loadModule(image: string | Uint8Array): GpuModule;
  alloc(bytes: number): DevicePtr;
  free(ptr: DevicePtr): void;
  /**
   * Host to device. With a stream the copy is ordered on it; without, it runs on the legacy
   * default stream, which is ordered against streams from createStream(). From ordinary
   * (pageable) JS memory the call returns once the source has been staged, so the JS buffer may
   * be reused at once.
   */
  upload(dst: DevicePtr, src: ArrayBufferView, stream?: GpuStream): void;
  /** Device to host; from pageable memory this returns only once the data has arrived. */
  download(dst: ArrayBufferView, src: DevicePtr, stream?: GpuStream): void;
  /**
   * Device to host in `stream`'s order (once the work enqueued on it so far has run), without
   * waiting: the returned function waits for this copy alone and returns its bytes, while work
   * enqueued on `stream` after this call runs on. Through page-locked memory where the driver
   * offers it; elsewhere the copy waits for the stream at once.
   */
  downloadLater(src: DevicePtr, bytes: number, stream: GpuStream): () => Uint8Array;
  copy(dst: DevicePtr, src: DevicePtr, bytes: number, stream?: GpuStream): void;
  memset8(dst: DevicePtr, value: number, bytes: number, stream?: GpuStream): void;
  launch(fn: GpuFunction, args: readonly KernelArg[], options: LaunchOptions): void;
  createStream(): GpuStream;
  createEvent(): GpuEvent;
  /** Waits for all work on the device. */
  synchronize(): void;
  /**
   * Records what `body` enqueues on `stream` (launches, device copies) into a graph, without
   * running it, and instantiates it. Per-step values belong in device memory that the kernels
   * read (upload them on the stream before each replay), so one graph serves every step.
   */
  captureGraph(stream: GpuStream, body: (stream: GpuStream) => void): GpuGraph;
  dispose(): void;
}

export function dim3(d: Dim3): [number, number, number] {
  const [x, y = 1, z = 1] = typeof d === "number" ? [d] : d;
  for (const v of [x, y, z]) {
    if (!Number.isInteger(v) || v < 1)
      throw new Error(`grid/block dimensions must be positive integers, got ${String(d)}`);
  }
  return [x, y, z];
}
