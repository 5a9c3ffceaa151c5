/** Running a kernel unscheduled on the CPU and scheduled on the device emulation, for the tensorize tests. */
import { cloneArgs, randomArgs } from "../../backends/check.ts";
import { cpuDeviceKernel } from "../../backends/cpu/device.ts";
import { cpuKernel } from "../../backends/cpu/runtime.ts";
import type { KernelDef } from "../../dsl/kernel.ts";
import { lowerKernel } from "../../lower/frontend/lower.ts";
import { lowerToDevice } from "../../lower/passes/pipeline.ts";
import { TARGETS } from "../../lower/passes/target.ts";
import type { Schedule } from "../../lower/schedule/index.ts";

/** Runs the unscheduled kernel and the scheduled one (device emulation); returns both results. */
export function runBoth(k: KernelDef, s: Schedule, symbols: Record<string, number>, seed = 3) {
  const plain = lowerKernel(k);
  const args = randomArgs(plain, symbols, seed);
  const want = cloneArgs(args);
  const got = cloneArgs(args);
  cpuKernel(plain)(want as never);
  cpuDeviceKernel(lowerToDevice(s.func, TARGETS.sm_90))(got as never);
  return { want, got };
}
