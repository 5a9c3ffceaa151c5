// Instance, physical device description and choice, logical device with a compute queue.
import { Arena, decodeStruct, makeVersion, versionString, type VkApi } from "./api.ts";
import { check, VulkanError, VulkanUnavailableError } from "./errors.ts";

export type DeviceType = "other" | "integrated" | "discrete" | "virtual" | "cpu";
const DEVICE_TYPES: DeviceType[] = ["other", "integrated", "discrete", "virtual", "cpu"];
// Lower is preferred: a real GPU before a software rasterizer such as lavapipe.
const PREFERENCE: Record<DeviceType, number> = { discrete: 0, integrated: 1, virtual: 2, cpu: 3, other: 4 };

/** Shader features a kernel may need; each lives in one of three Vulkan feature structs. */
const FEATURE_HOME = {
  shaderInt16: "core",
  shaderInt64: "core",
  shaderFloat64: "core",
  storageBuffer16BitAccess: "v11",
  uniformAndStorageBuffer16BitAccess: "v11",
  storagePushConstant16: "v11",
  shaderFloat16: "v12",
  shaderInt8: "v12",
  storageBuffer8BitAccess: "v12",
  uniformAndStorageBuffer8BitAccess: "v12",
  storagePushConstant8: "v12",
  shaderBufferInt64Atomics: "v12",
  shaderSharedInt64Atomics: "v12",
  scalarBlockLayout: "v12",
  vulkanMemoryModel: "v12",
  vulkanMemoryModelDeviceScope: "v12",
} as const;
export type FeatureName = keyof typeof FEATURE_HOME;
export type Features = Record<FeatureName, boolean>;

const SUBGROUP_OPS = [
  "basic",
  "vote",
  "arithmetic",
  "ballot",
  "shuffle",
  "shuffleRelative",
  "clustered",
  "quad",
];
const STAGE_COMPUTE = 0x20;

export interface DeviceInfo {
  index: number;
  name: string;
  type: DeviceType;
  apiVersion: string;
  vendorId: number;
  deviceId: number;
  limits: {
    maxComputeSharedMemorySize: number;
    maxComputeWorkGroupInvocations: number;
    maxComputeWorkGroupSize: [number, number, number];
    maxComputeWorkGroupCount: [number, number, number];
    maxPushConstantsSize: number;
    maxStorageBufferRange: number;
    maxPerStageDescriptorStorageBuffers: number;
    /** Storage buffers with dynamic offsets a descriptor set may hold (VulkanRuntimeOptions.dynamicOffsets). */
    maxDescriptorSetStorageBuffersDynamic: number;
    minStorageBufferOffsetAlignment: number;
    /** Nanoseconds per timestamp tick. */
    timestampPeriod: number;
  };
  subgroup: {
    size: number;
    /** Sizes a pipeline may get (Vulkan 1.3 subgroup size control); both equal `size` before 1.3. */
    minSize: number;
    maxSize: number;
    /** Operation classes usable in compute shaders: basic, vote, arithmetic, ballot, shuffle, ... */
    operations: string[];
  };
  features: Features;
  /** Whether this device can be used here (Vulkan 1.2 and a compute queue); why not otherwise. */
  usable: true | string;
  /** Queue family chosen for compute, and whether it supports timestamps. */
  queueFamily: number;
  timestamps: boolean;
}

export interface Instance {
  handle: unknown;
  apiVersion: number;
}

/** Creates an instance asking for Vulkan 1.3 when the loader has it, else 1.2. */
export function createInstance(vk: VkApi): Instance {
  const ver = [0];
  check("vkEnumerateInstanceVersion", vk.vkEnumerateInstanceVersion(ver));
  if (ver[0]! < makeVersion(1, 2)) {
    throw new VulkanUnavailableError(
      `Vulkan is not available: the loader supports only Vulkan ${versionString(ver[0]!)}, tkc needs 1.2 or later.`,
    );
  }
  const apiVersion = ver[0]! >= makeVersion(1, 3) ? makeVersion(1, 3) : makeVersion(1, 2);
  const a = new Arena();
  const app = a.struct("VkApplicationInfo", {
    sType: 0,
    pApplicationName: a.cstring("tkc"),
    applicationVersion: 1,
    pEngineName: a.cstring("tkc"),
    engineVersion: 1,
    apiVersion,
  });
  const out = [null];
  const r = vk.vkCreateInstance({ sType: 1, pNext: null, flags: 0, pApplicationInfo: app }, null, out);
  if (r === -9 /* VK_ERROR_INCOMPATIBLE_DRIVER */ || r === -3 /* VK_ERROR_INITIALIZATION_FAILED */) {
    throw new VulkanUnavailableError(
      `Vulkan is not available: the loader found no driver (${new VulkanError("vkCreateInstance", r).message}). ` +
        `Install one, e.g. apt-get install mesa-vulkan-drivers (lavapipe, on the CPU).`,
    );
  }
  check("vkCreateInstance", r);
  return { handle: out[0], apiVersion };
}

export function physicalDevices(vk: VkApi, instance: Instance): unknown[] {
  const count = [0];
  check("vkEnumeratePhysicalDevices", vk.vkEnumeratePhysicalDevices(instance.handle, count, null));
  const list: unknown[] = new Array(count[0]).fill(null);
  if (count[0]! > 0)
    check("vkEnumeratePhysicalDevices", vk.vkEnumeratePhysicalDevices(instance.handle, count, list));
  return list;
}

interface Limits {
  [k: string]: number | number[];
}

/** Everything a code generator or a test needs to know about one physical device. */
export function describeDevice(vk: VkApi, pd: unknown, index: number): DeviceInfo {
  const a = new Arena();
  const subgroup = a.struct("VkPhysicalDeviceSubgroupProperties", { sType: 1000094000, pNext: null });
  const sizeControl = a.struct("VkPhysicalDeviceSubgroupSizeControlProperties", {
    sType: 1000225000,
    pNext: subgroup,
  });
  // First find the device's version: chaining a 1.3 struct into a 1.2 device's query is invalid.
  const probe = a.struct("VkPhysicalDeviceProperties2", { sType: 1000059001, pNext: null });
  vk.vkGetPhysicalDeviceProperties2(pd, probe);
  const api = decodeStruct<{ properties: { apiVersion: number } }>(probe, "VkPhysicalDeviceProperties2")
    .properties.apiVersion;
  const is13 = api >= makeVersion(1, 3);
  const props2 = a.struct("VkPhysicalDeviceProperties2", {
    sType: 1000059001,
    pNext: is13 ? sizeControl : subgroup,
  });
  vk.vkGetPhysicalDeviceProperties2(pd, props2);
  const p = decodeStruct<{ properties: Record<string, unknown> }>(
    props2,
    "VkPhysicalDeviceProperties2",
  ).properties;
  const lim = p.limits as Limits;
  const sg = decodeStruct<Record<string, number>>(subgroup, "VkPhysicalDeviceSubgroupProperties");
  const sc = is13
    ? decodeStruct<Record<string, number>>(sizeControl, "VkPhysicalDeviceSubgroupSizeControlProperties")
    : undefined;
  const features = queryFeatures(vk, pd);
  const family = chooseQueueFamily(vk, pd);
  const type = DEVICE_TYPES[p.deviceType as number] ?? "other";
  let usable: true | string = true;
  if (api < makeVersion(1, 2)) usable = `device supports only Vulkan ${versionString(api)} (tkc needs 1.2)`;
  else if (family.index < 0) usable = "device has no compute queue";
  return {
    index,
    name: p.deviceName as string,
    type,
    apiVersion: versionString(api),
    vendorId: p.vendorID as number,
    deviceId: p.deviceID as number,
    limits: {
      maxComputeSharedMemorySize: lim.maxComputeSharedMemorySize as number,
      maxComputeWorkGroupInvocations: lim.maxComputeWorkGroupInvocations as number,
      maxComputeWorkGroupSize: [...(lim.maxComputeWorkGroupSize as number[])] as [number, number, number],
      maxComputeWorkGroupCount: [...(lim.maxComputeWorkGroupCount as number[])] as [number, number, number],
      maxPushConstantsSize: lim.maxPushConstantsSize as number,
      maxStorageBufferRange: lim.maxStorageBufferRange as number,
      maxPerStageDescriptorStorageBuffers: lim.maxPerStageDescriptorStorageBuffers as number,
      maxDescriptorSetStorageBuffersDynamic: lim.maxDescriptorSetStorageBuffersDynamic as number,
      minStorageBufferOffsetAlignment: Number(lim.minStorageBufferOffsetAlignment),
      timestampPeriod: lim.timestampPeriod as number,
    },
    subgroup: {
      size: sg.subgroupSize!,
      minSize: sc?.minSubgroupSize ?? sg.subgroupSize!,
      maxSize: sc?.maxSubgroupSize ?? sg.subgroupSize!,
      operations:
        (sg.supportedStages! & STAGE_COMPUTE) === 0
          ? []
          : SUBGROUP_OPS.filter((_, bit) => (sg.supportedOperations! >>> bit) & 1),
    },
    features,
    usable,
    queueFamily: family.index,
    timestamps: family.timestamps,
  };
}

function featureChain(a: Arena, values: Partial<Features> = {}): { f2: Buffer; f11: Buffer; f12: Buffer } {
  const pick = (home: string) =>
    Object.fromEntries(
      Object.entries(FEATURE_HOME)
        .filter(([, h]) => h === home)
        .map(([k]) => [k, values[k as FeatureName] ? 1 : 0]),
    );
  const f12 = a.struct("VkPhysicalDeviceVulkan12Features", { sType: 51, pNext: null, ...pick("v12") });
  const f11 = a.struct("VkPhysicalDeviceVulkan11Features", { sType: 49, pNext: f12, ...pick("v11") });
  const f2 = a.struct("VkPhysicalDeviceFeatures2", { sType: 1000059000, pNext: f11, features: pick("core") });
  return { f2, f11, f12 };
}

function queryFeatures(vk: VkApi, pd: unknown): Features {
  const a = new Arena();
  const { f2, f11, f12 } = featureChain(a);
  vk.vkGetPhysicalDeviceFeatures2(pd, f2);
  const core = decodeStruct<{ features: Record<string, number> }>(f2, "VkPhysicalDeviceFeatures2").features;
  const v11 = decodeStruct<Record<string, number>>(f11, "VkPhysicalDeviceVulkan11Features");
  const v12 = decodeStruct<Record<string, number>>(f12, "VkPhysicalDeviceVulkan12Features");
  const src = { core, v11, v12 };
  return Object.fromEntries(
    Object.entries(FEATURE_HOME).map(([k, home]) => [k, src[home][k] === 1]),
  ) as Features;
}

function chooseQueueFamily(vk: VkApi, pd: unknown): { index: number; timestamps: boolean } {
  const count = [0];
  vk.vkGetPhysicalDeviceQueueFamilyProperties(pd, count, null);
  const a = new Arena();
  const buf = a.array("VkQueueFamilyProperties", new Array(count[0]).fill({}));
  vk.vkGetPhysicalDeviceQueueFamilyProperties(pd, count, buf);
  const fams = decodeArray(buf, count[0]!);
  const compute = fams.map((f, i) => ({ ...f, i })).filter((f) => f.queueFlags & 2 /* COMPUTE */);
  const best = compute.find((f) => f.timestampValidBits > 0) ?? compute[0];
  return best ? { index: best.i, timestamps: best.timestampValidBits > 0 } : { index: -1, timestamps: false };
}

function decodeArray(buf: Buffer, n: number): { queueFlags: number; timestampValidBits: number }[] {
  const size = buf.length / Math.max(n, 1);
  return Array.from({ length: n }, (_, i) => decodeStruct(buf.subarray(i * size), "VkQueueFamilyProperties"));
}

/**
 * Picks a device: `choice` (index or case-insensitive name substring), else $TKC_VULKAN_DEVICE,
 * else the most preferred usable type (discrete GPU first, CPU drivers last).
 */
export function chooseDevice(devices: DeviceInfo[], choice = process.env.TKC_VULKAN_DEVICE): DeviceInfo {
  const list = devices.map(
    (d) => `#${d.index} ${d.name} (${d.type}${d.usable === true ? "" : `, ${d.usable}`})`,
  );
  if (devices.length === 0) {
    throw new VulkanUnavailableError(
      "Vulkan is not available: the loader reports no physical device. Install a driver, e.g. apt-get install mesa-vulkan-drivers (lavapipe, on the CPU).",
    );
  }
  if (choice !== undefined && choice !== "") {
    const byIndex = /^\d+$/.test(String(choice)) ? devices[Number(choice)] : undefined;
    const d = byIndex ?? devices.find((x) => x.name.toLowerCase().includes(String(choice).toLowerCase()));
    if (!d)
      throw new VulkanUnavailableError(`no Vulkan device matches "${choice}"; devices: ${list.join("; ")}`);
    if (d.usable !== true)
      throw new VulkanUnavailableError(`Vulkan device #${d.index} ${d.name}: ${d.usable}`);
    return d;
  }
  const usable = devices
    .filter((d) => d.usable === true)
    .sort((x, y) => PREFERENCE[x.type] - PREFERENCE[y.type]);
  if (!usable[0]) throw new VulkanUnavailableError(`no usable Vulkan device; devices: ${list.join("; ")}`);
  return usable[0];
}

/** Creates the logical device with every supported feature of FEATURE_HOME enabled. */
export function createDevice(vk: VkApi, pd: unknown, info: DeviceInfo): { device: unknown; queue: unknown } {
  const a = new Arena();
  const { f2 } = featureChain(a, info.features);
  const queueInfo = a.struct("VkDeviceQueueCreateInfo", {
    sType: 2,
    queueFamilyIndex: info.queueFamily,
    queueCount: 1,
    pQueuePriorities: a.bytes(new Float32Array([1])),
  });
  const createInfo = a.struct("VkDeviceCreateInfo", {
    sType: 3,
    pNext: f2, // features through VkPhysicalDeviceFeatures2, so pEnabledFeatures stays null
    queueCreateInfoCount: 1,
    pQueueCreateInfos: queueInfo,
  });
  const out = [null];
  check("vkCreateDevice", vk.vkCreateDevice(pd, createInfo, null, out), info.name);
  const q = [null];
  vk.vkGetDeviceQueue(out[0], info.queueFamily, 0, q);
  return { device: out[0], queue: q[0] };
}
