// Shared by the LLVM backend tests: fixture loading, "is this tool installed" probes, ptxas runs.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { llvm } from "../../../backends/llvm/llvm-c.ts";

const here = dirname(fileURLToPath(import.meta.url));

/** Why libLLVM 19 cannot be loaded here ("" when it can): tests that compile skip with this reason. */
export const llvmMissing: string = (() => {
  try {
    llvm();
    return "";
  } catch (e) {
    return (e as Error).message;
  }
})();

export function fixture(name: string): string {
  return readFileSync(join(here, "fixtures", `${name}.ll`), "utf8");
}

export function hasTool(cmd: string, arg = "--version"): boolean {
  const r = spawnSync(cmd, [arg], { encoding: "utf8" });
  return !r.error && r.status === 0;
}

/** Runs a tool and returns stdout + stderr and the exit status. */
export function run(cmd: string, args: string[]): { status: number | null; out: string } {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  if (r.error) throw r.error;
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

/**
 * `ptxas -v` on a PTX text (written to a fresh temporary directory): its exit status and its report
 * (registers, shared memory, spills; ptxas writes it and its warnings to stderr).
 */
export function ptxasVerbose(ptx: string, arch = "sm_90"): { status: number | null; log: string } {
  const dir = mkdtempSync(join(tmpdir(), "tkc-ptxas-"));
  writeFileSync(join(dir, "k.ptx"), ptx);
  const p = spawnSync("ptxas", [`-arch=${arch}`, "-v", join(dir, "k.ptx"), "-o", join(dir, "k.cubin")], {
    encoding: "utf8",
  });
  return { status: p.status, log: `${p.stdout}${p.stderr}` };
}
