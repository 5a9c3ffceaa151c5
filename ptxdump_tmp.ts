import { compileOp } from "./llama/device/compile.ts";
import { llamaOps, allOps, CUDA_OP_CHOICES } from "./llama/ops.ts";
import { LLAMA2_7B } from "./llama/presets.ts";
import { GPU_SCHEDULES } from "./stdlib/gpu/schedules.ts";
import { mkdirSync, writeFileSync } from "node:fs";
const dir = process.argv[2]!; mkdirSync(dir, { recursive: true });
const cfg = { ...LLAMA2_7B, contextLength: 1100 };
const specs = [CUDA_OP_CHOICES, { ...CUDA_OP_CHOICES, foldDecodeNorms: true }, { ...CUDA_OP_CHOICES, fuseDecodeRope: true }]
  .flatMap((c) => allOps(llamaOps(cfg, "q4f16_1", GPU_SCHEDULES, c))).filter((o) => o.kernel.name.endsWith("Mma") && !o.kernel.name.includes("Gemm"));
const seen = new Set<string>();
for (const s of specs) { if (seen.has(s.key)) continue; seen.add(s.key); const a = compileOp(s, "sm_90"); writeFileSync(`${dir}/${s.key}.ptx`, a.image as string); console.log(s.key, a.registers); }
