// The four hand-written kernels of test/backends/spirv/fixtures: assembled, validated with
// spirv-val, run on the machine's Vulkan device (lavapipe here) and checked against JS.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assemble, validate } from "../../../backends/spirv/tools.ts";
import { createVulkanRuntime, type VulkanRuntime } from "../../../backends/vulkan/runtime.ts";
import { fixture, type FixtureName } from "../spirv/fixtures.ts";
import { fromHalfBits, toHalfBits } from "./f16.ts";

let rt: VulkanRuntime;
beforeAll(() => {
  rt = createVulkanRuntime();
});
afterAll(() => rt?.destroy());

function kernel(name: FixtureName) {
  const spirv = assemble(fixture(name));
  validate(spirv, "vulkan1.2");
  return spirv;
}
const floats = (b: Uint8Array) => new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);

describe(`hand-written SPIR-V kernels on Vulkan`, () => {
  it("(a) y = 2x on 1000 floats, length in a push constant, bounds-checked", () => {
    const n = 1000;
    const p = rt.pipeline({
      spirv: kernel("double"),
      bindings: 2,
      pushConstantBytes: 4,
      localSize: [64, 1, 1],
    });
    const x = Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 1000);
    const groups = Math.ceil(n / 64); // 1024 invocations: the last 24 must do nothing
    const xb = rt.buffer(x);
    const yb = rt.buffer(new Float32Array(groups * 64).fill(-7));
    rt.run([{ pipeline: p, buffers: [xb, yb], push: new Uint32Array([n]), groups }]);
    const y = floats(rt.download(yb));
    expect(Array.from(y.subarray(0, n))).toEqual(Array.from(x, (v) => Math.fround(2 * v)));
    expect(Array.from(y.subarray(n))).toEqual(new Array(groups * 64 - n).fill(-7));
  });

  it("(b) workgroup-memory tree reduction over 256-element rows", () => {
    const rows = 12;
    const p = rt.pipeline({ spirv: kernel("tree-reduce"), localSize: [256, 1, 1] });
    expect(p.bindings).toBe(2); // inferred from the module's Binding decorations
    // Small integers: every partial sum is exact, whatever the order of additions.
    const x = Float32Array.from({ length: rows * 256 }, (_, i) => ((i * 7919) % 23) - 11);
    const xb = rt.buffer(x);
    const yb = rt.buffer(rows * 4);
    rt.run([{ pipeline: p, buffers: [xb, yb], groups: rows }]);
    const expected = Array.from({ length: rows }, (_, r) =>
      x.subarray(r * 256, (r + 1) * 256).reduce((a, b) => a + b),
    );
    expect(new Set(expected).size).toBeGreaterThan(1);
    expect(Array.from(floats(rt.download(yb)))).toEqual(expected);
  });

  it("(c) subgroup reduction (OpGroupNonUniformFAdd) then workgroup memory", () => {
    expect(rt.device.subgroup.operations).toContain("arithmetic");
    const rows = 16;
    const p = rt.pipeline({ spirv: kernel("subgroup-reduce"), bindings: 2, localSize: [64, 1, 1] });
    const x = Float32Array.from(
      { length: rows * 64 },
      (_, i) => ((i * 31) % 17) - 8 + (i % 64 === 5 ? 1000 : 0),
    );
    const xb = rt.buffer(x);
    const yb = rt.buffer(rows * 4);
    rt.run([{ pipeline: p, buffers: [xb, yb], groups: [rows, 1, 1] }]);
    const expected = Array.from({ length: rows }, (_, r) =>
      x.subarray(r * 64, (r + 1) * 64).reduce((a, b) => a + b),
    );
    expect(Array.from(floats(rt.download(yb)))).toEqual(expected);
  });

  it("(d) f16 load, f16 arithmetic, f16 and f32 stores", () => {
    expect(rt.device.features.shaderFloat16 && rt.device.features.storageBuffer16BitAccess).toBe(true);
    const n = 77; // not a multiple of the workgroup size (32)
    const p = rt.pipeline({ spirv: kernel("f16"), bindings: 3, pushConstantBytes: 4, localSize: [32, 1, 1] });
    // Quarters in [-9.5, 9.5]: x * 1.5 + 0.25 is exact in f16, so fused or not, the bits are fixed.
    const xs = Array.from({ length: n }, (_, i) => (i - 38) / 4);
    const xb = rt.buffer(Uint16Array.from(xs, toHalfBits));
    const yb = rt.buffer(n * 2);
    const zb = rt.buffer(n * 4);
    rt.run([{ pipeline: p, buffers: [xb, yb, zb], push: new Uint32Array([n]), groups: Math.ceil(n / 32) }]);
    const y = new Uint16Array(rt.download(yb).buffer);
    expect(Array.from(y)).toEqual(xs.map((v) => toHalfBits(v * 1.5 + 0.25)));
    expect(Array.from(y, fromHalfBits)).toEqual(xs.map((v) => v * 1.5 + 0.25));
    expect(Array.from(floats(rt.download(zb)))).toEqual(xs);
  });

  it("(e) u8 storage widened to f32, three push-constant members", () => {
    expect(rt.device.features.storageBuffer8BitAccess).toBe(true);
    const n = 300;
    const p = rt.pipeline({ spirv: kernel("u8-scale"), bindings: 2, pushConstantBytes: 12 });
    const x = Uint8Array.from({ length: n }, (_, i) => (i * 37) % 256);
    const push = new DataView(new ArrayBuffer(12));
    push.setUint32(0, n, true);
    push.setFloat32(4, 0.5, true);
    push.setFloat32(8, -3, true);
    const xb = rt.buffer(x);
    const yb = rt.buffer(n * 4);
    rt.run([{ pipeline: p, buffers: [xb, yb], push, groups: Math.ceil(n / 64) }]);
    expect(Array.from(floats(rt.download(yb)))).toEqual(Array.from(x, (v) => v * 0.5 - 3));
  });
});
