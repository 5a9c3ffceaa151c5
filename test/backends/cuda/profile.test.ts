/**
 * The CUDA device's in-order profile (profile: "inOrder"): an event before and after each eager
 * launch, as the model issues it, nothing replayed or flushed; recorded launches untimed. A stub
 * runtime whose clock advances by each launch's set duration stands in for the GPU.
 */
import { describe, expect, it } from "vitest";
import type { GpuRuntime } from "../../../backends/gpu-common/runtime.ts";
import { createCudaDevice, profileOf } from "../../../llama/device/cuda.ts";
import { compileOp } from "../../../llama/device/compile.ts";
import type { OpSpec } from "../../../llama/device/types.ts";
import * as S from "../../../stdlib/index.ts";
import { GPU_SCHEDULES } from "../../../stdlib/gpu/schedules.ts";
import { llvmMissing } from "../llvm/helpers.ts";
import { stubRuntime } from "./stub-runtime.ts";

const specs: OpSpec[] = ["residualA", "residualB"].map((key) => ({
  key,
  kernel: S.residualAdd,
  specialize: { m: 1, d: 64 },
  schedule: GPU_SCHEDULES.residualAdd!,
}));

/**
 * A runtime with a clock: a launch of function `name` takes durations[name] ms, an event records
 * the clock when recorded; what else it is asked for throws (so the in-order profile is seen to
 * need neither graphs nor flushes).
 */
function clockRuntime(durations: Record<string, number>, log: string[]): GpuRuntime {
  let clock = 0;
  return stubRuntime({
    loadModule: (image: string) => ({ getFunction: () => ({ name: image }) as never, unload() {} }) as never,
    launch: (fn) => {
      const name = (fn as unknown as { name: string }).name;
      log.push(`launch ${name}`);
      clock += durations[name] ?? 0;
    },
    createEvent: () => {
      let at = NaN;
      return {
        record: () => {
          at = clock;
          log.push("event");
        },
        synchronize() {},
        elapsedSince: (other: { at(): number }) => at - other.at(),
        at: () => at,
        destroy() {},
      } as never;
    },
    captureGraph: (s, body) => {
      log.push("capture");
      body(s);
      return { launch() {}, destroy() {} } as never;
    },
  });
}

describe.skipIf(llvmMissing !== "")("the CUDA device's in-order profile", () => {
  const [a, b] = specs.map((s) => compileOp(s, "sm_90"));
  // Each kernel's image names it, so the stub's clock knows which one runs.
  const library = {
    target: "sm_90",
    kernels: { residualA: { ...a!, image: "A" }, residualB: { ...b!, image: "B" } },
  };

  it("times each eager launch between two events, in the order issued; recorded launches not at all", () => {
    const log: string[] = [];
    const d = createCudaDevice({
      runtime: clockRuntime({ A: 2, B: 5 }, log),
      library,
      profile: "inOrder",
    });
    const t = () => d.tensor("f16", [1, 64]);
    const args = { a: t(), b: t(), y: t() };
    const [opA, opB] = specs.map((s) => d.op(s));
    d.run(opA!, args);
    d.run(opB!, args);
    d.run(opA!, args);
    d.record(() => d.run(opB!, args));
    expect(log).toEqual([
      "event",
      "launch A",
      "event",
      "event",
      "launch B",
      "event",
      "event",
      "launch A",
      "event",
      "capture",
      "launch B",
    ]);
    const table = profileOf(d);
    expect(table.get("residualA")).toEqual({ ms: 4, launches: 2, bytes: 2 * 3 * 64 * 2 });
    expect(table.get("residualB")).toEqual({ ms: 5, launches: 1, bytes: 3 * 64 * 2 });
    // Read once: the next table starts empty.
    expect(profileOf(d).size).toBe(0);
    d.dispose();
  });
});
