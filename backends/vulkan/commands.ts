// Command buffers: a sequence of dispatches recorded once and submitted many times, with the
// barriers their data dependencies need, a fence to wait on, and optional timestamp queries.
import { Arena, type VkApi } from "./api.ts";
import type { DeviceInfo } from "./device.ts";
import { check, VulkanError } from "./errors.ts";
import type { GpuBuffer } from "./memory.ts";
import type { Pipeline, Pipelines } from "./pipeline.ts";

/** What every part of the runtime shares. */
export interface Context {
  vk: VkApi;
  physicalDevice: unknown;
  device: unknown;
  queue: unknown;
  info: DeviceInfo;
  commandPool: unknown;
  /** Nanoseconds a submission may take before we give up (VK_TIMEOUT). */
  timeoutNs: number;
  /** Never map device buffers; always go through the staging buffer. */
  forceStaging: boolean;
  /** Largest staging buffer; bigger copies go in chunks of this size. */
  stagingBytes: number;
  oneShot?: { cmd: unknown; fence: unknown };
}

// Pipeline stages and access masks (vulkan_core.h).
const STAGE = { top: 0x1, compute: 0x800, transfer: 0x1000, bottom: 0x2000, host: 0x4000, all: 0x10000 };
const ACCESS = { shaderRead: 0x20, shaderWrite: 0x40, transferRead: 0x800, transferWrite: 0x1000 };
const ACCESS_HOST_READ = 0x2000;
const ACCESS_MEMORY_WRITE = 0x10000;
const BIND_POINT_COMPUTE = 1;

export interface Dispatch {
  pipeline: Pipeline;
  /** One buffer per binding, in binding order. */
  buffers: readonly GpuBuffer[];
  /** Byte offset at which each binding starts in its buffer (default 0): a sub-range binding, for
   *  tensor views. Each must be a multiple of minStorageBufferOffsetAlignment. */
  offsets?: readonly number[];
  /** Bytes each binding's view spans (default: to its buffer's end): where the pipeline takes
   *  dynamic offsets, dispatches over the same buffers and spans share one descriptor set. */
  ranges?: readonly number[];
  /** Push-constant bytes, exactly `pipeline.pushConstantBytes` long. */
  push?: ArrayBufferView;
  /** Workgroup counts: x, or [x, y, z]. */
  groups: number | readonly number[];
  /** Force (true) or omit (false) the barrier before this dispatch; by default one is placed when
   *  it shares a buffer with a dispatch since the last barrier. */
  barrier?: boolean;
}

/**
 * A buffer-to-buffer copy recorded among dispatches (vkCmdCopyBuffer): staging a tensor view that
 * cannot be bound in place. Barriers around it follow the dispatches' rule (a shared buffer).
 */
export interface CopyCommand {
  copy: { src: GpuBuffer; srcOffset: number; dst: GpuBuffer; dstOffset: number; size: number };
}

/** What a recording holds: dispatches, and copies between them. */
export type Command = Dispatch | CopyCommand;

const isCopy = (c: Command): c is CopyCommand => "copy" in c;

function checkCopy(c: CopyCommand, i: number): void {
  const { src, srcOffset, dst, dstOffset, size } = c.copy;
  for (const [b, o, what] of [
    [src, srcOffset, "source"],
    [dst, dstOffset, "destination"],
  ] as const) {
    if (b.freed) throw new Error(`copy ${i}: ${what} buffer #${b.id} was freed`);
    if (!Number.isInteger(o) || o < 0 || !Number.isInteger(size) || size <= 0 || o + size > b.size)
      throw new Error(
        `copy ${i}: ${what} range [${o}, ${o + size}) is outside buffer #${b.id} of ${b.size} bytes`,
      );
  }
}

/** A recorded command buffer: submit it with `rt.submit` as often as needed. */
export interface Recording {
  readonly cmd: unknown;
  readonly fence: unknown;
  readonly dispatches: number;
  /** How many barriers were placed between dispatches (tests check the policy). */
  readonly barriers: number;
  readonly queryPool: unknown;
  freed: boolean;
}

function allocCommandBuffer(ctx: Context): { cmd: unknown; fence: unknown } {
  const { vk, device } = ctx;
  const cmd = [null];
  const info = { sType: 40, commandPool: ctx.commandPool, level: 0, commandBufferCount: 1 };
  check("vkAllocateCommandBuffers", vk.vkAllocateCommandBuffers(device, info, cmd));
  const fence = [null];
  check("vkCreateFence", vk.vkCreateFence(device, { sType: 8, flags: 0 }, null, fence));
  return { cmd: cmd[0], fence: fence[0] };
}

function barrier(vk: VkApi, cmd: unknown, src: [number, number], dst: [number, number]): void {
  const a = new Arena();
  const mb = a.struct("VkMemoryBarrier", { sType: 46, srcAccessMask: src[1], dstAccessMask: dst[1] });
  vk.vkCmdPipelineBarrier(cmd, src[0], dst[0], 0, 1, mb, 0, null, 0, null);
}

/** Submits `cmd` and blocks until its fence signals. */
function submitAndWait(ctx: Context, cmd: unknown, fence: unknown, what: string): void {
  const { vk, device, queue } = ctx;
  const a = new Arena();
  const submit = a.struct("VkSubmitInfo", {
    sType: 4,
    commandBufferCount: 1,
    pCommandBuffers: a.pointers([cmd]),
  });
  check("vkQueueSubmit", vk.vkQueueSubmit(queue, 1, submit, fence), what);
  const r = vk.vkWaitForFences(device, 1, [fence], 1, ctx.timeoutNs);
  if (r === 2)
    throw new VulkanError("vkWaitForFences", r, `${what} did not finish within ${ctx.timeoutNs / 1e9} s`);
  check("vkWaitForFences", r, what);
  check("vkResetFences", vk.vkResetFences(device, 1, [fence]));
}

/** Records commands with `fn` into a reused one-time command buffer, submits and waits. */
export function oneShot(ctx: Context, fn: (vk: VkApi, cmd: unknown) => void): void {
  const { vk } = ctx;
  ctx.oneShot ??= allocCommandBuffer(ctx);
  const { cmd, fence } = ctx.oneShot;
  check("vkBeginCommandBuffer", vk.vkBeginCommandBuffer(cmd, { sType: 42, flags: 1 /* ONE_TIME_SUBMIT */ }));
  // Earlier work (a kernel writing what we copy out) must finish before the copy; the copy's
  // writes must be visible to the host reading the staging memory after the fence.
  barrier(
    vk,
    cmd,
    [STAGE.all, ACCESS_MEMORY_WRITE],
    [STAGE.transfer, ACCESS.transferRead | ACCESS.transferWrite],
  );
  fn(vk, cmd);
  barrier(vk, cmd, [STAGE.transfer, ACCESS.transferWrite], [STAGE.host, ACCESS_HOST_READ]);
  check("vkEndCommandBuffer", vk.vkEndCommandBuffer(cmd));
  submitAndWait(ctx, cmd, fence, "transfer");
}

function groupCounts(d: Dispatch, info: DeviceInfo): [number, number, number] {
  const g = typeof d.groups === "number" ? [d.groups] : [...d.groups];
  const xyz = [g[0] ?? 1, g[1] ?? 1, g[2] ?? 1] as [number, number, number];
  xyz.forEach((n, i) => {
    const max = info.limits.maxComputeWorkGroupCount[i]!;
    if (!Number.isInteger(n) || n < 0 || n > max || g.length > 3) {
      throw new Error(
        `dispatch of "${d.pipeline.name}": workgroup count ${JSON.stringify(d.groups)} is invalid (each 0..${max}, at most 3)`,
      );
    }
  });
  return xyz;
}

/** Binding offsets: one per buffer, aligned for the device, inside the buffer. */
function checkOffsets(d: Dispatch, i: number, info: DeviceInfo): void {
  const p = d.pipeline;
  const offsets = d.offsets!;
  if (offsets.length !== d.buffers.length)
    throw new Error(
      `dispatch ${i} of "${p.name}": ${offsets.length} offsets given for ${d.buffers.length} buffers`,
    );
  const align = info.limits.minStorageBufferOffsetAlignment;
  offsets.forEach((o, k) => {
    const b = d.buffers[k]!;
    if (!Number.isInteger(o) || o < 0 || o >= b.size)
      throw new Error(
        `dispatch ${i} of "${p.name}": binding ${k} offset ${o} is outside buffer #${b.id} of ${b.size} bytes`,
      );
    if (o % align !== 0)
      throw new Error(
        `dispatch ${i} of "${p.name}": binding ${k} offset ${o} is not a multiple of ${info.name}'s minStorageBufferOffsetAlignment (${align})`,
      );
  });
}

/**
 * Records `dispatches` (and copies among them) into a new command buffer. With `timestamps`, a
 * timestamp is written before the first command and after each one (n + 1 queries).
 */
export function record(
  ctx: Context,
  pipelines: Pipelines,
  dispatches: readonly Command[],
  timestamps: boolean,
): Recording {
  const { vk, device, info } = ctx;
  if (timestamps && !info.timestamps)
    throw new Error(`Vulkan: ${info.name}'s compute queue has no timestamp support`);
  // Validate everything before allocating, so a bad dispatch leaks nothing.
  const prepared = dispatches.map((d, i) => {
    if (isCopy(d)) {
      checkCopy(d, i);
      return { d, groups: [0, 0, 0] as [number, number, number], set: undefined };
    }
    const p = d.pipeline;
    if (d.buffers.length !== p.bindings) {
      throw new Error(
        `dispatch ${i} of "${p.name}": ${d.buffers.length} buffers given, pipeline has ${p.bindings} bindings`,
      );
    }
    const freed = d.buffers.find((b) => b.freed);
    if (freed) throw new Error(`dispatch ${i} of "${p.name}": buffer #${freed.id} was freed`);
    if (d.offsets) checkOffsets(d, i, info);
    const push = d.push ? d.push.byteLength : 0;
    if (push !== p.pushConstantBytes) {
      throw new Error(
        `dispatch ${i} of "${p.name}": ${push} push-constant bytes given, pipeline takes ${p.pushConstantBytes}`,
      );
    }
    return {
      d,
      groups: groupCounts(d, info),
      set: pipelines.descriptorSet(p, d.buffers, d.offsets, d.ranges),
    };
  });
  const { cmd, fence } = allocCommandBuffer(ctx);
  let queryPool: unknown = null;
  if (timestamps) {
    const q = [null];
    const qi = { sType: 11, queryType: 2 /* TIMESTAMP */, queryCount: dispatches.length + 1 };
    check("vkCreateQueryPool", vk.vkCreateQueryPool(device, qi, null, q));
    queryPool = q[0];
  }
  check("vkBeginCommandBuffer", vk.vkBeginCommandBuffer(cmd, { sType: 42, flags: 0 }));
  // Everything earlier on the queue (uploads, an earlier submission of this very buffer) happens
  // before these dispatches read or overwrite its data.
  barrier(vk, cmd, [STAGE.all, ACCESS_MEMORY_WRITE], [STAGE.compute, ACCESS.shaderRead | ACCESS.shaderWrite]);
  if (queryPool) {
    vk.vkCmdResetQueryPool(cmd, queryPool, 0, dispatches.length + 1);
    vk.vkCmdWriteTimestamp(cmd, STAGE.top, queryPool, 0);
  }
  let touched = new Set<GpuBuffer>();
  let bound: Pipeline | undefined;
  let barriers = 0;
  // With copies among the dispatches, barriers cover the transfer stage as well.
  const copies = dispatches.some(isCopy);
  const from: [number, number] = copies
    ? [STAGE.compute | STAGE.transfer, ACCESS.shaderWrite | ACCESS.transferWrite]
    : [STAGE.compute, ACCESS.shaderWrite];
  const to: [number, number] = copies
    ? [
        STAGE.compute | STAGE.transfer,
        ACCESS.shaderRead | ACCESS.shaderWrite | ACCESS.transferRead | ACCESS.transferWrite,
      ]
    : [STAGE.compute, ACCESS.shaderRead | ACCESS.shaderWrite];
  prepared.forEach(({ d, groups, set }, i) => {
    const used = isCopy(d) ? [d.copy.src, d.copy.dst] : d.buffers;
    const shares = used.some((b) => touched.has(b));
    if ((isCopy(d) ? undefined : d.barrier) ?? shares) {
      // RAW, WAR and WAW between dispatches: writes before are visible to reads and writes after.
      barrier(vk, cmd, from, to);
      touched = new Set();
      barriers++;
    }
    used.forEach((b) => touched.add(b));
    if (isCopy(d)) {
      const { src, srcOffset, dst, dstOffset, size } = d.copy;
      vk.vkCmdCopyBuffer(cmd, src.handle, dst.handle, 1, { srcOffset, dstOffset, size });
      if (queryPool) vk.vkCmdWriteTimestamp(cmd, STAGE.bottom, queryPool, i + 1);
      return;
    }
    const p = d.pipeline;
    if (bound !== p) vk.vkCmdBindPipeline(cmd, BIND_POINT_COMPUTE, p.handle);
    bound = p;
    const dyn = set!.dynamicOffsets;
    vk.vkCmdBindDescriptorSets(
      cmd,
      BIND_POINT_COMPUTE,
      p.layout,
      0,
      1,
      [set!.set],
      dyn?.length ?? 0,
      dyn?.length ? new Uint32Array(dyn) : null,
    );
    if (d.push && p.pushConstantBytes > 0) {
      const bytes = new Uint8Array(d.push.buffer, d.push.byteOffset, d.push.byteLength);
      vk.vkCmdPushConstants(cmd, p.layout, 0x20, 0, bytes.length, bytes);
    }
    vk.vkCmdDispatch(cmd, ...groups);
    if (queryPool) vk.vkCmdWriteTimestamp(cmd, STAGE.bottom, queryPool, i + 1);
  });
  // Results are read by the host through mapped memory, or copied out by a later submission.
  barrier(vk, cmd, from, [STAGE.host | STAGE.transfer, ACCESS_HOST_READ | ACCESS.transferRead]);
  check("vkEndCommandBuffer", vk.vkEndCommandBuffer(cmd));
  return { cmd, fence, dispatches: dispatches.length, barriers, queryPool, freed: false };
}

export interface SubmitResult {
  /** Host time from submit to fence signalled, in milliseconds. */
  hostMs: number;
  /** With timestamps: raw ticks (n + 1 values, non-decreasing) and the derived durations. */
  ticks?: bigint[];
  gpuNs?: number;
  dispatchNs?: number[];
}

/** Submits a recording, waits for it, and reads its timestamps if it has them. */
export function submit(ctx: Context, rec: Recording): SubmitResult {
  if (rec.freed) throw new Error("Vulkan submit: the recording was freed");
  const t0 = performance.now();
  submitAndWait(ctx, rec.cmd, rec.fence, `submission of ${rec.dispatches} dispatches`);
  const hostMs = performance.now() - t0;
  if (!rec.queryPool) return { hostMs };
  const n = rec.dispatches + 1;
  const data = Buffer.alloc(8 * n);
  // VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT
  check(
    "vkGetQueryPoolResults",
    ctx.vk.vkGetQueryPoolResults(ctx.device, rec.queryPool, 0, n, data.length, data, 8, 3),
  );
  const ticks = Array.from({ length: n }, (_, i) => data.readBigUInt64LE(8 * i));
  const ns = (a: bigint, b: bigint) => Number(b - a) * ctx.info.limits.timestampPeriod;
  return {
    hostMs,
    ticks,
    gpuNs: ns(ticks[0]!, ticks[n - 1]!),
    dispatchNs: ticks.slice(1).map((t, i) => ns(ticks[i]!, t)),
  };
}

export function freeRecording(ctx: Context, rec: Recording): void {
  if (rec.freed) return;
  const { vk, device } = ctx;
  vk.vkFreeCommandBuffers(device, ctx.commandPool, 1, [rec.cmd]);
  vk.vkDestroyFence(device, rec.fence, null);
  if (rec.queryPool) vk.vkDestroyQueryPool(device, rec.queryPool, null);
  rec.freed = true;
}
