/**
 * copyAsync / commitAsync / waitAsync (dsl/intrinsics.ts, nodes.ts Store.async and the barrier
 * scopes "async_commit" / "async_wait"): the frontend's statement forms and errors, the JSON form,
 * the CPU reference (copies land at once) and the device emulation (a thread's copies land at its
 * wait that covers their group, so a kernel that waits too little reads stale shared memory), the
 * barriers pass (a barrier between a wait and the other threads' reads, and before a copy that
 * overwrites what they may still read), NVIDIA's cp.async (one copy a vectorized loop, refused where
 * the lanes are not consecutive), AMD's plain loads and stores, SPIR-V (validated, and run on the
 * Vulkan device where there is one).
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
import {
  kernel,
  commitAsync,
  copyAsync,
  local,
  shared,
  waitAsync,
  withConsts,
  type f32,
  type u32,
  type Tensor,
  type Sym,
  type KernelDef,
} from "../../dsl/index.ts";
import { hasTool, llvmMissing, run } from "../backends/llvm/helpers.ts";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stagedNeighbourSums } from "./async_copy_kernels.ts";

const rt = optionalVulkanRuntime("the asynchronous copies' Vulkan test");

const M = 3;
/** Row lengths: 1 chunk (fewer than the ring's stages: the prologue's guard), 2 and 5 chunks. */
const KS = [128 * 1, 128 * 2, 128 * 5];

/** The kernel that waits for one group too few: it reads each chunk before it has landed. */
const early = withConsts(stagedNeighbourSums, { EARLY: 1 });

function staged(k: number, target: Target, def: KernelDef = stagedNeighbourSums): PrimFunc {
  const s = new Schedule(specialize(lowerKernel(def), { m: M, k }));
  s.bind("b", "blockIdx.x");
  for (const t of ["t0", "tp", "t1", "t2", "t3"]) s.bind(t, "threadIdx.x");
  s.vectorize("vp");
  s.vectorize("v2");
  return lowerToDevice(s.func, target);
}

type Args = Record<string, NDArray>;

/** Words that use all 32 bits, so the sums wrap. */
function stagedArgs(k: number): Args {
  return {
    x: ndarray(
      "u32",
      [M, k],
      Array.from({ length: M * k }, (_, i) => (Math.imul(i + 1, 2654435761) ^ (i << 7)) >>> 0),
    ),
    y: ndarray("u32", [M, 32], new Array(M * 32).fill(7)),
  };
}

const values = (a: NDArray) => Array.from(a.data as ArrayLike<number>);

/** y[b][t]: the u32 sum over chunks c of x[b][(c * 32 + (t + 1) % 32) * 4 + v], v < 4. */
function expected(x: NDArray, k: number): number[] {
  const xs = values(x);
  const out: number[] = [];
  for (let b = 0; b < M; b++)
    for (let t = 0; t < 32; t++) {
      let sum = 0;
      for (let c = 0; c < k / 128; c++)
        for (let v = 0; v < 4; v++) sum = (sum + xs[b * k + (c * 32 + ((t + 1) % 32)) * 4 + v]!) >>> 0;
      out.push(sum);
    }
  return out;
}

/** The printed function's lines, trimmed. */
const lines = (f: PrimFunc) =>
  printFunc(f)
    .split("\n")
    .map((l) => l.trim());

/** Copies word t of each row into all four of tile[t]: a vectorized v's lanes all read one word. */
const broadcastCopy = kernel(function broadcastCopy(
  x: Tensor<u32, [Sym<"m">, 256]>,
  y: Tensor<u32, [Sym<"m">, 32]>,
) {
  for (let b = 0; b < x.shape[0]; b++) {
    const tile = shared("u32", [32, 4]);
    for (let t = 0; t < 32; t++) for (let v = 0; v < 4; v++) copyAsync(tile[t][v], x[b][t]);
    commitAsync();
    waitAsync(0);
    for (let t2 = 0; t2 < 32; t2++) y[b][t2] = tile[(t2 + 1) % 32][3];
  }
});

/** Copies words t * 8 + v * 2 of each row: a vectorized v's lanes would be two words apart. */
const stridedCopy = kernel(function stridedCopy(
  x: Tensor<u32, [Sym<"m">, 256]>,
  y: Tensor<u32, [Sym<"m">, 32]>,
) {
  for (let b = 0; b < x.shape[0]; b++) {
    const tile = shared("u32", [32, 4]);
    for (let t = 0; t < 32; t++) for (let v = 0; v < 4; v++) copyAsync(tile[t][v], x[b][t * 8 + v * 2]);
    commitAsync();
    waitAsync(0);
    for (let t2 = 0; t2 < 32; t2++) y[b][t2] = tile[(t2 + 1) % 32][3];
  }
});

/** Copies words t * 4 + v + 1 of each row: consecutive lanes, but not from a multiple of 4. */
const offsetCopy = kernel(function offsetCopy(
  x: Tensor<u32, [Sym<"m">, 256]>,
  y: Tensor<u32, [Sym<"m">, 32]>,
) {
  for (let b = 0; b < x.shape[0]; b++) {
    const tile = shared("u32", [32, 4]);
    for (let t = 0; t < 32; t++) for (let v = 0; v < 4; v++) copyAsync(tile[t][v], x[b][t * 4 + v + 1]);
    commitAsync();
    waitAsync(0);
    for (let t2 = 0; t2 < 32; t2++) y[b][t2] = tile[(t2 + 1) % 32][3];
  }
});

/** A copy and another store in one vectorized loop: the copy is one cp.async for all lanes, the store is not. */
const copyAndStore = kernel(function copyAndStore(
  x: Tensor<u32, [Sym<"m">, 128]>,
  z: Tensor<u32, [Sym<"m">, 128]>,
  y: Tensor<u32, [Sym<"m">, 32]>,
) {
  for (let b = 0; b < x.shape[0]; b++) {
    const tile = shared("u32", [32, 4]);
    for (let t = 0; t < 32; t++)
      for (let v = 0; v < 4; v++) {
        z[b][t * 4 + v] = x[b][t * 4 + v] + 1;
        copyAsync(tile[t][v], x[b][t * 4 + v]);
      }
    commitAsync();
    waitAsync(0);
    for (let t2 = 0; t2 < 32; t2++) y[b][t2] = tile[(t2 + 1) % 32][0];
  }
});

/** Each copy's slot from a local that changes after it is issued: the address is the issue's. */
const movingSlot = kernel(function movingSlot(
  x: Tensor<u32, [Sym<"m">, 64]>,
  y: Tensor<u32, [Sym<"m">, 32]>,
) {
  for (let b = 0; b < x.shape[0]; b++) {
    const ring = shared("u32", [2, 32]);
    const slot = local("i32", [32]);
    for (let t0 = 0; t0 < 32; t0++) slot[t0] = 0;
    for (let c = 0; c < 2; c++) {
      for (let t = 0; t < 32; t++) {
        copyAsync(ring[slot[t]][t], x[b][c * 32 + t]);
        slot[t] = 1 - slot[t];
      }
      commitAsync();
    }
    waitAsync(0);
    for (let t2 = 0; t2 < 32; t2++) y[b][t2] = ring[0][(t2 + 1) % 32] + ring[1][(t2 + 1) % 32] * 2;
  }
});

function copyScheduled(def: KernelDef, target: Target): PrimFunc {
  const s = new Schedule(specialize(lowerKernel(def), { m: M }));
  s.bind("b", "blockIdx.x");
  s.bind("t", "threadIdx.x");
  s.bind("t2", "threadIdx.x");
  s.vectorize("v");
  return lowerToDevice(s.func, target);
}

describe("copyAsync", () => {
  it("lowers copies, commits and waits as statements", () => {
    const text = printFunc(lowerKernel(stagedNeighbourSums));
    expect(text).toContain("copyAsync(ring[p][tp][vp], x[b][(p * 32 + tp) * 4 + vp]);");
    expect(text).toContain("copyAsync(ring[c % 2][t2][v2], x[b][((c + 2) * 32 + t2) * 4 + v2]);");
    expect(text.match(/^\s*commitAsync\(\);$/gm)).toHaveLength(2);
    expect(text.match(/^\s*waitAsync\(1\);$/gm)).toHaveLength(1);
    // The module constant EARLY, replaced: one more group may stay in flight.
    expect(printFunc(lowerKernel(early))).toMatch(/^\s*waitAsync\(2\);$/m);
  });

  it("round-trips through the IR's JSON form (libraries store kernels' reference IR)", () => {
    for (const f of [lowerKernel(stagedNeighbourSums), lowerKernel(early), staged(128 * 5, TARGETS.sm_90)]) {
      const back = funcFromJson(JSON.parse(JSON.stringify(funcToJson(f))));
      expect(printFunc(back)).toBe(printFunc(f));
      expect(printFunc(back)).toContain("copyAsync(");
    }
  });

  it("sums every chunk on the CPU, copies landing at once", () => {
    for (const k of KS) {
      const a = stagedArgs(k);
      cpuKernel(stagedNeighbourSums)(a as never);
      expect(values(a.y!), `k = ${k}`).toEqual(expected(a.x!, k));
      // Waiting too little changes nothing where copies land at once.
      const e = stagedArgs(k);
      cpuKernel(early)(e as never);
      expect(values(e.y!), `k = ${k}`).toEqual(expected(e.x!, k));
    }
    // The sums wrap: some exceed what a u32 holds before the wrap.
    const a = stagedArgs(128 * 5);
    const xs = values(a.x!);
    expect(xs.slice(0, 4 * 32 * 5).some((v) => v > 2 ** 31)).toBe(true);
  });

  it("gives the CPU reference's results on the device emulation, and stale words where a wait is too early", () => {
    for (const target of [TARGETS.sm_90, TARGETS.gfx1100, TARGETS.vulkan])
      for (const k of KS) {
        const a = stagedArgs(k);
        cpuDeviceKernel(staged(k, target))(a as never);
        expect(values(a.y!), `${target.name}, k = ${k}`).toEqual(expected(a.x!, k));
      }
    for (const k of KS) {
      const e = stagedArgs(k);
      cpuDeviceKernel(staged(k, TARGETS.sm_90, early))(e as never);
      const want = expected(e.x!, k);
      const got = values(e.y!);
      expect(got, `k = ${k}`).not.toEqual(want);
      // The last chunk read is the one read before it landed: its words are shared memory's fill.
      expect(got.every((v, i) => v !== want[i])).toBe(true);
    }
    // One chunk: every word read before it landed is 0x5a5a5a5a.
    const one = stagedArgs(128);
    cpuDeviceKernel(staged(128, TARGETS.sm_90, early))(one as never);
    expect(values(one.y!)).toEqual(new Array(M * 32).fill((0x5a5a5a5a * 4) >>> 0));
  });

  it("puts a barrier after each wait before the ring's reads, and before the refill", () => {
    const l = lines(staged(128 * 5, TARGETS.sm_90));
    // The prologue: two copies, one commit each, no barrier between them.
    const loopP = l.indexOf("for (let p = 0; p < 2; p++) {");
    const loopC = l.indexOf("for (let c = 0; c < 5; c++) {");
    expect(loopP).toBeGreaterThan(0);
    expect(loopC).toBeGreaterThan(loopP);
    const prologue = l.slice(loopP, loopC);
    expect(prologue.filter((x) => x.startsWith("copyAsync(ring["))).toHaveLength(1);
    expect(prologue).toContain("commitAsync();");
    expect(prologue.filter((x) => x === "syncThreads();")).toEqual([]);
    expect(l.slice(0, loopC).filter((x) => x === "syncThreads();")).toEqual([]);
    // The main loop: wait, barrier, reads; barrier, refill; commit.
    const body = l.slice(loopC);
    const wait = body.indexOf("waitAsync(1);");
    const read = body.findIndex((x) => /^acc\[0\] = acc\[0\] \+ ring\[/.test(x));
    const refill = body.findIndex((x) => x.startsWith("copyAsync(ring["));
    expect(wait).toBeGreaterThan(0);
    expect(read).toBeGreaterThan(wait);
    expect(refill).toBeGreaterThan(read);
    expect(body.slice(wait, read).filter((x) => x === "syncThreads();")).toHaveLength(1);
    expect(body.slice(read, refill).filter((x) => x === "syncThreads();")).toHaveLength(1);
    expect(body.slice(read, refill)).toContain("if (c + 2 < 5) {");
    expect(body.slice(refill)).toContain("commitAsync();");
    expect(body.filter((x) => x === "syncThreads();")).toHaveLength(2);
    expect(printFunc(staged(128 * 5, TARGETS.sm_90))).toContain(
      [
        "    waitAsync(1);",
        "    const t1 = thread_id(0);",
        "    syncThreads();",
        "    for (let v1 = 0; v1 < 4; v1++) {",
      ].join("\n"),
    );
    // One chunk: the guarded prologue copy, then the wait and the barrier before the reads.
    const one = lines(staged(128, TARGETS.sm_90));
    const w = one.indexOf("waitAsync(1);");
    const r = one.findIndex((x) => /ring\[/.test(x) && !x.startsWith("copyAsync("));
    expect(w).toBeGreaterThan(0);
    expect(one.slice(w, r)).toContain("syncThreads();");
    expect(one.slice(0, w)).not.toContain("syncThreads();");
  });

  it.skipIf(llvmMissing !== "")(
    "copies with cp.async on NVIDIA sm_80+, with plain loads and stores on AMD",
    () => {
      for (const arch of ["sm_90", "sm_80"] as const) {
        const t = { kind: "nvptx", arch } as const;
        const ptx = compileLLVM(renderLLVM(staged(128 * 5, TARGETS[arch]), t).text, t).ptx!;
        // Copies of 16 bytes a thread: the prologue's and the refill's (LLVM may unroll the loops).
        const copies = ptx.match(/cp\.async\.cg\.shared\.global \[[^\]]+\], \[[^\]]+\], 16;/g) ?? [];
        expect(copies.length, arch).toBeGreaterThanOrEqual(2);
        // No copy is left a plain vector load of x (before sm_80 they are: ld.global.v4.u32).
        expect(ptx, arch).not.toMatch(/ld\.global(\.nc)?\.v4\.u32/);
        expect(ptx).not.toMatch(/cp\.async\.ca/);
        expect(ptx).toMatch(/cp\.async\.commit_group;/);
        expect(ptx).toMatch(/cp\.async\.wait_group 1;/);
        // Each wait before its barrier.
        const order = ptx
          .split("\n")
          .map((l) => l.trim())
          .filter((l) => /^(bar\.sync|cp\.async\.wait_group)/.test(l));
        expect(order.indexOf("cp.async.wait_group 1;")).toBeLessThan(
          order.findIndex((x) => x.startsWith("bar.sync")),
        );
        if (hasTool("ptxas")) {
          const dir = mkdtempSync(join(tmpdir(), "tkc-async-"));
          writeFileSync(join(dir, "k.ptx"), ptx);
          const r = run("ptxas", [`-arch=${arch}`, join(dir, "k.ptx"), "-o", "/dev/null"]);
          rmSync(dir, { recursive: true, force: true });
          expect(r.status, `${arch}: ${r.out}`).toBe(0);
        }
      }
      // The one-chunk kernel too (its prologue copy under a guard).
      const sm90 = { kind: "nvptx", arch: "sm_90" } as const;
      const guarded = compileLLVM(renderLLVM(staged(128, TARGETS.sm_90), sm90).text, sm90).ptx!;
      expect(guarded).toMatch(/cp\.async\.cg\.shared\.global/);
      const gfx = { kind: "amdgcn", arch: "gfx1100" } as const;
      const amd = renderLLVM(staged(128 * 5, TARGETS.gfx1100), gfx).text;
      expect(amd).not.toMatch(/cp\.async/);
      expect(amd).toMatch(/load <4 x i32>, ptr addrspace\(1\)|load i32, ptr addrspace\(1\)/);
      expect(amd).toMatch(/store (<4 x i32>|i32) %\w+, ptr addrspace\(3\)/);
      expect(compileLLVM(amd, gfx).object?.length).toBeGreaterThan(0);
    },
  );

  it("renders valid SPIR-V", () => {
    for (const k of KS) {
      const spv = renderSpirv(staged(k, TARGETS.vulkan), { env: "vulkan1.2" });
      validate(spv.words, "vulkan1.2");
      // Barriers only where the barriers pass put them: two in the main loop.
      if (k === 128 * 5) expect(spv.text.match(/OpControlBarrier/g)).toHaveLength(2);
    }
  });

  it.skipIf(!rt)("sums every chunk on Vulkan", () => {
    for (const k of KS) {
      const a = stagedArgs(k);
      const got = vulkanKernel(rt!, staged(k, TARGETS.vulkan), { validate: true })(a as never) as Args;
      expect(values(got.y!), `k = ${k}`).toEqual(expected(a.x!, k));
    }
  });

  it("refuses to render scheduled IR whose threads share memory (only the lowering orders them)", () => {
    const s = new Schedule(specialize(lowerKernel(movingSlot), { m: M }));
    s.bind("b", "blockIdx.x");
    for (const t of ["t0", "t", "t2"]) s.bind(t, "threadIdx.x");
    expect(() => renderLLVM(s.func, { kind: "nvptx", arch: "sm_90" })).toThrow(
      /kernel movingSlot is scheduled loop IR whose threads share ring: lower it first \(lowerToDevice\)/,
    );
    expect(() =>
      renderLLVM(lowerToDevice(s.func, TARGETS.sm_90), { kind: "nvptx", arch: "sm_90" }),
    ).not.toThrow();
  });

  it("refuses a vectorized copy whose lanes are not consecutive from a multiple of the lane count", () => {
    const sm90 = { kind: "nvptx", arch: "sm_90" } as const;
    for (const def of [broadcastCopy, offsetCopy])
      expect(() => renderLLVM(copyScheduled(def, TARGETS.sm_90), sm90), def.name).toThrow(
        /copyAsync over vectorized loop v needs x's elements consecutive from a multiple of 4/,
      );
    // A stride the schedule refuses already, before any renderer sees it.
    expect(() => copyScheduled(stridedCopy, TARGETS.sm_90)).toThrow(
      /vectorizing a non-unit stride access to x\[b\]\[t \* 8 \+ v \* 2\]: v may only step the last index, by 1/,
    );
    // Serial (unvectorized) copies of 4 bytes each are fine: cp.async.ca, one word a thread.
    const serial = new Schedule(specialize(lowerKernel(stridedCopy), { m: M }));
    serial.bind("b", "blockIdx.x");
    serial.bind("t", "threadIdx.x");
    serial.bind("t2", "threadIdx.x");
    const text = renderLLVM(lowerToDevice(serial.func, TARGETS.sm_90), sm90).text;
    expect(text).toMatch(/call void @llvm\.nvvm\.cp\.async\.ca\.shared\.global\.4\(/);
    expect(text).not.toMatch(/cp\.async\.cg/);
    // Where copies are plain loads and stores they need no such order: the emulation agrees with the CPU.
    for (const def of [broadcastCopy, offsetCopy]) {
      const x = Array.from({ length: M * 256 }, (_, i) => (i * 7919) >>> 0);
      const want = { x: ndarray("u32", [M, 256], x), y: ndarray("u32", [M, 32], new Array(M * 32).fill(0)) };
      cpuKernel(def)(want as never);
      const got = { x: ndarray("u32", [M, 256], x), y: ndarray("u32", [M, 32], new Array(M * 32).fill(0)) };
      cpuDeviceKernel(copyScheduled(def, TARGETS.gfx1100))(got as never);
      expect(values(got.y)).toEqual(values(want.y));
      const off = def === broadcastCopy ? (t: number) => t : (t: number) => t * 4 + 4;
      expect(values(want.y)).toEqual(
        Array.from({ length: M * 32 }, (_, i) => x[Math.floor(i / 32) * 256 + off(((i % 32) + 1) % 32)]),
      );
    }
  });
});

describe("copyAsync, regressions", () => {
  it("refuses a vectorized loop that holds a copy and another store (lanes 1.. of the store were lost)", () => {
    const s = new Schedule(specialize(lowerKernel(copyAndStore), { m: M }));
    s.bind("b", "blockIdx.x");
    s.bind("t", "threadIdx.x");
    s.bind("t2", "threadIdx.x");
    s.vectorize("v");
    const sm90 = { kind: "nvptx", arch: "sm_90" } as const;
    expect(() => renderLLVM(lowerToDevice(s.func, TARGETS.sm_90), sm90)).toThrow(
      /vectorized loop v copies asynchronously .* may hold that copyAsync and lets only/,
    );
  });

  it("lands a copy where it was addressed when issued, on the device emulation", () => {
    const s = new Schedule(specialize(lowerKernel(movingSlot), { m: M }));
    s.bind("b", "blockIdx.x");
    for (const t of ["t0", "t", "t2"]) s.bind(t, "threadIdx.x");
    const x = Array.from({ length: M * 64 }, (_, i) => (i * 2654435761) >>> 0);
    const want = Array.from({ length: M * 32 }, (_, i) => {
      const [b, t] = [Math.floor(i / 32), ((i % 32) + 1) % 32];
      return (x[b * 64 + t]! + x[b * 64 + 32 + t]! * 2) >>> 0;
    });
    const ref = { x: ndarray("u32", [M, 64], x), y: ndarray("u32", [M, 32], new Array(M * 32).fill(0)) };
    cpuKernel(movingSlot)(ref as never);
    expect(values(ref.y)).toEqual(want);
    const got = { x: ndarray("u32", [M, 64], x), y: ndarray("u32", [M, 32], new Array(M * 32).fill(0)) };
    cpuDeviceKernel(lowerToDevice(s.func, TARGETS.sm_90))(got as never);
    expect(values(got.y)).toEqual(want);
  });
});

describe("copyAsync errors name the place and the fix", () => {
  const cases: [string, () => unknown, RegExp][] = [
    [
      "into a local tensor",
      () =>
        lowerKernel(
          kernel(function k(x: Tensor<u32, [4]>, y: Tensor<u32, [4]>) {
            const l = local("u32", [4]);
            for (let i = 0; i < 4; i++) copyAsync(l[i], x[i]);
            commitAsync();
            waitAsync(0);
            for (let i = 0; i < 4; i++) y[i] = l[i];
          }),
        ),
      /async_copy\.test\.ts:\d+:\d+: copyAsync copies into one element of a shared tensor.*declare const tile = shared\("u32", \[\.\.\.\]\)/s,
    ],
    [
      "from a shared tensor",
      () =>
        lowerKernel(
          kernel(function k(y: Tensor<u32, [4]>) {
            const a = shared("u32", [4]);
            const b = shared("u32", [4]);
            for (let i = 0; i < 4; i++) a[i] = y[i];
            for (let i = 0; i < 4; i++) copyAsync(b[i], a[i]);
            commitAsync();
            waitAsync(0);
            for (let i = 0; i < 4; i++) y[i] = b[i];
          }),
        ),
      /async_copy\.test\.ts:\d+:\d+: copyAsync copies from one element of a kernel's tensor parameter.*copyAsync\(tile\[i\], w\[row\]\[col\]\)/s,
    ],
    [
      "from a local tensor",
      () =>
        lowerKernel(
          kernel(function k(y: Tensor<u32, [4]>) {
            const a = local("u32", [4]);
            const b = shared("u32", [4]);
            for (let i = 0; i < 4; i++) a[i] = y[i];
            for (let i = 0; i < 4; i++) copyAsync(b[i], a[i]);
          }),
        ),
      /async_copy\.test\.ts:\d+:\d+: copyAsync copies from one element of a kernel's tensor parameter/,
    ],
    [
      "with mismatched dtypes",
      () =>
        lowerKernel(
          kernel(function k(x: Tensor<u32, [4]>, y: Tensor<f32, [4]>) {
            const tile = shared("f32", [4]);
            // @ts-expect-error: the DSL's types already refuse it; the frontend says why.
            for (let i = 0; i < 4; i++) copyAsync(tile[i], x[i]);
            commitAsync();
            waitAsync(0);
            for (let i = 0; i < 4; i++) y[i] = tile[i];
          }),
        ),
      /async_copy\.test\.ts:\d+:\d+: copyAsync copies bits unchanged: tile holds f32 but x holds u32.*declare tile as u32/s,
    ],
    [
      "waiting for a non-constant count",
      () =>
        lowerKernel(
          kernel(function k(x: Tensor<u32, [4]>, y: Tensor<u32, [4]>) {
            const tile = shared("u32", [4]);
            for (let i = 0; i < 4; i++) {
              copyAsync(tile[i], x[i]);
              commitAsync();
              waitAsync(i);
            }
            for (let i = 0; i < 4; i++) y[i] = tile[i];
          }),
        ),
      /async_copy\.test\.ts:\d+:\d+: waitAsync's count must be a non-negative integer constant.*hint: commit a group in every iteration/s,
    ],
    [
      "waiting for a negative count",
      () =>
        lowerKernel(
          kernel(function k(x: Tensor<u32, [4]>, y: Tensor<u32, [4]>) {
            const tile = shared("u32", [4]);
            for (let i = 0; i < 4; i++) copyAsync(tile[i], x[i]);
            commitAsync();
            waitAsync(1 - 2);
            for (let i = 0; i < 4; i++) y[i] = tile[i];
          }),
        ),
      /async_copy\.test\.ts:\d+:\d+: waitAsync's count must be a non-negative integer constant.*commit a group in every iteration \(commitAsync\(\), empty where nothing was copied\) and wait with stages - 1/s,
    ],
    [
      "as a value",
      () =>
        lowerKernel(
          kernel(function k(x: Tensor<u32, [4]>, y: Tensor<u32, [4]>) {
            const tile = shared("u32", [4]);
            // @ts-expect-error: copyAsync has no value.
            for (let i = 0; i < 4; i++) y[i] = copyAsync(tile[i], x[i]);
          }),
        ),
      /async_copy\.test\.ts:\d+:\d+: copyAsync\(\.\.\.\) has no value.*call it as a statement: copyAsync\(\.\.\.\);/s,
    ],
  ];
  for (const [name, f, message] of cases) it(name, () => expect(f).toThrow(message));
});
