// `tkc dump`: a kernel after the frontend, its schedule (and a trace that replays), any lowering
// stage, and each target's code; kernels of one's own by path; the mistakes it explains.
import { describe, expect, it } from "vitest";
import { lowerKernel } from "../../lower/frontend/lower.ts";
import { printFunc } from "../../lower/ir/printer.ts";
import { STAGE_NAMES } from "../../lower/passes/pipeline.ts";
import { replay, traceFromJson } from "../../lower/schedule/index.ts";
import { rmsNorm } from "../../stdlib/index.ts";
import { runInProcess } from "./run.ts";
import { hasTool, llvmMissing } from "../backends/llvm/helpers.ts";

const objdump = hasTool("llvm-objdump-19");
const skipped = (why: string) => (why ? ` [skipped: ${why}]` : "");

/** The sections of a multi-stage dump: [stage, text]. */
function sections(out: string): [string, string][] {
  const parts = out.split(/^\/\/ ---- \w+: (.+) \([\w.]+\)\n/m).slice(1);
  const res: [string, string][] = [];
  for (let i = 0; i < parts.length; i += 2) res.push([parts[i]!, parts[i + 1]!]);
  return res;
}

describe("tkc dump", () => {
  it("prints the frontend's loop IR by default", async () => {
    const r = await runInProcess(["dump", "rmsNorm"]);
    expect(r.code).toBe(0);
    expect(r.stdout.trimEnd()).toBe(printFunc(lowerKernel(rmsNorm)).trimEnd());
    expect(r.stdout).not.toContain("// ----"); // one stage: the text alone, ready to redirect
  });

  it("--schedule prints a trace that replays to the scheduled IR it prints", async () => {
    const r = await runInProcess([
      "dump",
      "rmsNorm",
      "--schedule",
      "--target",
      "gfx942",
      "--stage",
      "schedule",
    ]);
    expect(r.code).toBe(0);
    const [trace, scheduled] = sections(r.stdout);
    expect(trace![0]).toBe("schedule trace");
    expect(scheduled![0]).toBe("schedule");
    expect(scheduled![1]).toContain("// threadIdx.x");
    const s = replay(lowerKernel(rmsNorm), traceFromJson(trace![1]));
    expect(printFunc(s.func).trimEnd()).toBe(scheduled![1].trimEnd());
  });

  it("prints any lowering stage alone", async () => {
    const r = await runInProcess(["dump", "rmsNorm", "--stage", "cross_thread_reduction"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("shfl_xor(ss_partial[0], 16, 32)");
  });

  it.skipIf(llvmMissing !== "")(`--target sm_90 prints PTX${skipped(llvmMissing)}`, async () => {
    const r = await runInProcess(["dump", "residualAdd", "--target", "sm_90", "--specialize", "m=1,d=288"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(".target sm_90");
    expect(r.stdout).toContain(".visible .entry residualAdd(");
  });

  it.skipIf(llvmMissing !== "")(
    `--stage all --target gfx942: every stage in pipeline order, then LLVM IR and the AMD assembly${skipped(llvmMissing || (objdump ? "" : "llvm-objdump-19 not found"))}`,
    async () => {
      if (!objdump) return;
      const r = await runInProcess(["dump", "siluMul", "--stage", "all", "--target", "gfx942"]);
      expect(r.code).toBe(0);
      const s = sections(r.stdout);
      expect(s.map(([name]) => name)).toEqual([
        "frontend",
        "schedule",
        ...STAGE_NAMES,
        "llvm",
        "llvm-opt",
        "amdgcn",
      ]);
      const text = Object.fromEntries(s);
      expect(text.launch).toContain("launch");
      expect(text.llvm).toContain("define amdgpu_kernel void @siluMul(");
      expect(text["llvm-opt"]).toContain("target datalayout");
      expect(text.amdgcn).toContain("<siluMul>:");
      expect(text.amdgcn).toContain("s_endpgm");
    },
  );

  it("--target vulkan prints SPIR-V assembly; --target cpu JavaScript", async () => {
    const v = await runInProcess(["dump", "siluMul", "--target", "vulkan"]);
    expect(v.code).toBe(0);
    expect(v.stdout).toContain("OpCapability Shader");
    expect(v.stdout).toContain("OpEntryPoint GLCompute");
    const c = await runInProcess(["dump", "siluMul", "--target", "cpu"]);
    expect(c.code).toBe(0);
    expect(c.stdout).toMatch(/^\/\/ tkc cpu kernel siluMul\n/);
  });

  it("dumps a kernel of one's own by path:export", async () => {
    const r = await runInProcess(["dump", "examples/kernels.ts:addBroadcast", "--stage", "launch"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("function addBroadcast(");
    const many = await runInProcess(["dump", "examples/kernels.ts"]);
    expect(many.code).toBe(2);
    expect(many.stderr).toContain("exports 12 kernels (addBroadcast,");
    const none = await runInProcess(["dump", "examples/kernels.ts:nope"]);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain("has no exported kernel nope; its kernels: addBroadcast");
  });

  it("explains its mistakes", async () => {
    const unknown = await runInProcess(["dump", "rmsnorm"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("no stdlib kernel named 'rmsnorm' (did you mean rmsNorm?)");
    const stage = await runInProcess(["dump", "rmsNorm", "--target", "gfx1100", "--stage", "ptx"]);
    expect(stage.code).toBe(2);
    expect(stage.stderr).toContain("--stage ptx is not made for --target gfx1100");
    const badStage = await runInProcess(["dump", "rmsNorm", "--stage", "lowered"]);
    expect(badStage.code).toBe(2);
    expect(badStage.stderr).toContain("--stage must be one of frontend, schedule, launch,");
    // attentionDecodeShared binds a loop over the head dimension to threads: it needs that size.
    const symbolic = await runInProcess(["dump", "attentionDecodeShared", "--stage", "launch"]);
    expect(symbolic.code).toBe(1);
    expect(symbolic.stderr).toContain("symbolic extent");
    expect(symbolic.stderr).toContain("hint: bind its symbolic sizes (h, d, ctx, kvh) with --specialize");
    const ok = await runInProcess([
      "dump",
      "attentionDecodeShared",
      "--stage",
      "launch",
      "--specialize",
      "d=48",
    ]);
    expect(ok.code).toBe(0);
  });
});
