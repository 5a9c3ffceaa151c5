// The Vulkan C API through koffi: the loader library, the functions we call, and an arena that
// owns the memory of the create-info structs we hand to them.
//
// Handles, dispatchable or not, are `void *` (on 64-bit both are pointer-sized). Struct pointer
// parameters take either a JS object (koffi marshals it) or a Buffer the arena encoded; arrays of
// structs and structs with pointer members always go through the arena, so their memory lives
// exactly as long as the arena, which the caller keeps until the call returns.
import koffi from "koffi";
import { VulkanUnavailableError } from "./errors.ts";
import { vkStructs, type VkStructName } from "./structs.ts";

const PROTOTYPES = [
  "int32_t vkEnumerateInstanceVersion(_Out_ uint32_t *version)",
  "int32_t vkCreateInstance(const VkInstanceCreateInfo *info, void *alloc, _Out_ void **instance)",
  "void vkDestroyInstance(void *instance, void *alloc)",
  "int32_t vkEnumeratePhysicalDevices(void *instance, _Inout_ uint32_t *count, _Out_ void **devices)",
  "void vkGetPhysicalDeviceProperties2(void *physicalDevice, void *properties2)",
  "void vkGetPhysicalDeviceFeatures2(void *physicalDevice, void *features2)",
  "void vkGetPhysicalDeviceQueueFamilyProperties(void *physicalDevice, _Inout_ uint32_t *count, void *props)",
  "void vkGetPhysicalDeviceMemoryProperties(void *physicalDevice, _Out_ VkPhysicalDeviceMemoryProperties *props)",
  "int32_t vkCreateDevice(void *physicalDevice, const void *info, void *alloc, _Out_ void **device)",
  "void vkDestroyDevice(void *device, void *alloc)",
  "void vkGetDeviceQueue(void *device, uint32_t family, uint32_t index, _Out_ void **queue)",
  "int32_t vkDeviceWaitIdle(void *device)",
  "int32_t vkCreateBuffer(void *device, const VkBufferCreateInfo *info, void *alloc, _Out_ void **buffer)",
  "void vkDestroyBuffer(void *device, void *buffer, void *alloc)",
  "void vkGetBufferMemoryRequirements(void *device, void *buffer, _Out_ VkMemoryRequirements *req)",
  "int32_t vkAllocateMemory(void *device, const VkMemoryAllocateInfo *info, void *alloc, _Out_ void **memory)",
  "void vkFreeMemory(void *device, void *memory, void *alloc)",
  "int32_t vkBindBufferMemory(void *device, void *buffer, void *memory, uint64_t offset)",
  "int32_t vkMapMemory(void *device, void *memory, uint64_t offset, uint64_t size, uint32_t flags, _Out_ void **data)",
  "void vkUnmapMemory(void *device, void *memory)",
  "int32_t vkCreateShaderModule(void *device, const void *info, void *alloc, _Out_ void **module)",
  "void vkDestroyShaderModule(void *device, void *module, void *alloc)",
  "int32_t vkCreateDescriptorSetLayout(void *device, const void *info, void *alloc, _Out_ void **layout)",
  "void vkDestroyDescriptorSetLayout(void *device, void *layout, void *alloc)",
  "int32_t vkCreatePipelineLayout(void *device, const void *info, void *alloc, _Out_ void **layout)",
  "void vkDestroyPipelineLayout(void *device, void *layout, void *alloc)",
  "int32_t vkCreateComputePipelines(void *device, void *cache, uint32_t count, const void *infos, void *alloc, _Out_ void **pipelines)",
  "void vkDestroyPipeline(void *device, void *pipeline, void *alloc)",
  "int32_t vkCreateDescriptorPool(void *device, const void *info, void *alloc, _Out_ void **pool)",
  "void vkDestroyDescriptorPool(void *device, void *pool, void *alloc)",
  "int32_t vkAllocateDescriptorSets(void *device, const void *info, _Out_ void **sets)",
  "void vkUpdateDescriptorSets(void *device, uint32_t writeCount, const void *writes, uint32_t copyCount, void *copies)",
  "int32_t vkCreateCommandPool(void *device, const VkCommandPoolCreateInfo *info, void *alloc, _Out_ void **pool)",
  "void vkDestroyCommandPool(void *device, void *pool, void *alloc)",
  "int32_t vkAllocateCommandBuffers(void *device, const VkCommandBufferAllocateInfo *info, _Out_ void **buffers)",
  "void vkFreeCommandBuffers(void *device, void *pool, uint32_t count, void **buffers)",
  "int32_t vkBeginCommandBuffer(void *cmd, const VkCommandBufferBeginInfo *info)",
  "int32_t vkEndCommandBuffer(void *cmd)",
  "void vkCmdBindPipeline(void *cmd, int32_t bindPoint, void *pipeline)",
  "void vkCmdBindDescriptorSets(void *cmd, int32_t bindPoint, void *layout, uint32_t firstSet, uint32_t count, void **sets, uint32_t dynCount, void *dynOffsets)",
  "void vkCmdPushConstants(void *cmd, void *layout, uint32_t stages, uint32_t offset, uint32_t size, const void *values)",
  "void vkCmdDispatch(void *cmd, uint32_t x, uint32_t y, uint32_t z)",
  "void vkCmdPipelineBarrier(void *cmd, uint32_t srcStages, uint32_t dstStages, uint32_t dependencyFlags, uint32_t memoryBarrierCount, const void *memoryBarriers, uint32_t bufferBarrierCount, void *bufferBarriers, uint32_t imageBarrierCount, void *imageBarriers)",
  "void vkCmdCopyBuffer(void *cmd, void *src, void *dst, uint32_t count, const VkBufferCopy *regions)",
  "void vkCmdResetQueryPool(void *cmd, void *pool, uint32_t first, uint32_t count)",
  "void vkCmdWriteTimestamp(void *cmd, uint32_t stage, void *pool, uint32_t query)",
  "int32_t vkQueueSubmit(void *queue, uint32_t count, const void *submits, void *fence)",
  "int32_t vkCreateFence(void *device, const VkFenceCreateInfo *info, void *alloc, _Out_ void **fence)",
  "void vkDestroyFence(void *device, void *fence, void *alloc)",
  "int32_t vkWaitForFences(void *device, uint32_t count, void **fences, uint32_t waitAll, uint64_t timeout)",
  "int32_t vkResetFences(void *device, uint32_t count, void **fences)",
  "int32_t vkCreateQueryPool(void *device, const VkQueryPoolCreateInfo *info, void *alloc, _Out_ void **pool)",
  "void vkDestroyQueryPool(void *device, void *pool, void *alloc)",
  "int32_t vkGetQueryPoolResults(void *device, void *pool, uint32_t first, uint32_t count, size_t dataSize, void *data, uint64_t stride, uint32_t flags)",
] as const;

type FnName<P> = P extends `${string} ${infer N}(${string}` ? (N extends `*${infer M}` ? M : N) : never;
// koffi functions are untyped at the TS level; callers pass what the prototype above declares.
type KoffiFn = (...args: any[]) => any;
export type VkApi = Record<FnName<(typeof PROTOTYPES)[number]>, KoffiFn>;

export const DEFAULT_LIBRARY = "libvulkan.so.1";
const loaded = new Map<string, VkApi>();

/**
 * Loads the Vulkan loader library (default libvulkan.so.1, or $TKC_VULKAN_LIB) and binds the
 * functions above. Throws VulkanUnavailableError when the library cannot be loaded.
 */
export function loadVulkan(library = process.env.TKC_VULKAN_LIB || DEFAULT_LIBRARY): VkApi {
  const cached = loaded.get(library);
  if (cached) return cached;
  let lib: ReturnType<typeof koffi.load>;
  try {
    lib = koffi.load(library);
  } catch (e) {
    throw new VulkanUnavailableError(
      `Vulkan is not available: could not load the Vulkan loader "${library}" (${(e as Error).message}). ` +
        `Install the loader and a driver, e.g. apt-get install libvulkan1 mesa-vulkan-drivers ` +
        `(mesa's lavapipe runs Vulkan on the CPU).`,
      { cause: e },
    );
  }
  vkStructs(); // the prototypes name these struct types
  const api = {} as Record<string, KoffiFn>;
  for (const p of PROTOTYPES) {
    const fn = lib.func(p);
    api[/(\w+)\(/.exec(p)![1]!] = fn;
  }
  loaded.set(library, api as VkApi);
  return api as VkApi;
}

/** Memory for the structs of one Vulkan call: encodes values into Buffers it keeps alive. */
export class Arena {
  private readonly keep: Buffer[] = [];

  private own(b: Buffer): Buffer {
    this.keep.push(b);
    return b;
  }

  /** One struct, encoded. */
  struct(name: VkStructName, value: Record<string, unknown>): Buffer {
    return this.array(name, [value]);
  }

  /** Consecutive structs, encoded (a C array). */
  array(name: VkStructName, values: Record<string, unknown>[]): Buffer {
    const t = vkStructs()[name];
    const size = koffi.sizeof(t);
    const b = this.own(Buffer.alloc(size * Math.max(values.length, 1)));
    values.forEach((v, i) => koffi.encode(b, i * size, t, v));
    return b;
  }

  /** A NUL-terminated UTF-8 string. */
  cstring(s: string): Buffer {
    return this.own(Buffer.from(`${s}\0`, "utf8"));
  }

  /** An array of pointers (handles or other Buffers). */
  pointers(values: unknown[]): Buffer {
    const b = this.own(Buffer.alloc(8 * Math.max(values.length, 1)));
    values.forEach((v, i) => koffi.encode(b, i * 8, "void *", v));
    return b;
  }

  /** Raw bytes, copied into fresh (not pooled, so 8-byte aligned) memory: SPIR-V code must be. */
  bytes(data: ArrayBufferView): Buffer {
    const b = this.own(Buffer.alloc(data.byteLength));
    b.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    return b;
  }
}

/** Decodes a struct from memory that Vulkan filled in (e.g. a pNext chain member). */
export function decodeStruct<T = Record<string, unknown>>(buffer: Buffer, name: VkStructName): T {
  return koffi.decode(buffer, vkStructs()[name]) as T;
}

/** VK_MAKE_API_VERSION(0, major, minor, 0) and back. */
export const makeVersion = (major: number, minor: number, patch = 0) =>
  ((major << 22) | (minor << 12) | patch) >>> 0;
export const versionString = (v: number) => `${v >>> 22}.${(v >>> 12) & 0x3ff}.${v & 0xfff}`;
