/**
 * The Vulkan device: tensors in storage buffers (views bind a sub-range at a descriptor offset),
 * ops compiled on the fly for the device (scheduled for "vulkan", lowered with the device's own
 * subgroup size, rendered to SPIR-V, one pipeline each) or taken from a library compiled ahead of
 * time, launches batched into one command buffer per sync, and recordings as reusable command
 * buffers (replay = one submission).
 *
 *   const device = createVulkanDevice();                  // lavapipe here, the GPU's driver there
 *   const model = new KernelLlama(device, weights, { format: "q4f16_1", schedules: device.schedules });
 *
 * Push constants are baked into a recording, so a recorded op's scalars must be per-launch
 * constants (eps, theta); per-step values (token, position, length) live in one-element tensors
 * (OpSpec.scalarsInMemory), as the model already keeps them.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { bytesOf, type DType } from "../../dsl/dtypes.ts";
import { storageFor, type Storage } from "../../dsl/ndarray.ts";
import {
  buildVulkanArtifact,
  vulkanKernel,
  type DeviceTensor as BoundTensor,
  type VulkanArtifact,
  type VulkanKernel,
} from "../../backends/vulkan/kernel.ts";
import {
  createVulkanRuntime,
  type Command,
  type DeviceInfo,
  type GpuBuffer,
  type VulkanRuntime,
  type VulkanRuntimeOptions,
} from "../../backends/vulkan/runtime.ts";
import { lowerToDevice } from "../../lower/passes/pipeline.ts";
import { TARGETS, type Target } from "../../lower/passes/target.ts";
import type { Schedule } from "../../lower/schedule/schedule.ts";
import { GPU_SCHEDULES } from "../../stdlib/gpu/schedules.ts";
import type { ScheduleTable } from "../ops.ts";
import type { OpChoices } from "../op-choices.ts";
import type { Device, DeviceTensor, Op, OpArgs, OpSpec, Recording } from "./types.ts";

/**
 * The frontend (ts-morph and the TypeScript checker), which turns an OpSpec into IR, is loaded
 * through a computed import: bundles for GPU machines (bench/device), which cannot carry ts-morph
 * and run ahead-of-time libraries, leave it out, and there ops must come from `library`.
 */
type Frontend = typeof import("./prepare.ts");
const FRONTEND = "./prepare.ts";
let frontend: Frontend | undefined;
let frontendError = "";
try {
  frontend = (await import(/* @vite-ignore */ FRONTEND)) as Frontend;
} catch (e) {
  frontendError = e instanceof Error ? e.message : String(e);
}

/**
 * f16Gemv (every GEMV of the f16 and f32 formats) for GPUs, until stdlib/gpu/schedules.ts has one:
 * `rows` output rows per block (threadIdx.y), each row's reduction spread over `lanes` threads with
 * adjacent lanes on adjacent elements, combined by shuffles and shared memory. Unscheduled, a GEMV
 * runs as one invocation, which is slow everywhere and wrong on lavapipe: llvmpipe stops a loop
 * after 65535 iterations without a word (a 288x288 GEMV lost its last rows that way).
 */
function f16GemvSchedule(s: Schedule, target: string): void {
  const { rows, lanes } = target === "cpu" ? { rows: 2, lanes: 4 } : { rows: 4, lanes: 32 };
  const [rowBlock, rowThread] = s.split("n", [null, rows]);
  const [kOuter, kLane] = s.split("k", [null, lanes]);
  s.reorder(kLane!, kOuter!, { reassociate: true });
  s.bind(rowBlock!, "blockIdx.x");
  s.bind(rowThread!, "threadIdx.y");
  s.bind(kLane!, "threadIdx.x");
}

/** The schedules a model on Vulkan uses: GPU_SCHEDULES, and f16Gemv while it has none. */
export const VULKAN_SCHEDULES: ScheduleTable = { f16Gemv: f16GemvSchedule, ...GPU_SCHEDULES };
/**
 * Kernel choices for Vulkan (llama/op-choices.ts OpChoices; each 7B GEMV shape's schedule is tuned
 * through the driver: stdlib/gpu/tuned.ts TUNED.vulkan): the down projection on the one-row GEMV.
 */
export const VULKAN_OP_CHOICES: OpChoices = { downRowsPerThread: 1 };

/** Ops compiled ahead of time for one kind of Vulkan device (its subgroup size). */
export interface VulkanLibrary {
  readonly format: "tkc-vulkan-library";
  readonly version: 1;
  /** The lowering target's name, and the subgroup size the kernels were lowered for. */
  readonly target: string;
  readonly subgroupSize: number;
  readonly kernels: Readonly<Record<string, VulkanArtifact>>;
}

export interface VulkanDeviceOptions {
  /** The runtime to use (default: a new one from `runtimeOptions`, destroyed by dispose()). */
  readonly runtime?: VulkanRuntime;
  readonly runtimeOptions?: VulkanRuntimeOptions;
  /** The lowering target (default: vulkanTarget(runtime.device), the device's subgroup size). */
  readonly target?: Target;
  /** Ops compiled ahead of time, by OpSpec key; others are compiled here (needs the frontend). */
  readonly library?: VulkanLibrary;
  /** Run spirv-val on kernels compiled here: "if-available" (default), true or false. */
  readonly validate?: boolean | "if-available";
  /** Dump each kernel compiled here (its SPIR-V assembly) for debugging. */
  readonly onCompile?: (key: string, art: VulkanArtifact) => void;
  /** Record timestamps around every launch of a recording; each replay's times go to lastReplay. */
  readonly timestamps?: boolean;
}

/** GPU time of the last replay of a recording made with timestamps. */
export interface ReplayTiming {
  readonly gpuNs: number;
  /** Each launch's GPU nanoseconds, and the key of its op. */
  readonly launches: readonly { readonly key: string; readonly ns: number }[];
}

/**
 * The lowering target for a device: TARGETS.vulkan with its subgroup size as the warp size (so
 * shuffle reductions never span more lanes than a subgroup: 8 on lavapipe, 32 on NVIDIA) and its
 * limits.
 */
export function vulkanTarget(info: DeviceInfo): Target {
  return {
    ...TARGETS.vulkan,
    name: `vulkan (${info.name}, subgroup ${info.subgroup.size})`,
    warpSize: info.subgroup.size,
    maxThreadsPerBlock: info.limits.maxComputeWorkGroupInvocations,
    maxSharedMemoryBytes: info.limits.maxComputeSharedMemorySize,
  };
}

/** The SPIR-V environment a device validates against. */
const envFor = (info: DeviceInfo) => (info.apiVersion.startsWith("1.2") ? "vulkan1.2" : "vulkan1.3");

/**
 * Compiles one op for Vulkan: scheduled for "vulkan", lowered for `target`, rendered to SPIR-V
 * (needs the frontend: run where the kernel sources and ts-morph are).
 */
export function compileVulkanOp(
  spec: OpSpec,
  target: Target,
  opts: { env?: "vulkan1.2" | "vulkan1.3"; validate?: boolean | "if-available" } = {},
): VulkanArtifact {
  if (!frontend)
    throw new Error(
      `tkc vulkan: op ${spec.key} is not in the device's library and cannot be compiled here: the frontend did not load (${frontendError})`,
    );
  const device = lowerToDevice(frontend.scheduledFunc(spec, "vulkan"), target);
  return buildVulkanArtifact(device, {
    env: opts.env ?? "vulkan1.2",
    subgroupSize: target.warpSize,
    validate: opts.validate ?? "if-available",
  });
}

/** Compiles ops ahead of time for devices of one subgroup size (32: NVIDIA). */
export function compileVulkanLibrary(
  specs: readonly OpSpec[],
  target: Target = TARGETS.vulkan,
  onProgress?: (done: number, total: number, key: string) => void,
): VulkanLibrary {
  const kernels: Record<string, VulkanArtifact> = {};
  specs.forEach((spec, i) => {
    // The assembly text is for dumps; the words are what the device loads.
    kernels[spec.key] = { ...compileVulkanOp(spec, target), text: "" };
    onProgress?.(i + 1, specs.length, spec.key);
  });
  return {
    format: "tkc-vulkan-library",
    version: 1,
    target: target.name,
    subgroupSize: target.warpSize,
    kernels,
  };
}

export function writeVulkanLibrary(lib: VulkanLibrary, file: string): void {
  writeFileSync(file, JSON.stringify(lib));
}

export function readVulkanLibrary(file: string): VulkanLibrary {
  const lib = JSON.parse(readFileSync(file, "utf8")) as VulkanLibrary;
  if (lib.format !== "tkc-vulkan-library" || lib.version !== 1)
    throw new Error(`tkc: ${file} is not a tkc Vulkan library (version 1)`);
  return lib;
}

export interface VulkanDevice extends Device {
  readonly kind: "vulkan";
  readonly runtime: VulkanRuntime;
  readonly info: DeviceInfo;
  /** The lowering target ops compiled here use. */
  readonly target: Target;
  /** The schedules a model on this device should be built with (VULKAN_SCHEDULES). */
  readonly schedules: ScheduleTable;
  /** The kernel choices a model on this device should be built with (VULKAN_OP_CHOICES). */
  readonly opChoices: OpChoices;
  /** With `timestamps`: the GPU time of the last recording replayed. */
  readonly lastReplay: ReplayTiming | undefined;
}

interface VulkanTensor extends DeviceTensor {
  readonly buffer: GpuBuffer;
  /** Byte offset of element 0 in the buffer. */
  readonly offset: number;
}

interface VulkanOp extends Op {
  readonly kernel: VulkanKernel;
}

const count = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** Most dispatches waiting for a sync before they are submitted anyway. */
const MAX_PENDING = 4096;

export function createVulkanDevice(options: VulkanDeviceOptions = {}): VulkanDevice {
  const rt = options.runtime ?? createVulkanRuntime(options.runtimeOptions);
  const owned = !options.runtime;
  const info = rt.device;
  const target = options.target ?? vulkanTarget(info);
  const lib = options.library;
  if (lib && lib.subgroupSize !== info.subgroup.size)
    throw new Error(
      `tkc vulkan: the library was compiled for subgroup size ${lib.subgroupSize} (${lib.target}); ${info.name} has ${info.subgroup.size}`,
    );
  // Views bound at 16-byte multiples at least: kernels read read-only buffers through a uvec4 view
  // of the same binding (backends/spirv vector loads), which needs 16-byte aligned elements.
  const align = Math.max(16, info.limits.minStorageBufferOffsetAlignment);
  const ops = new Map<string, VulkanOp>();
  const buffers: GpuBuffer[] = [];
  let pending: Command[] = [];
  let recording: { commands: Command[]; keys: string[] } | undefined;
  /** Staging buffers for views bound through a copy, by their slot in a launch's arguments. */
  const staging: GpuBuffer[] = [];
  let lastReplay: ReplayTiming | undefined;
  const timestamps = (options.timestamps ?? false) && info.timestamps;
  let disposed = false;
  const asT = (t: DeviceTensor) => t as VulkanTensor;

  const alive = () => {
    if (disposed) throw new Error("tkc vulkan: the device was disposed");
  };
  /** Submits the launches made since the last sync, in one command buffer. */
  const flush = () => {
    if (pending.length === 0) return;
    const batch = pending;
    pending = [];
    rt.run(batch);
  };

  /** A staging buffer of at least `bytes` for slot `slot` (grown, never shrunk or freed early:
   *  recordings keep referring to the buffers they were recorded with). */
  const stagingBuffer = (slot: number, bytes: number): GpuBuffer => {
    const have = staging[slot];
    if (have && have.size >= bytes) return have;
    const b = rt.buffer(Math.max(256, 2 ** Math.ceil(Math.log2(bytes))));
    buffers.push(b);
    staging[slot] = b;
    return b;
  };

  /**
   * The commands of one launch. A tensor argument binds its buffer at the view's byte offset,
   * except that it goes through a staging buffer (copied in before the dispatch, and back after it
   * when the kernel writes it) when
   *  - the offset is not a multiple of minStorageBufferOffsetAlignment, which Vulkan cannot bind;
   *  - the kernel only reads it, another argument it writes overlaps it (the model's in-place
   *    residual: residual and y are one buffer), and the workgroup's x threads span more than one
   *    subgroup: the schedules put a reduction's lanes along x and every lane stores the result, so
   *    a later subgroup would read what an earlier one already overwrote (lavapipe, subgroup 8,
   *    with 32-lane GEMV rows). Within one subgroup (NVIDIA's 32) the loads precede the stores.
   */
  const launch = (op: VulkanOp, args: OpArgs): { commands: Command[]; keys: string[] } => {
    const art = op.kernel.artifact;
    const bound: Record<string, BoundTensor | number> = {};
    for (const [name, v] of Object.entries(args)) bound[name] = typeof v === "number" ? v : asT(v);
    const buffersAbi = art.abi.filter((a) => a.kind === "buffer");
    const range = (t: VulkanTensor) => [t.offset, t.offset + count(t.shape) * bytesOf(t.dtype)] as const;
    const overlap = (a: VulkanTensor, b: VulkanTensor) => {
      const [a0, a1] = range(a);
      const [b0, b1] = range(b);
      return a.buffer === b.buffer && a0 < b1 && b0 < a1;
    };
    const spansSubgroups = art.localSize[0] > info.subgroup.size;
    const before: Command[] = [];
    const after: Command[] = [];
    let slot = 0;
    for (const a of buffersAbi) {
      const v = args[a.name];
      if (v === undefined || typeof v === "number") continue; // dispatch() names what is missing
      const t = asT(v);
      const misaligned = t.offset % align !== 0;
      const aliased =
        spansSubgroups &&
        !a.writes &&
        buffersAbi.some((b) => {
          const w = args[b.name];
          return (
            b.writes && b.name !== a.name && w !== undefined && typeof w !== "number" && overlap(t, asT(w))
          );
        });
      if (!misaligned && !aliased) continue;
      const [from, to] = range(t);
      const size = to - from;
      if (size === 0) continue;
      const s = stagingBuffer(slot++, size);
      // Copied in even when only written: the kernel may write part of it.
      before.push({ copy: { src: t.buffer, srcOffset: from, dst: s, dstOffset: 0, size } });
      if (a.writes) after.push({ copy: { src: s, srcOffset: 0, dst: t.buffer, dstOffset: from, size } });
      bound[a.name] = { dtype: t.dtype, shape: t.shape, buffer: s, offset: 0 };
    }
    const key = op.spec.key;
    const commands: Command[] = [...before, op.kernel.dispatch(bound), ...after];
    const keys = [...before.map(() => `copy:${key}`), key, ...after.map(() => `copy:${key}`)];
    return { commands, keys };
  };

  const device: VulkanDevice = {
    kind: "vulkan",
    name: `${info.name} (Vulkan)`,
    runtime: rt,
    info,
    target,
    schedules: VULKAN_SCHEDULES,
    opChoices: VULKAN_OP_CHOICES,
    get lastReplay() {
      return lastReplay;
    },
    tensor(dtype: DType, shape: readonly number[]): DeviceTensor {
      alive();
      // Storage buffers hold whole 32-bit words; contents are undefined until written.
      const bytes = Math.max(16, Math.ceil((count(shape) * bytesOf(dtype)) / 4) * 4);
      const buffer = rt.buffer(bytes);
      buffers.push(buffer);
      const t: VulkanTensor = { dtype, shape: [...shape], buffer, offset: 0 };
      return t;
    },
    view(t, shape, offset = 0) {
      const base = asT(t);
      if (!Number.isInteger(offset) || offset < 0 || offset + count(shape) > count(base.shape))
        throw new RangeError(
          `tkc: a view of ${count(shape)} elements at ${offset} exceeds a tensor of ${count(base.shape)}`,
        );
      const v: VulkanTensor = {
        dtype: base.dtype,
        shape: [...shape],
        buffer: base.buffer,
        offset: base.offset + offset * bytesOf(base.dtype),
      };
      return v;
    },
    write(t, data: Storage, offset = 0) {
      alive();
      const d = asT(t);
      if (offset < 0 || offset + data.length > count(d.shape))
        throw new RangeError(
          `tkc: writing ${data.length} elements at ${offset} into a tensor of ${count(d.shape)}`,
        );
      flush(); // launches enqueued before this write read the old contents
      const bytes: ArrayBufferView =
        d.dtype === "i64" ? BigInt64Array.from(data as Float64Array, (v) => BigInt(Math.trunc(v))) : data;
      rt.upload(d.buffer, bytes, d.offset + offset * bytesOf(d.dtype));
    },
    readLater(t) {
      const data = this.read(t);
      return () => data;
    },
    read(t) {
      alive();
      const d = asT(t);
      flush();
      const n = count(d.shape);
      const raw = rt.download(d.buffer, n * bytesOf(d.dtype), d.offset);
      if (d.dtype === "i64") return Float64Array.from(new BigInt64Array(raw.buffer, 0, n), Number);
      const out = storageFor(d.dtype, n);
      new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(raw);
      return out;
    },
    op(spec: OpSpec) {
      alive();
      let op = ops.get(spec.key);
      if (!op) {
        let art = lib?.kernels[spec.key];
        if (!art) {
          art = compileVulkanOp(spec, target, {
            env: envFor(info),
            ...(options.validate !== undefined ? { validate: options.validate } : {}),
          });
          options.onCompile?.(spec.key, art);
        }
        op = { spec, kernel: vulkanKernel(rt, art) };
        ops.set(spec.key, op);
      }
      return op;
    },
    run(o, args: OpArgs) {
      alive();
      const op = o as VulkanOp;
      const { commands, keys } = launch(op, args);
      if (recording) {
        recording.commands.push(...commands);
        recording.keys.push(...keys);
      } else {
        pending.push(...commands);
        if (pending.length >= MAX_PENDING) flush();
      }
    },
    record(body): Recording {
      alive();
      if (recording) throw new Error("tkc vulkan: record() calls do not nest");
      const list = { commands: [] as Command[], keys: [] as string[] };
      recording = list;
      try {
        body();
      } finally {
        recording = undefined;
      }
      const rec = rt.record(list.commands, { timestamps });
      let freed = false;
      return {
        replay() {
          alive();
          if (freed) throw new Error("tkc vulkan: the recording was disposed");
          flush(); // launches made before the replay come first
          const r = rt.submit(rec);
          if (r.dispatchNs)
            lastReplay = {
              gpuNs: r.gpuNs!,
              launches: r.dispatchNs.map((ns, i) => ({ key: list.keys[i]!, ns })),
            };
        },
        dispose() {
          if (freed || disposed) return;
          freed = true;
          rt.freeRecording(rec);
        },
      };
    },
    sync() {
      alive();
      flush();
    },
    dispose() {
      if (disposed) return;
      try {
        flush();
      } finally {
        disposed = true;
        ops.clear();
        if (owned) rt.destroy();
        else for (const b of buffers) rt.free(b);
        buffers.length = 0;
      }
    },
  };
  return device;
}
