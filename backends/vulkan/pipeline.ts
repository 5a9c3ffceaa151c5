// Compute pipelines (cached per kernel) and the descriptor sets that bind buffers to them.
//
// The binding model is fixed and small, which is what the SPIR-V renderer targets (see
// backends/spirv/ABI.md): descriptor set 0 holds N storage buffers at bindings 0..N-1, in the
// order of the kernel's buffer parameters; scalars travel in one push-constant block.
import { createHash } from "node:crypto";
import { reflect, type SpirvReflection } from "../spirv/reflect.ts";
import { Arena } from "./api.ts";
import type { Context } from "./commands.ts";
import type { FeatureName } from "./device.ts";
import { check } from "./errors.ts";
import type { GpuBuffer } from "./memory.ts";

const STAGE_COMPUTE = 0x20;
const DESCRIPTOR_STORAGE_BUFFER = 7;
const DESCRIPTOR_STORAGE_BUFFER_DYNAMIC = 9;
const POOL_SETS = 256;
const POOL_DESCRIPTORS = 2048;

export interface PipelineOptions {
  /** The module's words (from backends/spirv/tools.ts `assemble`). */
  spirv: Uint32Array;
  /** Entry point name (default "main"). */
  entry?: string;
  /** Storage buffers at set 0, bindings 0..n-1 (default: highest binding in the module + 1). */
  bindings?: number;
  /** Size of the push-constant block in bytes, a multiple of 4 (default 0: none). */
  pushConstantBytes?: number;
  /** Workgroup size the caller expects; checked against the module's LocalSize when given. */
  localSize?: readonly [number, number, number];
  /** A name for error messages (default: the entry point). */
  name?: string;
}

export interface Pipeline {
  readonly id: number;
  readonly name: string;
  readonly bindings: number;
  readonly pushConstantBytes: number;
  readonly localSize: readonly [number, number, number] | undefined;
  readonly handle: unknown;
  readonly layout: unknown;
  readonly setLayout: unknown;
  readonly module: unknown;
  /** Its bindings take dynamic offsets (VulkanRuntimeOptions.dynamicOffsets). */
  readonly dynamic: boolean;
}

/** A descriptor set to bind for a dispatch, and the dynamic offsets to bind it with. */
export interface BoundSet {
  readonly set: unknown;
  readonly dynamicOffsets: readonly number[] | undefined;
}

// What each SPIR-V capability needs from the device (features or subgroup operation classes).
const CAPABILITY_NEEDS: Record<string, FeatureName | `subgroup:${string}`> = {
  Float16: "shaderFloat16",
  Float64: "shaderFloat64",
  Int64: "shaderInt64",
  Int16: "shaderInt16",
  Int8: "shaderInt8",
  Int64Atomics: "shaderBufferInt64Atomics",
  StorageBuffer16BitAccess: "storageBuffer16BitAccess",
  UniformAndStorageBuffer16BitAccess: "uniformAndStorageBuffer16BitAccess",
  StoragePushConstant16: "storagePushConstant16",
  StorageBuffer8BitAccess: "storageBuffer8BitAccess",
  UniformAndStorageBuffer8BitAccess: "uniformAndStorageBuffer8BitAccess",
  StoragePushConstant8: "storagePushConstant8",
  VulkanMemoryModel: "vulkanMemoryModel",
  GroupNonUniform: "subgroup:basic",
  GroupNonUniformVote: "subgroup:vote",
  GroupNonUniformArithmetic: "subgroup:arithmetic",
  GroupNonUniformBallot: "subgroup:ballot",
  GroupNonUniformShuffle: "subgroup:shuffle",
  GroupNonUniformShuffleRelative: "subgroup:shuffleRelative",
  GroupNonUniformClustered: "subgroup:clustered",
  GroupNonUniformQuad: "subgroup:quad",
};

let nextId = 1;

export class Pipelines {
  private readonly cache = new Map<string, Pipeline>();
  private readonly sets = new Map<string, unknown>();
  private pools: unknown[] = [];
  private poolSetsLeft = 0;
  private poolDescriptorsLeft = 0;
  private allocated = 0;

  constructor(
    private readonly ctx: Context,
    private readonly dynamicOffsets = false,
  ) {}

  /** Checks the module against the options and the device; returns the resolved binding count. */
  private checkModule(o: PipelineOptions, r: SpirvReflection, name: string): number {
    const info = this.ctx.info;
    const fail = (msg: string) => {
      throw new Error(`Vulkan pipeline "${name}": ${msg}`);
    };
    const entry = o.entry ?? "main";
    const ep = r.entryPoints.find((e) => e.name === entry);
    if (!ep)
      fail(
        `no entry point "${entry}" (module has: ${r.entryPoints.map((e) => e.name).join(", ") || "none"})`,
      );
    if (ep!.model !== 5) fail(`entry point "${entry}" is not GLCompute (execution model ${ep!.model})`);
    if (o.localSize && ep!.localSize && ep!.localSize.join() !== o.localSize.join()) {
      fail(`module's LocalSize is ${ep!.localSize.join("x")}, caller expects ${o.localSize.join("x")}`);
    }
    const spv = r.version.major * 100 + r.version.minor;
    const api = info.apiVersion.split(".").map(Number);
    if (spv > 105 && api[0]! * 100 + api[1]! < 103) {
      fail(
        `SPIR-V ${r.version.major}.${r.version.minor} needs Vulkan 1.3; ${info.name} has ${info.apiVersion}`,
      );
    }
    for (const cap of r.capabilities) {
      const need = CAPABILITY_NEEDS[cap];
      if (!need) continue;
      const ok = need.startsWith("subgroup:")
        ? info.subgroup.operations.includes(need.slice(9))
        : info.features[need as FeatureName];
      const what = need.startsWith("subgroup:")
        ? `subgroup operations "${need.slice(9)}"`
        : `feature ${need}`;
      if (!ok) fail(`capability ${cap} needs ${what}, which ${info.name} lacks`);
    }
    const other = r.bindings.find((b) => b.set !== 0);
    if (other) fail(`uses descriptor set ${other.set}; tkc binds storage buffers in set 0 only`);
    const inferred = r.bindings.reduce((m, b) => Math.max(m, b.binding + 1), 0);
    const n = o.bindings ?? inferred;
    if (n < inferred) fail(`module uses binding ${inferred - 1} but bindings is ${n}`);
    if (n > info.limits.maxPerStageDescriptorStorageBuffers) {
      fail(
        `${n} storage buffers exceed maxPerStageDescriptorStorageBuffers (${info.limits.maxPerStageDescriptorStorageBuffers})`,
      );
    }
    const push = o.pushConstantBytes ?? 0;
    if (!Number.isInteger(push) || push < 0 || push % 4 !== 0)
      fail(`pushConstantBytes must be a multiple of 4, got ${push}`);
    if (push > info.limits.maxPushConstantsSize)
      fail(`${push} push-constant bytes exceed maxPushConstantsSize (${info.limits.maxPushConstantsSize})`);
    if (r.hasPushConstants && push === 0)
      fail("module declares a PushConstant block but pushConstantBytes is 0");
    if (!r.hasPushConstants && push > 0)
      fail(`pushConstantBytes is ${push} but the module has no PushConstant block`);
    return n;
  }

  /** The compute pipeline for these options, built once per distinct module/entry/layout. */
  get(o: PipelineOptions): Pipeline {
    const entry = o.entry ?? "main";
    const name = o.name ?? entry;
    const bytes = new Uint8Array(o.spirv.buffer, o.spirv.byteOffset, o.spirv.byteLength);
    const key = createHash("sha1")
      .update(bytes)
      .update(`|${entry}|${o.bindings}|${o.pushConstantBytes ?? 0}`)
      .digest("hex");
    const hit = this.cache.get(key);
    if (hit && o.localSize && hit.localSize && hit.localSize.join() !== o.localSize.join()) {
      throw new Error(
        `Vulkan pipeline "${name}": module's LocalSize is ${hit.localSize.join("x")}, caller expects ${o.localSize.join("x")}`,
      );
    }
    if (hit) return hit;
    let r: SpirvReflection;
    try {
      r = reflect(o.spirv);
    } catch (e) {
      throw new Error(`Vulkan pipeline "${name}": ${(e as Error).message}`);
    }
    const bindings = this.checkModule(o, r, name);
    const push = o.pushConstantBytes ?? 0;
    const dynamic =
      this.dynamicOffsets &&
      bindings > 0 &&
      bindings <= this.ctx.info.limits.maxDescriptorSetStorageBuffersDynamic;
    const { vk, device } = this.ctx;
    const a = new Arena();
    const out = () => [null] as unknown[];
    const [mod, setLayout, layout, pipe] = [out(), out(), out(), out()];
    try {
      const code = a.bytes(o.spirv);
      check(
        "vkCreateShaderModule",
        vk.vkCreateShaderModule(
          device,
          a.struct("VkShaderModuleCreateInfo", { sType: 16, codeSize: code.length, pCode: code }),
          null,
          mod,
        ),
        name,
      );
      const layoutBindings = Array.from({ length: bindings }, (_, i) => ({
        binding: i,
        descriptorType: dynamic ? DESCRIPTOR_STORAGE_BUFFER_DYNAMIC : DESCRIPTOR_STORAGE_BUFFER,
        descriptorCount: 1,
        stageFlags: STAGE_COMPUTE,
      }));
      const setInfo = {
        sType: 32,
        bindingCount: bindings,
        pBindings: bindings ? a.array("VkDescriptorSetLayoutBinding", layoutBindings) : null,
      };
      check(
        "vkCreateDescriptorSetLayout",
        vk.vkCreateDescriptorSetLayout(
          device,
          a.struct("VkDescriptorSetLayoutCreateInfo", setInfo),
          null,
          setLayout,
        ),
        name,
      );
      const layoutInfo = a.struct("VkPipelineLayoutCreateInfo", {
        sType: 30,
        setLayoutCount: 1,
        pSetLayouts: a.pointers([setLayout[0]]),
        pushConstantRangeCount: push ? 1 : 0,
        pPushConstantRanges: push
          ? a.struct("VkPushConstantRange", { stageFlags: STAGE_COMPUTE, offset: 0, size: push })
          : null,
      });
      check("vkCreatePipelineLayout", vk.vkCreatePipelineLayout(device, layoutInfo, null, layout), name);
      const stage = { sType: 18, stage: STAGE_COMPUTE, module: mod[0], pName: a.cstring(entry) };
      const pipeInfo = a.struct("VkComputePipelineCreateInfo", {
        sType: 29,
        stage,
        layout: layout[0],
        basePipelineIndex: -1,
      });
      check(
        "vkCreateComputePipelines",
        vk.vkCreateComputePipelines(device, null, 1, pipeInfo, null, pipe),
        name,
      );
    } catch (e) {
      // Destroying a null handle is a no-op, so whatever was created before the failure goes.
      vk.vkDestroyPipeline(device, pipe[0], null);
      vk.vkDestroyPipelineLayout(device, layout[0], null);
      vk.vkDestroyDescriptorSetLayout(device, setLayout[0], null);
      vk.vkDestroyShaderModule(device, mod[0], null);
      throw e;
    }
    const ep = r.entryPoints.find((e) => e.name === entry)!;
    const p: Pipeline = {
      id: nextId++,
      name,
      bindings,
      pushConstantBytes: push,
      localSize: ep.localSize,
      handle: pipe[0],
      layout: layout[0],
      setLayout: setLayout[0],
      module: mod[0],
      dynamic,
    };
    this.cache.set(key, p);
    return p;
  }

  private newPool(): void {
    const a = new Arena();
    const sizes = a.array("VkDescriptorPoolSize", [
      { type: DESCRIPTOR_STORAGE_BUFFER, descriptorCount: POOL_DESCRIPTORS },
      { type: DESCRIPTOR_STORAGE_BUFFER_DYNAMIC, descriptorCount: POOL_DESCRIPTORS },
    ]);
    const pool = [null];
    const info = a.struct("VkDescriptorPoolCreateInfo", {
      sType: 33,
      maxSets: POOL_SETS,
      poolSizeCount: 2,
      pPoolSizes: sizes,
    });
    check("vkCreateDescriptorPool", this.ctx.vk.vkCreateDescriptorPool(this.ctx.device, info, null, pool));
    this.pools.push(pool[0]);
    this.poolSetsLeft = POOL_SETS;
    this.poolDescriptorsLeft = POOL_DESCRIPTORS;
  }

  /**
   * The descriptor set binding `buffers` to `p`, binding k from byte `offsets[k]` (default 0):
   * allocated once per (layout, buffers, offsets) and reused. Where `p` takes dynamic offsets the
   * set binds each buffer from 0 over `ranges[k]` bytes (default: the whole buffer) and is shared
   * by every dispatch over those buffers and ranges, the offsets given when it is bound.
   */
  descriptorSet(
    p: Pipeline,
    buffers: readonly GpuBuffer[],
    offsets?: readonly number[],
    ranges?: readonly number[],
  ): BoundSet {
    if (!p.dynamic) return { set: this.allocateSet(p, buffers, offsets), dynamicOffsets: undefined };
    const dynamicOffsets = buffers.map((_, i) => offsets?.[i] ?? 0);
    // A range no dispatch's offset pushes past its buffer's end: the view's bytes, or the rest.
    const range = buffers.map((b, i) => Math.min(ranges?.[i] ?? b.size, b.size - dynamicOffsets[i]!));
    return { set: this.allocateSet(p, buffers, undefined, range), dynamicOffsets };
  }

  /** A set binding `buffers` to `p` from `offsets[k]` over `ranges[k]` bytes (default: to the end). */
  private allocateSet(
    p: Pipeline,
    buffers: readonly GpuBuffer[],
    offsets?: readonly number[],
    ranges?: readonly number[],
  ): unknown {
    const at = (i: number) => offsets?.[i] ?? 0;
    const span = (i: number) => ranges?.[i] ?? buffers[i]!.size - at(i);
    const key = `${p.id}:${buffers
      .map((b, i) => `${b.id}${at(i) ? `@${at(i)}` : ""}${ranges ? `+${span(i)}` : ""}`)
      .join(",")}`;
    const hit = this.sets.get(key);
    if (hit) return hit;
    if (buffers.length > POOL_DESCRIPTORS)
      throw new Error(`Vulkan: ${buffers.length} buffers in one set is too many`);
    if (this.poolSetsLeft < 1 || this.poolDescriptorsLeft < buffers.length) this.newPool();
    const { vk, device } = this.ctx;
    const a = new Arena();
    const set = [null];
    const alloc = a.struct("VkDescriptorSetAllocateInfo", {
      sType: 34,
      descriptorPool: this.pools.at(-1),
      descriptorSetCount: 1,
      pSetLayouts: a.pointers([p.setLayout]),
    });
    check("vkAllocateDescriptorSets", vk.vkAllocateDescriptorSets(device, alloc, set), p.name);
    this.poolSetsLeft -= 1;
    this.poolDescriptorsLeft -= buffers.length;
    this.allocated++;
    if (buffers.length > 0) {
      const writes = buffers.map((b, i) => ({
        sType: 35,
        dstSet: set[0],
        dstBinding: i,
        descriptorCount: 1,
        descriptorType: p.dynamic ? DESCRIPTOR_STORAGE_BUFFER_DYNAMIC : DESCRIPTOR_STORAGE_BUFFER,
        pBufferInfo: a.struct("VkDescriptorBufferInfo", {
          buffer: b.handle,
          offset: at(i),
          range: span(i),
        }),
      }));
      vk.vkUpdateDescriptorSets(device, writes.length, a.array("VkWriteDescriptorSet", writes), 0, null);
    }
    this.sets.set(key, set[0]);
    return set[0];
  }

  /** Descriptor sets allocated so far (forgotten ones included: their pool memory stays). */
  get setCount(): number {
    return this.allocated;
  }

  /** Forgets descriptor sets that name a freed buffer (their pool memory is reclaimed on destroy). */
  forgetBuffer(b: GpuBuffer): void {
    for (const key of this.sets.keys())
      if (
        key
          .split(":")[1]!
          .split(",")
          .some((e) => e.split(/[@+]/)[0] === String(b.id))
      )
        this.sets.delete(key);
  }

  destroy(): void {
    const { vk, device } = this.ctx;
    for (const pool of this.pools) vk.vkDestroyDescriptorPool(device, pool, null);
    for (const p of this.cache.values()) {
      vk.vkDestroyPipeline(device, p.handle, null);
      vk.vkDestroyPipelineLayout(device, p.layout, null);
      vk.vkDestroyDescriptorSetLayout(device, p.setLayout, null);
      vk.vkDestroyShaderModule(device, p.module, null);
    }
    this.pools = [];
    this.cache.clear();
    this.sets.clear();
  }
}
