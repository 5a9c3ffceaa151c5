// Runs on the GPU machine: the prefill GEMMs of bench/device/build-gemm.ts (Llama-2-7B, M = 512,
// q4f16_1 and f16 weights, several schedules each), timed with CUDA events over a graph of
// launches, in TFLOP/s (2 M N K per product), next to a dense f16 matmul measured in the same run
// by PyTorch (run-gemm.sh writes its JSON; --torch names it). Each schedule is checked first against
// the CPU backend at M = 5 on the 4096 x 4096 shape. Writes $OUT/gemm.json; exits 1 when a check
// fails, 2 when there is no usable GPU.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createCudaRuntime } from "../../backends/cuda/runtime.ts";
import { compileCpu } from "../../backends/cpu/exec.ts";
import { cloneArgs, compareResults, randomArgs } from "../../backends/check.ts";
import { kernelArgs, kernelFunction, launchConfig, runOnce } from "../../backends/gpu-common/kernel.ts";
import type { NDArray } from "../../dsl/ndarray.ts";
import { funcFromJson } from "../../lower/ir/serialize.ts";
import type { GemmEntry } from "./build-gemm.ts";
import { timeKernel } from "./bandwidth.ts";

interface TorchResult {
  m: number;
  n: number;
  k: number;
  us: number;
  tflops: number;
}

interface Measured extends Record<string, unknown> {
  tflops: number;
  check?: { ok: boolean; worst: number };
}

interface TorchReport {
  device?: string;
  torch?: string;
  results?: TorchResult[];
  error?: string;
}

/** The M of the correctness check: small (the CPU computes it) and not a multiple of the tiles. */
const CHECK_M = 5;

function readTorch(path: string | undefined): TorchReport | undefined {
  if (!path || !existsSync(path)) return undefined;
  try {
    return JSON.parse(readFileSync(path, "utf8")) as TorchReport;
  } catch (e) {
    return { error: `cannot read ${path}: ${e instanceof Error ? e.message : String(e)}` };
  }
}

function main(): number {
  const { values } = parseArgs({
    options: {
      out: { type: "string", default: "bench/out" },
      torch: { type: "string" },
      reps: { type: "string", default: "20" },
      only: { type: "string" },
    },
  });
  const here = new URL(".", import.meta.url).pathname;
  const built = JSON.parse(readFileSync(join(here, "kernels/gemm.json"), "utf8")) as {
    m: number;
    entries: GemmEntry[];
    skipped: string[];
  };
  const torch = readTorch(values.torch ?? join(values.out!, "torch-gemm.json"));
  const rt = createCudaRuntime();
  console.log(`device: ${rt.device.name}`);
  if (torch?.device) console.log(`torch ${torch.torch ?? "?"} on ${torch.device}`);
  if (torch?.error) console.log(`torch reference: ${torch.error}`);
  for (const s of built.skipped) console.log(`not built: ${s.split("\n")[0]}`);
  const reps = Number(values.reps);
  const entries = built.entries.filter(
    (e) => !values.only || `${e.kernel} ${e.schedule}`.includes(values.only),
  );

  // Every schedule computes the same outputs for a format: one CPU reference per (format, N, K).
  const references = new Map<string, Record<string, NDArray | number>>();
  const inputs = new Map<string, Record<string, NDArray | number>>();
  const results: Record<string, unknown>[] = [];
  let failed = 0;
  const measure = (e: GemmEntry): Measured => {
    const mod = rt.loadModule(e.artifact.image);
    const fn = kernelFunction(mod, e.artifact);
    let check: { ok: boolean; worst: number } | undefined;
    if (e.reference) {
      // Kernels with other parameters (the residual) get references of their own.
      const key = `${e.format} ${e.n}x${e.k} ${e.artifact.abi.map((a) => a.name).join(",")}`;
      if (!references.has(key)) {
        const ref = compileCpu(funcFromJson(e.reference), { boundsCheck: false });
        const args = randomArgs(ref.func, { m: CHECK_M }, 7);
        inputs.set(key, args);
        const want = cloneArgs(args);
        const t0 = Date.now();
        ref(want);
        console.log(`cpu reference ${key} m ${CHECK_M}: ${((Date.now() - t0) / 1e3).toFixed(1)} s`);
        references.set(key, want);
      }
      const got = runOnce(rt, fn, e.artifact, inputs.get(key)!);
      const cmp = compareResults(references.get(key)!, got, 2e-3);
      check = { ok: cmp.mismatches.length === 0, worst: cmp.worst };
      if (!check.ok) {
        console.log(`MISMATCH ${e.kernel} ${e.schedule}: ${JSON.stringify(cmp.mismatches.slice(0, 3))}`);
      }
    }
    const m = built.m;
    const bytes =
      e.format === "q4f16_1"
        ? {
            x: m * e.k * 2,
            packed: (e.n * e.k) / 2,
            scales: (e.n * e.k) / 16,
            // q4GemmResidualWgmma's residual (y = residual + x W^T).
            ...(e.artifact.abi.some((p) => p.name === "residual") ? { residual: m * e.n * 2 } : {}),
            y: m * e.n * 2,
          }
        : { x: m * e.k * 2, w: e.n * e.k * 2, y: m * e.n * 2 };
    const ptr = Object.fromEntries(Object.entries(bytes).map(([name, b]) => [name, rt.alloc(b)]));
    try {
      // Small finite values: f16 0x2222 is about 0.0125, q4 codes 3 and 7, scales 0x1111 (~6e-4).
      for (const [name, b] of Object.entries(bytes))
        rt.memset8(ptr[name]!, name === "packed" ? 0x37 : name === "scales" ? 0x11 : 0x22, b);
      const symbols = { m };
      const args = kernelArgs(e.artifact, ptr, {}, symbols);
      const us = timeKernel(rt, fn, args, launchConfig(e.artifact, symbols), { reps, warmup: 3 });
      const tflops = (2 * m * e.n * e.k) / (us * 1e-6) / 1e12;
      const ref = torch?.results?.find((t) => t.m === m && t.n === e.n && t.k === e.k);
      const line = {
        format: e.format,
        kernel: e.kernel,
        schedule: e.schedule,
        ...(e.params ? { params: e.params } : {}),
        m,
        n: e.n,
        k: e.k,
        us,
        tflops,
        ...(ref ? { torchF16Tflops: ref.tflops, fractionOfTorchF16: tflops / ref.tflops } : {}),
        registers: e.artifact.registers,
        sharedBytes: e.artifact.sharedBytes,
        ...(check ? { check } : {}),
      };
      console.log(
        `${e.format.padEnd(7)} ${`${e.n}x${e.k}`.padEnd(10)} ${e.kernel} ${e.schedule} (${e.artifact.registers ?? "?"} regs): ` +
          `${us.toFixed(1)} us, ${tflops.toFixed(2)} TFLOP/s` +
          (ref
            ? ` = ${((100 * tflops) / ref.tflops).toFixed(1)}% of torch f16 (${ref.tflops.toFixed(0)} TFLOP/s)`
            : "") +
          (check ? (check.ok ? ", check ok" : ", CHECK FAILED") : ""),
      );
      return line;
    } finally {
      for (const p of Object.values(ptr)) rt.free(p);
      mod.unload();
    }
  };
  for (const e of entries) {
    try {
      const r = measure(e);
      if (r.check && !r.check.ok) failed++;
      results.push(r);
    } catch (err) {
      failed++;
      const message = err instanceof Error ? err.message : String(err);
      console.log(`FAILED ${e.kernel} ${e.schedule} ${e.n}x${e.k}: ${message}`);
      results.push({
        format: e.format,
        kernel: e.kernel,
        schedule: e.schedule,
        n: e.n,
        k: e.k,
        error: message,
      });
    }
  }
  // The best schedule per format and shape.
  const best: Record<string, unknown>[] = [];
  for (const key of new Set(results.map((r) => `${String(r.format)} ${String(r.n)}x${String(r.k)}`))) {
    const rs = results.filter(
      (r) => `${String(r.format)} ${String(r.n)}x${String(r.k)}` === key && typeof r.tflops === "number",
    );
    if (!rs.length) continue;
    const top = rs.reduce((a, b) => ((b.tflops as number) > (a.tflops as number) ? b : a));
    best.push(top);
    console.log(
      `best ${key}: ${top.kernel as string} ${top.schedule as string}, ${(top.tflops as number).toFixed(2)} TFLOP/s` +
        (top.fractionOfTorchF16 !== undefined
          ? ` (${(100 * (top.fractionOfTorchF16 as number)).toFixed(1)}% of torch f16)`
          : ""),
    );
  }
  writeFileSync(
    join(values.out!, "gemm.json"),
    JSON.stringify(
      {
        device: rt.device.name,
        m: built.m,
        torch: torch ?? null,
        failed,
        notBuilt: built.skipped.map((s) => s.split("\n")[0]),
        best,
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
  console.error(`gemm: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  process.exit(2);
}
