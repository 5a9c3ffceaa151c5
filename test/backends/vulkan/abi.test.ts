// The koffi struct layouts in backends/vulkan/structs.ts must match C's exactly, or Vulkan reads
// garbage. fixtures/vk-abi.json holds gcc's sizeof/offsetof for every member we declare
// (regenerate with fixtures/gen-abi.sh where gcc and libvulkan-dev are installed).
import koffi from "koffi";
import { describe, expect, it } from "vitest";
import { vkStructs, type VkStructName } from "../../../backends/vulkan/structs.ts";
import abi from "./fixtures/vk-abi.json" with { type: "json" };

const expected = abi as Record<string, { sizeof: number; offsets: Record<string, number> }>;

describe("Vulkan struct ABI", () => {
  const structs = vkStructs();

  it("declares exactly the structs the C listing covers", () => {
    expect(Object.keys(structs).sort()).toEqual(Object.keys(expected).sort());
    // The big ones, as a reader's sanity check of the JSON itself.
    expect(expected.VkPhysicalDeviceProperties!.sizeof).toBe(824);
    expect(expected.VkPhysicalDeviceLimits!.sizeof).toBe(504);
    expect(expected.VkPhysicalDeviceVulkan12Features!.sizeof).toBe(208);
  });

  it.each(Object.keys(expected))("%s matches C's sizeof and offsetof", (name) => {
    const t = structs[name as VkStructName];
    const e = expected[name]!;
    const got = Object.fromEntries(Object.keys(e.offsets).map((m) => [m, koffi.offsetof(t, m)]));
    expect({ sizeof: koffi.sizeof(t), offsets: got }).toEqual(e);
    // No member that C lacks (sizeof alone would miss a reordering).
    expect(Object.keys(koffi.introspect(t).members ?? {})).toEqual(Object.keys(e.offsets));
  });
});
