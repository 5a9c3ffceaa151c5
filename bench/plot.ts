// Draws bench/results/roofline.svg from the GPU results: 7B q4f16_1 decode tok/s (CUDA, and
// Vulkan when measured) against the roofline (bytes per token over the copy bandwidth measured in
// the same run), and each GEMV's bandwidth as a fraction of that copy bandwidth.
// Run: npx tsx bench/plot.ts [h100|h200]
import { existsSync, readFileSync, writeFileSync } from "node:fs";

interface Decode {
  device: string;
  copyBandwidthGBs: number;
  llama2_7b_q4: { decode: { tokPerS: number; rooflineTokPerS: number; bytesPerToken: number } };
}
interface Gemv {
  device: string;
  copyBandwidthGBs: number;
  results: {
    n: number;
    k: number;
    rows: number;
    lanes: number;
    rows4?: boolean;
    unrollGroups?: boolean;
    gbps: number;
    fractionOfCopy: number;
    /** Launched back to back with programmatic dependent launch, as the decode step's graph does. */
    fractionOfCopyProgrammatic?: number;
  }[];
}

// Which GPU's results: npx tsx bench/plot.ts [h100|h200] (default h100, this project's latest).
const gpu = process.argv[2] ?? "h100";
const decode = JSON.parse(readFileSync(`bench/results/decode-${gpu}.json`, "utf8")) as Decode;
const gemv = JSON.parse(readFileSync(`bench/results/gemv-${gpu}.json`, "utf8")) as Gemv;
const vulkanFile = `bench/results/vulkan-${gpu}.json`;
const vulkan = existsSync(vulkanFile)
  ? (JSON.parse(readFileSync(vulkanFile, "utf8")) as { llama2_7b_q4?: { decode?: { tokPerS: number } } })
  : undefined;
// Each shape's best kernel, as the decode launches it (with programmatic launch where measured).
const fraction = (r: Gemv["results"][number]) => r.fractionOfCopyProgrammatic ?? r.fractionOfCopy;
const programmatic = gemv.results.some((r) => r.fractionOfCopyProgrammatic !== undefined);
const best = new Map<string, Gemv["results"][number]>();
for (const r of gemv.results) {
  const key = `${r.n}x${r.k}`;
  if (!best.has(key) || fraction(best.get(key)!) < fraction(r)) best.set(key, r);
}

const W = 760;
const H = 360;
const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");
const parts: string[] = [];
const bar = (x: number, y0: number, h: number, w: number, color: string, label: string, value: string) => {
  parts.push(`<rect x="${x}" y="${y0 - h}" width="${w}" height="${h}" fill="${color}"/>`);
  parts.push(
    `<text x="${x + w / 2}" y="${y0 + 16}" font-size="11" text-anchor="middle">${esc(label)}</text>`,
  );
  parts.push(
    `<text x="${x + w / 2}" y="${y0 - h - 4}" font-size="11" text-anchor="middle">${esc(value)}</text>`,
  );
};
// Left: decode against the roofline.
const d = decode.llama2_7b_q4.decode;
const base = 300;
const scale = 240 / d.rooflineTokPerS;
parts.push(
  `<text x="20" y="24" font-size="14" font-weight="bold">Llama-2-7B q4f16_1 decode, ${esc(decode.device)}</text>`,
);
bar(40, base, d.rooflineTokPerS * scale, 90, "#cfd8dc", "roofline", `${d.rooflineTokPerS.toFixed(0)} tok/s`);
bar(
  150,
  base,
  d.tokPerS * scale,
  90,
  "#1e88e5",
  "tkc (CUDA)",
  `${d.tokPerS.toFixed(0)} tok/s (${((100 * d.tokPerS) / d.rooflineTokPerS).toFixed(0)}%)`,
);
const vk = vulkan?.llama2_7b_q4?.decode?.tokPerS;
if (vk)
  bar(
    260,
    base,
    vk * scale,
    90,
    "#8e24aa",
    "tkc (Vulkan)",
    `${vk.toFixed(0)} tok/s (${((100 * vk) / d.rooflineTokPerS).toFixed(0)}%)`,
  );
parts.push(
  `<text x="40" y="${base + 36}" font-size="11">${(d.bytesPerToken / 1e9).toFixed(2)} GB/token over ${decode.copyBandwidthGBs.toFixed(0)} GB/s measured copy bandwidth</text>`,
);
// Right: GEMV fraction of copy bandwidth.
parts.push(`<text x="400" y="24" font-size="14" font-weight="bold">q4f16_1 GEMV, % of copy bandwidth</text>`);
if (programmatic)
  parts.push(
    `<text x="400" y="40" font-size="11">launched back to back with programmatic dependent launch</text>`,
  );
let x = 400;
for (const [key, r] of best) {
  bar(x, base, fraction(r) * 240, 56, "#43a047", key, `${(100 * fraction(r)).toFixed(0)}%`);
  x += 66;
}
parts.push(
  `<line x1="395" y1="${base - 240}" x2="${x}" y2="${base - 240}" stroke="#999" stroke-dasharray="4 3"/>`,
);
parts.push(`<text x="${x}" y="${base - 244}" font-size="10" text-anchor="end">100% of copy</text>`);
const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>${parts.join("")}</svg>\n`;
writeFileSync("bench/results/roofline.svg", svg);
console.log("bench/results/roofline.svg");
