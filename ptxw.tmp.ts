import { compileLLVM } from "./backends/llvm/compile.ts";
import { renderLLVM } from "./backends/llvm/render.ts";
import { specialize } from "./lower/ir/specialize.ts";
import { lowerKernel } from "./lower/frontend/lower.ts";
import { lowerToDevice } from "./lower/passes/pipeline.ts";
import { TARGETS } from "./lower/passes/target.ts";
import { Schedule } from "./lower/schedule/index.ts";
import { GPU_SCHEDULES } from "./stdlib/gpu/schedules.ts";
import * as S from "./stdlib/index.ts";
import { execSync } from "node:child_process";
import { writeFileSync } from "node:fs";
const cases: [string, Record<string, number>][] = [
  ["q4GemmWgmma", { n: 4096, k: 4096, kw: 512, kg: 128 }],
  ["q4GemmResidualWgmma", { n: 4096, k: 11008, kw: 1376, kg: 344 }],
  ["q4GateUpSiluGemmWgmma", { n2: 22016, i: 11008, k: 4096, kw: 512, kg: 128 }],
  ["q4QkvRopeAppendGemmWgmma", { n: 12288, k: 4096, kw: 512, kg: 128, h: 32, kvh: 32, d: 128, ctx: 4096 }],
];
for (const [name, sym] of cases) {
  const k = (S as any)[name];
  const s = new Schedule(specialize(lowerKernel(k), sym));
  (GPU_SCHEDULES as any)[name](s, "sm_90");
  const t = { kind: "nvptx", arch: "sm_90" } as const;
  const ptx = compileLLVM(renderLLVM(lowerToDevice(s.func, TARGETS.sm_90), t).text, t).ptx!;
  writeFileSync(`/tmp/${name}.ptx`, ptx);
  const c = (re: RegExp) => ptx.match(re)?.length ?? 0;
  const out = execSync(`ptxas -arch=sm_90a -v /tmp/${name}.ptx -o /tmp/${name}.cubin 2>&1`).toString();
  console.log(name, "wgmma", c(/wgmma.mma_async/g), "wait", c(/wait_group/g), "commit", c(/commit_group/g), "bar", c(/bar.sync/g), out.match(/Used \d+ registers/)?.[0], out.match(/\d+ bytes spill stores/)?.[0], /serializ/i.test(out) ? "SERIALIZED" : "");
}
