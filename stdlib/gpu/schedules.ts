/**
 * GPU schedules for every stdlib kernel, by kernel name: what `tkc compile` applies. Parameters
 * per target are data (GEMV_SCHEDULES, ROW_THREADS); the schedules are functions of them.
 *
 * The GEMV family's parameters are tuned per shape (gemv.ts, tuned.ts); the GEMMs' are in gemm.ts.
 * Row reductions (rmsNorm, argmax) reduce across threads; attention runs warps over chunks of
 * positions, and on NVIDIA sm_80+ prefill attention runs on tensor cores (the README's performance
 * section says how far each is from the hardware's limits).
 */
import type { Schedule } from "../../lower/schedule/schedule.ts";
import { loopPath } from "../../lower/schedule/state.ts";
import { MAX_VECTOR_LANES } from "../../lower/schedule/for_kind.ts";
import { q4GemvMmaSchedule, q4GemvRmsSchedule, q4GemvSchedule } from "./gemv.ts";
import { tunedParams } from "./tuned.ts";
import { f16GemmSchedule, hasMma, mmaGemmSchedule, q4GemmSchedule, wgmmaGemmSchedule } from "./gemm.ts";
import { TargetUnsupportedError } from "../../lower/schedule/errors.ts";

/** Threads per block for row-wise and elementwise kernels. */
export const ROW_THREADS: Readonly<Record<string, number>> = {
  sm_90: 256,
  sm_80: 256,
  gfx1100: 256,
  gfx942: 256,
  vulkan: 128,
};

const threadsFor = (target: string) => ROW_THREADS[target] ?? 128;
/**
 * Threads per row of the row reductions (rmsNorm): tuned (tuned.ts) over ROW_THREADS, for one row
 * (decode) and for many (the prefill's "rowReduceRows", where a row's block shares the GPU with
 * hundreds of others), else the one-row count.
 */
const rowReduceThreads = (target: string, manyRows: boolean) =>
  (manyRows ? tunedParams<{ threads: number }>(target, "rowReduceRows")?.threads : undefined) ??
  tunedParams<{ threads: number }>(target, "rowReduce")?.threads ??
  threadsFor(target);

/** Whether a loop has a constant trip count of at most 64 (worth unrolling). */
function constantExtent(s: Schedule, name: string): boolean {
  const { extent } = loopPath(s.func, name, "rowReduction").loop;
  return extent.kind === "const" && extent.value <= 64;
}

/** Rows to blocks; the row's reduction loop split across threads; its output loop too. */
export function rowReduction(row: string, reduce: string, out: string, threads?: number) {
  return (s: Schedule, target: string) => {
    const rows = loopPath(s.func, row, "rowReduction").loop.extent;
    const t = threads ?? rowReduceThreads(target, !(rows.kind === "const" && rows.value === 1));
    s.bind(row, "blockIdx.x");
    const [kt, kSerial] = s.split(reduce, [t, null]);
    s.bind(kt!, "threadIdx.x");
    // Each thread's few loads in flight at once, not one latency after another.
    if (constantExtent(s, kSerial!)) s.unroll(kSerial!);
    // The output loop, where the row's length is known, as the reduction's (each thread its
    // contiguous run of the row), vectorized: the run's loads (x, w) in one instruction each
    // before its store. Interleaved (adjacent threads on adjacent elements, unrolled), a thread's
    // loads waited each for the store before it (y may alias x): one latency after another; kept
    // for a symbolic length, where runs of a symbolic size cannot be shown apart.
    const known = loopPath(s.func, out, "rowReduction").loop.extent.kind === "const";
    const [ot, oSerial] = known ? s.split(out, [t, null]) : s.split(out, [null, t]).reverse();
    s.bind(ot!, "threadIdx.x");
    const run = loopPath(s.func, oSerial!, "rowReduction").loop.extent;
    // (The vectorize pass runs other than powers of two unrolled.)
    if (known && run.kind === "const" && run.value <= MAX_VECTOR_LANES) s.vectorize(oSerial!);
    else if (constantExtent(s, oSerial!)) s.unroll(oSerial!);
  };
}

/**
 * A reduction loop across t threads of threadIdx.x, adjacent threads on adjacent elements, each
 * thread's share (reassociated) inside: the serial loop's name.
 */
function reduceAcrossThreads(s: Schedule, loop: string, t: number): string {
  const [serial, thread] = s.split(loop, [null, t]);
  s.reorder(thread!, serial!, { reassociate: true });
  s.bind(thread!, "threadIdx.x");
  return serial!;
}

/**
 * Threads of argmax's block (one per row): at a 32,000-token vocabulary 1,024 threads read 32
 * logits each, unrolled (one round trip); through Vulkan, whose guaranteed workgroup size is 128,
 * ROW_THREADS.
 */
const ARGMAX_THREADS: Readonly<Record<string, number>> = {
  sm_90: 1024,
  sm_80: 1024,
  gfx1100: 1024,
  gfx942: 1024,
};

/** argmax: a block per row, both passes (the max, then the first index holding it) across its threads. */
function argmaxSchedule(s: Schedule, target: string): void {
  const t = ARGMAX_THREADS[target] ?? threadsFor(target);
  s.bind("m", "blockIdx.x");
  for (const pass of ["j", "j1"]) {
    // Adjacent threads on adjacent logits: only the last of a thread's loads needs the bounds
    // guard, so the others are in flight at once.
    const serial = reduceAcrossThreads(s, pass, t);
    if (constantExtent(s, serial)) s.unroll(serial);
  }
}

/**
 * One block per head; each stage over positions spread across the threads (adjacent threads on
 * adjacent positions; the max and the sum reduce across threads), the weighted sum one thread per
 * channel. Barriers between the stages come from the lowering passes (the scores are shared).
 */
function attentionDecodeSchedule(s: Schedule, target: string): void {
  const t = threadsFor(target);
  s.bind("h", "blockIdx.x");
  const [, scoreThread] = s.split("t", [null, t]);
  s.bind(scoreThread!, "threadIdx.x");
  for (const loop of ["t_1", "t_2"]) reduceAcrossThreads(s, loop, t);
  s.bind("i_1", "threadIdx.x");
  // The dot products' loop unrolled: LLVM then merges the key loads into 16-byte loads.
  s.unroll("i");
}

/**
 * Split decode attention (attentionDecodeSplit): a block per (head, split), warps on threadIdx.y,
 * lanes (a position each, then a slice of channels each) on threadIdx.x; the per-lane loops
 * unrolled so a lane's key and value loads are in flight at once (LLVM merges them into 16-byte
 * loads), the warps' combination spread over the block.
 */
function attentionSplitSchedule(s: Schedule): void {
  s.bind(s.fuse("h", "s"), "blockIdx.x");
  splitBlockSchedule(s);
}

/** A split's block (attentionSplitSchedule): warps, lanes, the per-lane loops unrolled. */
function splitBlockSchedule(s: Schedule): void {
  s.bind("w", "threadIdx.y");
  for (const lane of ["lz", "lp", "t", "t1", "t2", "t3", "lv", "ls"]) s.bind(lane, "threadIdx.x");
  for (const l of ["iz", "tp", "ip", "i", "iv", "tv", "is", "w1", "w2", "w3"]) s.unroll(l);
  const [rows, lanes] = s.split("i_1", [null, 32]);
  s.bind(rows!, "threadIdx.y");
  s.bind(lanes!, "threadIdx.x");
}

/**
 * Split decode attention whose last block per head combines the splits
 * (attentionDecodeSplitLast): a split's block as attentionSplitSchedule's, splits on blockIdx.x
 * and heads on blockIdx.y (the counter's protocol is checked per head), the combination's
 * channels over the block's threads as the partial results' are, the splits unrolled.
 */
function attentionSplitLastSchedule(s: Schedule): void {
  s.bind("s", "blockIdx.x");
  s.bind("h", "blockIdx.y");
  splitBlockSchedule(s);
  const [rows, lanes] = s.split("ic", [null, 32]);
  s.bind(rows!, "threadIdx.y");
  s.bind(lanes!, "threadIdx.x");
  s.unroll("c");
  s.unroll("c1");
}

/**
 * Decode attention in one launch (attentionDecodeWarps): a block per head, warps on threadIdx.y,
 * lanes (a position each, then a slice of channels each) on threadIdx.x; the per-lane loops
 * unrolled so a lane's key and value loads are in flight at once.
 */
function attentionWarpsSchedule(s: Schedule): void {
  s.bind("h", "blockIdx.x");
  s.bind("w", "threadIdx.y");
  for (const lane of ["lz", "lp", "t", "t1", "t2", "t3", "lv", "ls"]) s.bind(lane, "threadIdx.x");
  for (const l of ["iz", "tp", "ip", "i", "iv", "tv", "is"]) s.unroll(l);
  const [rows, lanes] = s.split("i_1", [null, 32]);
  s.bind(rows!, "threadIdx.y");
  s.bind(lanes!, "threadIdx.x");
  s.unroll("w1");
  s.unroll("w2");
}

/**
 * Causal prefill attention by chunks (attentionPrefillWarps): a block per head and 8 query rows, a
 * warp per row (threadIdx.y), lanes on threadIdx.x; the per-lane loops unrolled.
 */
function attentionPrefillWarpsSchedule(s: Schedule): void {
  s.bind("nb", "blockIdx.y");
  s.bind("h", "blockIdx.x");
  s.bind("w", "threadIdx.y");
  for (const lane of ["lz", "lp", "t", "t1", "t2", "t3", "lv", "lo"]) s.bind(lane, "threadIdx.x");
  for (const l of ["iz", "tp", "ip", "i", "iv", "tv", "io"]) s.unroll(l);
}

/**
 * Causal prefill attention on tensor cores (attentionPrefillMma): a block per (64 query rows,
 * head), warps on threadIdx.y and lanes on threadIdx.x; the key and value copies as 16-byte loads,
 * the shared tiles padded so a warp's fragment reads hit distinct banks (rows 8 halves past a
 * multiple of 32 banks), the two 16 x 8 x 16 nests tensorized into mma.m16n8k16 and the per-lane
 * loops unrolled (fragments, accumulators and the softmax's state in registers).
 */
function attentionPrefillMmaSchedule(s: Schedule, target: string): void {
  if (!hasMma(target))
    throw new TargetUnsupportedError(
      "attentionPrefillMmaSchedule",
      `attentionPrefillMma needs NVIDIA sm_80 or later (mma.m16n8k16); ${target} has none: use attentionPrefillWarps`,
    );
  s.bind("nb", "blockIdx.y");
  s.bind("h", "blockIdx.x");
  for (const [w, l] of [
    ["wq", "lq"],
    ["wk", "lk"],
    ["wg", "lg"],
    ["wm", "lm"],
    ["wy", "ly"],
    ["wv", "lv"],
    ["wl", "ll"],
    ["wo", "lo"],
  ] as const) {
    s.bind(w, "threadIdx.y");
    s.bind(l, "threadIdx.x");
  }
  s.vectorize("vk");
  s.vectorize("vv");
  for (const buffer of ["ks", "vt"]) s.storageAlign(buffer, 0, 32, 8);
  s.tensorize("rm", "mma_m16n8k16", "lm");
  s.tensorize("rv", "mma_m16n8k16", "lv");
  const unrolled = [
    "kq",
    "jq",
    "nz",
    "rz",
    "sk",
    "vs",
    "st",
    "vt2",
    "sg",
    "sv",
    "nm",
    "rs",
    "km",
    "ns",
    "ne",
    "re",
  ];
  unrolled.push("hz", "hm", "hq", "hy", "kp", "jp", "na", "ra", "kv", "nv", "hl", "no", "ro");
  for (const l of unrolled) s.unroll(l);
}

/** The combination of the splits: a block per head, a thread per channel, the splits unrolled. */
function attentionCombineSchedule(s: Schedule): void {
  s.bind("h", "blockIdx.x");
  s.bind("i", "threadIdx.x");
  s.unroll("c");
  s.unroll("c1");
}

/** Lanes per (token, head) row of prefill attention: one warp (AMD's wave64 runs two rows' worth). */
const PREFILL_ATTENTION_LANES = 32;

/**
 * Causal prefill attention: a warp per (token, head) row; its head channels across the 32 lanes
 * (each lane a few, unrolled), so the per-position dot product is a warp reduction (shuffles, no
 * barrier) and the running output's channels stay in each lane's registers.
 */
function attentionPrefillSchedule(s: Schedule): void {
  s.bind(s.fuse("n", "h"), "blockIdx.x");
  for (const loop of ["i", "i_1", "i_2", "i_3"]) {
    const [outer, lane] = s.split(loop, [null, PREFILL_ATTENTION_LANES]);
    if (loop === "i_1") s.reorder(lane!, outer!, { reassociate: true });
    s.bind(lane!, "threadIdx.x");
    s.unroll(outer!);
  }
}

/** RoPE with the KV append: a block per head (q heads, then k heads with their v), a thread per pair. */
function ropeAppendSchedule(s: Schedule): void {
  s.bind("hh", "blockIdx.x");
  s.bind("i", "threadIdx.x");
}

/** f16 GEMV: output rows per block (threadIdx.y) and f16 weights per 16-byte load. */
const F16_GEMV_ROWS = 4;
const F16_GEMV_VEC = 8;
/** Lanes per row (threadIdx.x): a warp's loads of one row are 32 x 16 = 512 contiguous bytes. */
const F16_GEMV_LANES = 32;
/** Steps of K a thread unrolls, so several 16-byte loads per row are in flight at once. */
const F16_GEMV_UNROLL = 4;

/**
 * f16 weights: rows to blocks and threadIdx.y; the K reduction across 32 lanes, each taking
 * 8 consecutive weights (one 16-byte load, after LLVM merges the unrolled element loads) and
 * F16_GEMV_UNROLL such runs per step (loads of one warp contiguous).
 */
function f16GemvSchedule(s: Schedule): void {
  const [rowBlock, rowThread] = s.split("n", [null, F16_GEMV_ROWS]);
  const [chunks, lane, vec] = s.split("k", [null, F16_GEMV_LANES, F16_GEMV_VEC]);
  // A K that is not a multiple of the unrolled step (11008 = 43 x 256) guards whole chunks.
  const [steps, unrolled] = s.split(chunks!, [null, F16_GEMV_UNROLL]);
  s.reorder(lane!, steps!, unrolled!, vec!, { reassociate: true });
  s.bind(rowBlock!, "blockIdx.x");
  s.bind(rowThread!, "threadIdx.y");
  s.bind(lane!, "threadIdx.x");
  s.unroll(unrolled!);
  s.unroll(vec!);
}

/**
 * Outer loop to blockIdx.y, inner loop split over blockIdx.x / threadIdx.x. With `runs`, on
 * NVIDIA, when the row's length is a constant multiple of 8, each thread takes a run of 8
 * elements (16-byte f16 loads and stores): the 7B prefill's residual adds and SwiGLU gates moved
 * 1.2 TB/s one element a thread.
 */
function rowsAndColumns(outer: string, inner: string, vectorRuns = false) {
  return (s: Schedule, target: string) => {
    s.bind(outer, "blockIdx.y");
    const { extent } = loopPath(s.func, inner, "rowsAndColumns").loop;
    const runs =
      vectorRuns && target.startsWith("sm_") && extent.kind === "const" && extent.value % ELEMENT_RUN === 0;
    const [columns, lanes] = runs ? s.split(inner, [null, ELEMENT_RUN]) : [inner, undefined];
    const [bo, ti] = s.split(columns!, [null, threadsFor(target)]);
    s.bind(bo!, "blockIdx.x");
    s.bind(ti!, "threadIdx.x");
    if (lanes) s.vectorize(lanes);
  };
}

/** gateUpSiluSplitReduce: rows and columns as the element-wise kernels, each thread's splits unrolled. */
function splitReduceSchedule(s: Schedule, target: string): void {
  rowsAndColumns("t", "j")(s, target);
  if (constantExtent(s, "s")) s.unroll("s");
}

/** Elements per thread of NVIDIA's element-wise schedules: 16 bytes of f16. */
const ELEMENT_RUN = 8;

/**
 * (t, h) rows of a per-head kernel (RoPE, the KV append): on NVIDIA, ROWS_PER_BLOCK heads a block
 * (threadIdx.y), the head's elements on threadIdx.x; elsewhere a block per row. A block per row
 * launched 16,384 blocks of 64 threads for a 512-token prefill (20 us a RoPE on an H100).
 */
function headRows(a: string, b: string, inner: string) {
  return (s: Schedule, target: string) => {
    const fused = s.fuse(a, b);
    if (!target.startsWith("sm_")) {
      s.bind(fused, "blockIdx.x");
      s.bind(inner, "threadIdx.x");
      return;
    }
    const [blocks, rows] = s.split(fused, [null, ROWS_PER_BLOCK]);
    s.bind(blocks!, "blockIdx.x");
    s.bind(rows!, "threadIdx.y");
    s.bind(inner, "threadIdx.x");
  };
}

/** Rows per block of headRows on NVIDIA. */
const ROWS_PER_BLOCK = 4;

export const GPU_SCHEDULES: Readonly<Record<string, (s: Schedule, target: string) => void>> = {
  q4Gemv: q4GemvSchedule("n"),
  f16Gemv: f16GemvSchedule,
  f16GemvResidual: f16GemvSchedule,
  f16GateUpSilu: f16GemvSchedule,
  q4GemvRows4: q4GemvSchedule("n4"),
  q4GemvMma: q4GemvMmaSchedule(),
  q4GemvResidualMma: q4GemvMmaSchedule(),
  q4GemvF32Mma: q4GemvMmaSchedule(),
  q4GateUpSiluMma: q4GemvMmaSchedule(),
  q4GemvRmsMma: q4GemvMmaSchedule(),
  q4GateUpSiluRmsMma: q4GemvMmaSchedule(),
  q4QkvRopeAppendMma: q4GemvMmaSchedule(),
  q4QkvRopeAppendRmsMma: q4GemvMmaSchedule(),
  q4GemvResidualRows4: q4GemvSchedule("n4"),
  q4GemvF32Rows4: q4GemvSchedule("n4"),
  q4GemvRows4Rms: q4GemvRmsSchedule("n4"),
  q4GateUpSiluRms: q4GemvRmsSchedule("i"),
  q4GateUpSiluRows2: q4GemvSchedule("i2"),
  q4GemvF32: q4GemvSchedule("n"),
  q4GemvResidual: q4GemvSchedule("n"),
  q4QkvGemv: q4GemvSchedule("n"),
  q4GateUpSilu: q4GemvSchedule("i"),
  rmsNorm: rowReduction("m", "i", "i_1"),
  argmax: argmaxSchedule,
  ropeInterleaved: headRows("t", "h", "i"),
  // A thread per pair: bind's range test proves y[i] and y[i' + half] apart (i, i' < half).
  ropeHalf: headRows("t", "h", "i"),
  kvAppend: headRows("t", "h", "i"),
  ropeHalfAppend: ropeAppendSchedule,
  ropeInterleavedAppend: ropeAppendSchedule,
  q4Embedding: rowsAndColumns("t", "c"),
  residualAdd: rowsAndColumns("m", "i", true),
  siluMul: rowsAndColumns("m", "i", true),
  attentionDecode: (s) => s.bind("h", "blockIdx.x"),
  attentionDecodeShared: attentionDecodeSchedule,
  attentionDecodeSplit: attentionSplitSchedule,
  attentionDecodeSplitLast: attentionSplitLastSchedule,
  attentionDecodeCombine: attentionCombineSchedule,
  attentionDecodeWarps: attentionWarpsSchedule,
  attentionPrefillWarps: attentionPrefillWarpsSchedule,
  attentionPrefillMma: attentionPrefillMmaSchedule,
  attentionPrefill: attentionPrefillSchedule,
  q4Gemm: q4GemmSchedule(),
  q4GemmTiled: q4GemmSchedule(),
  f16GemmTiled: f16GemmSchedule(),
  f16Gemm: f16GemmSchedule(),
  q4GemmMma: mmaGemmSchedule(),
  q4GemmResidualMma: mmaGemmSchedule(),
  q4QkvGemmMma: mmaGemmSchedule(),
  q4QkvRopeAppendGemmMma: mmaGemmSchedule(),
  q4GateUpSiluGemmMma: mmaGemmSchedule(),
  f16GemmMma: mmaGemmSchedule(),
  q4GemmWgmma: wgmmaGemmSchedule(),
  q4GemmResidualWgmma: wgmmaGemmSchedule(),
  q4QkvGemmWgmma: wgmmaGemmSchedule(),
  q4QkvRopeAppendGemmWgmma: wgmmaGemmSchedule(),
  q4GateUpSiluGemmWgmma: wgmmaGemmSchedule(),
  q4GateUpSplitKGemmWgmma: wgmmaGemmSchedule(),
  gateUpSiluSplitReduce: splitReduceSchedule,
};
