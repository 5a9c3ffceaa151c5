// The runtime's own behaviour: device description and choice, recordings that are resubmitted,
// barriers, timestamps, the staging path, and the errors a caller (the code generator) can cause.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assemble } from "../../../backends/spirv/tools.ts";
import { chooseDevice } from "../../../backends/vulkan/device.ts";
import {
  createVulkanRuntime,
  listVulkanDevices,
  VulkanUnavailableError,
  type Pipeline,
  type VulkanRuntime,
} from "../../../backends/vulkan/runtime.ts";
import { fixture } from "../spirv/fixtures.ts";

let rt: VulkanRuntime;
let double: Pipeline;
beforeAll(() => {
  rt = createVulkanRuntime();
  double = rt.pipeline({ spirv: assemble(fixture("double")), bindings: 2, pushConstantBytes: 4 });
});
afterAll(() => rt?.destroy());

const floats = (b: Uint8Array) => Array.from(new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4));
const N = 300;
const len = new Uint32Array([N]);
const groups = Math.ceil(N / 64);

describe("device", () => {
  it("describes the chosen device", () => {
    const d = rt.device;
    expect(d.name.length).toBeGreaterThan(0);
    expect(["discrete", "integrated", "virtual", "cpu", "other"]).toContain(d.type);
    expect(d.apiVersion).toMatch(/^1\.[23]\.\d+$/);
    expect(d.limits.maxComputeSharedMemorySize).toBeGreaterThanOrEqual(16384); // Vulkan's minimum
    expect(d.limits.maxComputeWorkGroupInvocations).toBeGreaterThanOrEqual(128);
    expect(d.limits.maxPushConstantsSize).toBeGreaterThanOrEqual(128);
    expect(Math.log2(d.subgroup.size) % 1).toBe(0);
    expect(d.subgroup.minSize).toBeLessThanOrEqual(d.subgroup.size);
    expect(d.subgroup.operations).toContain("basic");
    expect(d.timestamps).toBe(true);
    expect(typeof d.features.shaderFloat16).toBe("boolean");
    expect(listVulkanDevices().map((x) => x.name)).toContain(d.name);
  });

  it("is chosen by index, name, or $TKC_VULKAN_DEVICE, and a miss lists the devices", () => {
    const all = listVulkanDevices();
    expect(chooseDevice(all, String(rt.device.index)).name).toBe(rt.device.name);
    expect(chooseDevice(all, rt.device.name.slice(0, 4).toUpperCase()).name).toBe(rt.device.name);
    expect(() => chooseDevice(all, "no-such-gpu")).toThrow(VulkanUnavailableError);
    expect(() => chooseDevice(all, "no-such-gpu")).toThrow(
      `no Vulkan device matches "no-such-gpu"; devices: #0`,
    );
    expect(() => chooseDevice([], undefined)).toThrow(/reports no physical device.*mesa-vulkan-drivers/);
    // Preference: a discrete GPU before a CPU driver, whatever the enumeration order.
    const cpu = { ...all[0]!, index: 0, type: "cpu" as const, name: "cpu" };
    const gpu = { ...all[0]!, index: 1, type: "discrete" as const, name: "gpu" };
    expect(chooseDevice([cpu, gpu], "").name).toBe("gpu");
    expect(chooseDevice([cpu, { ...gpu, usable: "device has no compute queue" }], "").name).toBe("cpu");
    const saved = process.env.TKC_VULKAN_DEVICE;
    process.env.TKC_VULKAN_DEVICE = "no-such-gpu";
    try {
      expect(() => createVulkanRuntime()).toThrow(/no Vulkan device matches "no-such-gpu"/);
    } finally {
      if (saved === undefined) delete process.env.TKC_VULKAN_DEVICE;
      else process.env.TKC_VULKAN_DEVICE = saved;
    }
  });
});

describe("recordings", () => {
  it("3 dependent dispatches, recorded once, submitted twice", () => {
    const x0 = Float32Array.from({ length: N }, (_, i) => i - 100);
    const [a, b, c] = [rt.buffer(x0), rt.buffer(N * 4), rt.buffer(N * 4)];
    const rec = rt.record([
      { pipeline: double, buffers: [a, b], push: len, groups }, // b = 2a
      { pipeline: double, buffers: [b, c], push: len, groups }, // c = 2b (reads what the first wrote)
      { pipeline: double, buffers: [c, a], push: len, groups }, // a = 2c (overwrites what the first read)
    ]);
    expect(rec.barriers).toBe(2);
    rt.submit(rec);
    expect(floats(rt.download(a))).toEqual(Array.from(x0, (v) => 8 * v));
    rt.submit(rec);
    expect(floats(rt.download(b))).toEqual(Array.from(x0, (v) => 16 * v));
    expect(floats(rt.download(c))).toEqual(Array.from(x0, (v) => 32 * v));
    expect(floats(rt.download(a))).toEqual(Array.from(x0, (v) => 64 * v));
    rt.freeRecording(rec);
    expect(() => rt.submit(rec)).toThrow(/recording was freed/);
    [a, b, c].forEach((x) => rt.free(x));
  });

  it("with dynamic offsets, dispatches over one buffer's slices share a descriptor set", () => {
    const dyn = createVulkanRuntime({ dynamicOffsets: true });
    try {
      const p = dyn.pipeline({ spirv: assemble(fixture("double")), bindings: 2, pushConstantBytes: 4 });
      expect(p.dynamic).toBe(dyn.device.limits.maxDescriptorSetStorageBuffersDynamic >= 2);
      // Four slices of N floats, 256 bytes apart at least (every device's offset alignment).
      const stride = Math.ceil((N * 4) / 256) * 256;
      const x0 = Float32Array.from({ length: (4 * stride) / 4 }, (_, i) => i % 1000);
      const [x, y] = [dyn.buffer(x0), dyn.buffer(4 * stride)];
      const slice = (k: number) => ({
        pipeline: p,
        buffers: [x, y],
        offsets: [k * stride, k * stride],
        ranges: [N * 4, N * 4],
        push: len,
        groups,
      });
      const before = dyn.descriptorSets;
      const rec = dyn.record([0, 1, 2, 3].map(slice));
      expect(dyn.descriptorSets - before).toBe(p.dynamic ? 1 : 4);
      dyn.submit(rec);
      const got = floats(dyn.download(y));
      for (let k = 0; k < 4; k++)
        expect(got.slice((k * stride) / 4, (k * stride) / 4 + N)).toEqual(
          Array.from(x0.subarray((k * stride) / 4, (k * stride) / 4 + N), (v) => 2 * v),
        );
      dyn.freeRecording(rec);
    } finally {
      dyn.destroy();
    }
  });

  it("places no barrier between independent dispatches unless asked", () => {
    const bufs = Array.from({ length: 4 }, () => rt.buffer(N * 4));
    const indep = rt.record([
      { pipeline: double, buffers: [bufs[0]!, bufs[1]!], push: len, groups },
      { pipeline: double, buffers: [bufs[2]!, bufs[3]!], push: len, groups },
    ]);
    expect(indep.barriers).toBe(0);
    const forced = rt.record([
      { pipeline: double, buffers: [bufs[0]!, bufs[1]!], push: len, groups },
      { pipeline: double, buffers: [bufs[2]!, bufs[3]!], push: len, groups, barrier: true },
    ]);
    expect(forced.barriers).toBe(1);
    rt.freeRecording(indep);
    rt.freeRecording(forced);
  });

  it("timestamp queries increase and time() reports GPU nanoseconds", () => {
    const [a, b] = [rt.buffer(new Float32Array(N).fill(1)), rt.buffer(N * 4)];
    const rec = rt.record(
      [0, 1, 2].map((i) => ({ pipeline: double, buffers: i % 2 ? [b, a] : [a, b], push: len, groups })),
      { timestamps: true },
    );
    const r = rt.submit(rec);
    expect(r.ticks).toHaveLength(4);
    for (let i = 1; i < 4; i++) expect(r.ticks![i]! >= r.ticks![i - 1]!).toBe(true);
    expect(r.ticks![3]! > r.ticks![0]!).toBe(true);
    expect(r.gpuNs).toBeGreaterThan(0);
    expect(r.dispatchNs).toHaveLength(3);
    const t = rt.time(rec, { repeats: 3 });
    expect(t.gpuNs).toHaveLength(3);
    expect(t.gpuNs).toContain(t.medianGpuNs);
    // Each submission does b = 2a, a = 2b, b = 2a: a grows 4x; 5 submissions (1 + warmup + 3).
    expect(floats(rt.download(a))).toEqual(new Array(N).fill(4 ** 5));
    expect(floats(rt.download(b))).toEqual(new Array(N).fill(2 * 4 ** 5));
    const plain = rt.record([{ pipeline: double, buffers: [a, b], push: len, groups }]);
    expect(() => rt.time(plain)).toThrow(/needs a recording made with \{ timestamps: true \}/);
  });
});

describe("buffers", () => {
  it("upload and download at offsets, and refuse ranges outside the buffer", () => {
    const b = rt.buffer(new Uint8Array(16)); // rt.buffer(16) would leave the contents undefined
    rt.upload(b, new Uint8Array([1, 2, 3, 4]), 6);
    expect(Array.from(rt.download(b, 6, 5))).toEqual([0, 1, 2, 3, 4, 0]);
    expect(() => rt.upload(b, new Uint8Array(4), 13)).toThrow(
      /range \[13, 17\) is outside buffer #\d+ of 16 bytes/,
    );
    expect(() => rt.download(b, 17)).toThrow(/outside buffer/);
    expect(() => rt.buffer(0)).toThrow(/size must be a positive integer, got 0/);
    expect(() => rt.buffer(rt.device.limits.maxStorageBufferRange + 1)).toThrow(
      /exceeds maxStorageBufferRange/,
    );
    rt.free(b);
    expect(() => rt.download(b)).toThrow(/buffer #\d+ was freed/);
  });

  it("go through a chunked staging buffer where device memory is not mapped", () => {
    const srt = createVulkanRuntime({ forceStaging: true, stagingBytes: 1000 });
    try {
      const data = Uint8Array.from({ length: 4100 }, (_, i) => (i * 13) % 251);
      const b = srt.buffer(data); // 5 chunks of at most 1000 bytes
      expect(b.mapped).toBeNull();
      expect(Buffer.from(srt.download(b)).equals(Buffer.from(data))).toBe(true);
      expect(Array.from(srt.download(b, 3, 2999))).toEqual(Array.from(data.subarray(2999, 3002)));
      const p = srt.pipeline({ spirv: assemble(fixture("double")), bindings: 2, pushConstantBytes: 4 });
      const y = srt.buffer(N * 4);
      const x = srt.buffer(Float32Array.from({ length: N }, (_, i) => i));
      srt.run([{ pipeline: p, buffers: [x, y], push: len, groups }]);
      expect(floats(srt.download(y))).toEqual(Array.from({ length: N }, (_, i) => 2 * i));
    } finally {
      srt.destroy();
    }
    expect(() => srt.buffer(4)).toThrow(/runtime was destroyed/);
  });
});

describe("errors a code generator can cause", () => {
  const spirv = () => assemble(fixture("double"));

  it("pipeline options that contradict the module", () => {
    expect(() => rt.pipeline({ spirv: spirv(), entry: "go", pushConstantBytes: 4 })).toThrow(
      `Vulkan pipeline "go": no entry point "go" (module has: main)`,
    );
    expect(() => rt.pipeline({ spirv: spirv(), bindings: 1, pushConstantBytes: 4 })).toThrow(
      /uses binding 1 but bindings is 1/,
    );
    expect(() => rt.pipeline({ spirv: spirv(), bindings: 2 })).toThrow(
      /declares a PushConstant block but pushConstantBytes is 0/,
    );
    expect(() => rt.pipeline({ spirv: spirv(), pushConstantBytes: 6 })).toThrow(/multiple of 4, got 6/);
    expect(rt.pipeline({ spirv: spirv(), bindings: 2, pushConstantBytes: 4 })).toBe(double); // cached
    expect(() =>
      rt.pipeline({ spirv: spirv(), bindings: 2, pushConstantBytes: 4, localSize: [32, 1, 1] }),
    ).toThrow(/module's LocalSize is 64x1x1, caller expects 32x1x1/);
    expect(() => rt.pipeline({ spirv: spirv(), pushConstantBytes: 4, localSize: [32, 1, 1] })).toThrow(
      /module's LocalSize is 64x1x1, caller expects 32x1x1/,
    );
    expect(() => rt.pipeline({ spirv: assemble(fixture("tree-reduce")), pushConstantBytes: 4 })).toThrow(
      /pushConstantBytes is 4 but the module has no PushConstant block/,
    );
    expect(() => rt.pipeline({ spirv: new Uint32Array(8) })).toThrow(/not a SPIR-V module/);
  });

  it("a capability the device lacks is named before the driver sees it", () => {
    const d = rt.device;
    const missing = ["clustered", "quad", "shuffle"].find((op) => !d.subgroup.operations.includes(op));
    if (!missing) return; // every class supported: nothing to refuse on this device
    const cap = {
      clustered: "GroupNonUniformClustered",
      quad: "GroupNonUniformQuad",
      shuffle: "GroupNonUniformShuffle",
    }[missing];
    const text = fixture("double").replace("OpCapability Shader", `OpCapability Shader\nOpCapability ${cap}`);
    expect(() => rt.pipeline({ spirv: assemble(text), pushConstantBytes: 4 })).toThrow(
      `capability ${cap} needs subgroup operations "${missing}", which ${d.name} lacks`,
    );
  });

  it("dispatches that do not fit their pipeline", () => {
    const [a, b] = [rt.buffer(N * 4), rt.buffer(N * 4)];
    expect(() => rt.record([{ pipeline: double, buffers: [a], push: len, groups }])).toThrow(
      /dispatch 0 of "main": 1 buffers given, pipeline has 2 bindings/,
    );
    expect(() => rt.record([{ pipeline: double, buffers: [a, b], groups }])).toThrow(
      /0 push-constant bytes given, pipeline takes 4/,
    );
    expect(() => rt.record([{ pipeline: double, buffers: [a, b], push: len, groups: [1, 2.5] }])).toThrow(
      /workgroup count \[1,2.5\] is invalid/,
    );
    expect(() => rt.record([{ pipeline: double, buffers: [a, b], push: len, groups: 1e9 }])).toThrow(
      /is invalid \(each 0\.\.\d+/,
    );
    rt.free(b);
    expect(() => rt.record([{ pipeline: double, buffers: [a, b], push: len, groups }])).toThrow(
      /buffer #\d+ was freed/,
    );
  });
});

describe("Vulkan unavailable", () => {
  it("a missing loader library is one clear VulkanUnavailableError", () => {
    const run = () => createVulkanRuntime({ library: "libvulkan-does-not-exist.so.1" });
    expect(run).toThrow(VulkanUnavailableError);
    expect(run).toThrow(
      /^Vulkan is not available: could not load the Vulkan loader "libvulkan-does-not-exist.so.1" \(.*\)\. Install the loader and a driver, e.g. apt-get install libvulkan1 mesa-vulkan-drivers/,
    );
    expect(() => listVulkanDevices("libvulkan-does-not-exist.so.1")).toThrow(VulkanUnavailableError);
  });

  it("a loader with no driver is one clear VulkanUnavailableError", () => {
    const saved = process.env.VK_ICD_FILENAMES;
    process.env.VK_ICD_FILENAMES = "/nonexistent/icd.json"; // the loader reads it at instance creation
    try {
      expect(() => createVulkanRuntime()).toThrow(VulkanUnavailableError);
      expect(() => createVulkanRuntime()).toThrow(/found no driver|no physical device/);
    } finally {
      if (saved === undefined) delete process.env.VK_ICD_FILENAMES;
      else process.env.VK_ICD_FILENAMES = saved;
    }
  });
});
