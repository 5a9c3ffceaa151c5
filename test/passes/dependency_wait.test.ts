/**
 * The wait for the previous grid (programmatic dependent launch) and L2 prefetches: on CUDA the
 * wait follows a kernel's leading prefetches and precedes its first access to global memory; other
 * targets get no wait; every backend computes what the kernel computes without them.
 */
import { describe, expect, it } from "vitest";
import { lowerKernel } from "../../lower/frontend/lower.ts";
import { specialize } from "../../lower/ir/specialize.ts";
import { Schedule } from "../../lower/schedule/index.ts";
import { lowerToDevice } from "../../lower/passes/pipeline.ts";
import { DEPENDENTS_LAUNCH, INVARIANT_BUFFERS } from "../../lower/passes/launch.ts";
import { llamaOps } from "../../llama/ops.ts";
import { CUDA_OP_CHOICES } from "../../llama/op-choices.ts";
import { specializedFunc } from "../../llama/device/prepare.ts";
import { compileOp } from "../../llama/device/compile.ts";
import { GPU_SCHEDULES } from "../../stdlib/gpu/schedules.ts";
import { LLAMA2_7B } from "../../llama/presets.ts";
import { TARGETS, type Target } from "../../lower/passes/target.ts";
import { printFunc } from "../../lower/ir/printer.ts";
import { cpuDeviceKernel } from "../../backends/cpu/device.ts";
import { cpuKernel } from "../../backends/cpu/runtime.ts";
import { randomArgs, cloneArgs } from "../../backends/check.ts";
import { renderLLVM } from "../../backends/llvm/render.ts";
import { compileLLVM } from "../../backends/llvm/compile.ts";
import { renderSpirv } from "../../backends/spirv/render.ts";
import { validate } from "../../backends/spirv/tools.ts";
import type { NDArray } from "../../dsl/ndarray.ts";
import { hasTool, llvmMissing, run } from "../backends/llvm/helpers.ts";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { scaleRowsPrefetched, rmsNormRows } from "./kernels.ts";

const source = () => specialize(lowerKernel(scaleRowsPrefetched), { m: 5 });

function lowered(target: Target) {
  const s = new Schedule(source());
  s.bind("b", "blockIdx.x");
  s.bind("tp", "threadIdx.x");
  s.bind("t", "threadIdx.x");
  return lowerToDevice(s.func, target);
}

describe("dependency_wait", () => {
  it("places the wait after the leading prefetches, before the first global access (CUDA)", () => {
    expect(printFunc(lowered(TARGETS.sm_90))).toMatchInlineSnapshot(`
      "// attrs: specialized="specialized {\\"m\\":5}"
      // launch: grid [5, 1, 1], block [64, 1, 1], warp 32, shared 0 bytes
      function scaleRowsPrefetched(x: Tensor<f32, [5, 64]>, s: Tensor<f32, [5]>, y: Tensor<f32, [5, 64]>) {
        const b = block_id(0);
        const tp = thread_id(0);
        if (tp < 2) {
          prefetchL2(x[b * 64 + tp * 32]);
        }
        prefetchL2(x[min(b + 1, 4) * 64], 64);
        const scale = local(f32, [1]);
        waitForPreviousGrid();
        launchDependents();
        scale[0] = s[b];
        const t = thread_id(0);
        y[b * 64 + t] = x[b * 64 + t] * scale[0];
      }
      "
    `);
  });

  it("places no wait for other targets; a kernel without prefetches waits first on CUDA", () => {
    for (const t of [TARGETS.vulkan, TARGETS.gfx1100, TARGETS.cpu]) {
      const text = printFunc(lowered(t));
      expect(text).not.toContain("waitForPreviousGrid");
      expect(text).toContain("prefetchL2(x[");
    }
    const s = new Schedule(lowerKernel(rmsNormRows));
    s.bind("i", "blockIdx.x");
    const body = printFunc(lowerToDevice(s.func, TARGETS.sm_90)).split("\n");
    expect(body[2]).toBe("  waitForPreviousGrid();");
  });

  it("lets loads of the buffers the schedule declares invariant precede the wait (CUDA)", () => {
    const s = new Schedule(source());
    s.bind("b", "blockIdx.x");
    s.bind("tp", "threadIdx.x");
    s.bind("t", "threadIdx.x");
    s.annotate("b", INVARIANT_BUFFERS, "s");
    const f = lowerToDevice(s.func, TARGETS.sm_90);
    expect(f.attrs[INVARIANT_BUFFERS]).toBe("s");
    const text = printFunc(f);
    // s's load moves above the wait; x's stays below it.
    expect(text.indexOf("scale[0] = s[b]")).toBeGreaterThan(0);
    expect(text.indexOf("waitForPreviousGrid")).toBeGreaterThan(text.indexOf("scale[0] = s[b]"));
    expect(text.indexOf("x[b * 64 + t]")).toBeGreaterThan(text.indexOf("waitForPreviousGrid"));
    // A buffer the kernel writes, or one it does not have, is refused with its name.
    for (const [names, message] of [
      ["y", /invariant_buffers: scaleRowsPrefetched writes y, so its loads cannot come before the wait/],
      ["w", /invariant_buffers: scaleRowsPrefetched has no buffer parameter "w"/],
    ] as const) {
      const bad = new Schedule(source());
      bad.bind("b", "blockIdx.x");
      bad.bind("tp", "threadIdx.x");
      bad.bind("t", "threadIdx.x");
      bad.annotate("b", INVARIANT_BUFFERS, names);
      expect(() => lowerToDevice(bad.func, TARGETS.sm_90)).toThrow(message);
    }
  });

  it.skipIf(llvmMissing !== "")("reads a decode step's scalars kept in memory before the wait (CUDA)", () => {
    // Position and length are written only between steps (llama/device/prepare.ts): the split
    // attention's length load comes before the wait, its keys, values and q after it.
    const ops = llamaOps(
      { ...LLAMA2_7B, contextLength: 1100 },
      "q4f16_1",
      GPU_SCHEDULES,
      CUDA_OP_CHOICES,
    ).decode;
    const attention = ops.attentionSplit!;
    expect(specializedFunc(attention).attrs[INVARIANT_BUFFERS]).toBe("len_mem");
    const ptx = compileOp(attention, "sm_90").image as string;
    const wait = ptx.indexOf("griddepcontrol.wait");
    expect(wait).toBeGreaterThan(0);
    expect(ptx.slice(0, wait).match(/ld\.global[.\w]*/g)).toEqual(["ld.global.u32"]);
    expect(ptx.slice(wait)).toMatch(/ld\.global/);
  });

  it("changes no result on the CPU device emulation", () => {
    const f = source();
    const args = randomArgs(f, {}, 3);
    const want = cloneArgs(args);
    cpuKernel(f)(want as never);
    for (const t of [TARGETS.sm_90, TARGETS.cpu]) {
      const got = cloneArgs(args);
      cpuDeviceKernel(lowered(t))(got as never);
      expect(Array.from((got.y as NDArray).data)).toEqual(Array.from((want.y as NDArray).data));
    }
  });

  it("renders a valid SPIR-V module (the prefetch has no Vulkan counterpart)", () => {
    validate(renderSpirv(lowered(TARGETS.vulkan), { env: "vulkan1.2" }).words, "vulkan1.2");
  });

  it.skipIf(llvmMissing !== "")("renders prefetch.global.L2 before griddepcontrol.wait for sm_90", () => {
    const r = renderLLVM(lowered(TARGETS.sm_90), { kind: "nvptx", arch: "sm_90" });
    const ptx = compileLLVM(r.text, { kind: "nvptx", arch: "sm_90" }).ptx!;
    const prefetch = ptx.indexOf("prefetch.global.L2");
    const range = ptx.indexOf("cp.async.bulk.prefetch.L2.global");
    const wait = ptx.indexOf("griddepcontrol.wait");
    expect(prefetch).toBeGreaterThan(0);
    expect(range).toBeGreaterThan(prefetch);
    expect(wait).toBeGreaterThan(range);
    expect(ptx.indexOf("ld.global")).toBeGreaterThan(wait);
    // sm_80 has no programmatic dependent launch nor bulk prefetch: the range is a loop of line
    // prefetches (one instruction in the loop), and no wait.
    const t80 = { kind: "nvptx", arch: "sm_80" } as const;
    const sm80 = compileLLVM(renderLLVM(lowered(TARGETS.sm_90), t80).text, t80).ptx!;
    expect(sm80.match(/prefetch\.global\.L2/g)).toHaveLength(2);
    expect(sm80).not.toMatch(/griddepcontrol|cp\.async\.bulk/);
    if (hasTool("ptxas"))
      for (const [arch, text] of [
        ["sm_90", ptx],
        ["sm_80", sm80],
      ] as const) {
        const dir = mkdtempSync(join(tmpdir(), "tkc-prefetch-"));
        writeFileSync(join(dir, "k.ptx"), text);
        const r = run("ptxas", [`-arch=${arch}`, join(dir, "k.ptx"), "-o", "/dev/null"]);
        rmSync(dir, { recursive: true, force: true });
        expect(r.out, arch).toBe("");
        expect(r.status, arch).toBe(0);
      }
    // AMD: neither.
    const amd = renderLLVM(lowered(TARGETS.gfx1100), { kind: "amdgcn", arch: "gfx1100" }).text;
    expect(amd).not.toMatch(/prefetch|griddepcontrol/);
  });

  it("lets the next kernel launch right after the wait, before the first global store, or only at the exit, as annotated", () => {
    const sm90 = { kind: "nvptx", arch: "sm_90" } as const;
    const early = printFunc(lowered(TARGETS.sm_90));
    expect(early).toContain("  waitForPreviousGrid();\n  launchDependents();\n");
    const annotated = (value: string) => {
      const s = new Schedule(source());
      s.bind("b", "blockIdx.x");
      s.bind("tp", "threadIdx.x");
      s.bind("t", "threadIdx.x");
      s.annotate("b", DEPENDENTS_LAUNCH, value);
      return lowerToDevice(s.func, TARGETS.sm_90);
    };
    const epilogue = annotated("epilogue");
    expect(epilogue.launch?.dependentsLaunch).toBe("epilogue");
    const text = printFunc(epilogue);
    expect(text).toContain(
      "  scale[0] = s[b];\n  const t = thread_id(0);\n  launchDependents();\n  y[b * 64 + t] = x[b * 64 + t] * scale[0];",
    );
    const ptx = renderLLVM(epilogue, sm90).text;
    expect(ptx.indexOf("launch_dependents")).toBeGreaterThan(ptx.indexOf("griddepcontrol.wait"));
    const exit = annotated("exit");
    expect(exit.launch?.dependentsLaunch).toBe("exit");
    const exitText = renderLLVM(exit, sm90).text;
    expect(exitText).toMatch(/griddepcontrol\.wait/);
    expect(exitText).not.toMatch(/launch_dependents/);
    expect(lowered(TARGETS.sm_90).launch?.dependentsLaunch).toBeUndefined();
    expect(() => annotated("yes")).toThrow(/dependents_launch takes "start", "epilogue", "exit", not yes/);
    // "start": before the prefetches and the wait.
    const start = printFunc(annotated("start")).split("\n");
    expect(start.slice(3, 6)).toEqual([
      "  launchDependents();",
      "  const b = block_id(0);",
      "  const tp = thread_id(0);",
    ]);
    expect(start.filter((l) => l.includes("launchDependents"))).toHaveLength(1);
    // Other targets: neither the wait nor the trigger; the emulation computes the same.
    for (const t of [TARGETS.vulkan, TARGETS.gfx1100])
      expect(printFunc(lowerToDevice(new Schedule(source()).func, t))).not.toMatch(/launchDependents/);
  });
});
