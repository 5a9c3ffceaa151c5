// Runs on the GPU machine: times every candidate schedule of bench/tune.ts (built here into
// .device/kernels/tune.json.gz) and writes $OUT/tune.json, which `npx tsx bench/tune.ts apply` turns
// into stdlib/gpu/tuned.ts on the development machine; with --set kernels, every stdlib kernel at
// Llama-2-7B sizes (bench/kernels.ts) into $OUT/kernels.json. Inputs are constant bytes (timing only),
// copied so that the copies together exceed the L2 cache and each launch reads from memory.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { parseArgs } from "node:util";
import { createCudaRuntime } from "../../backends/cuda/runtime.ts";
import { kernelArgs, kernelFunction, launchConfig } from "../../backends/gpu-common/kernel.ts";
import type { TuneCandidate, TuneResult } from "../tune.ts";
import { bufferCopies, copyBandwidth, freeCopies, timeKernel } from "./bandwidth.ts";

function main(): number {
  const { values } = parseArgs({
    options: {
      out: { type: "string", default: "bench/out" },
      set: { type: "string", default: "tune" },
      // --family gemvMma: only that family's candidates.
      family: { type: "string" },
      // --no-programmatic: launch one after another, not with programmatic dependent launch.
      "no-programmatic": { type: "boolean", default: false },
    },
  });
  // "tune": bench/tune.ts's candidates; "kernels": bench/kernels.ts's stdlib kernels at 7B sizes.
  const set = values.set!;
  if (set !== "tune" && set !== "kernels") throw new Error(`--set ${set}: expected tune or kernels`);
  const here = new URL(".", import.meta.url).pathname;
  const list = JSON.parse(
    gunzipSync(readFileSync(join(here, `kernels/${set}.json.gz`))).toString("utf8"),
  ).filter(
    (c: TuneCandidate) => values.family === undefined || c.family === values.family,
  ) as TuneCandidate[];
  const rt = createCudaRuntime();
  // On sm_90 each candidate is timed as the decode step's graph launches kernels: with programmatic
  // dependent launch, each launch starting while the one before finishes (what a kernel does before
  // its wait, such as loading weights, overlaps that tail).
  const programmatic = !values["no-programmatic"] && (rt.device.computeCapability?.[0] ?? 0) >= 9;
  const copy = copyBandwidth(rt);
  console.log(
    `device: ${rt.device.name}; copy bandwidth ${(copy / 1e9).toFixed(0)} GB/s; ${list.length} candidates`,
  );
  const results: TuneResult[] = [];
  for (const c of list) {
    if (c.skip) {
      results.push({
        family: c.family,
        params: c.params,
        shape: c.shape,
        us: NaN,
        fractionOfCopy: 0,
        skipped: c.skip,
      });
      console.log(`${c.family.padEnd(9)} ${c.shape.padEnd(11)} not timed: ${c.skip}`);
      continue;
    }
    let us = Infinity;
    try {
      const mod = rt.loadModule(c.artifact.image);
      const fn = kernelFunction(mod, c.artifact);
      const sets = bufferCopies(rt, c.buffers, (name, p, bytes) => {
        const fixed = c.fixedBuffers?.[name];
        if (fixed) rt.upload(p, new Int32Array(fixed));
        else rt.memset8(p, 0x22, bytes);
      });
      const symbols = {};
      const launch = launchConfig(c.artifact, symbols);
      const argSets = sets.map((ptr) => kernelArgs(c.artifact, ptr, c.scalars, symbols));
      // A first short measure sets the repetitions: about 50 ms of launches, 3 to 100 of them
      // (some stdlib kernels are one thread per row and take milliseconds).
      const first = timeKernel(rt, fn, argSets, launch, { reps: 2, warmup: 1, programmatic });
      const reps = Math.max(3, Math.min(100, Math.round(50e3 / Math.max(first, 1))));
      us = reps <= 3 ? first : timeKernel(rt, fn, argSets, launch, { reps, warmup: 5, programmatic });
      freeCopies(rt, sets);
      mod.unload();
    } catch (e) {
      console.log(`  failed: ${(e as Error).message.split("\n")[0]}`);
    }
    const fraction = c.bytes / (us * 1e-6) / copy;
    const tflops = c.flops ? c.flops / (us * 1e-6) / 1e12 : undefined;
    results.push({
      family: c.family,
      params: c.params,
      shape: c.shape,
      us,
      fractionOfCopy: fraction,
      ...(tflops !== undefined ? { tflops } : {}),
    });
    save(); // after each: a run cut short keeps what it measured
    console.log(
      `${c.family.padEnd(9)} ${c.shape.padEnd(11)} ${JSON.stringify(c.params).padEnd(48)} ${us.toFixed(2).padStart(8)} us ${(100 * fraction).toFixed(1).padStart(5)}% of copy${tflops !== undefined ? ` ${tflops.toFixed(2)} TFLOP/s` : ""} (${c.artifact.registers} regs)`,
    );
  }
  save();
  rt.dispose();
  return results.some((r) => !r.skipped && !Number.isFinite(r.us)) ? 1 : 0;

  function save(): void {
    writeFileSync(
      join(values.out!, `${set}.json`),
      JSON.stringify(
        {
          command:
            set === "tune"
              ? `npx tsx bench/tune.ts build .device (here); bash bench/device/run.sh tune${values.family ? ` --family ${values.family}` : ""}${values["no-programmatic"] ? " --no-programmatic" : ""} (GPU machine)`
              : "npx tsx bench/kernels.ts .device (here); bash bench/device/run.sh tune --set kernels (GPU machine)",
          device: rt.device.name,
          copyBandwidthGBs: copy / 1e9,
          programmaticLaunch: programmatic,
          ...(values.family ? { family: values.family } : {}),
          results,
        },
        null,
        1,
      ),
    );
  }
}

try {
  process.exit(main());
} catch (e) {
  console.error(`tune: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  process.exit(2);
}
