// Runs on the GPU machine: every kernel's SPIR-V on the Vulkan device against the CPU backend on
// fresh random inputs, with the outputs poisoned beforehand (bench/device/checks.ts for Vulkan).
// The kernels are .device/kernels/vulkan-checks-sg<N>.json for the device's subgroup size N, built
// here by `npx tsx bench/device/build-checks.ts .device/kernels --vulkan N` (prepare.sh builds 32,
// NVIDIA's); the loader and driver are found as for the model runner (vulkan-setup.ts).
//
//   bash bench/device/run.sh vulkan-checks [--seed S] [--only SUBSTRING] [--checks FILE]
//
// Writes $OUT/vulkan-checks.json (after every kernel). Exit status: 0, 1 when a kernel mismatches
// or fails to run, 2 when there is no usable Vulkan device or no checks for its subgroup size.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { compareResults } from "../../backends/check.ts";
import { compileCpu } from "../../backends/cpu/exec.ts";
import { vulkanKernel, type VulkanKernel } from "../../backends/vulkan/kernel.ts";
import { funcFromJson } from "../../lower/ir/serialize.ts";
import { caseArgs, type VulkanChecksFile } from "./check-case.ts";
import { openVulkan, startVulkan } from "./vulkan-setup.ts";

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

function main(): number {
  const { values } = parseArgs({
    options: {
      out: { type: "string", default: "bench/out" },
      seed: { type: "string" },
      only: { type: "string" },
      checks: { type: "string" },
      "device-dir": { type: "string" },
    },
  });
  // The bundle lives in .device/; run from source, the folder is the repository's .device.
  const here = dirname(fileURLToPath(import.meta.url));
  const deviceDir = resolve(
    values["device-dir"] ?? (existsSync(join(here, "kernels")) ? here : join(here, "../../.device")),
  );
  mkdirSync(values.out!, { recursive: true });
  const seed = Number(values.seed ?? Date.now() % 1_000_000);
  const report: Record<string, unknown> = {
    command: "bash bench/device/run.sh vulkan-checks",
    device: null,
    seed,
    failed: 0,
    results: [],
  };
  const save = () => writeFileSync(join(values.out!, "vulkan-checks.json"), JSON.stringify(report, null, 1));
  const fatal = (error: string) => {
    console.error(`vulkan-checks: ${error}`);
    report.error = error;
    save();
    return 2;
  };

  const { setup, exitCode } = startVulkan(deviceDir, (line) => console.log(line));
  if (exitCode !== undefined) return exitCode;
  report.setup = setup;
  const opened = openVulkan(setup, "vulkan-checks", `; seed ${seed}`);
  if ("error" in opened) return fatal(opened.error);
  const rt = opened.rt;
  try {
    const info = rt.device;
    const sg = info.subgroup.size;
    report.device = info.name;
    report.deviceInfo = opened.record;
    const file = resolve(values.checks ?? join(deviceDir, "kernels", `vulkan-checks-sg${sg}.json`));
    if (!existsSync(file))
      return fatal(
        `${file} is missing: this device's subgroup size is ${sg}; build it here with npx tsx bench/device/build-checks.ts .device/kernels --vulkan ${sg}`,
      );
    const lib = JSON.parse(readFileSync(file, "utf8")) as VulkanChecksFile;
    if (lib.format !== "tkc-vulkan-checks") return fatal(`${file} is not a tkc Vulkan checks file`);
    // Reductions lowered for another subgroup size would combine the wrong lanes.
    if (lib.subgroupSize !== sg)
      return fatal(`${file} was built for subgroup size ${lib.subgroupSize}, the device's is ${sg}`);
    report.checksFile = file;
    report.subgroupSize = sg;
    const results: unknown[] = (report.results = []);
    let failed = 0;
    for (const c of lib.checks) {
      if (values.only !== undefined && !c.name.includes(values.only)) continue;
      const ref = compileCpu(funcFromJson(c.reference));
      let kernel: VulkanKernel | undefined;
      let loadError: string | undefined;
      try {
        kernel = vulkanKernel(rt, c.artifact); // checks the device's limits, builds the pipeline
      } catch (e) {
        loadError = message(e);
      }
      c.cases.forEach((symbols, i) => {
        let status = "ok";
        let detail: unknown;
        try {
          if (!kernel) throw new Error(loadError);
          // Write-only outputs poisoned (0xFF) on both sides: see caseArgs and vulkanKernel.
          const { args, expected } = caseArgs(c, ref, symbols, seed + i);
          const cmp = compareResults(expected, kernel(args), c.tol);
          if (cmp.mismatches.length) {
            status = "MISMATCH";
            detail = cmp.mismatches;
          }
          detail ??= { worstRelativeError: cmp.worst };
        } catch (e) {
          status = "ERROR";
          detail = message(e);
        }
        if (status !== "ok") failed++;
        console.log(`${status.padEnd(8)} ${c.name} ${JSON.stringify(symbols)} ${JSON.stringify(detail)}`);
        results.push({
          kernel: c.name,
          symbols,
          status,
          detail,
          localSize: c.artifact.localSize,
          sharedBytes: c.artifact.sharedBytes,
        });
      });
      report.failed = failed;
      save();
    }
    save();
    console.log(
      failed
        ? `vulkan-checks: ${failed} of ${results.length} failed`
        : `vulkan-checks: all ${results.length} passed`,
    );
    return failed ? 1 : 0;
  } finally {
    rt.destroy();
  }
}

try {
  process.exit(main());
} catch (e) {
  console.error(`vulkan-checks: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  process.exit(2);
}
