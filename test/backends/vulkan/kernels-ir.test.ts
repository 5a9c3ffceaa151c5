// Kernels rendered to SPIR-V by backends/spirv/render.ts, run on the machine's Vulkan device
// (lavapipe here) through backends/vulkan/kernel.ts and checked against the CPU backend on random
// inputs, with outputs poisoned beforehand: every GPU example with its schedule (as scheduled IR
// and as device IR after the lowering passes), shared memory with barriers, subgroup shuffles,
// f16 math, and integer/bf16/u8/i8/bool/i64 semantics.
import { describe, expect, it } from "vitest";
import { cpuKernel } from "../../../backends/cpu/runtime.ts";
import { cloneArgs, compareResults, randomArgs, randomArray, rng } from "../../../backends/check.ts";
import { emptyTensor, fromDevice, toDevice, vulkanKernel } from "../../../backends/vulkan/kernel.ts";
import { optionalVulkanRuntime } from "../../helpers/vulkan.ts";
import {
  abs,
  bf16,
  erf,
  exp,
  f16,
  f32,
  floor,
  floordiv,
  floormod,
  fma,
  i32,
  i8,
  idiv,
  kernel,
  max,
  min,
  round,
  select,
  shared,
  sin,
  sqrt,
  tanh,
  u32,
  u8,
  type Sym,
  type Tensor,
} from "../../../dsl/index.ts";
import type { KernelDef } from "../../../dsl/kernel.ts";
import { GPU_EXAMPLES } from "../../../examples/gpu-schedules.ts";
import { unloweredSharing } from "../../../lower/ir/launch.ts";
import * as B from "../../../lower/ir/build.ts";
import type { PrimFunc } from "../../../lower/ir/nodes.ts";
import { lowerToDevice } from "../../../lower/passes/pipeline.ts";
import { TARGETS } from "../../../lower/passes/target.ts";
import { Schedule } from "../../../lower/schedule/index.ts";

const rt = optionalVulkanRuntime("the Vulkan kernel tests");

/** Runs f on Vulkan and kernel `ref` on the CPU with the same random inputs; returns the worst error. */
function check(
  ref: KernelDef | PrimFunc,
  f: PrimFunc,
  symbols: Readonly<Record<string, number>>,
  opts: { tol: number; scalars?: Readonly<Record<string, number>>; seed?: number },
): number {
  const cpu = cpuKernel(ref);
  const gpu = vulkanKernel(rt!, f, { validate: true });
  const args = randomArgs(cpu.func, symbols, opts.seed ?? 17, opts.scalars ?? {});
  const expected = cloneArgs(args);
  cpu(expected);
  const cmp = compareResults(expected, gpu(args), opts.tol);
  expect(cmp.mismatches, `${f.name} ${JSON.stringify(symbols)}`).toEqual([]);
  return cmp.worst;
}

/** One element per thread along the first loop of `block` (like examples/gpu-schedules.ts). */
function elementwise(k: KernelDef, block: string, threads: number): PrimFunc {
  const s = Schedule.of(k);
  const [bo, ti] = s.split(s.getLoops(block)[0]!, [null, threads]);
  s.bind(bo!, "blockIdx.x");
  s.bind(ti!, "threadIdx.x");
  return s.func;
}

describe.skipIf(!rt)("GPU examples on Vulkan", () => {
  for (const [name, ex] of Object.entries(GPU_EXAMPLES)) {
    it(`${name}: scheduled IR and device IR match the CPU backend`, () => {
      const scheduled = ex.schedule().func;
      const device = lowerToDevice(scheduled, { ...TARGETS.vulkan, warpSize: rt!.device.subgroup.size });
      // Threads that share memory need the lowering's barriers: their scheduled IR is refused.
      const shares = unloweredSharing(scheduled) !== undefined;
      if (shares) expect(() => vulkanKernel(rt!, scheduled)).toThrow(/lower it first \(lowerToDevice\)/);
      ex.cases.forEach((symbols, i) => {
        for (const f of shares ? [device] : [scheduled, device])
          check(ex.kernel, f, symbols, {
            tol: ex.tol,
            seed: 100 + i,
            ...(ex.scalars ? { scalars: ex.scalars } : {}),
          });
      });
    });
  }
});

/** A transpose staged through a padded shared tile: the lowering inserts the barrier. */
const transposeShared = kernel(function transposeShared(
  x: Tensor<f32, [Sym<"m">, Sym<"n">]>,
  y: Tensor<f32, [Sym<"n">, Sym<"m">]>,
) {
  for (let by = 0; by < idiv(x.shape[0] + 15, 16); by++)
    for (let bx = 0; bx < idiv(x.shape[1] + 15, 16); bx++) {
      const t = shared("f32", [16, 17]);
      for (let ty = 0; ty < 16; ty++)
        for (let tx = 0; tx < 16; tx++)
          t[ty][tx] =
            by * 16 + ty < x.shape[0] && bx * 16 + tx < x.shape[1] ? x[by * 16 + ty][bx * 16 + tx] : f32(0);
      for (let ty2 = 0; ty2 < 16; ty2++)
        for (let tx2 = 0; tx2 < 16; tx2++)
          if (bx * 16 + ty2 < x.shape[1] && by * 16 + tx2 < x.shape[0])
            y[bx * 16 + ty2][by * 16 + tx2] = t[tx2][ty2];
    }
});

/** Row sums: the reduction loop bound to threadIdx.x becomes shuffles + shared memory. */
const rowSum = kernel(function rowSum(x: Tensor<f32, [Sym<"m">, Sym<"n">]>, y: Tensor<f32, [Sym<"m">]>) {
  for (let i = 0; i < x.shape[0]; i++) {
    let s = f32(0);
    for (let k = 0; k < x.shape[1]; k++) s += x[i][k];
    y[i] = s;
  }
});

/** f16 arithmetic (native, rounded per operation) and f16 transcendentals (through f32). */
const f16Math = kernel(function f16Math(
  x: Tensor<f16, [Sym<"n">]>,
  w: Tensor<f16, [Sym<"n">]>,
  y: Tensor<f16, [Sym<"n">, 4]>,
  q: Tensor<u8, [Sym<"n">]>,
) {
  for (let i = 0; i < x.shape[0]; i++) {
    const v = x[i];
    y[i][0] = v * w[i] + f16(0.5);
    y[i][1] = max(exp(v), tanh(w[i])) / (abs(v) + f16(1));
    y[i][2] = fma(v, w[i], sqrt(abs(w[i])));
    y[i][3] = erf(v) + sin(w[i] * f16(10)) + floor(v * f16(8)) - round(w[i] * f16(4));
    q[i] = u8(v * f16(400)); // saturates at 0 and 255
  }
});

/** Integer semantics, u8/i8/bf16 storage, saturating float-to-int casts (NaN -> 0). */
const mixedOps = kernel(function mixedOps(
  a: Tensor<i32, [Sym<"n">]>,
  b: Tensor<i32, [Sym<"n">]>,
  u: Tensor<u8, [Sym<"n">]>,
  h: Tensor<bf16, [Sym<"n">]>,
  f: Tensor<f32, [Sym<"n">]>,
  oi: Tensor<i32, [Sym<"n">, 9]>,
  oh: Tensor<bf16, [Sym<"n">]>,
  o8: Tensor<i8, [Sym<"n">]>,
  scale: f32,
) {
  for (let i = 0; i < a.shape[0]; i++) {
    const d = select(b[i] == 0, i32(7), b[i]);
    oi[i][0] = floordiv(a[i], d);
    oi[i][1] = floormod(a[i], d);
    oi[i][2] = a[i] % d;
    oi[i][3] = idiv(a[i], d);
    oi[i][4] = (a[i] << 3) ^ (a[i] >> 2);
    oi[i][5] = max(a[i], b[i]) - min(a[i], b[i]) + abs(a[i]);
    oi[i][6] = i32(u[i]) * 3 + i32(u32(a[i]) >> u32(28));
    oi[i][7] = i32(f[i] * scale);
    oi[i][8] = i32(sqrt(f[i]) * scale) + select(f[i] > 0 && u[i] > 128, i32(1), i32(-1));
    oh[i] = h[i] * bf16(3) + bf16(f[i]);
    o8[i] = i8(f[i] * 300);
  }
});

/**
 * bool buffers, i64 buffers and scalar parameters of every push-constant conversion (bool, f16,
 * i8, i64 at an 8-byte offset), built as IR: the DSL has no bool tensors.
 */
function boolI64(): PrimFunc {
  const n = B.variable("n");
  const p = B.buffer("p", "bool", [n]);
  const x = B.buffer("x", "f32", [n]);
  const o = B.buffer("o", "bool", [n]);
  const z = B.buffer("z", "i64", [n]);
  const [flag, h, k, big] = [
    B.variable("flag", "bool"),
    B.variable("h", "f16"),
    B.variable("k", "i8"),
    B.variable("big", "i64"),
  ];
  const [bo, ti] = [B.variable("bo"), B.variable("ti")];
  const i = B.add(B.binary("*", bo, B.i32c(64)), ti);
  const body = B.ifThen(
    B.binary("<", i, n),
    B.seq([
      B.store(
        o,
        [i],
        // (The CPU backend binds a bool scalar as a number, so `flag` appears only under &&.)
        B.binary(
          "||",
          B.binary("!=", B.load(p, [i]), B.binary(">", B.load(x, [i]), B.constant(0, "f32"))),
          B.binary("&&", flag, B.binary(">", B.load(x, [i]), B.cast("f32", h))),
        ),
      ),
      B.store(
        z,
        [i],
        B.binary(
          "+",
          B.binary("+", B.cast("i64", B.binary("*", B.load(x, [i]), B.constant(1e6, "f32"))), big),
          B.cast("i64", k),
        ),
      ),
    ]),
  );
  const grid = B.binary("floordiv", B.binary("+", n, B.i32c(63)), B.i32c(64));
  return {
    kind: "func",
    name: "boolI64",
    params: [
      ...[p, x, o, z].map((buffer) => ({ kind: "buffer" as const, buffer })),
      ...[flag, h, k, big].map((v) => ({ kind: "scalar" as const, v })),
    ],
    symbols: [n],
    body: B.forLoop(
      bo,
      B.i32c(0),
      grid,
      B.forLoop(ti, B.i32c(0), B.i32c(64), body, "thread", "threadIdx.x"),
      "thread",
      "blockIdx.x",
    ),
    attrs: {},
  };
}

describe.skipIf(!rt)("kernels written for these tests", () => {
  it("stages a transpose through shared memory with a barrier", () => {
    const s = Schedule.of(transposeShared);
    const [by, bx, ty, tx] = s.getLoops("t");
    const [, , ty2, tx2] = s.getLoops("y");
    s.bind(by!, "blockIdx.y");
    s.bind(bx!, "blockIdx.x");
    s.bind(ty!, "threadIdx.y");
    s.bind(tx!, "threadIdx.x");
    s.bind(ty2!, "threadIdx.y");
    s.bind(tx2!, "threadIdx.x");
    const device = lowerToDevice(s.func, TARGETS.vulkan);
    const text = vulkanKernel(rt!, device).artifact.text;
    expect(text).toMatch(/OpVariable %_ptr_Workgroup__arr_float_272 Workgroup/);
    expect(text).toContain("OpControlBarrier %uint_2 %uint_2 %uint_264");
    check(transposeShared, device, { m: 37, n: 70 }, { tol: 0 });
  });

  it("reduces rows with subgroup shuffles lowered for the device's subgroup size", () => {
    const s = Schedule.of(rowSum);
    const [i, k] = s.getLoops("s_1");
    const [, ki] = s.split(k!, [null, 32]);
    s.bind(i!, "blockIdx.x");
    s.bind(ki!, "threadIdx.x");
    const device = lowerToDevice(s.func, { ...TARGETS.vulkan, warpSize: rt!.device.subgroup.size });
    expect(vulkanKernel(rt!, device).artifact.text).toContain("OpGroupNonUniformShuffleXor");
    for (const symbols of [
      { m: 13, n: 203 },
      { m: 2, n: 5 },
    ])
      check(rowSum, device, symbols, { tol: 1e-5 });
  });

  it("computes f16 math (native where exact, through f32 otherwise) and saturating casts", () => {
    const f = elementwise(f16Math, "y", 64);
    const text = vulkanKernel(rt!, f).artifact.text;
    expect(text).toContain("OpCapability Float16");
    expect(text).toMatch(/OpFMul %half/);
    check(f16Math, f, { n: 301 }, { tol: 2e-3 });
    check(f16Math, lowerToDevice(f, TARGETS.vulkan), { n: 77 }, { tol: 2e-3 });
  });

  it("matches integer, u8/i8/bf16 and float-to-int semantics exactly", () => {
    const f = elementwise(mixedOps, "oi", 64);
    // scale 3e9: f * scale saturates both ways; sqrt of negatives gives NaN, which converts to 0.
    check(mixedOps, f, { n: 301 }, { tol: 0, scalars: { scale: 3e9 } });
    check(mixedOps, lowerToDevice(f, TARGETS.vulkan), { n: 64 }, { tol: 0, scalars: { scale: 3e9 } });
  });

  it("handles bool and i64 buffers and every kind of push-constant scalar", () => {
    const f = boolI64();
    const k = vulkanKernel(rt!, f);
    const offsets = Object.fromEntries(
      k.artifact.abi.filter((a) => a.kind !== "buffer").map((a) => [a.name, a.offset]),
    );
    expect(offsets).toEqual({ flag: 0, h: 4, k: 8, big: 16, n: 24 });
    expect(k.artifact.pushConstantBytes).toBe(28);
    for (const [flag, big] of [
      [0, -3],
      [1, 2 ** 40],
    ])
      check(f, f, { n: 200 }, { tol: 0, scalars: { flag: flag!, h: 0.375, k: -5, big: big! } });
  });

  it("records several dispatches once and resubmits them (buffers stay on the device)", () => {
    const ex = GPU_EXAMPLES.transpose!;
    const k = vulkanKernel(rt!, ex.schedule().func);
    const xs = randomArray("i32", [37, 70], rng(5));
    const x = toDevice(rt!, xs);
    const y = emptyTensor(rt!, "i32", [70, 37]);
    const z = emptyTensor(rt!, "i32", [37, 70]);
    const rec = rt!.record([k.dispatch({ x, y }), k.dispatch({ x: y, y: z })]);
    try {
      expect(rec.barriers).toBeGreaterThanOrEqual(1); // the second dispatch reads what the first wrote
      for (let rep = 0; rep < 2; rep++) {
        rt!.upload(z.buffer, new Uint8Array(37 * 70 * 4).fill(0xff));
        rt!.submit(rec);
        expect(Array.from(fromDevice(rt!, z).data)).toEqual(Array.from(xs.data));
      }
      const yt = fromDevice(rt!, y).data;
      expect(yt[3 * 37 + 5]).toBe(xs.data[5 * 70 + 3]);
    } finally {
      rt!.freeRecording(rec);
      for (const t of [x, y, z]) rt!.free(t.buffer);
    }
  });

  it("refuses a kernel whose workgroup the device cannot run, naming both", () => {
    const s = Schedule.of(GPU_EXAMPLES.addBroadcast!.kernel);
    const [, j] = s.getLoops("y");
    const [, ji] = s.split(j!, [null, 4096]);
    s.bind(ji!, "threadIdx.x");
    expect(() => vulkanKernel(rt!, s.func)).toThrow(
      /kernel addBroadcast: workgroup 4096x1x1 exceeds maxComputeWorkGroupInvocations/,
    );
  });
});
