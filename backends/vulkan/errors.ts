// Errors of the Vulkan runtime. VulkanUnavailableError is the one a caller catches to fall back
// to another backend (or to skip tests): it means "no loader or no usable device here", never
// "your kernel is wrong".

export class VulkanUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "VulkanUnavailableError";
  }
}

const RESULT_NAMES: Record<number, string> = {
  1: "VK_NOT_READY",
  2: "VK_TIMEOUT",
  5: "VK_INCOMPLETE",
  [-1]: "VK_ERROR_OUT_OF_HOST_MEMORY",
  [-2]: "VK_ERROR_OUT_OF_DEVICE_MEMORY",
  [-3]: "VK_ERROR_INITIALIZATION_FAILED",
  [-4]: "VK_ERROR_DEVICE_LOST",
  [-5]: "VK_ERROR_MEMORY_MAP_FAILED",
  [-6]: "VK_ERROR_LAYER_NOT_PRESENT",
  [-7]: "VK_ERROR_EXTENSION_NOT_PRESENT",
  [-8]: "VK_ERROR_FEATURE_NOT_PRESENT",
  [-9]: "VK_ERROR_INCOMPATIBLE_DRIVER",
  [-10]: "VK_ERROR_TOO_MANY_OBJECTS",
  [-13]: "VK_ERROR_UNKNOWN",
  [-1000069000]: "VK_ERROR_OUT_OF_POOL_MEMORY",
  [-1000012000]: "VK_ERROR_INVALID_SHADER_NV",
};

/** A Vulkan call returned an error code. */
export class VulkanError extends Error {
  constructor(
    readonly call: string,
    readonly result: number,
    context?: string,
  ) {
    super(
      `${call} failed with ${RESULT_NAMES[result] ?? `VkResult ${result}`}${context ? ` (${context})` : ""}`,
    );
    this.name = "VulkanError";
  }
}

/** Throws VulkanError unless `result` is VK_SUCCESS (0). */
export function check(call: string, result: number, context?: string): void {
  if (result !== 0) throw new VulkanError(call, result, context);
}
