// Runs on the GPU machine: each q4f16_1 GEMV at the 7B shapes, timed with events over many
// launches, as a fraction of the device-to-device copy bandwidth measured in the same run.
// One shape is checked against the CPU backend first. Writes $OUT/gemv.json.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createCudaRuntime } from "../../backends/cuda/runtime.ts";
import { compileCpu } from "../../backends/cpu/exec.ts";
import { cloneArgs, compareResults, randomArgs } from "../../backends/check.ts";
import {
  kernelArgs,
  kernelFunction,
  launchConfig,
  runOnce,
  type KernelArtifact,
} from "../../backends/gpu-common/kernel.ts";
import { funcFromJson, type FuncJson } from "../../lower/ir/serialize.ts";
import { bufferCopies, copyBandwidth, freeCopies, timeKernel } from "./bandwidth.ts";

interface Entry {
  n: number;
  k: number;
  params: {
    rows: number;
    lanes: number;
    unrollGroups?: boolean;
    rows4?: boolean;
    mma?: boolean;
    unrollChunks?: number;
    dependentsLaunch?: string;
  };
  artifact: KernelArtifact;
  reference?: FuncJson;
}

function main(): number {
  const { values } = parseArgs({ options: { out: { type: "string", default: "bench/out" } } });
  const here = new URL(".", import.meta.url).pathname;
  const entries = JSON.parse(readFileSync(join(here, "kernels/gemv.json"), "utf8")) as Entry[];
  const rt = createCudaRuntime();
  const copy = copyBandwidth(rt);
  console.log(`device: ${rt.device.name}; copy bandwidth ${(copy / 1e9).toFixed(0)} GB/s`);
  const results: Record<string, unknown>[] = [];
  let failed = 0;
  for (const e of entries) {
    const mod = rt.loadModule(e.artifact.image);
    const fn = kernelFunction(mod, e.artifact);
    if (e.reference) {
      const ref = compileCpu(funcFromJson(e.reference), { boundsCheck: false });
      const args = randomArgs(ref.func, {}, 7);
      const want = cloneArgs(args);
      ref(want);
      const got = runOnce(rt, fn, e.artifact, args);
      const cmp = compareResults(want, got, 2e-3);
      const ok = cmp.mismatches.length === 0;
      if (!ok) failed++;
      console.log(
        `${ok ? "ok" : "MISMATCH"} q4Gemv${e.params.mma ? "Mma" : ""} ${e.n}x${e.k} rows ${e.params.rows} lanes ${e.params.lanes} vs CPU: worst ${cmp.worst.toExponential(2)}`,
      );
    }
    const bytes = { x: e.k * 2, packed: (e.n * e.k) / 2, scales: (e.n * e.k) / 16, y: e.n * 2 };
    const fills: Record<string, number> = { packed: 0x37, scales: 0x11 };
    const sets = bufferCopies(rt, bytes, (name, p, n) => rt.memset8(p, fills[name] ?? 0x22, n));
    const symbols = {};
    // Host launch overhead does not count: timeKernel replays a captured graph. On sm_90 also with
    // programmatic dependent launch, as the decode step's graph launches them: each launch starts
    // while the one before it finishes and waits for it before reading anything.
    const time = (programmatic: boolean) =>
      timeKernel(
        rt,
        fn,
        sets.map((ptr) => kernelArgs(e.artifact, ptr, {}, symbols)),
        launchConfig(e.artifact, symbols),
        {
          reps: 200,
          warmup: 20,
          programmatic,
        },
      );
    const us = time(false);
    const usPdl = (rt.device.computeCapability?.[0] ?? 0) >= 9 ? time(true) : undefined;
    const total = Object.values(bytes).reduce((a, b) => a + b, 0);
    const bw = total / (us * 1e-6);
    const bwPdl = usPdl === undefined ? undefined : total / (usPdl * 1e-6);
    const line = {
      n: e.n,
      k: e.k,
      ...e.params,
      us,
      gbps: bw / 1e9,
      fractionOfCopy: bw / copy,
      ...(bwPdl === undefined ? {} : { usProgrammatic: usPdl, fractionOfCopyProgrammatic: bwPdl / copy }),
      registers: e.artifact.registers,
    };
    console.log(
      `q4Gemv ${e.n}x${e.k} rows ${e.params.rows} lanes ${e.params.lanes}${e.params.unrollGroups ? " unrolled" : ""}${e.params.rows4 ? " 4-rows-per-thread" : ""}${e.params.mma ? ` tensor-cores unroll ${e.params.unrollChunks}` : ""}${e.params.dependentsLaunch ? ` next launched at ${e.params.dependentsLaunch}` : ""} (${e.artifact.registers} regs): ${us.toFixed(2)} us, ${(bw / 1e9).toFixed(0)} GB/s = ${((100 * bw) / copy).toFixed(1)}% of copy${bwPdl === undefined ? "" : `; with programmatic launch ${usPdl!.toFixed(2)} us = ${((100 * bwPdl) / copy).toFixed(1)}%`}`,
    );
    results.push(line);
    freeCopies(rt, sets);
    mod.unload();
  }
  writeFileSync(
    join(values.out!, "gemv.json"),
    JSON.stringify(
      {
        command: "bash bench/device/run.sh gemv",
        device: rt.device.name,
        copyBandwidthGBs: copy / 1e9,
        failed,
        results,
      },
      null,
      1,
    ),
  );
  rt.dispose();
  return failed ? 1 : 0;
}

try {
  process.exit(main());
} catch (e) {
  console.error(`gemv: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  process.exit(2);
}
