import { describe, expect, it } from "vitest";
import { cpuDeviceKernel } from "../../backends/cpu/device.ts";
import { ndarray, toNumbers } from "../../dsl/ndarray.ts";
import {
  allocate,
  barrier,
  binary,
  buffer,
  call,
  constant,
  forLoop,
  ifThen,
  letStmt,
  load,
  seq,
  store,
  variable,
} from "../../lower/ir/build.ts";
import type { Expr, LaunchConfig, PrimFunc, Stmt } from "../../lower/ir/nodes.ts";
import { blockIndex, threadIndex } from "../../lower/passes/device_ops.ts";

const c = (x: number) => constant(x, "i32");
const n = variable("n");
const x = buffer("x", "f32", [n]);
const y = buffer("y", "f32", [n]);
const t = variable("t");
const b = variable("b");

/** A device function over x, y: f32[n] with blocks of `block` threads and warps of `warp` lanes. */
function device(
  body: Stmt,
  block: number,
  warp: number,
  grid: Expr = binary("floordiv", binary("+", n, c(block - 1)), c(block)),
): PrimFunc {
  const launch: LaunchConfig = {
    grid: [grid, c(1), c(1)],
    block: [block, 1, 1],
    warpSize: warp,
    sharedBytes: 0,
  };
  return {
    kind: "func",
    name: "dev",
    params: [
      { kind: "buffer", buffer: x },
      { kind: "buffer", buffer: y },
    ],
    symbols: [n],
    body: letStmt(b, blockIndex(0), letStmt(t, threadIndex(0), body)),
    attrs: {},
    launch,
  };
}

const run = (f: PrimFunc, values: number[]): number[] => {
  const args = {
    x: ndarray("f32", [values.length], values),
    y: ndarray(
      "f32",
      [values.length],
      values.map(() => 0),
    ),
  };
  cpuDeviceKernel(f)(args);
  return Array.from(toNumbers(args.y));
};
const iota = (k: number): number[] => Array.from({ length: k }, (_, i) => i + 1);
const gi = (): Expr => binary("+", binary("*", b, c(8)), t);

/** Each block of 8 reverses its elements through shared memory. */
function reverse(withBarrier: boolean): PrimFunc {
  const sh = buffer("sh", "f32", [c(8)], "shared");
  const body = seq([
    store(sh, [t], load(x, [gi()])),
    ...(withBarrier ? [barrier()] : []),
    store(y, [gi()], load(sh, [binary("-", c(7), t)])),
  ]);
  return device(allocate(sh, body), 8, 32);
}

/** y[i] = the sum of x over the lanes of i's warp, by a butterfly of shuffles. */
function warpSum(block: number, warp: number, masks: number[]): PrimFunc {
  const p = buffer("p", "f32", [c(1)], "local");
  const pv = load(p, [c(0)]);
  const steps = masks.map((m) =>
    store(p, [c(0)], binary("+", pv, call("shfl_xor", [pv, c(m), c(warp)], "f32"))),
  );
  return device(
    allocate(p, seq([store(p, [c(0)], load(x, [t])), ...steps, store(y, [t], pv)])),
    block,
    warp,
    c(1),
  );
}

describe("cpuDeviceKernel: the device model on the CPU", () => {
  it("shares memory within a block and orders it with barriers", () => {
    expect(run(reverse(true), iota(24))).toEqual([
      8, 7, 6, 5, 4, 3, 2, 1, 16, 15, 14, 13, 12, 11, 10, 9, 24, 23, 22, 21, 20, 19, 18, 17,
    ]);
    // Without the barrier, early threads read shared memory nobody wrote yet: NaN, not a plausible 0.
    expect(run(reverse(false), iota(8)).some(Number.isNaN)).toBe(true);
  });

  it("exchanges values between the lanes of each warp (shfl_xor)", () => {
    // Two warps of 8 lanes: each lane ends with its warp's sum.
    expect(run(warpSum(16, 8, [4, 2, 1]), iota(16))).toEqual([...Array(8).fill(36), ...Array(8).fill(100)]);
    // One 16-lane block in a 32-lane warp: lanes past the block have no value, so lane ^ 16 gives a lane its own.
    expect(run(warpSum(16, 32, [16]), iota(16))).toEqual(iota(16).map((v) => 2 * v));
  });

  it("orders the lanes of a warp at syncWarp()", () => {
    // Lanes swap neighbours through shared memory; warps of 8 lanes, so a warp barrier suffices.
    const sh = buffer("sh", "f32", [c(8)], "shared");
    const swap = seq([
      store(sh, [t], load(x, [t])),
      barrier("warp"),
      store(y, [t], load(sh, [binary("^", t, c(1))])),
    ]);
    expect(run(device(allocate(sh, swap), 8, 8, c(1)), iota(8))).toEqual([2, 1, 4, 3, 6, 5, 8, 7]);
  });

  it("reports barriers and shuffles that not every thread reaches", () => {
    const lonely = device(ifThen(binary("<", t, c(4)), barrier()), 8, 32, c(1));
    expect(() => run(lonely, iota(8))).toThrow(
      "tkc cpu device: a barrier was reached by 4 of 8 threads of the block; the others had finished",
    );
    const p = buffer("p", "f32", [c(1)], "local");
    const half = device(
      allocate(
        p,
        ifThen(
          binary("<", t, c(4)),
          store(p, [c(0)], call("shfl_xor", [load(p, [c(0)]), c(1), c(8)], "f32")),
        ),
      ),
      8,
      8,
      c(1),
    );
    expect(() => run(half, iota(8))).toThrow(
      "tkc cpu device: warp 0: 4 of 8 lanes reached a shuffle or warp barrier, the others did not",
    );
  });

  it("runs loops still bound to threads (a stage before thread_guards), skipping threads past their extent", () => {
    const tx = variable("tx");
    const f = device(
      forLoop(
        tx,
        c(0),
        c(5),
        store(y, [binary("+", binary("*", b, c(8)), tx)], c(9)),
        "thread",
        "threadIdx.x",
      ),
      8,
      32,
    );
    expect(run(f, iota(16))).toEqual([9, 9, 9, 9, 9, 0, 0, 0, 9, 9, 9, 9, 9, 0, 0, 0]);
  });

  it("addresses N-D parameters through one flat index, bounds-checked", () => {
    const m = variable("m");
    const a = buffer("a", "f32", [m, c(3)]);
    const f: PrimFunc = {
      kind: "func",
      name: "flat",
      params: [{ kind: "buffer", buffer: a }],
      symbols: [m],
      body: letStmt(b, blockIndex(0), store(a, [binary("+", binary("*", b, c(3)), c(2))], c(7))),
      attrs: {},
      launch: { grid: [m, c(1), c(1)], block: [1, 1, 1], warpSize: 32, sharedBytes: 0 },
    };
    const arr = ndarray("f32", [2, 3], [0, 0, 0, 0, 0, 0]);
    cpuDeviceKernel(f)({ a: arr });
    expect(Array.from(toNumbers(arr))).toEqual([0, 0, 7, 0, 0, 7]);
    const oob = { ...f, body: store(a, [c(6)], c(1)) };
    expect(() => cpuDeviceKernel(oob)({ a: arr })).toThrow(
      /out-of-bounds access a: index 6 in dimension 0 is outside \[0, 6\)/,
    );
    expect(() => cpuDeviceKernel(f)({})).toThrow(/missing argument a/);
  });

  it("renders readable JavaScript: one generator per thread, yields at barriers", () => {
    const src = cpuDeviceKernel(reverse(true)).source;
    expect(src).toContain("return function* (tid) {");
    expect(src).toContain("yield null;");
    expect(src).toMatch(/const sh_\d+ = new Float32Array\(8\)\.fill\(NaN\);/);
  });
});
