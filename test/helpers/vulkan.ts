/** The tests' access to the machine's Vulkan device, where there is one. */
import { afterAll } from "vitest";
import {
  createVulkanRuntime,
  VulkanUnavailableError,
  type VulkanRuntime,
} from "../../backends/vulkan/runtime.ts";

/**
 * A Vulkan runtime destroyed after the file's tests, or undefined (with a warning naming the tests
 * skipped) where the machine has no Vulkan device; any other failure is thrown.
 */
export function optionalVulkanRuntime(skipped: string): VulkanRuntime | undefined {
  let rt: VulkanRuntime | undefined;
  try {
    rt = createVulkanRuntime();
  } catch (e) {
    if (!(e instanceof VulkanUnavailableError)) throw e;
    console.warn(`skipping ${skipped}: no Vulkan device (${e.message})`);
    return undefined;
  }
  afterAll(() => rt?.destroy());
  return rt;
}
