/**
 * Pass hoist_guards: an epilogue whose only effects are single-writer stores (each under
 * `thread_id(1) == 0`, in branches by lane) goes under that guard as a whole, so warps 1-3
 * skip it; results equal the unscheduled kernel's on the device emulation. An epilogue that also
 * writes shared memory stays where it is.
 */
import { expect, test } from "vitest";
import { cloneArgs, compareResults, randomArgs } from "../../backends/check.ts";
import { cpuDeviceKernel } from "../../backends/cpu/device.ts";
import { cpuKernel } from "../../backends/cpu/runtime.ts";
import { withConsts } from "../../dsl/kernel.ts";
import { lowerKernel } from "../../lower/frontend/lower.ts";
import { printFunc } from "../../lower/ir/printer.ts";
import { specialize } from "../../lower/ir/specialize.ts";
import { lowerStages, lowerToDevice } from "../../lower/passes/pipeline.ts";
import { TARGETS } from "../../lower/passes/target.ts";
import { Schedule } from "../../lower/schedule/index.ts";
import { branchyEpilogue } from "./kernels.ts";

function scheduled(share: boolean) {
  const f = specialize(lowerKernel(share ? withConsts(branchyEpilogue, { SHARE: 1 }) : branchyEpilogue), {
    n: 256,
    m: 2,
    h: 8,
  });
  const s = new Schedule(f);
  s.bind("blk", "blockIdx.x");
  s.bind("w", "threadIdx.y");
  s.bind("l", "threadIdx.x");
  s.bind("r", "threadIdx.x");
  s.unroll("w2");
  return { f, scheduled: s.func };
}

test("an epilogue storing in branches goes under warp 0's guard as a whole, with the same results", () => {
  const { f, scheduled: sf } = scheduled(false);
  const stages = lowerStages(sf, TARGETS.sm_90!);
  const before = printFunc(stages.find((x) => x.name === "barriers")!.func);
  const after = printFunc(stages.find((x) => x.name === "hoist_guards")!.func);
  // Before: every warp sums and only the stores are guarded; after: one guard around the epilogue
  // (the lanes' guard, the sums and both stores), after the barrier that orders the shared writes.
  const hoisted = /syncThreads\(\);\s+if \(thread_id\(1\) == 0\) \{\s+if \(r < 16\) \{/;
  expect(before).not.toMatch(hoisted);
  expect(after).toMatch(hoisted);
  const args = randomArgs(f, {}, 3);
  const want = cloneArgs(args);
  cpuKernel(f)(want as never);
  const got = cloneArgs(args);
  cpuDeviceKernel(lowerToDevice(sf, TARGETS.sm_90!))(got as never);
  expect(compareResults(want, got, 0).mismatches).toEqual([]);
});

test("an epilogue that also writes shared memory is left to every warp", () => {
  const { f, scheduled: sf } = scheduled(true);
  const device = lowerToDevice(sf, TARGETS.sm_90!);
  expect(printFunc(device)).not.toMatch(/if \(thread_id\(1\) == 0\) \{\s+if \(r < 16\)/);
  const args = randomArgs(f, {}, 4);
  const want = cloneArgs(args);
  cpuKernel(f)(want as never);
  const got = cloneArgs(args);
  cpuDeviceKernel(device)(got as never);
  expect(compareResults(want, got, 0).mismatches).toEqual([]);
});
