// Runs on the GPU machine: every kernel's PTX against the CPU backend on fresh random inputs, with
// the outputs poisoned beforehand. Writes $OUT/checks.json. Under compute-sanitizer too (run.sh).
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createCudaRuntime } from "../../backends/cuda/runtime.ts";
import { compileCpu } from "../../backends/cpu/exec.ts";
import { compareResults } from "../../backends/check.ts";
import { kernelFunction, runOnce } from "../../backends/gpu-common/kernel.ts";
import { funcFromJson } from "../../lower/ir/serialize.ts";
import { caseArgs, type CheckCase } from "./check-case.ts";

function main(): number {
  const { values } = parseArgs({
    options: { out: { type: "string", default: "bench/out" }, seed: { type: "string" } },
  });
  const here = new URL(".", import.meta.url).pathname;
  const checks = JSON.parse(readFileSync(join(here, "kernels/checks.json"), "utf8")) as CheckCase[];
  const rt = createCudaRuntime();
  const seed = Number(values.seed ?? Date.now() % 1_000_000);
  console.log(`device: ${rt.device.name}; seed ${seed}`);
  const results: unknown[] = [];
  let failed = 0;
  for (const c of checks) {
    const mod = rt.loadModule(c.artifact.image);
    const fn = kernelFunction(mod, c.artifact);
    const ref = compileCpu(funcFromJson(c.reference));
    c.cases.forEach((symbols, i) => {
      // Write-only outputs poisoned (0xFF) on both sides: see caseArgs.
      const { args, expected } = caseArgs(c, ref, symbols, seed + i);
      let status = "ok";
      let detail: unknown;
      try {
        const actual = runOnce(rt, fn, c.artifact, args);
        const cmp = compareResults(expected, actual, c.tol);
        if (cmp.mismatches.length) {
          status = "MISMATCH";
          detail = cmp.mismatches;
        }
        detail ??= { worstRelativeError: cmp.worst };
      } catch (e) {
        status = "ERROR";
        detail = String(e);
      }
      if (status !== "ok") failed++;
      const line = `${status.padEnd(8)} ${c.name} ${JSON.stringify(symbols)} ${JSON.stringify(detail)}`;
      console.log(line);
      results.push({ kernel: c.name, symbols, status, detail, registers: c.artifact.registers });
    });
    mod.unload();
  }
  writeFileSync(
    join(values.out!, "checks.json"),
    JSON.stringify(
      { command: "bash bench/device/run.sh checks", device: rt.device.name, seed, failed, results },
      null,
      1,
    ),
  );
  console.log(failed ? `checks: ${failed} failed` : "checks: all passed");
  rt.dispose();
  return failed ? 1 : 0;
}

try {
  process.exit(main());
} catch (e) {
  console.error(`checks: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(2);
}
