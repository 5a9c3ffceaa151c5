/**
 * The prefill GEMM schedules (stdlib/gpu/gemm.ts) on the register-tiled kernels of
 * stdlib/q4_gemm_tiled.ts and on q4Gemm / f16Gemm themselves: lowered for sm_90 and run on the CPU
 * emulation of device IR at small odd shapes against the unscheduled kernel (bit for bit: the
 * schedules keep each output's summation order), rendered and compiled for sm_90.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { KernelDef } from "../../dsl/kernel.ts";
import { toNumbers, type NDArray } from "../../dsl/ndarray.ts";
import { cloneArgs, randomArgs } from "../../backends/check.ts";
import { compileLLVM } from "../../backends/llvm/compile.ts";
import { renderLLVM } from "../../backends/llvm/render.ts";
import { cpuKernel } from "../../backends/cpu/runtime.ts";
import { lowerKernel } from "../../lower/frontend/lower.ts";
import type { PrimFunc } from "../../lower/ir/nodes.ts";
import { printFunc } from "../../lower/ir/printer.ts";
import { specialize } from "../../lower/ir/specialize.ts";
import { LoweringError } from "../../lower/passes/errors.ts";
import { lowerToDevice } from "../../lower/passes/pipeline.ts";
import { TARGETS } from "../../lower/passes/target.ts";
import { Schedule } from "../../lower/schedule/index.ts";
import { f16Gemm } from "../../stdlib/f16_gemv.ts";
import { GEMM_SCHEDULES, f16GemmSchedule, q4GemmSchedule, type GemmSchedule } from "../../stdlib/gpu/gemm.ts";
import { GPU_SCHEDULES } from "../../stdlib/gpu/schedules.ts";
import { f16GemmTiled, q4GemmTiled } from "../../stdlib/q4_gemm_tiled.ts";
import { q4Gemm } from "../../stdlib/q4_gemv.ts";
import { deviceError } from "../passes/helpers.ts";
import { expectTraceRoundTrip } from "./roundtrip.ts";
import { llvmMissing } from "../backends/llvm/helpers.ts";

/** N and K fixed as the model specializes them (K a multiple of 32 for q4), M symbolic. */
const N = 70;
const K = 96;
const Q4_DIMS = { n: N, k: K, kw: K / 8, kg: K / 32 };
const F16_DIMS = { n: N, k: K };

type Sched = (p?: GemmSchedule) => (s: Schedule, target: string) => void;
const CASES: [string, KernelDef, Sched, Record<string, number>][] = [
  ["q4GemmTiled", q4GemmTiled, q4GemmSchedule, Q4_DIMS],
  ["f16GemmTiled", f16GemmTiled, f16GemmSchedule, F16_DIMS],
  ["q4Gemm", q4Gemm, q4GemmSchedule, Q4_DIMS],
  ["f16Gemm", f16Gemm, f16GemmSchedule, F16_DIMS],
];

function scheduled(k: KernelDef, sched: Sched, dims: Record<string, number>, p?: GemmSchedule): Schedule {
  const s = new Schedule(specialize(lowerKernel(k), dims));
  sched(p)(s, "sm_90");
  return s;
}

const ptxas = !spawnSync("ptxas", ["--version"]).error;

describe("the GEMM-friendly variants", () => {
  it("compute exactly what q4Gemm and f16Gemm compute", () => {
    for (const [a, b, dims] of [
      [q4Gemm, q4GemmTiled, Q4_DIMS],
      [f16Gemm, f16GemmTiled, F16_DIMS],
    ] as const) {
      const args = randomArgs(lowerKernel(a), { m: 37, ...dims }, 5);
      const [x, y] = [cloneArgs(args), cloneArgs(args)];
      cpuKernel(a)(x);
      cpuKernel(b)(y);
      expect(Array.from(toNumbers(y.y as NDArray)), b.name).toEqual(Array.from(toNumbers(x.y as NDArray)));
    }
  });
});

describe("prefill GEMM schedules on the device emulation", () => {
  it.each(CASES)("%s: sm_90's parameters, M = 37 and 1, bit for bit", (_name, k, sched, dims) => {
    const s = scheduled(k, sched, dims);
    const dev = lowerToDevice(s.func, TARGETS.sm_90);
    for (const m of [37, 1]) expect(deviceError(s.original, dev, { m }, { seed: m }), `m = ${m}`).toBe(0);
  });

  it.each(CASES)("%s: other tile shapes (a 2 x 4 thread block, stages of 8)", (_name, k, sched, dims) => {
    const s = scheduled(k, sched, dims, { ...GEMM_SCHEDULES.cpu!, unrollK: 4 });
    const dev = lowerToDevice(s.func, TARGETS.sm_90);
    expect(deviceError(s.original, dev, { m: 11 })).toBe(0);
  });

  it("the model's schedule table uses them for q4Gemm and f16Gemm", () => {
    for (const [name, k, dims] of [
      ["q4Gemm", q4Gemm, Q4_DIMS],
      ["f16Gemm", f16Gemm, F16_DIMS],
    ] as const) {
      const a = new Schedule(specialize(lowerKernel(k), dims));
      GPU_SCHEDULES[name]!(a, "sm_90");
      const b = scheduled(k, name === "q4Gemm" ? q4GemmSchedule : f16GemmSchedule, dims);
      expect(printFunc(a.func)).toBe(printFunc(b.func));
    }
  });

  it("stages the tiles in shared memory, 64 x 64 outputs per block of 16 x 16 threads", () => {
    const s = scheduled(q4GemmTiled, q4GemmSchedule, Q4_DIMS);
    const text = printFunc(lowerToDevice(s.func, TARGETS.sm_90));
    expect(text).toContain("block [16, 16, 1]");
    expect(text).toContain("const x_shared = shared(f16, [2048]);"); // 64 rows x 32 of K
    expect(text).toContain("const packed_shared = shared(u32, [256]);"); // 64 rows x 4 words
    expect(text).toContain("const scales_shared = shared(f16, [64]);");
    expect(text).toContain("const acc = local(f32, [16]);"); // 4 x 4 outputs per thread
    expectTraceRoundTrip(s);
  });

  it("vectorized copies (16 bytes per thread), once the barriers pass treats a vector loop as one access", (ctx) => {
    for (const [, k, sched, dims] of CASES.slice(0, 2)) {
      const s = scheduled(k, sched, dims, { ...GEMM_SCHEDULES.sm_90!, vec: 8 });
      expect(printFunc(s.func)).toMatch(/\/\/ vectorized/);
      let dev: PrimFunc;
      try {
        dev = lowerToDevice(s.func, TARGETS.sm_90);
      } catch (e) {
        // lower/passes/barriers.ts walks the back edge of a vectorized copy and puts a barrier in it.
        if (e instanceof LoweringError && /vectorized loop \S+ is not straight-line code/.test(e.message))
          return ctx.skip();
        throw e;
      }
      expect(deviceError(s.original, dev, { m: 37 })).toBe(0);
    }
  });
});

describe.skipIf(llvmMissing !== "")("prefill GEMM schedules through LLVM for sm_90", () => {
  it.each(CASES)(`%s renders, compiles${ptxas ? " and ptxas accepts it" : ""}`, (_name, k, sched) => {
    // The 7B shape of the attention projections.
    const dims: Record<string, number> =
      k === q4Gemm || k === q4GemmTiled ? { n: 4096, k: 4096, kw: 512, kg: 128 } : { n: 4096, k: 4096 };
    const dev = lowerToDevice(scheduled(k, sched, dims).func, TARGETS.sm_90);
    const target = { kind: "nvptx", arch: "sm_90" } as const;
    const r = renderLLVM(dev, target);
    const c = compileLLVM(r.text, target);
    expect(c.ptx).toContain(`.visible .entry ${r.name}(`);
    expect(c.ptx).toContain("bar.sync");
    if (!ptxas) return;
    const file = join(mkdtempSync(join(tmpdir(), "tkc-gemm-")), `${r.name}.ptx`);
    writeFileSync(file, c.ptx!);
    const p = spawnSync("ptxas", ["-arch=sm_90", file, "-o", "/dev/null"], { encoding: "utf8" });
    expect(`${p.stdout}${p.stderr}`).toBe("");
    expect(p.status).toBe(0);
  });
});
