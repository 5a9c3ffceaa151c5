// CPU throughput of stories15M: the plain-TypeScript reference and the kernel-built model (f32 and
// q4f16_1) on the CPU device. Prefill of a 64-token prompt, then 128 greedy decode steps.
// Writes bench/results/cpu-<host>.json.  Run: npx tsx bench/cpu.ts
import { writeFileSync, mkdirSync } from "node:fs";
import os from "node:os";
import { loadBundledStories15M } from "../llama/bundled.ts";
import { ReferenceLlama } from "../llama/reference.ts";
import { KernelLlama } from "../llama/model.ts";
import { createCpuDevice } from "../llama/device/cpu.ts";
import type { LanguageModel } from "../llama/generate.ts";

const { weights } = loadBundledStories15M();
const prompt = Array.from({ length: 64 }, (_, i) => (i === 0 ? 1 : 100 + ((i * 37) % 3000)));

function measure(name: string, model: LanguageModel) {
  model.prefill(prompt.slice(0, 4), 0); // compile kernels, warm up
  model.reset();
  const t0 = performance.now();
  let logits = model.prefill(prompt, 0) as Float32Array;
  const prefillS = (performance.now() - t0) / 1e3;
  const steps = 128;
  const t1 = performance.now();
  for (let pos = prompt.length; pos < prompt.length + steps; pos++) {
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
    logits = model.decode(best, pos) as Float32Array;
  }
  const decodeS = (performance.now() - t1) / 1e3;
  const r = { model: name, prefillTokPerS: prompt.length / prefillS, decodeTokPerS: steps / decodeS };
  console.log(
    `${name}: prefill ${r.prefillTokPerS.toFixed(1)} tok/s, decode ${r.decodeTokPerS.toFixed(1)} tok/s`,
  );
  return r;
}

const results = [
  measure("reference (plain TypeScript, f32)", new ReferenceLlama(weights)),
  measure("kernel-built, f32, CPU device", new KernelLlama(createCpuDevice(), weights, { format: "f32" })),
  measure(
    "kernel-built, q4f16_1, CPU device",
    new KernelLlama(createCpuDevice(), weights, { format: "q4f16_1" }),
  ),
];
const cpu = os.cpus()[0]?.model ?? "unknown CPU";
mkdirSync("bench/results", { recursive: true });
writeFileSync(
  "bench/results/cpu.json",
  JSON.stringify(
    {
      device: `${cpu} (${os.cpus().length} cores; one used)`,
      node: process.version,
      command: "npx tsx bench/cpu.ts",
      model: "stories15M",
      results,
    },
    null,
    1,
  ),
);
