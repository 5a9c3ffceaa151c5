// Buffers: device-local storage buffers, filled and read through a host-visible staging buffer.
// Where the device-local memory is itself host-visible and coherent (lavapipe, integrated GPUs)
// the buffer is mapped once and copied into directly, with no staging and no command buffer.
import koffi from "koffi";
import type { VkApi } from "./api.ts";
import type { Context } from "./commands.ts";
import { oneShot } from "./commands.ts";
import { check } from "./errors.ts";

const DEVICE_LOCAL = 1;
const HOST_VISIBLE = 2;
const HOST_COHERENT = 4;
const HOST_CACHED = 8;
// VK_BUFFER_USAGE_TRANSFER_SRC | TRANSFER_DST | STORAGE_BUFFER
const USAGE_STORAGE = 0x1 | 0x2 | 0x20;
const USAGE_STAGING = 0x1 | 0x2;

let nextId = 1;

/** A storage buffer on the device. Create with `rt.buffer`; its fields are the runtime's business. */
export class GpuBuffer {
  /** Unique per process: the descriptor set cache keys on it. */
  readonly id = nextId++;
  freed = false;
  constructor(
    readonly size: number,
    readonly handle: unknown,
    readonly memory: unknown,
    /** Host address of the mapped memory, when the buffer is host-visible and coherent. */
    readonly mapped: unknown,
  ) {}
}

interface Allocation {
  handle: unknown;
  memory: unknown;
  flags: number;
}

export class Memory {
  private readonly types: { propertyFlags: number; heapIndex: number }[];
  private staging: { buf: GpuBuffer; capacity: number } | undefined;
  private readonly live = new Set<GpuBuffer>();

  constructor(private readonly ctx: Context) {
    const props: { memoryTypeCount?: number; memoryTypes?: { propertyFlags: number; heapIndex: number }[] } =
      {};
    ctx.vk.vkGetPhysicalDeviceMemoryProperties(ctx.physicalDevice, props);
    this.types = props.memoryTypes!.slice(0, props.memoryTypeCount);
  }

  // Picks a memory type index among `allowed` (a bitmask): the first whose flags rank best.
  private pickType(allowed: number, rank: (flags: number) => number): number {
    let best = -1;
    this.types.forEach((t, i) => {
      if (!((allowed >>> i) & 1) || rank(t.propertyFlags) < 0) return;
      if (best < 0 || rank(t.propertyFlags) > rank(this.types[best]!.propertyFlags)) best = i;
    });
    return best;
  }

  private allocate(size: number, usage: number, rank: (flags: number) => number, what: string): Allocation {
    const { vk, device } = this.ctx;
    const buf = [null];
    check(
      "vkCreateBuffer",
      vk.vkCreateBuffer(device, { sType: 12, size, usage, sharingMode: 0 }, null, buf),
      what,
    );
    const req: { size?: number; memoryTypeBits?: number } = {};
    vk.vkGetBufferMemoryRequirements(device, buf[0], req);
    const type = this.pickType(req.memoryTypeBits!, rank);
    if (type < 0) {
      vk.vkDestroyBuffer(device, buf[0], null);
      throw new Error(`Vulkan: no memory type suits a ${what} of ${size} bytes on ${this.ctx.info.name}`);
    }
    const mem = [null];
    const r = vk.vkAllocateMemory(
      device,
      { sType: 5, allocationSize: req.size, memoryTypeIndex: type },
      null,
      mem,
    );
    if (r !== 0) vk.vkDestroyBuffer(device, buf[0], null);
    check("vkAllocateMemory", r, `${what} of ${size} bytes`);
    check("vkBindBufferMemory", vk.vkBindBufferMemory(device, buf[0], mem[0], 0));
    return { handle: buf[0], memory: mem[0], flags: this.types[type]!.propertyFlags };
  }

  private map(a: Allocation, size: number): unknown {
    const p = [null];
    check("vkMapMemory", this.ctx.vk.vkMapMemory(this.ctx.device, a.memory, 0, size, 0, p));
    return p[0];
  }

  /** A device-local storage buffer of `size` bytes (contents undefined until written). */
  create(size: number): GpuBuffer {
    if (!Number.isInteger(size) || size <= 0)
      throw new Error(`Vulkan buffer size must be a positive integer, got ${size}`);
    const max = this.ctx.info.limits.maxStorageBufferRange;
    if (size > max) {
      throw new Error(
        `Vulkan buffer of ${size} bytes exceeds maxStorageBufferRange (${max}) on ${this.ctx.info.name}`,
      );
    }
    // Prefer device-local memory that is not host-visible (real VRAM, not the BAR window); memory
    // that is both device-local and host-coherent (lavapipe, UMA) comes next and is mapped.
    const rank = (f: number) =>
      f & DEVICE_LOCAL ? (f & HOST_VISIBLE ? 1 : 2) : f & HOST_VISIBLE && f & HOST_COHERENT ? 0 : -1;
    const a = this.allocate(size, USAGE_STORAGE, rank, "storage buffer");
    const coherent = (a.flags & (HOST_VISIBLE | HOST_COHERENT)) === (HOST_VISIBLE | HOST_COHERENT);
    const direct = coherent && !this.ctx.forceStaging;
    const b = new GpuBuffer(size, a.handle, a.memory, direct ? this.map(a, size) : null);
    this.live.add(b);
    return b;
  }

  private stagingBuffer(bytes: number): { buf: GpuBuffer; capacity: number } {
    const want = Math.min(Math.max(bytes, 1 << 20), this.ctx.stagingBytes);
    if (this.staging && this.staging.capacity >= want) return this.staging;
    if (this.staging) this.release(this.staging.buf);
    // Host-visible and coherent, cached if possible (downloads read it on the CPU).
    const rank = (f: number) =>
      (f & (HOST_VISIBLE | HOST_COHERENT)) === (HOST_VISIBLE | HOST_COHERENT)
        ? f & HOST_CACHED
          ? 2
          : 1
        : -1;
    const a = this.allocate(want, USAGE_STAGING, rank, "staging buffer");
    this.staging = { buf: new GpuBuffer(want, a.handle, a.memory, this.map(a, want)), capacity: want };
    return this.staging;
  }

  private checkRange(b: GpuBuffer, offset: number, length: number, what: string): void {
    if (b.freed) throw new Error(`Vulkan ${what}: buffer #${b.id} was freed`);
    if (!Number.isInteger(offset) || offset < 0 || offset + length > b.size) {
      throw new Error(
        `Vulkan ${what}: range [${offset}, ${offset + length}) is outside buffer #${b.id} of ${b.size} bytes`,
      );
    }
  }

  /** Copies `data` into the buffer at byte `offset`. */
  upload(b: GpuBuffer, data: ArrayBufferView, offset = 0): void {
    this.checkRange(b, offset, data.byteLength, "upload");
    const src = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (b.mapped) return void new Uint8Array(koffi.view(b.mapped, b.size)).set(src, offset);
    for (let done = 0; done < src.length;) {
      const s = this.stagingBuffer(src.length - done);
      const n = Math.min(s.capacity, src.length - done);
      new Uint8Array(koffi.view(s.buf.mapped, n)).set(src.subarray(done, done + n));
      this.copy(s.buf, 0, b, offset + done, n);
      done += n;
    }
  }

  /** Reads `length` bytes from byte `offset` (default: the whole buffer) into a new Uint8Array. */
  download(b: GpuBuffer, length = b.size, offset = 0): Uint8Array {
    this.checkRange(b, offset, length, "download");
    const out = new Uint8Array(length);
    if (b.mapped) {
      out.set(new Uint8Array(koffi.view(b.mapped, b.size), offset, length));
      return out;
    }
    for (let done = 0; done < length;) {
      const s = this.stagingBuffer(length - done);
      const n = Math.min(s.capacity, length - done);
      this.copy(b, offset + done, s.buf, 0, n);
      out.set(new Uint8Array(koffi.view(s.buf.mapped, n)), done);
      done += n;
    }
    return out;
  }

  private copy(src: GpuBuffer, srcOffset: number, dst: GpuBuffer, dstOffset: number, size: number): void {
    oneShot(this.ctx, (vk: VkApi, cmd: unknown) =>
      vk.vkCmdCopyBuffer(cmd, src.handle, dst.handle, 1, { srcOffset, dstOffset, size }),
    );
  }

  private release(b: GpuBuffer): void {
    const { vk, device } = this.ctx;
    vk.vkDestroyBuffer(device, b.handle, null);
    vk.vkFreeMemory(device, b.memory, null); // unmaps implicitly
    b.freed = true;
  }

  free(b: GpuBuffer): void {
    if (b.freed || !this.live.delete(b)) return;
    this.release(b);
  }

  destroy(): void {
    for (const b of this.live) this.release(b);
    this.live.clear();
    if (this.staging) this.release(this.staging.buf);
    this.staging = undefined;
  }
}
