// The Vulkan runtime the SPIR-V code generator targets:
//
//   const rt = createVulkanRuntime();                      // throws VulkanUnavailableError if none
//   const x = rt.buffer(new Float32Array(n));              // device-local, uploaded
//   const p = rt.pipeline({ spirv, bindings: 2, pushConstantBytes: 4 });   // cached per kernel
//   const rec = rt.record([{ pipeline: p, buffers: [x, y], push, groups: 4 }], { timestamps: true });
//   rt.submit(rec); rt.download(y);                        // resubmit rec as often as needed
//   rt.time(rec, { repeats: 10 });                         // GPU time from timestamp queries
//   rt.destroy();
//
// Everything is synchronous: each submission waits on its fence, so buffers may be read or
// written from JS between submissions without further synchronisation.
import { loadVulkan } from "./api.ts";
import {
  freeRecording,
  record,
  submit,
  type Command,
  type Context,
  type Recording,
  type SubmitResult,
} from "./commands.ts";
import {
  chooseDevice,
  createDevice,
  createInstance,
  describeDevice,
  physicalDevices,
  type DeviceInfo,
} from "./device.ts";
import { check } from "./errors.ts";
import { GpuBuffer, Memory } from "./memory.ts";
import { Pipelines, type Pipeline, type PipelineOptions } from "./pipeline.ts";

export { VulkanError, VulkanUnavailableError } from "./errors.ts";
export type { DeviceInfo, DeviceType, FeatureName, Features } from "./device.ts";
export type { Command, CopyCommand, Dispatch, Recording, SubmitResult } from "./commands.ts";
export type { Pipeline, PipelineOptions } from "./pipeline.ts";
export { GpuBuffer } from "./memory.ts";

export interface VulkanRuntimeOptions {
  /** Loader library to open (default $TKC_VULKAN_LIB or libvulkan.so.1). */
  library?: string;
  /** Device index or name substring (default $TKC_VULKAN_DEVICE, else discrete GPU first). */
  device?: number | string;
  /** Seconds one submission may run before VK_TIMEOUT is thrown (default 60). */
  timeoutSeconds?: number;
  /** Copy through a staging buffer even where device memory is host-visible (tests that path). */
  forceStaging?: boolean;
  /** Largest staging buffer in bytes (default 64 MiB); larger copies are chunked. */
  stagingBytes?: number;
  /**
   * Bind storage buffers with dynamic offsets (VK_DESCRIPTOR_TYPE_STORAGE_BUFFER_DYNAMIC) where a
   * pipeline's bindings fit maxDescriptorSetStorageBuffersDynamic: dispatches of one pipeline over
   * the same buffers at other offsets (a model's layers in shared buffers) share one descriptor
   * set, the offsets given when it is bound (default false: a set per buffers and offsets). On an
   * H200 through NVIDIA's driver the 7B decode step ran no faster with 13 sets than with 230, and
   * six GEMV-shaped kernels in turn 2.5x slower (bench/results/vulkan-layout-ab-h200.json).
   */
  dynamicOffsets?: boolean;
}

export interface TimeResult {
  /** GPU nanoseconds of each timed submission (first timestamp to last). */
  gpuNs: number[];
  medianGpuNs: number;
  /** Per-dispatch GPU nanoseconds of the median submission. */
  dispatchNs: number[];
  hostMs: number[];
}

export interface VulkanRuntime {
  readonly device: DeviceInfo;
  /** A device-local storage buffer: `size` bytes, or a copy of `data`. */
  buffer(sizeOrData: number | ArrayBufferView): GpuBuffer;
  upload(buffer: GpuBuffer, data: ArrayBufferView, offset?: number): void;
  download(buffer: GpuBuffer, length?: number, offset?: number): Uint8Array;
  free(buffer: GpuBuffer): void;
  pipeline(options: PipelineOptions): Pipeline;
  /** Dispatches (and buffer copies among them) recorded once, submitted as often as needed. */
  record(dispatches: readonly Command[], options?: { timestamps?: boolean }): Recording;
  submit(recording: Recording): SubmitResult;
  /** Records, submits once and frees: for one-off work. */
  run(dispatches: readonly Command[]): void;
  /** Submits a timestamped recording `warmup + repeats` times and reports the timed ones. */
  time(recording: Recording, options?: { repeats?: number; warmup?: number }): TimeResult;
  freeRecording(recording: Recording): void;
  /** Descriptor sets allocated so far (one per pipeline and buffers bound, offsets unless dynamic). */
  readonly descriptorSets: number;
  destroy(): void;
}

/** Lists the physical devices the loader sees (creates and destroys an instance). */
export function listVulkanDevices(library?: string): DeviceInfo[] {
  const vk = loadVulkan(library);
  const instance = createInstance(vk);
  try {
    return physicalDevices(vk, instance).map((pd, i) => describeDevice(vk, pd, i));
  } finally {
    vk.vkDestroyInstance(instance.handle, null);
  }
}

/** Opens Vulkan, picks a device, and creates a compute queue on it. */
export function createVulkanRuntime(options: VulkanRuntimeOptions = {}): VulkanRuntime {
  const vk = loadVulkan(options.library);
  const instance = createInstance(vk);
  let ctx: Context;
  try {
    const pds = physicalDevices(vk, instance);
    const info = chooseDevice(
      pds.map((pd, i) => describeDevice(vk, pd, i)),
      options.device === undefined ? undefined : String(options.device),
    );
    const { device, queue } = createDevice(vk, pds[info.index], info);
    const pool = [null];
    // RESET_COMMAND_BUFFER: the one-shot transfer buffer is re-begun for every copy.
    const r = vk.vkCreateCommandPool(
      device,
      { sType: 39, flags: 2, queueFamilyIndex: info.queueFamily },
      null,
      pool,
    );
    if (r !== 0) vk.vkDestroyDevice(device, null);
    check("vkCreateCommandPool", r);
    const timeoutNs = (options.timeoutSeconds ?? 60) * 1e9;
    const staging = {
      forceStaging: options.forceStaging ?? false,
      stagingBytes: options.stagingBytes ?? 64 << 20,
    };
    ctx = {
      vk,
      physicalDevice: pds[info.index],
      device,
      queue,
      info,
      commandPool: pool[0],
      timeoutNs,
      ...staging,
    };
  } catch (e) {
    vk.vkDestroyInstance(instance.handle, null);
    throw e;
  }
  const memory = new Memory(ctx);
  const pipelines = new Pipelines(ctx, options.dynamicOffsets ?? false);
  const recordings = new Set<Recording>();
  let destroyed = false;
  const alive = () => {
    if (destroyed) throw new Error("Vulkan runtime was destroyed");
  };

  const rt: VulkanRuntime = {
    device: ctx.info,
    buffer(sizeOrData) {
      alive();
      if (typeof sizeOrData === "number") return memory.create(sizeOrData);
      const b = memory.create(sizeOrData.byteLength);
      memory.upload(b, sizeOrData);
      return b;
    },
    upload: (b, data, offset) => (alive(), memory.upload(b, data, offset)),
    download: (b, length, offset) => (alive(), memory.download(b, length, offset)),
    free(b) {
      pipelines.forgetBuffer(b);
      memory.free(b);
    },
    pipeline: (o) => (alive(), pipelines.get(o)),
    record(dispatches, o = {}) {
      alive();
      const rec = record(ctx, pipelines, dispatches, o.timestamps ?? false);
      recordings.add(rec);
      return rec;
    },
    submit: (rec) => (alive(), submit(ctx, rec)),
    run(dispatches) {
      const rec = rt.record(dispatches);
      try {
        rt.submit(rec);
      } finally {
        rt.freeRecording(rec);
      }
    },
    time(rec, o = {}) {
      const { repeats = 10, warmup = 1 } = o;
      if (!rec.queryPool) throw new Error("rt.time needs a recording made with { timestamps: true }");
      if (!Number.isInteger(repeats) || repeats < 1)
        throw new Error(`rt.time: repeats must be a positive integer, got ${repeats}`);
      for (let i = 0; i < warmup; i++) rt.submit(rec);
      const runs = Array.from({ length: repeats }, () => rt.submit(rec));
      const order = runs.map((r, i) => [r.gpuNs!, i] as const).sort((a, b) => a[0] - b[0]);
      const median = runs[order[Math.floor(order.length / 2)]![1]]!;
      return {
        gpuNs: runs.map((r) => r.gpuNs!),
        medianGpuNs: median.gpuNs!,
        dispatchNs: median.dispatchNs!,
        hostMs: runs.map((r) => r.hostMs),
      };
    },
    get descriptorSets() {
      return pipelines.setCount;
    },
    freeRecording(rec) {
      freeRecording(ctx, rec);
      recordings.delete(rec);
    },
    destroy() {
      if (destroyed) return;
      destroyed = true;
      vk.vkDeviceWaitIdle(ctx.device);
      for (const rec of recordings) freeRecording(ctx, rec);
      if (ctx.oneShot) {
        vk.vkDestroyFence(ctx.device, ctx.oneShot.fence, null);
      }
      pipelines.destroy();
      memory.destroy();
      vk.vkDestroyCommandPool(ctx.device, ctx.commandPool, null);
      vk.vkDestroyDevice(ctx.device, null);
      vk.vkDestroyInstance(instance.handle, null);
    },
  };
  return rt;
}
