// Vulkan against CUDA on the same GPU: reads the decode and vulkan runners' results of one device
// call (bench/device/run.sh decode; bench/device/run.sh vulkan) and writes their ratios.
//   npx tsx bench/compare-vulkan-cuda.ts <decode.json> <vulkan.json> <out.json>
import { readFileSync, writeFileSync } from "node:fs";

interface DecodeJson {
  device: string;
  stories15M: { decodeTokPerS: number; sameTextAsCpu: boolean };
  llama2_7b_q4: { decode: { tokPerS: number } };
}
interface VulkanJson {
  device: { name: string };
  stories15M?: { decodeTokPerS?: number; sameTextAsCpu?: boolean };
  llama2_7b_q4?: { decode?: { tokPerS: number } };
}

const [decodeFile, vulkanFile, outFile] = process.argv.slice(2);
if (!decodeFile || !vulkanFile || !outFile) {
  console.error("usage: npx tsx bench/compare-vulkan-cuda.ts <decode.json> <vulkan.json> <out.json>");
  process.exit(2);
}
const cuda = JSON.parse(readFileSync(decodeFile, "utf8")) as DecodeJson;
const vk = JSON.parse(readFileSync(vulkanFile, "utf8")) as VulkanJson;
const row = (name: string, c: number, v: number | undefined) => ({
  model: name,
  cudaTokPerS: c,
  vulkanTokPerS: v ?? null,
  vulkanOverCuda: v === undefined ? null : v / c,
});
const out = {
  command: `npx tsx bench/compare-vulkan-cuda.ts ${decodeFile} ${vulkanFile} ${outFile}`,
  device: cuda.device,
  vulkanDevice: vk.device.name,
  note: "both runners ran in one call on the same GPU machine (bench/device/run.sh decode, then vulkan)",
  results: [
    row(
      "stories15M q4f16_1 (real weights, greedy text checked against the CPU)",
      cuda.stories15M.decodeTokPerS,
      vk.stories15M?.decodeTokPerS,
    ),
    row(
      "Llama-2-7B shape q4f16_1 (synthetic weights)",
      cuda.llama2_7b_q4.decode.tokPerS,
      vk.llama2_7b_q4?.decode?.tokPerS,
    ),
  ],
};
writeFileSync(outFile, JSON.stringify(out, null, 1) + "\n");
for (const r of out.results)
  console.log(
    `${r.model}: CUDA ${r.cudaTokPerS.toFixed(1)} tok/s, Vulkan ${r.vulkanTokPerS?.toFixed(1) ?? "-"} tok/s = ${r.vulkanOverCuda === null ? "-" : (100 * r.vulkanOverCuda).toFixed(0) + "%"}`,
  );
