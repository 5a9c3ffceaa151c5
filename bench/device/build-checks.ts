// Run here (by prepare.sh): schedules every kernel for the GPU, compiles it to PTX for sm_90, and
// writes <outDir>/checks.json with the unscheduled IR (the CPU reference the GPU machine runs) and
// the test cases, for bench/device/checks.ts.
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { GPU_EXAMPLES } from "../../examples/gpu-schedules.ts";
import { lowerKernel } from "../../lower/frontend/lower.ts";
import { funcToJson } from "../../lower/ir/serialize.ts";
import { buildArtifact } from "../../backends/llvm/artifact.ts";
import type { CheckCase } from "./checks.ts";

const target = { kind: "nvptx", arch: "sm_90" } as const;

export function buildChecks(): CheckCase[] {
  const out: CheckCase[] = [];
  for (const [name, ex] of Object.entries(GPU_EXAMPLES)) {
    const scheduled = ex.schedule().func;
    const { llvm: _llvm, ...artifact } = buildArtifact(scheduled, target, { resources: true });
    out.push({
      name,
      reference: funcToJson(lowerKernel(ex.kernel)),
      artifact,
      cases: ex.cases,
      scalars: ex.scalars ?? {},
      tol: ex.tol,
    });
  }
  return out;
}

const outDir = resolve(process.argv[2] ?? ".device/kernels");
mkdirSync(outDir, { recursive: true });
const checks = buildChecks();
writeFileSync(join(outDir, "checks.json"), JSON.stringify(checks));
console.log(`checks: ${checks.map((c) => c.name).join(", ")} -> ${join(outDir, "checks.json")}`);
