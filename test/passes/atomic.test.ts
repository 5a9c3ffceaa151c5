/**
 * atomicAdd (dsl/intrinsics.ts, nodes.ts Atomic): the frontend's statement forms and errors, the
 * schedule's race check (atomics do not race with each other; the last-iteration protocol orders
 * the last block's reads after the others' writes), the lowering (one thread adds at block level,
 * a barrier between the block's global writes and the atomic), the CPU reference and the device
 * emulation, NVIDIA's and AMD's fences, SPIR-V (validated, and run on the Vulkan device where
 * there is one).
 */
import { describe, expect, it } from "vitest";
import { lowerKernel } from "../../lower/frontend/lower.ts";
import { specialize } from "../../lower/ir/specialize.ts";
import { Schedule } from "../../lower/schedule/index.ts";
import { lowerToDevice } from "../../lower/passes/pipeline.ts";
import { TARGETS, type Target } from "../../lower/passes/target.ts";
import { printFunc } from "../../lower/ir/printer.ts";
import { funcFromJson, funcToJson } from "../../lower/ir/serialize.ts";
import type { PrimFunc } from "../../lower/ir/nodes.ts";
import { cpuDeviceKernel } from "../../backends/cpu/device.ts";
import { cpuKernel } from "../../backends/cpu/runtime.ts";
import { renderLLVM } from "../../backends/llvm/render.ts";
import { compileLLVM } from "../../backends/llvm/compile.ts";
import { renderSpirv } from "../../backends/spirv/render.ts";
import { validate } from "../../backends/spirv/tools.ts";
import { vulkanKernel } from "../../backends/vulkan/kernel.ts";
import { optionalVulkanRuntime } from "../helpers/vulkan.ts";
import { ndarray, type NDArray } from "../../dsl/ndarray.ts";
import { kernel, atomicAdd, f16, f32, local, type i32, type Tensor, type Sym } from "../../dsl/index.ts";
import { hasTool, llvmMissing, run } from "../backends/llvm/helpers.ts";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { atomicLocalResult, atomicSum, countedTwice, histogram, lastBlockSum } from "./atomic_kernels.ts";

const rt = optionalVulkanRuntime("the atomics' Vulkan test");

const M = 5;
const N = 64;

function lastBlockScheduled(): PrimFunc {
  const s = new Schedule(specialize(lowerKernel(lastBlockSum), { m: M, n: N }));
  s.bind("b", "blockIdx.x");
  s.bind("t", "threadIdx.x");
  return s.func;
}

function histogramScheduled(n: number): PrimFunc {
  const s = new Schedule(specialize(lowerKernel(histogram), { n, bins: 8 }));
  const [bo, ti] = s.split("i", [null, 64]);
  s.bind(bo!, "blockIdx.x");
  s.bind(ti!, "threadIdx.x");
  return s.func;
}

type Args = Record<string, NDArray>;

function lastBlockArgs(): Args {
  return {
    x: ndarray(
      "f32",
      [M, N],
      Array.from({ length: M * N }, (_, i) => ((i * 37) % 101) / 8 - 6),
    ),
    y: ndarray("f32", [M, N], new Array(M * N).fill(Number.NaN)),
    count: ndarray("i32", [1], [0]),
    total: ndarray("f32", [1], [-1]),
  };
}

function histogramArgs(n: number): Args {
  return {
    x: ndarray(
      "i32",
      [n],
      Array.from({ length: n }, (_, i) => (i * i + 3 * i) % 8),
    ),
    hist: ndarray("i32", [8], new Array(8).fill(0)),
  };
}

const values = (a: NDArray) => Array.from(a.data as ArrayLike<number>);

/** The total a float64 sum of 2x gives, to f32 rounding of the summation order. */
function expectedTotal(x: NDArray): number {
  return values(x).reduce((a, v) => a + 2 * v, 0);
}

describe("atomicAdd", () => {
  it("lowers as a statement, with or without its old value", () => {
    const text = printFunc(lowerKernel(lastBlockSum));
    expect(text).toContain("seen[0] = atomicAdd(count[0], 1);");
    expect(printFunc(lowerKernel(histogram))).toContain("atomicAdd(hist[x[i]], 1);");
  });

  it("round-trips through the IR's JSON form (libraries store kernels' reference IR)", () => {
    for (const k of [lastBlockSum, histogram]) {
      const f = lowerKernel(k);
      expect(printFunc(funcFromJson(JSON.parse(JSON.stringify(funcToJson(f)))))).toBe(printFunc(f));
    }
  });

  it("counts, sums and lets the last row read every row on the CPU", () => {
    const h = histogramArgs(300);
    cpuKernel(histogram)(h as never);
    const want = new Array(8).fill(0);
    for (const v of values(h.x!)) want[v]++;
    expect(values(h.hist!)).toEqual(want);

    const xs = Array.from({ length: 100 }, (_, i) => i / 4);
    const s = { x: ndarray("f32", [100], xs), total: ndarray("f32", [1], [0.5]) };
    cpuKernel(atomicSum)(s as never);
    expect(values(s.total)[0]).toBe(0.5 + xs.reduce((a, b) => a + b, 0));

    const a = lastBlockArgs();
    cpuKernel(lastBlockSum)(a as never);
    expect(values(a.total!)[0]).toBeCloseTo(expectedTotal(a.x!), 3);
    expect(values(a.count!)).toEqual([0]);
  });

  it("binds blocks that add to one counter, and the last block's reads of the others' rows", () => {
    expect(() => histogramScheduled(256)).not.toThrow();
    expect(() => lastBlockScheduled()).not.toThrow();
    // Without the guard on the counter's old value the reads race with the other blocks' writes.
    const unguarded = kernel(function unguarded(
      x: Tensor<f32, [Sym<"m">, Sym<"n">]>,
      y: Tensor<f32, [Sym<"m">, Sym<"n">]>,
      total: Tensor<f32, [1]>,
    ) {
      for (let b = 0; b < x.shape[0]; b++) {
        for (let t = 0; t < x.shape[1]; t++) y[b][t] = x[b][t];
        let s = f32(0);
        for (let k = 0; k < x.shape[1]; k++) s += y[0][k];
        total[0] = s;
      }
    });
    // Nor does a counter bumped more than once a row prove the guarded row is the last.
    const twice = new Schedule(specialize(lowerKernel(countedTwice), { m: M, n: N }));
    expect(() => twice.bind("b", "blockIdx.x")).toThrow(
      /would race: different iterations of b may touch the same element of y/,
    );
    const s = new Schedule(specialize(lowerKernel(unguarded), { m: M, n: N }));
    expect(() => s.bind("b", "blockIdx.x")).toThrow(
      /would race: different iterations of b may touch the same element of y/,
    );
  });

  it("is made by one thread at block level, after a barrier that ends the block's global writes", () => {
    const text = printFunc(lowerToDevice(lastBlockScheduled(), TARGETS.sm_90));
    expect(text).toContain(
      [
        "  y[b * 64 + t] = x[b * 64 + t] * f32(2);",
        "  const seen = shared(i32, [1]);",
        "  syncThreads();",
        "  if (thread_id(0) == 0) {",
        "    seen[0] = atomicAdd(count[0], 1);",
        "  }",
        "  syncThreads();",
        "  if (seen[0] == 4) {",
      ].join("\n"),
    );
  });

  it("gives the CPU reference's results on the device emulation", () => {
    for (const target of [TARGETS.sm_90, TARGETS.vulkan, TARGETS.gfx1100]) {
      const a = lastBlockArgs();
      const want = lastBlockArgs();
      cpuKernel(lastBlockSum)(want as never);
      cpuDeviceKernel(lowerToDevice(lastBlockScheduled(), target))(a as never);
      expect(values(a.total!)[0], target.name).toBeCloseTo(values(want.total!)[0]!, 3);
      expect(values(a.y!)).toEqual(values(want.y!));
      expect(values(a.count!)).toEqual([0]);
      const h = histogramArgs(256);
      const hw = histogramArgs(256);
      cpuKernel(histogram)(hw as never);
      cpuDeviceKernel(lowerToDevice(histogramScheduled(256), target))(h as never);
      expect(values(h.hist!)).toEqual(values(hw.hist!));
      // One element of the sum per thread: every thread adds (the element is the same for all).
      const s = new Schedule(specialize(lowerKernel(atomicSum), { n: 256 }));
      const [bo, ti] = s.split("i", [null, 64]);
      s.bind(bo!, "blockIdx.x");
      s.bind(ti!, "threadIdx.x");
      const xs = Array.from({ length: 256 }, (_, i) => i / 8);
      const sum = { x: ndarray("f32", [256], xs), total: ndarray("f32", [1], [0]) };
      cpuDeviceKernel(lowerToDevice(s.func, target))(sum as never);
      expect(values(sum.total)[0], target.name).toBe(xs.reduce((a, b) => a + b, 0));
    }
  });

  it.skipIf(llvmMissing !== "")("fences at device scope around a global atomic on NVIDIA and AMD", () => {
    const sm90 = { kind: "nvptx", arch: "sm_90" } as const;
    const ptx = compileLLVM(
      renderLLVM(lowerToDevice(lastBlockScheduled(), TARGETS.sm_90), sm90).text,
      sm90,
    ).ptx!;
    const lines = ptx
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => /^(bar\.sync|fence|atom)/.test(l));
    const at = lines.findIndex((l) => l.startsWith("atom.global.add.u32"));
    expect(lines.slice(at - 2, at + 3)).toEqual([
      "bar.sync \t0;",
      "fence.acq_rel.gpu;",
      lines[at],
      "fence.acq_rel.gpu;",
      "bar.sync \t0;",
    ]);
    // Without a kept value only the release: the thread goes on by nothing it read.
    const hist = compileLLVM(
      renderLLVM(lowerToDevice(histogramScheduled(256), TARGETS.sm_90), sm90).text,
      sm90,
    ).ptx!;
    expect(hist.match(/fence\.acq_rel\.gpu/g)).toHaveLength(1);
    // f32 additions.
    const s = new Schedule(specialize(lowerKernel(atomicSum), { n: 256 }));
    const [bo, ti] = s.split("i", [null, 64]);
    s.bind(bo!, "blockIdx.x");
    s.bind(ti!, "threadIdx.x");
    const sum = compileLLVM(renderLLVM(lowerToDevice(s.func, TARGETS.sm_90), sm90).text, sm90).ptx!;
    expect(sum).toMatch(/atom\.global\.add\.f32/);
    if (hasTool("ptxas"))
      for (const [i, text] of [ptx, hist, sum].entries()) {
        const dir = mkdtempSync(join(tmpdir(), "tkc-atomic-"));
        writeFileSync(join(dir, "k.ptx"), text);
        const r = run("ptxas", ["-arch=sm_90", join(dir, "k.ptx"), "-o", "/dev/null"]);
        rmSync(dir, { recursive: true, force: true });
        expect(r.status, `kernel ${i}: ${r.out}`).toBe(0);
      }
    const gfx = { kind: "amdgcn", arch: "gfx1100" } as const;
    const amd = renderLLVM(lowerToDevice(lastBlockScheduled(), TARGETS.gfx1100), gfx).text;
    expect(amd).toMatch(
      /fence syncscope\("agent"\) release\n\s*%\w+ = atomicrmw add ptr addrspace\(1\) %\w+, i32 1 syncscope\("agent"\) monotonic, align 4\n\s*fence syncscope\("agent"\) acquire/,
    );
    expect(compileLLVM(amd, gfx).object?.length).toBeGreaterThan(0);
  });

  it("renders valid SPIR-V, refusing f32 additions", () => {
    const f = lowerToDevice(lastBlockScheduled(), TARGETS.vulkan);
    const spv = renderSpirv(f, { env: "vulkan1.2" });
    expect(spv.text).toMatch(/OpAtomicIAdd %int %\w+ %uint_1 %uint_72 %int_1/);
    validate(spv.words, "vulkan1.2");
    const s = new Schedule(specialize(lowerKernel(atomicSum), { n: 64 }));
    s.bind("i", "threadIdx.x");
    expect(() => renderSpirv(lowerToDevice(s.func, TARGETS.vulkan), { env: "vulkan1.2" })).toThrow(
      /atomicAdd on total adds f32, which Vulkan's core SPIR-V cannot/,
    );
  });

  it.skipIf(!rt)("counts and lets the last workgroup read the others' rows on Vulkan", () => {
    const a = lastBlockArgs();
    const want = lastBlockArgs();
    cpuKernel(lastBlockSum)(want as never);
    const got = vulkanKernel(rt!, lowerToDevice(lastBlockScheduled(), TARGETS.vulkan), { validate: true })(
      a as never,
    ) as Args;
    expect(values(got.total!)[0]).toBeCloseTo(values(want.total!)[0]!, 3);
    expect(values(got.count!)).toEqual([0]);
    const h = vulkanKernel(rt!, lowerToDevice(histogramScheduled(1000), TARGETS.vulkan), { validate: true })(
      histogramArgs(1000) as never,
    ) as Args;
    const hw = histogramArgs(1000);
    cpuKernel(histogram)(hw as never);
    expect(values(h.hist!)).toEqual(values(hw.hist!));
  });

  it("refuses a block-level atomic whose old value each thread would keep", () => {
    const s = new Schedule(specialize(lowerKernel(atomicLocalResult), { n: 64 }));
    s.bind("b", "blockIdx.x");
    s.bind("t", "threadIdx.x");
    expect(() => lowerToDevice(s.func, TARGETS.sm_90)).toThrow(
      /atomicAdd on count runs in one thread .*must go to a shared element .*declare old with shared/,
    );
  });
});

describe("atomicAdd errors name the place and the fix", () => {
  const cases: [string, () => unknown, RegExp][] = [
    [
      "as a value",
      () =>
        lowerKernel(
          kernel(function k(c: Tensor<i32, [4]>, y: Tensor<i32, [4]>) {
            for (let i = 0; i < 4; i++) y[i] = atomicAdd(c[0], 1) + 1;
          }),
        ),
      /atomic\.test\.ts:\d+:\d+: atomicAdd\(\.\.\.\)'s old value can only be stored into a tensor element/,
    ],
    [
      "on a local tensor",
      () =>
        lowerKernel(
          kernel(function k(y: Tensor<i32, [4]>) {
            const c = local("i32", [1]);
            for (let i = 0; i < 4; i++) atomicAdd(c[0], 1);
          }),
        ),
      /atomicAdd updates one element of a kernel's tensor parameter or of a shared tensor/,
    ],
    [
      "on f16",
      () =>
        lowerKernel(
          kernel(function k(c: Tensor<f16, [4]>) {
            for (let i = 0; i < 4; i++) atomicAdd(c[0], f16(1));
          }),
        ),
      /atomicAdd adds to i32, u32 or f32 elements; c holds f16/,
    ],
  ];
  for (const [name, f, message] of cases) it(name, () => expect(f).toThrow(message));
});
