// bench/kernels: every stdlib kernel at Llama-2-7B sizes with its GPU schedule for sm_90, timed on
// the GPU: microseconds, the bytes it must move over that time as a fraction of the copy bandwidth
// measured in the same run, and TFLOP/s for the GEMMs (compare with PyTorch's f16 matmul in
// bench/results/torch-gemm-*.json).
//
//   npx tsx bench/kernels.ts [.device]                     here -> .device/kernels/kernels.json.gz
//   bash bench/device/run.sh tune --set kernels             there -> $OUT/kernels.json
//
// Bytes are each tensor's size once (the least a kernel can move), except where a kernel reads part
// of a tensor: decode attention reads len of the cache's rows, prefill attention start + n, the
// embedding one row per token. Inputs are constant bytes (timing only), token ids real ones.
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { gzipSync } from "node:zlib";
import * as S from "../stdlib/index.ts";
import type { KernelDef } from "../dsl/kernel.ts";
import { bytesOf } from "../dsl/dtypes.ts";
import { GPU_SCHEDULES } from "../stdlib/gpu/schedules.ts";
import { DECODE_SPLITS } from "../stdlib/attention_decode_split.ts";
import { specializedFunc } from "../llama/device/prepare.ts";
import type { OpSpec } from "../llama/device/types.ts";
import { compileOp } from "../llama/device/compile.ts";
import type { TuneCandidate } from "./tune.ts";

const CTX = 1100;
const LEN = 512;
const PREFILL = { n: 64, start: 448 };
const q4 = (n: number, k: number) => ({ n, k, kw: k / 8, kg: k / 32 });
const gemm = (m: number, n: number, k: number) => ({ m, ...q4(n, k) });

/** Sizes per kernel: Llama-2-7B's decode shapes, and a 512-token prefill for the GEMMs. */
const SIZES: Record<string, Record<string, number>> = {
  q4Gemv: q4(4096, 4096),
  q4GemvRows4: q4(4096, 4096),
  q4GemvMma: q4(4096, 4096),
  q4GemvResidualMma: q4(4096, 4096),
  q4GemvF32Mma: q4(32000, 4096),
  q4GateUpSiluMma: { k: 4096, n2: 22016, kw: 512, kg: 128, i: 11008 },
  q4GemvRmsMma: q4(12288, 4096),
  q4QkvRopeAppendMma: { ...q4(12288, 4096), h: 32, kvh: 32, d: 128, ctx: 1024 },
  q4QkvRopeAppendRmsMma: { ...q4(12288, 4096), h: 32, kvh: 32, d: 128, ctx: 1024 },
  q4GateUpSiluRmsMma: { k: 4096, n2: 22016, kw: 512, kg: 128, i: 11008 },
  q4GemvF32: q4(32000, 4096),
  q4GemvF32Rows4: q4(32000, 4096),
  q4GemvResidual: q4(4096, 11008),
  q4GemvResidualRows4: q4(4096, 11008),
  q4GateUpSilu: { k: 4096, n2: 22016, kw: 512, kg: 128, i: 11008 },
  q4GateUpSiluRows2: { k: 4096, n2: 22016, kw: 512, kg: 128, i: 11008 },
  q4GateUpSiluRms: { k: 4096, n2: 22016, kw: 512, kg: 128, i: 11008 },
  q4QkvGemv: { ...q4(12288, 4096), qd: 4096, kvd: 4096 },
  q4GemvRows4Rms: q4(12288, 4096),
  f16Gemv: { k: 4096, n: 4096 },
  f16GemvResidual: { k: 4096, n: 4096 },
  f16GateUpSilu: { k: 4096, n2: 22016, i: 11008 },
  q4Gemm: gemm(512, 4096, 4096),
  q4GemmTiled: gemm(512, 4096, 4096),
  q4GemmMma: gemm(512, 4096, 4096),
  q4GemmWgmma: gemm(512, 4096, 4096),
  q4GemmResidual: gemm(512, 4096, 11008),
  q4GateUpSiluGemm: { m: 512, k: 4096, n2: 22016, kw: 512, kg: 128, i: 11008 },
  q4GemmResidualMma: gemm(512, 4096, 11008),
  q4QkvGemmMma: { ...gemm(512, 12288, 4096), qd: 4096, kvd: 4096 },
  q4QkvRopeAppendGemmMma: { ...gemm(512, 12288, 4096), h: 32, kvh: 32, d: 128, ctx: CTX },
  q4GateUpSiluGemmMma: { m: 512, k: 4096, n2: 22016, kw: 512, kg: 128, i: 11008 },
  q4GemmResidualWgmma: gemm(512, 4096, 11008),
  q4QkvGemmWgmma: { ...gemm(512, 12288, 4096), qd: 4096, kvd: 4096 },
  q4QkvRopeAppendGemmWgmma: { ...gemm(512, 12288, 4096), h: 32, kvh: 32, d: 128, ctx: CTX },
  q4GateUpSiluGemmWgmma: { m: 512, k: 4096, n2: 22016, kw: 512, kg: 128, i: 11008 },
  // The whole gate/up in 4 splits of K (the model splits only the last 448 outputs).
  q4GateUpSplitKGemmWgmma: { m: 512, k: 4096, n2: 22016, kw: 512, kg: 128, s: 4, p: 11008 },
  gateUpSiluSplitReduce: { m: 512, s: 4, p: 448, i: 11008 },
  q4QkvGemm: { ...gemm(512, 12288, 4096), qd: 4096, kvd: 4096 },
  f16Gemm: { m: 512, k: 4096, n: 4096 },
  f16GemmTiled: { m: 512, k: 4096, n: 4096 },
  f16GemmMma: { m: 512, k: 4096, n: 4096 },
  rmsNorm: { m: 1, d: 4096 },
  ropeHalf: { t: 1, h: 64, d: 128 },
  ropeInterleaved: { t: 1, h: 64, d: 128 },
  kvAppend: { n: 1, kvh: 32, d: 128, ctx: CTX },
  ropeHalfAppend: { hqk: 64, h: 32, kvh: 32, d: 128, ctx: CTX },
  ropeInterleavedAppend: { hqk: 64, h: 32, kvh: 32, d: 128, ctx: CTX },
  attentionDecode: { h: 32, d: 128, ctx: CTX, kvh: 32 },
  attentionDecodeShared: { h: 32, d: 128, ctx: CTX, kvh: 32 },
  attentionDecodeSplit: { h: 32, d: 128, ctx: CTX, kvh: 32, splits: DECODE_SPLITS },
  attentionDecodeWarps: { h: 32, d: 128, ctx: CTX, kvh: 32 },
  attentionDecodeCombine: { h: 32, d: 128, splits: DECODE_SPLITS },
  attentionDecodeSplitLast: { h: 32, d: 128, ctx: CTX, kvh: 32, splits: DECODE_SPLITS },
  attentionPrefill: { n: PREFILL.n, h: 32, d: 128, ctx: CTX, kvh: 32 },
  attentionPrefillWarps: { n: PREFILL.n, h: 32, d: 128, ctx: CTX, kvh: 32 },
  attentionPrefillMma: { n: PREFILL.n, h: 32, d: 128, ctx: CTX, kvh: 32 },
  softmax: { m: 32, n: CTX },
  residualAdd: { m: 1, d: 4096 },
  siluMul: { m: 1, d: 11008 },
  q4Embedding: { t: 1, vocab: 32000, dw: 512, dg: 128, dim: 4096 },
  argmax: { m: 1, v: 32000 },
  sampleTopP: { m: 1, v: 32000 },
};

const SCALARS: Record<string, number> = {
  eps: 1e-5,
  theta: 10000,
  offset: LEN - 1,
  pos: LEN - 1,
  len: LEN,
  start: PREFILL.start,
  temperature: 0.8,
  topP: 0.9,
};

/** Rows of a cache a kernel reads, where it reads only some. */
function cacheRows(name: string): number | undefined {
  if (name.startsWith("attentionDecode") && name !== "attentionDecodeCombine") return LEN;
  if (name.startsWith("attentionPrefill")) return PREFILL.start + PREFILL.n;
  if (name === "kvAppend" || name.endsWith("Append")) return 1;
  return undefined;
}

function candidates(): TuneCandidate[] {
  const out: TuneCandidate[] = [];
  for (const [name, k] of Object.entries(S)) {
    if (typeof k !== "object" || (k as { kind?: string }).kind !== "kernel") continue;
    // Five scalars on one thread, and each launch advances the position it writes at: repeated
    // launches would leave the buffer. Nothing to time.
    if (name === "recordToken") continue;
    const sizes = SIZES[name];
    if (!sizes) throw new Error(`bench/kernels: no 7B sizes for stdlib kernel ${name}; add it to SIZES`);
    const spec: OpSpec = {
      key: `kernels_${name}`,
      kernel: k as KernelDef,
      specialize: sizes,
      ...(GPU_SCHEDULES[name] ? { schedule: GPU_SCHEDULES[name] } : {}),
    };
    const f = specializedFunc(spec);
    const buffers: Record<string, number> = {};
    let bytes = 0;
    const fixedBuffers: Record<string, number[]> = {};
    for (const p of f.params) {
      if (p.kind !== "buffer") continue;
      const dims = p.buffer.shape.map((d) => (d.kind === "const" ? d.value : NaN));
      const size = dims.reduce((a, b) => a * b, 1) * bytesOf(p.buffer.dtype);
      buffers[p.buffer.name] = size;
      const rows = p.buffer.name.endsWith("Cache") ? cacheRows(name) : undefined;
      const embedRows = name === "q4Embedding" && p.buffer.name !== "ids" && p.buffer.name !== "out";
      bytes += rows !== undefined ? (size / dims[0]!) * rows : embedRows ? size / dims[0]! : size;
      if (p.buffer.name === "ids")
        fixedBuffers.ids = Array.from({ length: dims[0]! }, (_, i) => (i * 7919) % 32000);
      // attentionDecodeSplitLast's counters start at 0 (each launch leaves them so).
      if (p.buffer.name === "count") fixedBuffers.count = new Array<number>(dims[0]!).fill(0);
    }
    const scalars = Object.fromEntries(
      f.params.flatMap((p) => (p.kind === "scalar" ? [[p.v.name, SCALARS[p.v.name] ?? 1]] : [])),
    );
    const isGemm = /Gemm/.test(name);
    // Without a GPU schedule a kernel runs on one thread: fine for argmax over 32000 logits, hours
    // for a 512-token GEMM.
    const skip =
      !GPU_SCHEDULES[name] && isGemm ? "no GPU schedule: one thread for the whole GEMM" : undefined;
    const flops = isGemm ? 2 * sizes.m! * (sizes.n ?? sizes.n2!) * sizes.k! : undefined;
    const artifact = compileOp(spec, "sm_90");
    out.push({
      family: name,
      // Scheduled by stdlib/gpu/schedules.ts, or (false) one thread per block: not meant for GPUs.
      params: { scheduled: !!GPU_SCHEDULES[name] },
      shape: Object.entries(sizes)
        .map(([s, v]) => `${s}=${v}`)
        .join(","),
      buffers,
      scalars,
      bytes,
      artifact,
      ...(Object.keys(fixedBuffers).length ? { fixedBuffers } : {}),
      ...(flops ? { flops } : {}),
      ...(skip ? { skip } : {}),
    });
  }
  return out;
}

const dir = resolve(process.argv[2] ?? ".device", "kernels");
mkdirSync(dir, { recursive: true });
const list = candidates();
writeFileSync(join(dir, "kernels.json.gz"), gzipSync(JSON.stringify(list)));
console.log(`kernels: ${list.length} stdlib kernels -> ${join(dir, "kernels.json.gz")}`);
