// One GpuRuntime over any CUDA-driver-shaped API: CUDA and HIP differ in names, error decoding,
// module loading and device queries (the `DriverApi` each provides), not in how memory, launches,
// streams, events and graphs are driven. Every call is checked, and an error names the call.
import { koffi } from "./koffi.ts";
import { MAX_PARAM_BYTES, packArgs, type KernelArg } from "./args.ts";
import {
  dim3,
  type DeviceInfo,
  type DevicePtr,
  type GpuEvent,
  type GpuFunction,
  type GpuGraph,
  type GpuModule,
  type GpuRuntime,
  type GpuStream,
  type KernelAttributes,
  type LaunchOptions,
} from "./runtime.ts";

/** A bound C function returning a status code, with the name used in error messages. */
export interface Call {
  name: string;
  (...args: unknown[]): number;
}

/** Wraps a bound function as a Call named `name` (Function.name itself is read-only). */
export function makeCall(name: string, fn: (...args: unknown[]) => unknown): Call {
  const c = (...args: unknown[]) => fn(...args) as number;
  Object.defineProperty(c, "name", { value: name });
  return c as Call;
}

/** The raw calls a runtime is driven by; signatures follow the CUDA driver API. */
export interface DriverCalls {
  malloc: Call; // (out u64*, bytes)
  free: Call; // (ptr)
  htod: Call; // (dst, src, bytes)
  dtoh: Call; // (dst, src, bytes)
  dtod: Call; // (dst, src, bytes)
  htodAsync: Call; // (dst, src, bytes, stream)
  dtohAsync: Call;
  dtodAsync: Call;
  /**
   * Page-locked host memory, where the driver binds it: hostAlloc (out void**, bytes), hostFree
   * (ptr), and dtohAsync into such memory by address (dst u64, src, bytes, stream).
   */
  hostAlloc?: Call;
  hostFree?: Call;
  dtohAsyncToHost?: Call;
  memsetD8: Call; // (dst, value, bytes)
  memsetD8Async: Call; // (dst, value, bytes, stream)
  moduleUnload: Call; // (module)
  getFunction: Call; // (out fn*, module, name)
  funcGetAttribute: Call; // (out int*, attr, fn)
  launch: Call; // (fn, gx, gy, gz, bx, by, bz, sharedBytes, stream, params, extra)
  /** cuLaunchKernelEx (config*, fn, params, extra), where the driver has it (CUDA 12+). */
  launchEx?: Call;
  streamCreate: Call; // (out stream*, flags)
  streamDestroy: Call;
  streamSynchronize: Call;
  eventCreate: Call; // (out event*, flags)
  eventRecord: Call; // (event, stream)
  eventSynchronize: Call;
  eventElapsed: Call; // (out float*, start, end)
  eventDestroy: Call;
  beginCapture: Call; // (stream, mode)
  endCapture: Call; // (stream, out graph*)
  instantiate: Call; // (out exec*, graph, ...) — the binding fills in trailing arguments
  graphLaunch: Call; // (exec, stream)
  graphExecDestroy: Call;
  graphDestroy: Call;
  deviceSynchronize: Call; // ()
}

export interface DriverApi {
  calls: DriverCalls;
  /** Throws a decoded error (naming `call`) when `status` is not success. */
  check(status: number, call: string): void;
  device: DeviceInfo;
  /** Loads an image and returns the module handle and the JIT log. */
  loadModule(image: string | Uint8Array): { handle: unknown; log: string };
  setMaxDynamicShared(fn: unknown, bytes: number, device: DeviceInfo): void;
  /** Per-function settings the runtime applies to every function it hands out (CUDA's carveout). */
  configureFunction?(fn: unknown): void;
  release(): void;
}

// CUfunction_attribute / hipFunction_attribute (same values in both APIs).
const FUNC_MAX_THREADS = 0;
const FUNC_SHARED_BYTES = 1;
const FUNC_LOCAL_BYTES = 3;
const FUNC_NUM_REGS = 4;
const CAPTURE_MODE_GLOBAL = 0;
// cuda.h: sizeof(CUlaunchConfig) and sizeof(CUlaunchAttribute) on 64-bit hosts, and
// CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION.
const LAUNCH_CONFIG_BYTES = 56;
const LAUNCH_ATTR_BYTES = 72;
const ATTR_PROGRAMMATIC_STREAM_SERIALIZATION = 6;
const STREAM_DEFAULT = 0;
const MAX_ARGS = MAX_PARAM_BYTES; // one-byte arguments are the worst case

export class DriverRuntime implements GpuRuntime {
  readonly device: DeviceInfo;
  // Native memory for launch parameters: the packed fields, and the `void **` table of their
  // addresses. Launch copies the parameters before it returns, so these serve every launch.
  private readonly fields: unknown;
  private readonly fieldsView: Uint8Array;
  private readonly fieldsAddr: bigint;
  private readonly table: unknown;
  private readonly tableView: BigUint64Array;
  private disposed = false;
  private launchConfig: unknown;
  /** Page-locked buffers for downloadLater no copy is using, and every one allocated. */
  private readonly idleHostBuffers: { ptr: unknown; bytes: number }[] = [];
  private readonly hostBuffers: unknown[] = [];

  constructor(private readonly api: DriverApi) {
    this.device = api.device;
    const k = koffi();
    this.fields = k.alloc("uint8_t", MAX_PARAM_BYTES);
    this.fieldsView = new Uint8Array(k.view(this.fields, MAX_PARAM_BYTES));
    this.fieldsAddr = BigInt(k.address(this.fields));
    this.table = k.alloc("uint64_t", MAX_ARGS);
    this.tableView = new BigUint64Array(k.view(this.table, 8 * MAX_ARGS));
  }

  private call(c: Call, ...args: unknown[]): void {
    if (this.disposed) throw new Error(`${c.name}: the ${this.device.api} runtime was disposed`);
    this.api.check(c(...args), c.name);
  }

  loadModule(image: string | Uint8Array): GpuModule {
    const { handle, log } = this.api.loadModule(image);
    const rt = this;
    const c = this.api.calls;
    return {
      log,
      getFunction(name: string): GpuFunction {
        const out: unknown[] = [null];
        rt.call(c.getFunction, out, handle, name);
        rt.api.configureFunction?.(out[0]);
        return rt.wrapFunction(name, out[0]);
      },
      unload: () => rt.call(c.moduleUnload, handle),
    };
  }

  private wrapFunction(name: string, handle: unknown): GpuFunction {
    const attr = (a: number): number => {
      const out = [0];
      this.call(this.api.calls.funcGetAttribute, out, a, handle);
      return out[0]!;
    };
    return {
      name,
      handle,
      attributes: (): KernelAttributes => ({
        registers: attr(FUNC_NUM_REGS),
        staticSharedBytes: attr(FUNC_SHARED_BYTES),
        localBytes: attr(FUNC_LOCAL_BYTES),
        maxThreadsPerBlock: attr(FUNC_MAX_THREADS),
      }),
      setMaxDynamicSharedMemory: (bytes: number) => this.api.setMaxDynamicShared(handle, bytes, this.device),
    };
  }

  alloc(bytes: number): DevicePtr {
    if (!(bytes > 0)) throw new Error(`alloc: size must be positive, got ${bytes}`);
    const out: unknown[] = [0];
    this.call(this.api.calls.malloc, out, bytes);
    return BigInt(out[0] as number | bigint);
  }

  free(ptr: DevicePtr): void {
    this.call(this.api.calls.free, ptr);
  }

  upload(dst: DevicePtr, src: ArrayBufferView, stream?: GpuStream): void {
    const c = this.api.calls;
    src = bytesOf(src);
    if (stream) this.call(c.htodAsync, dst, src, src.byteLength, stream.handle);
    else this.call(c.htod, dst, src, src.byteLength);
  }

  download(dst: ArrayBufferView, src: DevicePtr, stream?: GpuStream): void {
    const c = this.api.calls;
    dst = bytesOf(dst);
    if (stream) this.call(c.dtohAsync, dst, src, dst.byteLength, stream.handle);
    else this.call(c.dtoh, dst, src, dst.byteLength);
  }

  downloadLater(src: DevicePtr, bytes: number, stream: GpuStream): () => Uint8Array {
    const c = this.api.calls;
    if (!c.hostAlloc || !c.hostFree || !c.dtohAsyncToHost) {
      const out = new Uint8Array(bytes);
      stream.synchronize();
      this.download(out, src, stream);
      return () => out;
    }
    const k = koffi();
    const at = this.idleHostBuffers.findIndex((b) => b.bytes >= bytes);
    let buffer = at >= 0 ? this.idleHostBuffers.splice(at, 1)[0]! : undefined;
    if (!buffer) {
      const out: unknown[] = [null];
      // Whole pages: a handful of buffers serve every read of a similar size.
      const size = Math.max(4096, Math.ceil(bytes / 4096) * 4096);
      this.call(c.hostAlloc, out, size);
      buffer = { ptr: out[0], bytes: size };
      this.hostBuffers.push(out[0]);
    }
    const held = buffer;
    this.call(c.dtohAsyncToHost, BigInt(k.address(held.ptr)), src, bytes, stream.handle);
    const done = this.createEvent();
    done.record(stream);
    let result: Uint8Array | undefined;
    return () => {
      if (result) return result;
      try {
        done.synchronize();
        result = new Uint8Array(k.view(held.ptr, bytes)).slice();
      } finally {
        done.destroy();
        this.idleHostBuffers.push(held);
      }
      return result;
    };
  }

  copy(dst: DevicePtr, src: DevicePtr, bytes: number, stream?: GpuStream): void {
    const c = this.api.calls;
    if (stream) this.call(c.dtodAsync, dst, src, bytes, stream.handle);
    else this.call(c.dtod, dst, src, bytes);
  }

  memset8(dst: DevicePtr, value: number, bytes: number, stream?: GpuStream): void {
    const c = this.api.calls;
    if (stream) this.call(c.memsetD8Async, dst, value, bytes, stream.handle);
    else this.call(c.memsetD8, dst, value, bytes);
  }

  launch(fn: GpuFunction, args: readonly KernelArg[], o: LaunchOptions): void {
    const packed = packArgs(args);
    const [gx, gy, gz] = dim3(o.grid);
    const [bx, by, bz] = dim3(o.block);
    this.fieldsView.set(packed.bytes, 0);
    packed.offsets.forEach((off, i) => (this.tableView[i] = this.fieldsAddr + BigInt(off)));
    const params = packed.offsets.length ? this.table : null;
    const ex = this.api.calls.launchEx;
    if (o.programmatic && ex && o.stream) {
      // CUlaunchConfig {grid xyz, block xyz, sharedMemBytes, stream, attrs, numAttrs} with one
      // CUlaunchAttribute {PROGRAMMATIC_STREAM_SERIALIZATION, allowed = 1}.
      const k = koffi();
      this.launchConfig ??= k.alloc("uint8_t", LAUNCH_CONFIG_BYTES + LAUNCH_ATTR_BYTES);
      const view = new DataView(k.view(this.launchConfig, LAUNCH_CONFIG_BYTES + LAUNCH_ATTR_BYTES));
      const base = BigInt(k.address(this.launchConfig));
      [gx, gy, gz, bx, by, bz, o.sharedBytes ?? 0].forEach((v, i) => view.setUint32(4 * i, v, true));
      view.setBigUint64(32, BigInt(k.address(o.stream.handle)), true);
      view.setBigUint64(40, base + BigInt(LAUNCH_CONFIG_BYTES), true);
      view.setUint32(48, 1, true);
      view.setUint32(LAUNCH_CONFIG_BYTES, ATTR_PROGRAMMATIC_STREAM_SERIALIZATION, true);
      view.setUint32(LAUNCH_CONFIG_BYTES + 8, 1, true);
      this.call(ex, this.launchConfig, fn.handle, params, null);
      return;
    }
    this.call(
      this.api.calls.launch,
      fn.handle,
      gx,
      gy,
      gz,
      bx,
      by,
      bz,
      o.sharedBytes ?? 0,
      o.stream?.handle ?? null,
      params,
      null,
    );
  }

  createStream(): GpuStream {
    const out: unknown[] = [null];
    // A blocking stream (flags 0): calls made without a stream run on the legacy default stream,
    // which orders itself against blocking streams, so a plain upload() followed by a launch on
    // this stream is safe. (A non-blocking stream could start the kernel before the copy landed.)
    this.call(this.api.calls.streamCreate, out, STREAM_DEFAULT);
    const handle = out[0];
    const c = this.api.calls;
    return {
      handle,
      synchronize: () => this.call(c.streamSynchronize, handle),
      destroy: () => this.call(c.streamDestroy, handle),
    };
  }

  createEvent(): GpuEvent {
    const out: unknown[] = [null];
    this.call(this.api.calls.eventCreate, out, 0);
    const handle = out[0];
    const c = this.api.calls;
    const ev: GpuEvent & { handle: unknown } = {
      handle,
      record: (stream?: GpuStream) => this.call(c.eventRecord, handle, stream?.handle ?? null),
      synchronize: () => this.call(c.eventSynchronize, handle),
      elapsedSince: (start: GpuEvent) => {
        const ms = [0];
        this.call(c.eventElapsed, ms, (start as GpuEvent & { handle: unknown }).handle, handle);
        return ms[0]!;
      },
      destroy: () => this.call(c.eventDestroy, handle),
    };
    return ev;
  }

  synchronize(): void {
    this.call(this.api.calls.deviceSynchronize);
  }

  captureGraph(stream: GpuStream, body: (stream: GpuStream) => void): GpuGraph {
    const c = this.api.calls;
    this.call(c.beginCapture, stream.handle, CAPTURE_MODE_GLOBAL);
    const graphOut: unknown[] = [null];
    try {
      body(stream);
    } catch (e) {
      // End the capture anyway so the stream is usable again; the partial graph is discarded.
      if (c.endCapture(stream.handle, graphOut) === 0 && graphOut[0]) c.graphDestroy(graphOut[0]);
      throw e;
    }
    this.call(c.endCapture, stream.handle, graphOut);
    const execOut: unknown[] = [null];
    try {
      this.call(c.instantiate, execOut, graphOut[0]);
    } finally {
      this.call(c.graphDestroy, graphOut[0]); // the executable graph is independent of it
    }
    const exec = execOut[0];
    return {
      launch: (s: GpuStream) => this.call(c.graphLaunch, exec, s.handle),
      destroy: () => this.call(c.graphExecDestroy, exec),
    };
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const p of this.hostBuffers) this.api.calls.hostFree!(p);
    koffi().free(this.fields);
    koffi().free(this.table);
    this.api.release();
  }
}

/** The bytes of any typed array or DataView, as koffi passes a Uint8Array as a pointer. */
function bytesOf(v: ArrayBufferView): Uint8Array {
  return v instanceof Uint8Array ? v : new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}
