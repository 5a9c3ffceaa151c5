// The SPIR-V renderer without a device: every GPU example renders (as scheduled IR and as device
// IR) to a module spirv-val accepts for Vulkan 1.2 and 1.3, one golden module, the ABI it
// describes, structured control flow, subgroup shuffles, and the errors it gives.
import { describe, expect, it } from "vitest";
import { renderSpirv, SpirvRenderError } from "../../../backends/spirv/render.ts";
import { validate } from "../../../backends/spirv/tools.ts";
import { GPU_EXAMPLES } from "../../../examples/gpu-schedules.ts";
import * as B from "../../../lower/ir/build.ts";
import type { Expr, PrimFunc, Stmt } from "../../../lower/ir/nodes.ts";
import { lowerToDevice } from "../../../lower/passes/pipeline.ts";
import { TARGETS } from "../../../lower/passes/target.ts";
import { Schedule } from "../../../lower/schedule/index.ts";
import * as S from "../../../stdlib/index.ts";
import { GPU_SCHEDULES } from "../../../stdlib/gpu/schedules.ts";
import { scheduledFunc } from "../../../llama/device/prepare.ts";
import { unloweredSharing } from "../../../lower/ir/launch.ts";

const render = (f: PrimFunc, subgroupSize?: number) =>
  renderSpirv(f, { env: "vulkan1.2", ...(subgroupSize ? { subgroupSize } : {}) });
const lines = (text: string, op: string) => text.split("\n").filter((l) => l.includes(op));

describe("renderSpirv", () => {
  for (const [name, ex] of Object.entries(GPU_EXAMPLES)) {
    it(`${name}: scheduled and device IR give modules spirv-val accepts`, () => {
      const scheduled = ex.schedule().func;
      // Threads that share memory need the lowering's barriers: their scheduled IR is refused.
      const shares = unloweredSharing(scheduled) !== undefined;
      if (shares) expect(() => render(scheduled)).toThrow(/scheduled loop IR whose threads share/);
      const device = lowerToDevice(scheduled, TARGETS.vulkan);
      for (const f of shares ? [device] : [scheduled, device]) {
        const r = render(f);
        validate(r.words, "vulkan1.2");
        validate(r.words, "vulkan1.3");
        expect(r.words[0]).toBe(0x07230203);
        expect(r.words[1]).toBe(0x00010500); // SPIR-V 1.5 (ABI.md)
        expect(render(f).text).toBe(r.text); // deterministic
        const buffers = f.params.filter((p) => p.kind === "buffer").length;
        expect(r.abi.filter((a) => a.kind === "buffer").map((a) => a.binding)).toEqual([
          ...Array(buffers).keys(),
        ]);
      }
    });
  }

  it("merges an unrolled GEMV's loads of read-only buffers into 16-byte loads through a uvec4 view", () => {
    const spec = {
      key: "q4rows",
      kernel: S.q4GemvRows4,
      specialize: { n: 64, k: 256, kw: 32, kg: 8 },
      schedule: GPU_SCHEDULES.q4GemvRows4!,
    };
    const f = lowerToDevice(scheduledFunc(spec, "vulkan"), { ...TARGETS.vulkan!, warpSize: 8 });
    const r = render(f, 8);
    validate(r.words, "vulkan1.2");
    // Each thread: 1 group of 32 x (4 vectors) and 4 rows x 4 words (4 vectors).
    expect(lines(r.text, "OpLoad %v4uint")).toHaveLength(8);
    expect(lines(r.text, "OpAccessChain %_ptr_StorageBuffer_uint %packed")).toHaveLength(0);
    expect(r.text).toMatch(/OpDecorate %x_v4\w* Binding 0/);
    // Scales (one f16 per group and row) are not 16-byte aligned runs: loaded one by one.
    expect(lines(r.text, "OpAccessChain %_ptr_StorageBuffer_half %scales").length).toBeGreaterThan(0);
    const off = renderSpirv(f, { env: "vulkan1.2", subgroupSize: 8, vectorLoads: false });
    expect(lines(off.text, "OpLoad %v4uint")).toHaveLength(0);
  });

  it("matches the golden module for addBroadcast", async () => {
    const r = render(GPU_EXAMPLES.addBroadcast!.schedule().func);
    await expect(r.text).toMatchFileSnapshot("../../golden/addBroadcast.spvasm");
  });

  it("describes the ABI: bindings, push-constant offsets, workgroup and grid", () => {
    const r = render(GPU_EXAMPLES.rmsNorm!.schedule().func);
    expect(r.abi.map((a) => [a.name, a.kind, a.dtype, a.binding ?? a.offset])).toEqual([
      ["x", "buffer", "f16", 0],
      ["w", "buffer", "f16", 1],
      ["y", "buffer", "f16", 2],
      ["eps", "scalar", "f32", 0],
      ["n", "symbol", "i32", 4],
    ]);
    expect(r.abi.find((a) => a.name === "x")).toMatchObject({ reads: true, writes: false });
    expect(r.abi.find((a) => a.name === "y")).toMatchObject({ reads: false, writes: true });
    expect(r.pushConstantBytes).toBe(8);
    expect(r.localSize).toEqual([32, 1, 1]);
    expect(r.entry).toBe("main");
    expect(r.text).toContain("OpExecutionMode %main LocalSize 32 1 1");
    expect(r.text).toContain("OpCapability StorageBuffer16BitAccess");
    expect(r.text).toContain("OpDecorate %x NonWritable");
    expect(r.text).not.toContain("OpDecorate %y NonWritable");
    expect(JSON.parse(JSON.stringify(r.launch.grid[0]))).toMatchObject({ kind: "binary", op: "floordiv" });
  });

  it("gives every loop a header with OpLoopMerge and selects with loads a structured if + OpPhi", () => {
    const softmax = render(GPU_EXAMPLES.softmax!.schedule().func).text.split("\n");
    const merges = softmax.flatMap((l, i) => (l.includes("OpLoopMerge") ? [i] : []));
    expect(merges).toHaveLength(3);
    for (const i of merges) expect(softmax[i + 1]).toContain("OpBranchConditional");
    // argmax: `select(better, x[i][j], best)` reads memory on one side, so only that side runs.
    const argmax = render(GPU_EXAMPLES.argmax!.schedule().func).text;
    expect(argmax).toMatch(/OpPhi %float %\w+ %sel_t\d+ %\w+ %sel_f\d+/);
    expect(argmax).toMatch(/OpPhi %int /); // the loop variable
  });

  it("lets the driver fuse f32 multiply-adds (as LLVM's contract flag does), but never bf16's", () => {
    const text = render(GPU_EXAMPLES.matmul!.schedule().func).text;
    expect(text).toMatch(/= OpFMul %float/);
    expect(text).not.toContain("NoContraction");
  });

  it("renders shfl_xor as a subgroup shuffle and refuses widths beyond the subgroup", () => {
    const f = shuffleKernel(8);
    const r = render(f, 8);
    validate(r.words, "vulkan1.2");
    expect(r.text).toContain("OpCapability GroupNonUniformShuffle");
    expect(lines(r.text, "OpGroupNonUniformShuffleXor %float %uint_3")).toHaveLength(3);
    expect(() => render(shuffleKernel(32), 8)).toThrow(
      /kernel shuffle: lowered for warps of 32 lanes; the device's subgroups have 8/,
    );
    // Without a launch's warp size, the shuffle's own width is checked.
    const { launch: _launch, ...bare } = shuffleKernel(32);
    expect(() => render(bare, 8)).toThrow(
      /kernel shuffle: shfl_xor of width 32 .* subgroups have 8 invocations/,
    );
  });

  it("maps shared buffers to Workgroup variables and barriers to OpControlBarrier", () => {
    const r = render(shuffleKernel(8), 8);
    expect(r.sharedBytes).toBe(16);
    expect(r.text).toMatch(/= OpVariable %_ptr_Workgroup__arr_float_4 Workgroup/);
    expect(r.text).toContain("OpControlBarrier %uint_2 %uint_2 %uint_264");
  });
});

describe("renderSpirv errors name the kernel and the construct", () => {
  it("refuses a symbolic workgroup size", () => {
    const s = Schedule.of(GPU_EXAMPLES.addBroadcast!.kernel);
    const [i, j] = s.getLoops("y");
    s.bind(i!, "blockIdx.x");
    s.bind(j!, "threadIdx.x");
    expect(() => render(s.func)).toThrow(SpirvRenderError);
    expect(() => render(s.func)).toThrow(
      "tkc spirv: kernel addBroadcast: threadIdx.x extent n is symbolic; the workgroup size (LocalSize) must be constant",
    );
  });

  it("refuses allocations it cannot place", () => {
    const n = B.variable("n");
    const inKernel = (scope: "global" | "local", shape: readonly Expr[] = [B.i32c(4)]) => {
      const buf = B.buffer("tmp", "f32", shape, scope);
      return func("alloc", [], [n], B.allocate(buf, B.store(buf, [B.i32c(0)], B.constant(1, "f32"))));
    };
    expect(() => render(inKernel("global"))).toThrow(
      "tkc spirv: kernel alloc: allocation of the global buffer tmp inside the kernel",
    );
    expect(() => render(inKernel("local", [n]))).toThrow(
      "tkc spirv: kernel alloc: local buffer tmp with a non-constant size",
    );
  });

  it("refuses math on integers and too many push-constant bytes", () => {
    const y = B.buffer("y", "i32", [B.i32c(1)]);
    const exp = func("intExp", [y], [], B.store(y, [B.i32c(0)], B.call("exp", [B.i32c(2)])));
    expect(() => render(exp)).toThrow("tkc spirv: kernel intExp: exp on i32");
    const many = Array.from({ length: 17 }, (_, k) => B.variable(`s${k}`, "i64"));
    const big = func("manyScalars", [], [], B.seq([]), many);
    expect(() => render(big)).toThrow(
      /kernel manyScalars: 136 bytes of scalar parameters exceed the 128 bytes/,
    );
  });
});

function func(
  name: string,
  buffers: readonly ReturnType<typeof B.buffer>[],
  symbols: readonly ReturnType<typeof B.variable>[],
  body: Stmt,
  scalars: readonly ReturnType<typeof B.variable>[] = [],
): PrimFunc {
  return {
    kind: "func",
    name,
    params: [
      ...buffers.map((buffer) => ({ kind: "buffer" as const, buffer })),
      ...scalars.map((v) => ({ kind: "scalar" as const, v })),
    ],
    symbols,
    body,
    attrs: {},
  };
}

/**
 * Device IR as lower/passes writes it for a 32-thread block lowered for `warp`-lane warps: each
 * thread's value, a butterfly of shfl_xor over the warp, warp totals in shared memory, a barrier.
 */
function shuffleKernel(warp: number): PrimFunc {
  const x = B.buffer("x", "f32", [B.i32c(32)]);
  const y = B.buffer("y", "f32", [B.i32c(1)]);
  const partial = B.buffer("part", "f32", [B.i32c(32 / Math.min(warp, 8))], "shared");
  const t = B.variable("t");
  // v_0 = x[t]; v_k = v_(k-1) + shfl_xor(v_(k-1), mask, warp) for mask = warp/2 .. 1.
  const vs = [B.variable("v", "f32")];
  for (let m = warp / 2; m >= 1; m /= 2) vs.push(B.variable("v", "f32"));
  const v = vs[vs.length - 1]!;
  let body: Stmt = B.seq([
    B.ifThen(
      B.binary("==", B.binary("floormod", t, B.i32c(warp)), B.i32c(0)),
      B.store(partial, [B.binary("floordiv", t, B.i32c(warp))], v),
    ),
    B.barrier("shared"),
    B.ifThen(B.binary("==", t, B.i32c(0)), B.store(y, [B.i32c(0)], B.load(partial, [B.i32c(0)]))),
  ]);
  for (let k = vs.length - 1; k >= 1; k--) {
    const prev = vs[k - 1]!;
    const mask = warp >> k;
    body = B.letStmt(
      vs[k]!,
      B.binary("+", prev, B.call("shfl_xor", [prev, B.i32c(mask), B.i32c(warp)], "f32")),
      body,
    );
  }
  body = B.letStmt(
    t,
    B.call("thread_id", [B.i32c(0)], "i32"),
    B.allocate(partial, B.letStmt(vs[0]!, B.load(x, [t]), body)),
  );
  return {
    ...func("shuffle", [x, y], [], body),
    launch: { grid: [B.i32c(1), B.i32c(1), B.i32c(1)], block: [32, 1, 1], warpSize: warp, sharedBytes: 16 },
  };
}
