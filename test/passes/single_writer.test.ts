/**
 * A GEMV that adds into its residual in place (y aliases residual), with the row's reduction
 * spread over two warps: every thread holds the row's total after the reduction, and without the
 * single_writer pass each would add it to y again.
 */
import { expect, test } from "vitest";
import * as S from "../../stdlib/index.ts";
import { q4GemvSchedule } from "../../stdlib/gpu/gemv.ts";
import { lowerKernel } from "../../lower/frontend/lower.ts";
import { specialize } from "../../lower/ir/specialize.ts";
import { Schedule } from "../../lower/schedule/index.ts";
import { lowerStages, lowerToDevice } from "../../lower/passes/pipeline.ts";
import { TARGETS } from "../../lower/passes/target.ts";
import { cpuDeviceKernel } from "../../backends/cpu/device.ts";
import { cpuKernel } from "../../backends/cpu/runtime.ts";
import { randomArgs, cloneArgs } from "../../backends/check.ts";
import { printFunc } from "../../lower/ir/printer.ts";
import type { NDArray } from "../../dsl/ndarray.ts";

test("an in-place residual GEMV over two warps is stored once per row", () => {
  const f = specialize(lowerKernel(S.q4GemvResidual), { n: 6, k: 4096, kw: 512, kg: 128 });
  const s = new Schedule(f);
  q4GemvSchedule("n", { rows: 2, lanes: 64 })(s, "sm_90");
  const device = lowerToDevice(s.func, TARGETS.sm_90);
  expect(printFunc(device)).toMatch(/if \(thread_id\(0\) == 0\) \{\s*y\[/);
  const args = randomArgs(f, {}, 5);
  const inPlace = (a: Record<string, unknown>) => ({ ...a, y: a.residual });
  const want = inPlace(cloneArgs(args));
  cpuKernel(f)(want as never);
  const got = inPlace(cloneArgs(args));
  cpuDeviceKernel(device)(got as never);
  expect(Array.from((got.y as NDArray).data)).toEqual(Array.from((want.y as NDArray).data));
  // The stage before single_writer lets every thread store.
  const stages = lowerStages(s.func, TARGETS.sm_90);
  const before = stages.find((x) => x.name === "thread_guards")!.func;
  expect(printFunc(before)).not.toMatch(/thread_id\(0\) == 0\) \{\s*block "y"/);
});
