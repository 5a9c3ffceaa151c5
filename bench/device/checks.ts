// Runs on the GPU machine: every kernel's PTX against the CPU backend on fresh random inputs, with
// the outputs poisoned beforehand. Writes $OUT/checks.json. Under compute-sanitizer too (run.sh).
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createCudaRuntime } from "../../backends/cuda/runtime.ts";
import { compileCpu } from "../../backends/cpu/exec.ts";
import { cloneArgs, compareResults, randomArgs } from "../../backends/check.ts";
import { runOnce, type KernelArtifact } from "../../backends/gpu-common/kernel.ts";
import { funcFromJson, type FuncJson } from "../../lower/ir/serialize.ts";
import { ndarray } from "../../dsl/ndarray.ts";

export interface CheckCase {
  name: string;
  reference: FuncJson;
  artifact: KernelArtifact;
  cases: readonly Readonly<Record<string, number>>[];
  scalars: Readonly<Record<string, number>>;
  tol: number;
  /** Arguments with fixed values (positions, token ids): a number or a small i32 tensor. */
  fixed?: Record<string, number | { dtype: "i32"; shape: number[]; values: number[] }>;
}

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
    const fn = mod.getFunction(c.artifact.entry);
    const ref = compileCpu(funcFromJson(c.reference));
    c.cases.forEach((symbols, i) => {
      const args = randomArgs(ref.func, symbols, seed + i, c.scalars);
      for (const [k, v] of Object.entries(c.fixed ?? {}))
        args[k] = typeof v === "number" ? v : ndarray(v.dtype, v.shape, v.values);
      // Outputs the kernel only writes start as 0xFF bytes (NaN for floats) on both sides, so an
      // element the GPU forgets to write shows, and elements neither writes (a KV-cache append
      // touches a few rows) compare equal.
      for (const a of c.artifact.abi) {
        const v = args[a.name];
        if (a.kind === "buffer" && a.writes && !a.reads && v && typeof v !== "number")
          new Uint8Array(v.data.buffer, v.data.byteOffset, v.data.byteLength).fill(0xff);
      }
      const expected = cloneArgs(args);
      ref(expected);
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
