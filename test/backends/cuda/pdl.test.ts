/**
 * Which launches of the CUDA device use programmatic dependent launch: by default those recorded
 * into a graph (the decode step), and eager ones (prefill) whose op asks (programmaticEager);
 * `programmatic` or TKC_PDL=1 / 0 turn it on or off for all; never for libraries older than
 * sm_90. A stub runtime records the launch options (no GPU, no driver).
 */
import { afterEach, describe, expect, it } from "vitest";
import type { GpuRuntime, LaunchOptions } from "../../../backends/gpu-common/runtime.ts";
import { createCudaDevice } from "../../../llama/device/cuda.ts";
import { compileOp } from "../../../llama/device/compile.ts";
import type { Library } from "../../../llama/device/library.ts";
import type { OpSpec } from "../../../llama/device/types.ts";
import * as S from "../../../stdlib/index.ts";
import { GPU_SCHEDULES } from "../../../stdlib/gpu/schedules.ts";
import { llvmMissing } from "../llvm/helpers.ts";
import { stubRuntime } from "./stub-runtime.ts";

const spec: OpSpec = {
  key: "residual",
  kernel: S.residualAdd,
  specialize: { m: 1, d: 64 },
  schedule: GPU_SCHEDULES.residualAdd!,
};

/** A runtime that records each launch's programmatic flag. */
function recordingRuntime(launches: boolean[]): GpuRuntime {
  return stubRuntime({
    loadModule: () => ({ getFunction: () => ({}) as never, unload() {} }) as never,
    launch: (_fn, _args, o: LaunchOptions) => void launches.push(o.programmatic ?? false),
    captureGraph: (s, body) => {
      body(s);
      return { launch() {}, destroy() {} } as never;
    },
  });
}

describe.skipIf(llvmMissing !== "")("programmatic dependent launch on the CUDA device", () => {
  const art = compileOp(spec, "sm_90");
  const library = (target: string): Library => ({ target, kernels: { residual: art } });
  afterEach(() => {
    delete process.env.TKC_PDL;
  });

  /** One eager launch, then one inside a recording: their programmatic flags. */
  function launches(target: string, programmatic?: boolean, op: OpSpec = spec): boolean[] {
    const out: boolean[] = [];
    const d = createCudaDevice({ runtime: recordingRuntime(out), library: library(target), programmatic });
    const t = (n: number) => d.tensor("f16", [1, n]);
    const args = { a: t(64), b: t(64), y: t(64) };
    d.run(d.op(op), args);
    d.record(() => d.run(d.op(op), args));
    return out;
  }

  it("by default in recordings (the decode graph), and eagerly where the op asks", () => {
    expect(launches("sm_90")).toEqual([false, true]);
    expect(launches("sm_90", undefined, { ...spec, programmaticEager: true })).toEqual([true, true]);
  });

  it("everywhere or nowhere when asked, by option or TKC_PDL", () => {
    expect(launches("sm_90", true)).toEqual([true, true]);
    expect(launches("sm_90", false)).toEqual([false, false]);
    process.env.TKC_PDL = "1";
    expect(launches("sm_90")).toEqual([true, true]);
    process.env.TKC_PDL = "0";
    expect(launches("sm_90")).toEqual([false, false]);
    expect(launches("sm_90", undefined, { ...spec, programmaticEager: true })).toEqual([false, false]);
  });

  it("never for kernels built before sm_90 (they do not wait for their predecessor)", () => {
    expect(launches("sm_80", true)).toEqual([false, false]);
  });
});

describe.skipIf(llvmMissing !== "")("a disposed CUDA device", () => {
  it("refuses every call with a message instead of reaching freed driver objects", () => {
    const launches: boolean[] = [];
    const d = createCudaDevice({
      runtime: recordingRuntime(launches),
      library: { target: "sm_90", kernels: { residual: compileOp(spec, "sm_90") } },
    });
    const t = d.tensor("f16", [1, 64]);
    const op = d.op(spec);
    const rec = d.record(() => d.run(op, { a: t, b: t, y: t }));
    d.dispose();
    d.dispose(); // twice is harmless
    const gone = "tkc cuda: the device was disposed";
    expect(() => d.run(op, { a: t, b: t, y: t })).toThrow(gone);
    expect(() => d.tensor("f16", [1, 64])).toThrow(gone);
    expect(() => d.read(t)).toThrow(gone);
    expect(() => d.readLater(t)).toThrow(gone);
    expect(() => rec.replay()).toThrow(gone);
    expect(() => d.sync()).toThrow(gone);
  });
});
