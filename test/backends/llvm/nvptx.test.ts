// NVPTX: the hand-written fixtures compile to PTX that ptxas (the CUDA toolkit's assembler, the
// same code the driver JITs with) accepts for sm_90, with the resources we expect.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { compileLLVM } from "../../../backends/llvm/compile.ts";
import { ptxResources } from "../../../backends/llvm/resources.ts";
import { fixture, hasTool, run } from "./helpers.ts";

const ptxas = hasTool("ptxas");
const sm90 = { kind: "nvptx", arch: "sm_90" } as const;

function ptxasAccepts(ptx: string, arch = "sm_90"): void {
  if (!ptxas) return;
  const file = join(mkdtempSync(join(tmpdir(), "tkc-ptx-")), "k.ptx");
  writeFileSync(file, ptx);
  const r = run("ptxas", [`-arch=${arch}`, file, "-o", "/dev/null"]);
  expect(r.out).toBe("");
  expect(r.status).toBe(0);
}

describe("nvptx", () => {
  it("compiles vector add with the ptx_kernel calling convention", () => {
    const r = compileLLVM(fixture("nvptx-vadd"), sm90);
    expect(r.ptx).toContain(".target sm_90");
    expect(r.ptx).toContain(".version 8.5");
    expect(r.ptx).toMatch(/\.visible \.entry vadd\(/);
    // Four parameters: three pointers (.u64) and the i32 length.
    expect(r.ptx!.match(/\.param \.u64 vadd_param_\d/g)).toHaveLength(3);
    expect(r.ptx).toContain(".param .u32 vadd_param_3");
    expect(r.ptx).toContain("%ntid.x");
    // O3 ran: noalias read-only loads become non-coherent (read-only cache) loads.
    expect(r.ptx).toContain("ld.global.nc.f32");
    expect(r.optimizedIR).toContain("define ptx_kernel void @vadd");
    expect(r.optimizedIR).toMatch(/target datalayout = "e-/);
    ptxasAccepts(r.ptx!);
  });

  it("compiles the shared-memory + shuffle reduction marked by nvvm.annotations", () => {
    const r = compileLLVM(fixture("nvptx-reduce"), sm90);
    expect(r.ptx).toMatch(/\.visible \.entry block_sum\(/);
    expect(r.ptx).toContain(".maxntid 256, 1, 1");
    expect(r.ptx).toContain(".shared .align 4 .b8 partials[32]");
    expect(r.ptx).toContain("bar.sync");
    expect(r.ptx!.match(/shfl\.sync\.bfly\.b32/g)).toHaveLength(10);
    // The helper was inlined: no .func left behind.
    expect(r.ptx).not.toContain(".func");
    ptxasAccepts(r.ptx!);
  });

  it("compiles packed f16 math", () => {
    const r = compileLLVM(fixture("nvptx-f16"), sm90);
    expect(r.ptx).toContain("fma.rn.f16x2");
    expect(r.ptx).toContain("max.f16x2");
    expect(r.ptx).toContain("cvt.f32.f16");
    ptxasAccepts(r.ptx!);
  });

  it("declares dynamic shared memory as .extern .shared", () => {
    const r = compileLLVM(fixture("nvptx-dynsmem"), sm90);
    expect(r.ptx).toContain(".extern .shared .align 16 .b8 tile_smem[]");
    ptxasAccepts(r.ptx!);
  });

  it("reads a per-step value from device memory (the graph-replay pattern)", () => {
    const r = compileLLVM(fixture("nvptx-accum"), sm90);
    expect(r.ptx).toMatch(/\.visible \.entry accum\(/);
    expect(r.ptx).toContain("fma.rn.f32");
    ptxasAccepts(r.ptx!);
  });

  it("targets sm_80 too", () => {
    const r = compileLLVM(fixture("nvptx-reduce"), { kind: "nvptx", arch: "sm_80" });
    expect(r.ptx).toContain(".target sm_80");
    ptxasAccepts(r.ptx!, "sm_80");
  });

  it("honours a PTX version feature", () => {
    const r = compileLLVM(fixture("nvptx-vadd"), { kind: "nvptx", arch: "sm_90", features: "+ptx80" });
    expect(r.ptx).toContain(".version 8.0");
  });

  it("skips the pass pipeline when asked, which leaves the helper call in place", () => {
    const r = compileLLVM(fixture("nvptx-reduce"), sm90, { passes: "" });
    expect(r.optimizedIR).toContain("call float @warp_sum");
  });

  it.skipIf(!ptxas)("reports registers and shared memory through ptxas -v", () => {
    const reduce = ptxResources(compileLLVM(fixture("nvptx-reduce"), sm90).ptx!);
    expect(reduce).toHaveLength(1);
    expect(reduce[0]!.name).toBe("block_sum");
    expect(reduce[0]!.sharedBytes).toBe(32);
    expect(reduce[0]!.registers).toBeGreaterThan(4);
    expect(reduce[0]!.registers).toBeLessThan(64);
    expect(reduce[0]!.spills).toBe(0);
    expect(ptxResources(compileLLVM(fixture("nvptx-vadd"), sm90).ptx!)[0]!.sharedBytes).toBe(0);
  });

  it.skipIf(!ptxas)("surfaces ptxas's own message for PTX it rejects", () => {
    const bad = ".version 8.5\n.target sm_90\n.address_size 64\n.visible .entry k() { bogus; }\n";
    expect(() => ptxResources(bad)).toThrow(/Not a name of any known instruction: 'bogus'/);
  });
});
