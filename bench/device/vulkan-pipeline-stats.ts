// The driver's own statistics of compute pipelines (VK_KHR_pipeline_executable_properties): per
// pipeline executable, what the driver reports (NVIDIA: registers, spills, shared memory, ...), and
// its internal representations where it gives any. backends/vulkan neither enables the extension nor
// binds its functions, so this opens a second device of its own with the extension on and the
// runtime's shader features, builds each pipeline with VK_PIPELINE_CREATE_CAPTURE_STATISTICS_BIT_KHR,
// and asks. bench/device/vulkan-bench.ts runs it in a child process (a driver or layout surprise
// cannot take the measurements down with it).
//
// Struct layouts (x86-64), checked against vulkan_core.h's offsetof/sizeof:
//   VkPhysicalDevicePipelineExecutablePropertiesFeaturesKHR  24: pipelineExecutableInfo @16
//   VkPipelineInfoKHR                                        24: pipeline @16
//   VkPipelineExecutablePropertiesKHR                       536: stages @16, name @20, description
//                                                                @276, subgroupSize @532
//   VkPipelineExecutableInfoKHR                              32: pipeline @16, executableIndex @24
//   VkPipelineExecutableStatisticKHR                        544: name @16, description @272,
//                                                                format @528, value @536
//   VkPipelineExecutableInternalRepresentationKHR           552: name @16, description @272,
//                                                                isText @528, dataSize @536, pData @544
//   VkExtensionProperties                                   260: extensionName @0, specVersion @256
import koffi from "koffi";
import { Arena, DEFAULT_LIBRARY, loadVulkan } from "../../backends/vulkan/api.ts";
import {
  chooseDevice,
  createInstance,
  describeDevice,
  physicalDevices,
  type DeviceInfo,
} from "../../backends/vulkan/device.ts";
import { check } from "../../backends/vulkan/errors.ts";
import { artifactWords, type VulkanArtifact } from "../../backends/vulkan/kernel.ts";

export const EXTENSION = "VK_KHR_pipeline_executable_properties";
const STYPE = {
  features: 1000269000,
  pipelineInfo: 1000269001,
  properties: 1000269002,
  executableInfo: 1000269003,
  statistic: 1000269004,
  internal: 1000269005,
};
const SIZE = {
  features: 24,
  pipelineInfo: 24,
  properties: 536,
  executableInfo: 32,
  statistic: 544,
  internal: 552,
};
const CAPTURE_STATISTICS = 0x40;
const CAPTURE_INTERNAL_REPRESENTATIONS = 0x80;
const STAGE_COMPUTE = 0x20;

/** The runtime's shader features (backends/vulkan/device.ts FEATURE_HOME), by feature struct. */
const FEATURES: Record<"core" | "v11" | "v12", readonly (keyof DeviceInfo["features"])[]> = {
  core: ["shaderInt16", "shaderInt64", "shaderFloat64"],
  v11: ["storageBuffer16BitAccess", "uniformAndStorageBuffer16BitAccess", "storagePushConstant16"],
  v12: [
    "shaderFloat16",
    "shaderInt8",
    "storageBuffer8BitAccess",
    "uniformAndStorageBuffer8BitAccess",
    "storagePushConstant8",
    "shaderBufferInt64Atomics",
    "shaderSharedInt64Atomics",
    "scalarBlockLayout",
    "vulkanMemoryModel",
    "vulkanMemoryModelDeviceScope",
  ],
};

export interface ExecutableStats {
  name: string;
  description: string;
  stages: number;
  subgroupSize: number;
  /** Statistic name -> value (booleans as true/false, 64-bit integers as numbers). */
  statistics: Record<string, number | boolean>;
  statisticDescriptions: Record<string, string>;
  /** Internal representations: name, whether text, size; the text itself when `text` is asked. */
  internal: { name: string; description: string; isText: boolean; bytes: number; text?: string }[];
}

export interface PipelineStatsReport {
  supported: boolean;
  reason?: string;
  device?: string;
  pipelines: Record<string, ExecutableStats[] | { error: string }>;
}

/** Raw function pointers of the extension, as vkGetDeviceProcAddr returns them. */
export interface ExtensionProcs {
  properties: unknown;
  statistics: unknown;
  internal: unknown;
}

type Proto = ReturnType<typeof koffi.proto>;
let protos: { properties: Proto; statistics: Proto; internal: Proto } | undefined;
function prototypes() {
  protos ??= {
    properties: koffi.proto(
      "int32_t PFN_tkcGetPipelineExecutablePropertiesKHR(void *device, void *info, _Inout_ uint32_t *count, void *props)",
    ),
    statistics: koffi.proto(
      "int32_t PFN_tkcGetPipelineExecutableStatisticsKHR(void *device, void *info, _Inout_ uint32_t *count, void *stats)",
    ),
    internal: koffi.proto(
      "int32_t PFN_tkcGetPipelineExecutableInternalRepresentationsKHR(void *device, void *info, _Inout_ uint32_t *count, void *reps)",
    ),
  };
  return protos;
}

const cstr = (b: Buffer, offset: number, max = 256): string => {
  const s = b.subarray(offset, offset + max);
  const end = s.indexOf(0);
  return s.subarray(0, end < 0 ? max : end).toString("utf8");
};

/** `n` zeroed structs of `size` bytes with their sType set. */
function structArray(n: number, size: number, sType: number): Buffer {
  const b = Buffer.alloc(Math.max(n, 1) * size);
  for (let i = 0; i < n; i++) b.writeInt32LE(sType, i * size);
  return b;
}

/**
 * The executables of a pipeline created with CAPTURE_STATISTICS (and CAPTURE_INTERNAL_REPRESENTATIONS
 * when `text` is on), with their statistics: the queries of the extension, through `procs`.
 */
export function queryExecutables(
  device: unknown,
  pipeline: unknown,
  procs: ExtensionProcs,
  text = false,
): ExecutableStats[] {
  const p = prototypes();
  const info = Buffer.alloc(SIZE.pipelineInfo);
  info.writeInt32LE(STYPE.pipelineInfo, 0);
  koffi.encode(info, 16, "void *", pipeline);
  const count = [0];
  check(
    "vkGetPipelineExecutablePropertiesKHR",
    koffi.call(procs.properties, p.properties, device, info, count, null),
  );
  const props = structArray(count[0]!, SIZE.properties, STYPE.properties);
  check(
    "vkGetPipelineExecutablePropertiesKHR",
    koffi.call(procs.properties, p.properties, device, info, count, props),
  );
  const out: ExecutableStats[] = [];
  for (let e = 0; e < count[0]!; e++) {
    const o = e * SIZE.properties;
    const exec: ExecutableStats = {
      name: cstr(props, o + 20),
      description: cstr(props, o + 276),
      stages: props.readUInt32LE(o + 16),
      subgroupSize: props.readUInt32LE(o + 532),
      statistics: {},
      statisticDescriptions: {},
      internal: [],
    };
    const ei = Buffer.alloc(SIZE.executableInfo);
    ei.writeInt32LE(STYPE.executableInfo, 0);
    koffi.encode(ei, 16, "void *", pipeline);
    ei.writeUInt32LE(e, 24);
    const n = [0];
    check(
      "vkGetPipelineExecutableStatisticsKHR",
      koffi.call(procs.statistics, p.statistics, device, ei, n, null),
    );
    const stats = structArray(n[0]!, SIZE.statistic, STYPE.statistic);
    check(
      "vkGetPipelineExecutableStatisticsKHR",
      koffi.call(procs.statistics, p.statistics, device, ei, n, stats),
    );
    for (let i = 0; i < n[0]!; i++) {
      const so = i * SIZE.statistic;
      const name = cstr(stats, so + 16);
      const format = stats.readInt32LE(so + 528);
      const v = so + 536;
      exec.statistics[name] =
        format === 0
          ? stats.readUInt32LE(v) !== 0
          : format === 1
            ? Number(stats.readBigInt64LE(v))
            : format === 2
              ? Number(stats.readBigUInt64LE(v))
              : stats.readDoubleLE(v);
      exec.statisticDescriptions[name] = cstr(stats, so + 272);
    }
    if (text && procs.internal) {
      const m = [0];
      check(
        "vkGetPipelineExecutableInternalRepresentationsKHR",
        koffi.call(procs.internal, p.internal, device, ei, m, null),
      );
      if (m[0]! > 0) {
        // First the sizes (pData null), then the data.
        const reps = structArray(m[0]!, SIZE.internal, STYPE.internal);
        check(
          "vkGetPipelineExecutableInternalRepresentationsKHR",
          koffi.call(procs.internal, p.internal, device, ei, m, reps),
        );
        const data: Buffer[] = [];
        for (let i = 0; i < m[0]!; i++) {
          const ro = i * SIZE.internal;
          const size = Number(reps.readBigUInt64LE(ro + 536));
          const d = Buffer.alloc(Math.max(size, 1));
          data.push(d);
          koffi.encode(reps, ro + 544, "void *", d);
        }
        const r = koffi.call(procs.internal, p.internal, device, ei, m, reps) as number;
        if (r !== 5 /* VK_INCOMPLETE */) check("vkGetPipelineExecutableInternalRepresentationsKHR", r);
        for (let i = 0; i < m[0]!; i++) {
          const ro = i * SIZE.internal;
          const isText = reps.readUInt32LE(ro + 528) !== 0;
          const bytes = Number(reps.readBigUInt64LE(ro + 536));
          exec.internal.push({
            name: cstr(reps, ro + 16),
            description: cstr(reps, ro + 272),
            isText,
            bytes,
            ...(isText ? { text: cstr(data[i]!, 0, bytes) } : {}),
          });
        }
      }
    }
    out.push(exec);
  }
  return out;
}

/**
 * Opens the device the runtime would pick with the extension enabled, builds a pipeline for each
 * artifact with statistics captured, and reports them. Never throws: an unsupported extension or a
 * failure is in the report.
 */
export function pipelineStats(
  kernels: readonly { name: string; artifact: VulkanArtifact }[],
  opts: { internal?: boolean; library?: string } = {},
): PipelineStatsReport {
  const library = opts.library ?? (process.env.TKC_VULKAN_LIB || DEFAULT_LIBRARY);
  const report: PipelineStatsReport = { supported: false, pipelines: {} };
  let vk: ReturnType<typeof loadVulkan>;
  let instance: ReturnType<typeof createInstance> | undefined;
  let device: unknown = null;
  try {
    vk = loadVulkan(library);
    instance = createInstance(vk);
    const lib = koffi.load(library);
    const enumerateExtensions = lib.func(
      "int32_t vkEnumerateDeviceExtensionProperties(void *physicalDevice, const char *layer, _Inout_ uint32_t *count, void *props)",
    );
    const getDeviceProcAddr = lib.func("void *vkGetDeviceProcAddr(void *device, const char *name)");
    const pds = physicalDevices(vk, instance);
    const info = chooseDevice(pds.map((pd, i) => describeDevice(vk, pd, i)));
    const pd = pds[info.index];
    report.device = info.name;
    const n = [0];
    check("vkEnumerateDeviceExtensionProperties", enumerateExtensions(pd, null, n, null));
    const exts = Buffer.alloc(Math.max(n[0]!, 1) * 260);
    check("vkEnumerateDeviceExtensionProperties", enumerateExtensions(pd, null, n, exts));
    const names = Array.from({ length: n[0]! }, (_, i) => cstr(exts, i * 260));
    if (!names.includes(EXTENSION)) {
      report.reason = `${info.name} does not offer ${EXTENSION}`;
      return report;
    }
    // Feature chain: the runtime's shader features, then the extension's.
    const a = new Arena();
    const khr = Buffer.alloc(SIZE.features);
    khr.writeInt32LE(STYPE.features, 0);
    khr.writeUInt32LE(1, 16);
    const pick = (home: keyof typeof FEATURES) =>
      Object.fromEntries(FEATURES[home].map((k) => [k, info.features[k] ? 1 : 0]));
    const f12 = a.struct("VkPhysicalDeviceVulkan12Features", { sType: 51, pNext: khr, ...pick("v12") });
    const f11 = a.struct("VkPhysicalDeviceVulkan11Features", { sType: 49, pNext: f12, ...pick("v11") });
    const f2 = a.struct("VkPhysicalDeviceFeatures2", {
      sType: 1000059000,
      pNext: f11,
      features: pick("core"),
    });
    const queue = a.struct("VkDeviceQueueCreateInfo", {
      sType: 2,
      queueFamilyIndex: info.queueFamily,
      queueCount: 1,
      pQueuePriorities: a.bytes(new Float32Array([1])),
    });
    const createInfo = a.struct("VkDeviceCreateInfo", {
      sType: 3,
      pNext: f2,
      queueCreateInfoCount: 1,
      pQueueCreateInfos: queue,
      enabledExtensionCount: 1,
      ppEnabledExtensionNames: a.pointers([a.cstring(EXTENSION)]),
    });
    const out = [null];
    check("vkCreateDevice", vk.vkCreateDevice(pd, createInfo, null, out), `${info.name} with ${EXTENSION}`);
    device = out[0];
    const procs: ExtensionProcs = {
      properties: getDeviceProcAddr(device, "vkGetPipelineExecutablePropertiesKHR"),
      statistics: getDeviceProcAddr(device, "vkGetPipelineExecutableStatisticsKHR"),
      internal: getDeviceProcAddr(device, "vkGetPipelineExecutableInternalRepresentationsKHR"),
    };
    if (!procs.properties || !procs.statistics) {
      report.reason = `vkGetDeviceProcAddr returned no ${EXTENSION} functions`;
      return report;
    }
    report.supported = true;
    for (const k of kernels) {
      try {
        report.pipelines[k.name] = withPipeline(vk, device, k.artifact, !!opts.internal, (pipe) =>
          queryExecutables(device, pipe, procs, !!opts.internal),
        );
      } catch (e) {
        report.pipelines[k.name] = { error: e instanceof Error ? e.message : String(e) };
      }
    }
    return report;
  } catch (e) {
    report.supported = false;
    report.reason = e instanceof Error ? e.message : String(e);
    return report;
  } finally {
    if (device) vk!.vkDestroyDevice(device, null);
    if (instance) vk!.vkDestroyInstance(instance.handle, null);
  }
}

/** Builds the artifact's compute pipeline with statistics captured, runs `fn` on it, destroys it. */
function withPipeline<T>(
  vk: ReturnType<typeof loadVulkan>,
  device: unknown,
  art: VulkanArtifact,
  internal: boolean,
  fn: (pipeline: unknown) => T,
): T {
  const a = new Arena();
  const out = () => [null] as unknown[];
  const [mod, setLayout, layout, pipe] = [out(), out(), out(), out()];
  try {
    const code = a.bytes(artifactWords(art));
    check(
      "vkCreateShaderModule",
      vk.vkCreateShaderModule(
        device,
        a.struct("VkShaderModuleCreateInfo", { sType: 16, codeSize: code.length, pCode: code }),
        null,
        mod,
      ),
      art.name,
    );
    const bindings = art.abi.filter((e) => e.kind === "buffer").length;
    const layoutBindings = Array.from({ length: bindings }, (_, i) => ({
      binding: i,
      descriptorType: 7, // STORAGE_BUFFER
      descriptorCount: 1,
      stageFlags: STAGE_COMPUTE,
    }));
    check(
      "vkCreateDescriptorSetLayout",
      vk.vkCreateDescriptorSetLayout(
        device,
        a.struct("VkDescriptorSetLayoutCreateInfo", {
          sType: 32,
          bindingCount: bindings,
          pBindings: bindings ? a.array("VkDescriptorSetLayoutBinding", layoutBindings) : null,
        }),
        null,
        setLayout,
      ),
      art.name,
    );
    const push = art.pushConstantBytes;
    const layoutInfo = a.struct("VkPipelineLayoutCreateInfo", {
      sType: 30,
      setLayoutCount: 1,
      pSetLayouts: a.pointers([setLayout[0]]),
      pushConstantRangeCount: push ? 1 : 0,
      pPushConstantRanges: push
        ? a.struct("VkPushConstantRange", { stageFlags: STAGE_COMPUTE, offset: 0, size: push })
        : null,
    });
    check("vkCreatePipelineLayout", vk.vkCreatePipelineLayout(device, layoutInfo, null, layout), art.name);
    const pipeInfo = a.struct("VkComputePipelineCreateInfo", {
      sType: 29,
      flags: CAPTURE_STATISTICS | (internal ? CAPTURE_INTERNAL_REPRESENTATIONS : 0),
      // Entry point "main", as the runtime asks for (backends/vulkan/pipeline.ts).
      stage: { sType: 18, stage: STAGE_COMPUTE, module: mod[0], pName: a.cstring("main") },
      layout: layout[0],
      basePipelineIndex: -1,
    });
    check(
      "vkCreateComputePipelines",
      vk.vkCreateComputePipelines(device, null, 1, pipeInfo, null, pipe),
      art.name,
    );
    return fn(pipe[0]);
  } finally {
    vk.vkDestroyPipeline(device, pipe[0], null);
    vk.vkDestroyPipelineLayout(device, layout[0], null);
    vk.vkDestroyDescriptorSetLayout(device, setLayout[0], null);
    vk.vkDestroyShaderModule(device, mod[0], null);
  }
}
