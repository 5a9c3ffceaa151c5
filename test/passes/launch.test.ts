import { describe, expect, it } from "vitest";
import { lowerKernel } from "../../lower/frontend/lower.ts";
import { printFunc } from "../../lower/ir/printer.ts";
import { MIN_BLOCKS_PER_SM, launchPass } from "../../lower/passes/launch.ts";
import { TARGETS } from "../../lower/passes/target.ts";
import { Schedule } from "../../lower/schedule/index.ts";
import { bindRaw, expectDeviceMatches, matmulGpu } from "./helpers.ts";
import { loadedBlocks, matmulTiled, namedBlocks, rmsNormRows, scaleRows, twoShapes } from "./kernels.ts";

const header = (f: ReturnType<typeof launchPass>): string => printFunc(f).split("\n")[0]!;

describe("launch (bound inference)", () => {
  it("takes min_blocks_per_sm from a blockIdx loop's annotation, and refuses a value outside 1..32", () => {
    const s = Schedule.of(scaleRows);
    s.bind("i", "blockIdx.y");
    const [jo, ji] = s.split("j", [null, 32]);
    s.bind(jo!, "blockIdx.x");
    s.bind(ji!, "threadIdx.x");
    expect(launchPass(s.func, TARGETS.sm_90).launch!.minBlocksPerSM).toBeUndefined();
    s.annotate("i", MIN_BLOCKS_PER_SM, 2);
    expect(launchPass(s.func, TARGETS.sm_90).launch!.minBlocksPerSM).toBe(2);
    s.annotate("i", MIN_BLOCKS_PER_SM, 0);
    expect(() => launchPass(s.func, TARGETS.sm_90)).toThrow(
      /min_blocks_per_sm must be an integer from 1 to 32, not 0/,
    );
  });

  it("turns block and thread loops into the launch grid and block (golden)", () => {
    expect(header(launchPass(matmulGpu().func, TARGETS.sm_90))).toBe(
      "// launch: grid [idiv(n + 8 - 1, 8), idiv(m + 8 - 1, 8), 1], block [8, 8, 1], warp 32, shared 0 bytes",
    );
    const s = Schedule.of(scaleRows);
    s.bind("i", "blockIdx.y");
    const [jo, ji] = s.split("j", [null, 32]);
    s.bind(jo!, "blockIdx.x");
    s.bind(ji!, "threadIdx.x");
    expect(header(launchPass(s.func, TARGETS.gfx942))).toBe(
      "// launch: grid [floordiv(n + 31, 32), m, 1], block [32, 1, 1], warp 64, shared 0 bytes",
    );
    // The body is unchanged: the loops stay until thread_guards.
    expect(printFunc(launchPass(s.func, TARGETS.gfx942)).split("\n").slice(1).join("\n")).toBe(
      printFunc(s.func),
    );
  });

  it("reads a block count named by a const with it substituted, and refuses a grid read from memory", () => {
    const s = Schedule.of(namedBlocks);
    s.bind("b", "blockIdx.x");
    s.bind("t", "threadIdx.x");
    const f = launchPass(s.func, TARGETS.sm_90);
    expect(header(f)).toBe(
      "// launch: grid [idiv(n + 3, 4), 1, 1], block [4, 1, 1], warp 32, shared 0 bytes",
    );
    expectDeviceMatches(lowerKernel(namedBlocks), f, { n: 13 });
    const loaded = Schedule.of(loadedBlocks);
    loaded.bind("b", "blockIdx.x");
    expect(() => launchPass(loaded.func, TARGETS.sm_90)).toThrow(
      /blockIdx.x's extent n\[0\] depends on n, which is read from memory; the grid may depend only on scalar parameters and shape symbols/,
    );
  });

  it("runs on the device model as the plain kernel (thread loops read the thread index)", () => {
    const s = Schedule.of(scaleRows);
    s.bind("i", "blockIdx.x");
    const [, ji] = s.split("j", [null, 16]);
    s.bind(ji!, "threadIdx.x");
    expectDeviceMatches(lowerKernel(scaleRows), launchPass(s.func, TARGETS.sm_90), { m: 3, n: 37 });
  });

  it("sizes each axis by its widest loop; a kernel with no thread loops runs as one thread", () => {
    const f = launchPass(Schedule.of(rmsNormRows).func, TARGETS.sm_90);
    expect(f.launch!.block).toEqual([1, 1, 1]);
    const s = Schedule.of(rmsNormRows);
    s.bind("i", "blockIdx.x");
    const [kt] = s.split("k", [64, null]);
    s.bind(kt!, "threadIdx.x");
    const [, yt] = s.split("k_1", [null, 16]);
    s.bind(yt!, "threadIdx.x");
    expect(launchPass(s.func, TARGETS.sm_90).launch!.block).toEqual([64, 1, 1]);
  });

  it("refuses what a launch cannot express", () => {
    const base = lowerKernel(matmulTiled);
    // threadIdx extents must be constants.
    expect(() => launchPass(bindRaw(base, "by", "threadIdx.x"), TARGETS.sm_90)).toThrow(
      "tkc lower: launch: loop by (extent idiv(m + 8 - 1, 8)) is bound to threadIdx.x with a symbolic extent; thread extents must be constants",
    );
    // blockIdx inside threadIdx.
    expect(() =>
      launchPass(bindRaw(bindRaw(base, "ty2", "threadIdx.y"), "tx2", "blockIdx.x"), TARGETS.sm_90),
    ).toThrow(
      "tkc lower: launch: loop tx2 (extent 8) is bound to blockIdx.x inside loop ty2 (extent 8) bound to threadIdx.y; thread-block loops must enclose thread loops",
    );
    // One axis, two different symbolic extents.
    const two = bindRaw(bindRaw(lowerKernel(twoShapes), "i", "blockIdx.x"), "j", "blockIdx.x");
    expect(() => launchPass(two, TARGETS.sm_90)).toThrow(
      "tkc lower: launch: blockIdx.x is bound with two different extents: loop i (extent m) and loop j (extent n); a launch has one grid size per axis",
    );
    // Nested loops on one axis must agree (the inner variable is the same thread index).
    const nested = bindRaw(bindRaw(base, "tx", "threadIdx.x"), "ty2", "threadIdx.x");
    expect(() => launchPass(bindRaw(nested, "ko", "threadIdx.x"), TARGETS.sm_90)).toThrow(
      /nested loops bound to one axis share its index, so they need the same extent/,
    );
    // Too many threads.
    const wide = bindRaw(bindRaw(base, "ty", "threadIdx.y"), "tx", "threadIdx.x");
    expect(() => launchPass(wide, { ...TARGETS.vulkan, name: "small", maxThreadsPerBlock: 48 })).toThrow(
      "tkc lower: launch: 64 threads per block (threadIdx.x 8 × threadIdx.y 8 × threadIdx.z 1) exceed small's limit of 48",
    );
  });
});
