import { describe, expect, it } from "vitest";
import { lowerKernel } from "../../lower/frontend/lower.ts";
import { printFunc } from "../../lower/ir/printer.ts";
import { flattenPass } from "../../lower/passes/flatten.ts";
import { launchPass } from "../../lower/passes/launch.ts";
import { lowerStages, lowerToDevice } from "../../lower/passes/pipeline.ts";
import { TARGETS, type Target } from "../../lower/passes/target.ts";
import { Schedule } from "../../lower/schedule/index.ts";
import { expectDeviceMatches, matmulGpu, matmulRef } from "./helpers.ts";
import { bigTile, rmsNormRows } from "./kernels.ts";

/** The matmul with As's rows padded to 9 floats (storageAlign: stride 1 mod 8, against bank conflicts). */
function paddedMatmul(): Schedule {
  const s = matmulGpu();
  s.storageAlign("As", 0, 8, 1);
  return s;
}

describe("flatten", () => {
  it("gives every access one row-major offset, honouring padded rows, and drops blocks (golden)", () => {
    const f = lowerStages(paddedMatmul().func, TARGETS.sm_90, "flatten").at(-1)!.func;
    const text = printFunc(f);
    expect(text.split("\n").slice(0, 8).join("\n")).toMatchInlineSnapshot(`
      "// launch: grid [idiv(n + 8 - 1, 8), idiv(m + 8 - 1, 8), 1], block [8, 8, 1], warp 32, shared 544 bytes
      function matmulTiled(a: Tensor<f32, [m, k]>, b: Tensor<f32, [k, n]>, c: Tensor<f32, [m, n]>) {
        const by = block_id(1);
        const bx = block_id(0);
        const As = shared(f32, [72]);
        const Bs = shared(f32, [64]);
        const acc = local(f32, [1]);
        const ty = thread_id(1);"
    `);
    expect(text).toContain("As[ty1 * 9 + tx1] = select(");
    expect(text).toContain("a[(by * 8 + ty1) * k + (ko * 8 + tx1)]");
    expect(text).not.toMatch(/block "/);
    expect(f.launch!.sharedBytes).toBe(9 * 8 * 4 + 8 * 8 * 4);
  });

  it("computes the same as the plain kernel", () => {
    expectDeviceMatches(
      matmulRef(),
      lowerToDevice(paddedMatmul().func, TARGETS.sm_90),
      { m: 9, n: 13, k: 17 },
      { tol: 1e-6 },
    );
  });

  it("refuses shared memory over the target's limit, with the bytes of each buffer and the limit", () => {
    const f = launchPass(lowerKernel(bigTile), TARGETS.sm_90);
    const static48: Target = { ...TARGETS.sm_90, name: "static48", maxSharedMemoryBytes: 48 * 1024 };
    expect(() => flattenPass(f, static48)).toThrow(
      "tkc lower: flatten: the block allocates 65536 bytes of shared memory (t 65536), over static48's limit of 49152 bytes per block",
    );
    // NVIDIA's opt-in limits (over 48 KB the renderer uses dynamic shared memory) and AMD's LDS.
    for (const t of [TARGETS.sm_90, TARGETS.sm_80, TARGETS.gfx942])
      expect(flattenPass(f, t).launch!.sharedBytes).toBe(65536);
    expect(() => flattenPass(f, TARGETS.vulkan)).toThrow(/65536 bytes .* over vulkan's limit of 32768 bytes/);
  });

  it("refuses device allocations of symbolic size (the CPU emulation allows them)", () => {
    const s = Schedule.of(rmsNormRows);
    const [ko] = s.split("k", [null, 4]);
    s.rfactor(ko!); // ss_rf is indexed by ko, whose extent depends on n
    const f = launchPass(s.func, TARGETS.sm_90);
    expect(() => flattenPass(f, TARGETS.sm_90)).toThrow(
      "tkc lower: flatten: local buffer ss_rf has the symbolic size floordiv(n + 3, 4); device allocations need constant sizes",
    );
    expect(() => flattenPass(f, TARGETS.cpu)).not.toThrow();
  });
});
