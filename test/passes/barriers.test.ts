import { describe, expect, it } from "vitest";
import { lowerKernel } from "../../lower/frontend/lower.ts";
import {
  barrier,
  binary,
  constant,
  ifThen,
  letStmt,
  seq,
  store,
  variable,
  buffer,
} from "../../lower/ir/build.ts";
import type { PrimFunc } from "../../lower/ir/nodes.ts";
import { printFunc } from "../../lower/ir/printer.ts";
import { barriersPass } from "../../lower/passes/barriers.ts";
import { threadIndex } from "../../lower/passes/device_ops.ts";
import { lowerStages, lowerToDevice } from "../../lower/passes/pipeline.ts";
import { TARGETS } from "../../lower/passes/target.ts";
import { bindRaw, deviceError, matmulGpu, matmulRef } from "./helpers.ts";
import { halfSwap, warpTileTranspose } from "./kernels.ts";
import { Schedule } from "../../lower/schedule/index.ts";

const stagesOf = () => lowerStages(matmulGpu().func, TARGETS.sm_90);

describe("barriers", () => {
  it("syncs after the tile fetch and before the next iteration overwrites the tile (golden)", () => {
    const f = stagesOf().find((s) => s.name === "barriers")!.func;
    expect(printFunc(f)).toMatchInlineSnapshot(`
      "// launch: grid [idiv(n + 8 - 1, 8), idiv(m + 8 - 1, 8), 1], block [8, 8, 1], warp 32, shared 512 bytes
      function matmulTiled(a: Tensor<f32, [m, k]>, b: Tensor<f32, [k, n]>, c: Tensor<f32, [m, n]>) {
        const by = block_id(1);
        const bx = block_id(0);
        const As = shared(f32, [64]);
        const Bs = shared(f32, [64]);
        const acc = local(f32, [1]);
        const ty = thread_id(1);
        const tx = thread_id(0);
        acc[0] = f32(0);
        for (let ko = 0; ko < idiv(k + 8 - 1, 8); ko++) {
          const ty1 = thread_id(1);
          const tx1 = thread_id(0);
          syncThreads();
          As[ty1 * 8 + tx1] = select(by * 8 + ty1 < m && ko * 8 + tx1 < k, a[(by * 8 + ty1) * k + (ko * 8 + tx1)], f32(0));
          Bs[ty1 * 8 + tx1] = select(ko * 8 + ty1 < k && bx * 8 + tx1 < n, b[(ko * 8 + ty1) * n + (bx * 8 + tx1)], f32(0));
          const ty2 = thread_id(1);
          const tx2 = thread_id(0);
          syncThreads();
          for (let ki = 0; ki < 8; ki++) { // unrolled
            acc[0] = acc[0] + As[ty2 * 8 + ki] * Bs[ki * 8 + tx2];
          }
        }
        const ty3 = thread_id(1);
        const tx3 = thread_id(0);
        if (by * 8 + ty3 < m && bx * 8 + tx3 < n) {
          c[(by * 8 + ty3) * n + (bx * 8 + tx3)] = acc[0];
        }
      }
      "
    `);
  });

  it("is what makes the shared-memory tiles correct", () => {
    const stages = stagesOf();
    const err = (name: string) =>
      deviceError(matmulRef(), stages.find((s) => s.name === name)!.func, { m: 9, n: 10, k: 21 });
    expect(err("vectorize")).toBe(Infinity); // unsynchronised reads see NaN-filled shared memory
    expect(err("barriers")).toBeLessThan(1e-6);
  });

  it("orders a warp's own slice of shared memory with a warp barrier, its lanes' bit fields bounded", () => {
    const s = new Schedule(lowerKernel(warpTileTranspose));
    for (const [w, l] of [
      ["w", "l"],
      ["w2", "l2"],
    ]) {
      s.bind(w!, "threadIdx.y");
      s.bind(l!, "threadIdx.x");
    }
    const stages = lowerStages(s.func, TARGETS.sm_90);
    const f = stages.find((st) => st.name === "barriers")!.func;
    expect(printFunc(f)).toContain("syncWarp();");
    expect(printFunc(f)).not.toContain("syncThreads");
    expect(deviceError(lowerKernel(warpTileTranspose), f, {})).toBe(0);
    // Vulkan's subgroups may be narrower than the warp: a block barrier there.
    const vk = lowerStages(s.func, TARGETS.vulkan!).find((st) => st.name === "barriers")!.func;
    expect(printFunc(vk)).toContain("syncThreads();");
  });

  it("refuses shared-memory traffic between threads inside thread-dependent code", () => {
    const f = bindRaw(lowerKernel(halfSwap), "t", "threadIdx.x");
    expect(() => lowerToDevice(f, TARGETS.sm_90)).toThrow(
      "tkc lower: barriers: under if (t < 16) (thread-dependent), shared buffer sh is written at [t] and read at [15 - t]; other threads' accesses cannot be ordered by a barrier there",
    );
  });

  it("refuses barriers that not every thread reaches, and accepts single-thread branches", () => {
    const tx = variable("tx");
    const sh = buffer("sh", "f32", [constant(4, "i32")], "shared");
    const mk = (body: PrimFunc["body"]): PrimFunc => ({
      kind: "func",
      name: "h",
      params: [],
      symbols: [],
      body: letStmt(tx, threadIndex(0), { kind: "allocate", buffer: sh, body }),
      attrs: {},
      launch: {
        grid: [constant(1), constant(1), constant(1)],
        block: [4, 1, 1],
        warpSize: 32,
        sharedBytes: 16,
      },
    });
    expect(() => barriersPass(mk(ifThen(binary("<", tx, constant(2)), barrier())))).toThrow(
      "tkc lower: barriers: a barrier sits under if (tx < 2), which depends on the thread index: not every thread would reach it",
    );
    // One thread writes two elements: no other thread is inside the branch to race with.
    const one = ifThen(
      binary("==", tx, constant(0)),
      seq([store(sh, [constant(0)], constant(1, "f32")), store(sh, [constant(1)], constant(2, "f32"))]),
    );
    expect(printFunc(barriersPass(mk(one)))).not.toContain("syncThreads");
  });
});
