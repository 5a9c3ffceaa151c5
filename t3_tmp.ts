import { cpuKernel } from "./backends/cpu/runtime.ts";
import { cpuDeviceKernel } from "./backends/cpu/device.ts";
import { cloneArgs, compareResults, randomArgs } from "./backends/check.ts";
import { lowerKernel } from "./lower/frontend/lower.ts";
import { lowerToDevice } from "./lower/passes/pipeline.ts";
import { TARGETS } from "./lower/passes/target.ts";
import { Schedule } from "./lower/schedule/index.ts";
import { specialize } from "./lower/ir/specialize.ts";
import { q4GemvMma } from "./stdlib/q4_gemv_mma.ts";
import { q4GemvMmaSchedule } from "./stdlib/gpu/gemv.ts";
import { printFunc } from "./lower/ir/printer.ts";
import { writeFileSync } from "node:fs";
for (const [w, r] of [[16, 32], [8, 16]]) {
const k = { ...q4GemvMma, consts: { WARPS: w, MMA_ROWS: r, TILES: r / 16 } };
const sym = { n: 64, k: 768*2, kw: 96*2, kg: 24*2 };
const plain = specialize(lowerKernel(k), sym);
const s = new Schedule(plain);
q4GemvMmaSchedule()(s, "sm_90");
const dev = lowerToDevice(s.func, TARGETS.sm_90);
writeFileSync(`/tmp/dev${w}_${r}.txt`, printFunc(dev));
const args = randomArgs(plain, {}, 3);
const a = cloneArgs(args), b = cloneArgs(args);
cpuKernel(specialize(lowerKernel(q4GemvMma), sym))(a as never);
cpuDeviceKernel(dev)(b as never);
console.log(w, r, compareResults(a, b, 1e-3).mismatches.slice(0, 3));
}
