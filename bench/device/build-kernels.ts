// Run here (by prepare.sh), not on the GPU machine: compiles the NVPTX fixture kernels to PTX
// with compileLLVM, so the GPU machine needs neither LLVM nor a compiler. Writes
// <outDir>/selftest.json: { target, kernels: { name: { ptx, resources? } } }.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { compileLLVM } from "../../backends/llvm/compile.ts";
import {
  ptxResources,
  ResourceToolUnavailableError,
  type KernelResources,
} from "../../backends/llvm/resources.ts";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const fixtures = join(root, "test/backends/llvm/fixtures");
const target = { kind: "nvptx", arch: "sm_90" } as const;

/** Kernel entry name -> fixture file; the selftest looks kernels up by entry name. */
export const SELFTEST_KERNELS: Record<string, string> = {
  vadd: "nvptx-vadd.ll",
  block_sum: "nvptx-reduce.ll",
  hfma_relu: "nvptx-f16.ll",
  reverse_tile: "nvptx-dynsmem.ll",
  accum: "nvptx-accum.ll",
};

export interface KernelBundle {
  target: typeof target;
  kernels: Record<string, { ptx: string; source: string; resources?: KernelResources }>;
}

function main(outDir: string): void {
  const bundle: KernelBundle = { target, kernels: {} };
  for (const [name, file] of Object.entries(SELFTEST_KERNELS)) {
    const { ptx } = compileLLVM(readFileSync(join(fixtures, file), "utf8"), target);
    let resources: KernelResources | undefined;
    try {
      resources = ptxResources(ptx!, target.arch).find((k) => k.name === name);
    } catch (e) {
      if (!(e instanceof ResourceToolUnavailableError)) throw e; // ptxas rejecting the PTX is fatal
    }
    bundle.kernels[name] = { ptx: ptx!, source: `test/backends/llvm/fixtures/${file}`, resources };
  }
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, "selftest.json"), JSON.stringify(bundle, null, 1));
  console.log(`kernels: ${Object.keys(bundle.kernels).join(", ")} -> ${join(outDir, "selftest.json")}`);
}

main(resolve(process.argv[2] ?? join(root, ".device/kernels")));
