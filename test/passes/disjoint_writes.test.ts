/**
 * The disjoint_writes pass: a copy whose steps write different shared elements is one access for
 * the barriers pass (one barrier before its readers, none between its steps); one whose steps
 * overwrite the same elements keeps a barrier in every step. Both run right on the device
 * emulation, whose shared memory starts as NaN.
 */
import { describe, expect, it } from "vitest";
import { cloneArgs, compareResults, randomArgs } from "../../backends/check.ts";
import { cpuDeviceKernel } from "../../backends/cpu/device.ts";
import { cpuKernel } from "../../backends/cpu/runtime.ts";
import { lowerKernel } from "../../lower/frontend/lower.ts";
import type { KernelDef } from "../../dsl/kernel.ts";
import { printFunc } from "../../lower/ir/printer.ts";
import { DISJOINT_WRITES } from "../../lower/passes/disjoint_writes.ts";
import { lowerStages, lowerToDevice } from "../../lower/passes/pipeline.ts";
import { TARGETS } from "../../lower/passes/target.ts";
import { Schedule } from "../../lower/schedule/index.ts";
import { stagedOver, stagedTwice } from "./kernels.ts";

function scheduled(k: KernelDef): Schedule {
  const s = Schedule.of(k);
  s.bind("t", "threadIdx.x");
  s.bind("u", "threadIdx.x");
  return s;
}

const barriersIn = (k: KernelDef): number =>
  printFunc(lowerToDevice(scheduled(k).func, TARGETS.sm_90)).match(/syncThreads\(\)/g)?.length ?? 0;

function expectEmulationMatches(k: KernelDef): void {
  const plain = lowerKernel(k);
  const args = randomArgs(plain, {}, 4);
  const want = cloneArgs(args);
  const got = cloneArgs(args);
  cpuKernel(plain)(want as never);
  cpuDeviceKernel(lowerToDevice(scheduled(k).func, TARGETS.sm_90))(got as never);
  expect(compareResults(want, got, 0).mismatches).toEqual([]);
}

describe("disjoint_writes", () => {
  it("marks a copy whose steps write different elements: one barrier, before the readers", () => {
    const stage = lowerStages(scheduled(stagedTwice).func, TARGETS.sm_90, "disjoint_writes").at(-1)!.func;
    expect(JSON.stringify(stage.body)).toContain(DISJOINT_WRITES);
    expect(barriersIn(stagedTwice)).toBe(1);
    expectEmulationMatches(stagedTwice);
  });

  it("leaves a copy whose steps overwrite each other: a barrier between the steps", () => {
    const stage = lowerStages(scheduled(stagedOver).func, TARGETS.sm_90, "disjoint_writes").at(-1)!.func;
    expect(JSON.stringify(stage.body)).not.toContain(DISJOINT_WRITES);
    expect(barriersIn(stagedOver)).toBeGreaterThanOrEqual(2);
    expectEmulationMatches(stagedOver);
  });
});
