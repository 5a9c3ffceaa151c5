// Run here (by prepare.sh): what bench/device/decode.ts needs on the GPU machine:
//  - stories15M converted to q4f16_1 (.device/models/stories15M-q4), its greedy 256-token text from
//    the CPU kernel-built model (the GPU's must equal it), and its kernel library for sm_90;
//  - the kernel libraries for the Llama-2-7B shape in q4f16_1 and f16 (its weights are made on the
//    GPU machine: synthetic, in the real formats).
// `npx tsx bench/device/build-model.ts DIR --variant 'name={op choices as JSON}' ...` builds only
// 7B q4f16_1 libraries DIR/lib/llama2-7b-q4-<name>-sm_90 with CUDA's choices and those (null
// unsets one), for decode.ts's --ab 'name=lib/llama2-7b-q4-<name>-sm_90#{the same JSON}'.
import { existsSync, mkdirSync, readFileSync, writeFileSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { loadBundledStories15M, bundledModelFile, bundledTokenizerFile } from "../../llama/bundled.ts";
import { convertModel } from "../../llama/convert/convert.ts";
import { llamaOps, allOps } from "../../llama/ops.ts";
import { CUDA_OP_CHOICES } from "../../llama/op-choices.ts";
import { GPU_SCHEDULES } from "../../stdlib/gpu/schedules.ts";
import { compileLibrary } from "../../llama/device/compile.ts";
import { writeLibrary } from "../../llama/device/library.ts";
import { KernelLlama } from "../../llama/model.ts";
import { createCpuDevice } from "../../llama/device/cpu.ts";
import { generateText } from "../../llama/generate.ts";
import { LLAMA2_7B, DECODE_CONTEXT, parseChoicesVariant, withChoices } from "./models.ts";

const out = resolve(process.argv[2] ?? ".device");
const variants = process.argv
  .slice(3)
  .flatMap((a, i, all) =>
    all[i - 1] === "--variant" ? [parseChoicesVariant(a, "build-model: --variant")] : [],
  );
if (variants.length > 0) {
  for (const v of variants) {
    const choices = withChoices(CUDA_OP_CHOICES, v);
    const ops = llamaOps({ ...LLAMA2_7B, contextLength: DECODE_CONTEXT }, "q4f16_1", GPU_SCHEDULES, choices);
    const lib = compileLibrary(allOps(ops), "sm_90");
    writeLibrary(lib, join(out, "lib", `llama2-7b-q4-${v.name}-sm_90`));
    console.log(`library llama2-7b-q4-${v.name}: ${Object.keys(lib.kernels).length} kernels`);
  }
  process.exit(0);
}
const models = join(out, "models");
mkdirSync(models, { recursive: true });

const storiesDir = join(models, "stories15M-q4");
if (!existsSync(join(storiesDir, "tkc-config.json"))) {
  rmSync(storiesDir, { recursive: true, force: true });
  convertModel(bundledModelFile(), storiesDir, {
    quantization: "q4f16_1",
    tokenizer: bundledTokenizerFile(),
  });
}
const { weights, tokenizer } = loadBundledStories15M();
const expectedFile = join(models, "stories15M-q4-expected.json");
if (!existsSync(expectedFile) || !("margins" in (JSON.parse(readFileSync(expectedFile, "utf8")) as object))) {
  const cpu = new KernelLlama(createCpuDevice(), weights, { format: "q4f16_1" });
  const r = await generateText(cpu, tokenizer, { maxTokens: 256, temperature: 0, topP: 1, seed: 1 });
  // Each chosen token's lead over the runner-up in the CPU model's logits, so that a GPU text that
  // leaves this one can be told a near tie (another rounding order flips it) from a wrong result.
  const margins: number[] = [];
  let logits = cpu.prefill([1], 0);
  for (let i = 0; i < r.tokens.length; i++) {
    const sorted = Float32Array.from(logits).sort();
    margins.push(sorted[sorted.length - 1]! - sorted[sorted.length - 2]!);
    if (i + 1 < r.tokens.length) logits = cpu.decode(r.tokens[i]!, i + 1);
  }
  writeFileSync(
    expectedFile,
    JSON.stringify({
      tokens: r.tokens,
      text: r.text,
      margins,
      cpuDecodeTokPerS: r.stats.decodeTokensPerSecond,
    }),
  );
  console.log(`stories15M q4f16_1 on the CPU: ${r.stats.decodeTokensPerSecond?.toFixed(1)} tok/s`);
}
const libs: [string, ReturnType<typeof llamaOps>][] = [
  ["stories15M-q4", llamaOps(weights.config, "q4f16_1", GPU_SCHEDULES, CUDA_OP_CHOICES)],
  [
    "llama2-7b-q4",
    llamaOps({ ...LLAMA2_7B, contextLength: DECODE_CONTEXT }, "q4f16_1", GPU_SCHEDULES, CUDA_OP_CHOICES),
  ],
  // The tensor-core decode GEMVs with an L2 prefetch of each block's weights, with each RMSNorm
  // its own launch, and the four-rows FMA decode GEMVs, for decode.ts's A/B.
  [
    "llama2-7b-q4-prefetch",
    llamaOps({ ...LLAMA2_7B, contextLength: DECODE_CONTEXT }, "q4f16_1", GPU_SCHEDULES, {
      ...CUDA_OP_CHOICES,
      prefetchDecodeWeights: true,
    }),
  ],
  [
    "llama2-7b-q4-normlaunch",
    llamaOps({ ...LLAMA2_7B, contextLength: DECODE_CONTEXT }, "q4f16_1", GPU_SCHEDULES, {
      ...CUDA_OP_CHOICES,
      foldDecodeNorms: false,
    }),
  ],
  [
    "llama2-7b-q4-rowsgemv",
    llamaOps({ ...LLAMA2_7B, contextLength: DECODE_CONTEXT }, "q4f16_1", GPU_SCHEDULES, {
      ...CUDA_OP_CHOICES,
      decodeGemv: "rows",
    }),
  ],
  [
    "llama2-7b-f16",
    llamaOps({ ...LLAMA2_7B, contextLength: DECODE_CONTEXT }, "f16", GPU_SCHEDULES, CUDA_OP_CHOICES),
  ],
];
for (const [name, ops] of libs) {
  const lib = compileLibrary(allOps(ops), "sm_90");
  writeLibrary(lib, join(out, "lib", `${name}-sm_90`));
  console.log(`library ${name}: ${Object.keys(lib.kernels).length} kernels`);
}
