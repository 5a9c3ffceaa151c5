// Vulkan struct layouts for koffi, written as C declarations copied from vulkan_core.h (1.3.239)
// and parsed here, so each can be compared line by line with the header. Consecutive members of
// one type are merged into one declaration to keep the file short; order is the header's.
// Every pointer member is `void *` (we pass addresses of Buffers we own), every handle is
// `void *` (GUIDE section 3), enums are int32_t, flags and VkBool32 are uint32_t.
// test/backends/vulkan/abi.test.ts checks the sizes and offsets against C's sizeof/offsetof.
import koffi from "koffi";

type KoffiType = ReturnType<typeof koffi.struct>;

const DECLS = {
  VkApplicationInfo: `
    VkStructureType sType; const void* pNext; const char* pApplicationName; uint32_t applicationVersion;
    const char* pEngineName; uint32_t engineVersion, apiVersion;
  `,
  VkInstanceCreateInfo: `
    VkStructureType sType; const void* pNext; VkInstanceCreateFlags flags; const VkApplicationInfo*
    pApplicationInfo; uint32_t enabledLayerCount; const char*const* ppEnabledLayerNames; uint32_t
    enabledExtensionCount; const char*const* ppEnabledExtensionNames;
  `,
  VkPhysicalDeviceLimits: `
    uint32_t maxImageDimension1D, maxImageDimension2D, maxImageDimension3D, maxImageDimensionCube,
    maxImageArrayLayers, maxTexelBufferElements, maxUniformBufferRange, maxStorageBufferRange,
    maxPushConstantsSize, maxMemoryAllocationCount, maxSamplerAllocationCount; VkDeviceSize
    bufferImageGranularity, sparseAddressSpaceSize; uint32_t maxBoundDescriptorSets,
    maxPerStageDescriptorSamplers, maxPerStageDescriptorUniformBuffers,
    maxPerStageDescriptorStorageBuffers, maxPerStageDescriptorSampledImages,
    maxPerStageDescriptorStorageImages, maxPerStageDescriptorInputAttachments, maxPerStageResources,
    maxDescriptorSetSamplers, maxDescriptorSetUniformBuffers, maxDescriptorSetUniformBuffersDynamic,
    maxDescriptorSetStorageBuffers, maxDescriptorSetStorageBuffersDynamic,
    maxDescriptorSetSampledImages, maxDescriptorSetStorageImages, maxDescriptorSetInputAttachments,
    maxVertexInputAttributes, maxVertexInputBindings, maxVertexInputAttributeOffset,
    maxVertexInputBindingStride, maxVertexOutputComponents, maxTessellationGenerationLevel,
    maxTessellationPatchSize, maxTessellationControlPerVertexInputComponents,
    maxTessellationControlPerVertexOutputComponents, maxTessellationControlPerPatchOutputComponents,
    maxTessellationControlTotalOutputComponents, maxTessellationEvaluationInputComponents,
    maxTessellationEvaluationOutputComponents, maxGeometryShaderInvocations, maxGeometryInputComponents,
    maxGeometryOutputComponents, maxGeometryOutputVertices, maxGeometryTotalOutputComponents,
    maxFragmentInputComponents, maxFragmentOutputAttachments, maxFragmentDualSrcAttachments,
    maxFragmentCombinedOutputResources, maxComputeSharedMemorySize, maxComputeWorkGroupCount[3],
    maxComputeWorkGroupInvocations, maxComputeWorkGroupSize[3], subPixelPrecisionBits,
    subTexelPrecisionBits, mipmapPrecisionBits, maxDrawIndexedIndexValue, maxDrawIndirectCount; float
    maxSamplerLodBias, maxSamplerAnisotropy; uint32_t maxViewports, maxViewportDimensions[2]; float
    viewportBoundsRange[2]; uint32_t viewportSubPixelBits; size_t minMemoryMapAlignment; VkDeviceSize
    minTexelBufferOffsetAlignment, minUniformBufferOffsetAlignment, minStorageBufferOffsetAlignment;
    int32_t minTexelOffset; uint32_t maxTexelOffset; int32_t minTexelGatherOffset; uint32_t
    maxTexelGatherOffset; float minInterpolationOffset, maxInterpolationOffset; uint32_t
    subPixelInterpolationOffsetBits, maxFramebufferWidth, maxFramebufferHeight, maxFramebufferLayers;
    VkSampleCountFlags framebufferColorSampleCounts, framebufferDepthSampleCounts,
    framebufferStencilSampleCounts, framebufferNoAttachmentsSampleCounts; uint32_t maxColorAttachments;
    VkSampleCountFlags sampledImageColorSampleCounts, sampledImageIntegerSampleCounts,
    sampledImageDepthSampleCounts, sampledImageStencilSampleCounts, storageImageSampleCounts; uint32_t
    maxSampleMaskWords; VkBool32 timestampComputeAndGraphics; float timestampPeriod; uint32_t
    maxClipDistances, maxCullDistances, maxCombinedClipAndCullDistances, discreteQueuePriorities; float
    pointSizeRange[2], lineWidthRange[2], pointSizeGranularity, lineWidthGranularity; VkBool32
    strictLines, standardSampleLocations; VkDeviceSize optimalBufferCopyOffsetAlignment,
    optimalBufferCopyRowPitchAlignment, nonCoherentAtomSize;
  `,
  VkPhysicalDeviceSparseProperties: `
    VkBool32 residencyStandard2DBlockShape, residencyStandard2DMultisampleBlockShape,
    residencyStandard3DBlockShape, residencyAlignedMipSize, residencyNonResidentStrict;
  `,
  VkPhysicalDeviceProperties: `
    uint32_t apiVersion, driverVersion, vendorID, deviceID; VkPhysicalDeviceType deviceType; char
    deviceName[256]; uint8_t pipelineCacheUUID[16]; VkPhysicalDeviceLimits limits;
    VkPhysicalDeviceSparseProperties sparseProperties;
  `,
  VkPhysicalDeviceProperties2: `VkStructureType sType; void* pNext; VkPhysicalDeviceProperties properties;`,
  VkPhysicalDeviceSubgroupProperties: `
    VkStructureType sType; void* pNext; uint32_t subgroupSize; VkShaderStageFlags supportedStages;
    VkSubgroupFeatureFlags supportedOperations; VkBool32 quadOperationsInAllStages;
  `,
  VkPhysicalDeviceSubgroupSizeControlProperties: `
    VkStructureType sType; void* pNext; uint32_t minSubgroupSize, maxSubgroupSize,
    maxComputeWorkgroupSubgroups; VkShaderStageFlags requiredSubgroupSizeStages;
  `,
  VkPhysicalDeviceFeatures: `
    VkBool32 robustBufferAccess, fullDrawIndexUint32, imageCubeArray, independentBlend, geometryShader,
    tessellationShader, sampleRateShading, dualSrcBlend, logicOp, multiDrawIndirect,
    drawIndirectFirstInstance, depthClamp, depthBiasClamp, fillModeNonSolid, depthBounds, wideLines,
    largePoints, alphaToOne, multiViewport, samplerAnisotropy, textureCompressionETC2,
    textureCompressionASTC_LDR, textureCompressionBC, occlusionQueryPrecise, pipelineStatisticsQuery,
    vertexPipelineStoresAndAtomics, fragmentStoresAndAtomics, shaderTessellationAndGeometryPointSize,
    shaderImageGatherExtended, shaderStorageImageExtendedFormats, shaderStorageImageMultisample,
    shaderStorageImageReadWithoutFormat, shaderStorageImageWriteWithoutFormat,
    shaderUniformBufferArrayDynamicIndexing, shaderSampledImageArrayDynamicIndexing,
    shaderStorageBufferArrayDynamicIndexing, shaderStorageImageArrayDynamicIndexing, shaderClipDistance,
    shaderCullDistance, shaderFloat64, shaderInt64, shaderInt16, shaderResourceResidency,
    shaderResourceMinLod, sparseBinding, sparseResidencyBuffer, sparseResidencyImage2D,
    sparseResidencyImage3D, sparseResidency2Samples, sparseResidency4Samples, sparseResidency8Samples,
    sparseResidency16Samples, sparseResidencyAliased, variableMultisampleRate, inheritedQueries;
  `,
  VkPhysicalDeviceFeatures2: `VkStructureType sType; void* pNext; VkPhysicalDeviceFeatures features;`,
  VkPhysicalDeviceVulkan11Features: `
    VkStructureType sType; void* pNext; VkBool32 storageBuffer16BitAccess,
    uniformAndStorageBuffer16BitAccess, storagePushConstant16, storageInputOutput16, multiview,
    multiviewGeometryShader, multiviewTessellationShader, variablePointersStorageBuffer,
    variablePointers, protectedMemory, samplerYcbcrConversion, shaderDrawParameters;
  `,
  VkPhysicalDeviceVulkan12Features: `
    VkStructureType sType; void* pNext; VkBool32 samplerMirrorClampToEdge, drawIndirectCount,
    storageBuffer8BitAccess, uniformAndStorageBuffer8BitAccess, storagePushConstant8,
    shaderBufferInt64Atomics, shaderSharedInt64Atomics, shaderFloat16, shaderInt8, descriptorIndexing,
    shaderInputAttachmentArrayDynamicIndexing, shaderUniformTexelBufferArrayDynamicIndexing,
    shaderStorageTexelBufferArrayDynamicIndexing, shaderUniformBufferArrayNonUniformIndexing,
    shaderSampledImageArrayNonUniformIndexing, shaderStorageBufferArrayNonUniformIndexing,
    shaderStorageImageArrayNonUniformIndexing, shaderInputAttachmentArrayNonUniformIndexing,
    shaderUniformTexelBufferArrayNonUniformIndexing, shaderStorageTexelBufferArrayNonUniformIndexing,
    descriptorBindingUniformBufferUpdateAfterBind, descriptorBindingSampledImageUpdateAfterBind,
    descriptorBindingStorageImageUpdateAfterBind, descriptorBindingStorageBufferUpdateAfterBind,
    descriptorBindingUniformTexelBufferUpdateAfterBind,
    descriptorBindingStorageTexelBufferUpdateAfterBind, descriptorBindingUpdateUnusedWhilePending,
    descriptorBindingPartiallyBound, descriptorBindingVariableDescriptorCount, runtimeDescriptorArray,
    samplerFilterMinmax, scalarBlockLayout, imagelessFramebuffer, uniformBufferStandardLayout,
    shaderSubgroupExtendedTypes, separateDepthStencilLayouts, hostQueryReset, timelineSemaphore,
    bufferDeviceAddress, bufferDeviceAddressCaptureReplay, bufferDeviceAddressMultiDevice,
    vulkanMemoryModel, vulkanMemoryModelDeviceScope, vulkanMemoryModelAvailabilityVisibilityChains,
    shaderOutputViewportIndex, shaderOutputLayer, subgroupBroadcastDynamicId;
  `,
  VkExtent3D: `uint32_t width, height, depth;`,
  VkQueueFamilyProperties: `
    VkQueueFlags queueFlags; uint32_t queueCount, timestampValidBits; VkExtent3D
    minImageTransferGranularity;
  `,
  VkDeviceQueueCreateInfo: `
    VkStructureType sType; const void* pNext; VkDeviceQueueCreateFlags flags; uint32_t queueFamilyIndex,
    queueCount; const float* pQueuePriorities;
  `,
  VkDeviceCreateInfo: `
    VkStructureType sType; const void* pNext; VkDeviceCreateFlags flags; uint32_t queueCreateInfoCount;
    const VkDeviceQueueCreateInfo* pQueueCreateInfos; uint32_t enabledLayerCount; const char*const*
    ppEnabledLayerNames; uint32_t enabledExtensionCount; const char*const* ppEnabledExtensionNames;
    const VkPhysicalDeviceFeatures* pEnabledFeatures;
  `,
  VkMemoryType: `VkMemoryPropertyFlags propertyFlags; uint32_t heapIndex;`,
  VkMemoryHeap: `VkDeviceSize size; VkMemoryHeapFlags flags;`,
  VkPhysicalDeviceMemoryProperties: `
    uint32_t memoryTypeCount; VkMemoryType memoryTypes[32]; uint32_t memoryHeapCount; VkMemoryHeap
    memoryHeaps[16];
  `,
  VkBufferCreateInfo: `
    VkStructureType sType; const void* pNext; VkBufferCreateFlags flags; VkDeviceSize size;
    VkBufferUsageFlags usage; VkSharingMode sharingMode; uint32_t queueFamilyIndexCount; const uint32_t*
    pQueueFamilyIndices;
  `,
  VkMemoryRequirements: `VkDeviceSize size, alignment; uint32_t memoryTypeBits;`,
  VkMemoryAllocateInfo: `
    VkStructureType sType; const void* pNext; VkDeviceSize allocationSize; uint32_t memoryTypeIndex;
  `,
  VkShaderModuleCreateInfo: `
    VkStructureType sType; const void* pNext; VkShaderModuleCreateFlags flags; size_t codeSize; const
    uint32_t* pCode;
  `,
  VkDescriptorSetLayoutBinding: `
    uint32_t binding; VkDescriptorType descriptorType; uint32_t descriptorCount; VkShaderStageFlags
    stageFlags; const VkSampler* pImmutableSamplers;
  `,
  VkDescriptorSetLayoutCreateInfo: `
    VkStructureType sType; const void* pNext; VkDescriptorSetLayoutCreateFlags flags; uint32_t
    bindingCount; const VkDescriptorSetLayoutBinding* pBindings;
  `,
  VkPushConstantRange: `VkShaderStageFlags stageFlags; uint32_t offset, size;`,
  VkPipelineLayoutCreateInfo: `
    VkStructureType sType; const void* pNext; VkPipelineLayoutCreateFlags flags; uint32_t
    setLayoutCount; const VkDescriptorSetLayout* pSetLayouts; uint32_t pushConstantRangeCount; const
    VkPushConstantRange* pPushConstantRanges;
  `,
  VkPipelineShaderStageCreateInfo: `
    VkStructureType sType; const void* pNext; VkPipelineShaderStageCreateFlags flags;
    VkShaderStageFlagBits stage; VkShaderModule module; const char* pName; const VkSpecializationInfo*
    pSpecializationInfo;
  `,
  VkComputePipelineCreateInfo: `
    VkStructureType sType; const void* pNext; VkPipelineCreateFlags flags;
    VkPipelineShaderStageCreateInfo stage; VkPipelineLayout layout; VkPipeline basePipelineHandle;
    int32_t basePipelineIndex;
  `,
  VkDescriptorPoolSize: `VkDescriptorType type; uint32_t descriptorCount;`,
  VkDescriptorPoolCreateInfo: `
    VkStructureType sType; const void* pNext; VkDescriptorPoolCreateFlags flags; uint32_t maxSets,
    poolSizeCount; const VkDescriptorPoolSize* pPoolSizes;
  `,
  VkDescriptorSetAllocateInfo: `
    VkStructureType sType; const void* pNext; VkDescriptorPool descriptorPool; uint32_t
    descriptorSetCount; const VkDescriptorSetLayout* pSetLayouts;
  `,
  VkDescriptorBufferInfo: `VkBuffer buffer; VkDeviceSize offset, range;`,
  VkWriteDescriptorSet: `
    VkStructureType sType; const void* pNext; VkDescriptorSet dstSet; uint32_t dstBinding,
    dstArrayElement, descriptorCount; VkDescriptorType descriptorType; const VkDescriptorImageInfo*
    pImageInfo; const VkDescriptorBufferInfo* pBufferInfo; const VkBufferView* pTexelBufferView;
  `,
  VkCommandPoolCreateInfo: `
    VkStructureType sType; const void* pNext; VkCommandPoolCreateFlags flags; uint32_t queueFamilyIndex;
  `,
  VkCommandBufferAllocateInfo: `
    VkStructureType sType; const void* pNext; VkCommandPool commandPool; VkCommandBufferLevel level;
    uint32_t commandBufferCount;
  `,
  VkCommandBufferBeginInfo: `
    VkStructureType sType; const void* pNext; VkCommandBufferUsageFlags flags; const
    VkCommandBufferInheritanceInfo* pInheritanceInfo;
  `,
  VkMemoryBarrier: `VkStructureType sType; const void* pNext; VkAccessFlags srcAccessMask, dstAccessMask;`,
  VkBufferCopy: `VkDeviceSize srcOffset, dstOffset, size;`,
  VkSubmitInfo: `
    VkStructureType sType; const void* pNext; uint32_t waitSemaphoreCount; const VkSemaphore*
    pWaitSemaphores; const VkPipelineStageFlags* pWaitDstStageMask; uint32_t commandBufferCount; const
    VkCommandBuffer* pCommandBuffers; uint32_t signalSemaphoreCount; const VkSemaphore*
    pSignalSemaphores;
  `,
  VkFenceCreateInfo: `VkStructureType sType; const void* pNext; VkFenceCreateFlags flags;`,
  VkQueryPoolCreateInfo: `
    VkStructureType sType; const void* pNext; VkQueryPoolCreateFlags flags; VkQueryType queryType;
    uint32_t queryCount; VkQueryPipelineStatisticFlags pipelineStatistics;
  `,
} as const;

export type VkStructName = keyof typeof DECLS;

// Typedefs that appear in the declarations above.
const SCALAR: Record<string, string> = {
  VkBool32: "uint32_t",
  VkDeviceSize: "uint64_t",
  char: "char",
  float: "float",
  int32_t: "int32_t",
  size_t: "size_t",
  uint32_t: "uint32_t",
  uint8_t: "uint8_t",
};
const ENUMS = new Set([
  "VkStructureType",
  "VkPhysicalDeviceType",
  "VkDescriptorType",
  "VkSharingMode",
  "VkCommandBufferLevel",
  "VkQueryType",
  "VkShaderStageFlagBits",
]);
const HANDLES = new Set([
  "VkBuffer",
  "VkCommandPool",
  "VkDescriptorPool",
  "VkDescriptorSet",
  "VkPipeline",
  "VkPipelineLayout",
  "VkShaderModule",
]);

let structs: Record<VkStructName, KoffiType> | undefined;

function memberType(ctype: string, defined: Map<string, KoffiType>): string | KoffiType {
  if (ctype.includes("*") || HANDLES.has(ctype)) return "void *";
  if (ctype in SCALAR) return SCALAR[ctype]!;
  if (ENUMS.has(ctype)) return "int32_t";
  if (ctype.endsWith("Flags")) return "uint32_t";
  const s = defined.get(ctype);
  if (!s) throw new Error(`vulkan structs: unknown C type "${ctype}" (declare it before use)`);
  return s;
}

// Parses "T a, b[3]; U c;" into koffi member definitions.
function parse(name: string, body: string, defined: Map<string, KoffiType>): Record<string, unknown> {
  const members: Record<string, unknown> = {};
  for (const decl of body
    .split(";")
    .map((d) => d.trim().replace(/\s+/g, " "))
    .filter(Boolean)) {
    const m = /^(.*?[\s*])(\w+(?:\[\d+\])?(?:, \w+(?:\[\d+\])?)*)$/.exec(decl);
    if (!m) throw new Error(`vulkan structs: cannot parse "${decl}" in ${name}`);
    const base = memberType(m[1]!.trim(), defined);
    for (const d of m[2]!.split(", ")) {
      const arr = /^(\w+)\[(\d+)\]$/.exec(d);
      if (!arr) members[d] = base;
      else members[arr[1]!] = koffi.array(base, Number(arr[2]), base === "char" ? "String" : "Array");
    }
  }
  return members;
}

/** Defines (once per process: koffi's type registry is global) and returns the struct types. */
export function vkStructs(): Record<VkStructName, KoffiType> {
  if (structs) return structs;
  const defined = new Map<string, KoffiType>();
  for (const [name, body] of Object.entries(DECLS)) {
    let t: KoffiType;
    try {
      t = koffi.resolve(name); // already registered by an earlier copy of this module
    } catch {
      t = koffi.struct(name, parse(name, body, defined) as Record<string, string>);
    }
    defined.set(name, t);
  }
  structs = Object.fromEntries(defined) as Record<VkStructName, KoffiType>;
  return structs;
}
