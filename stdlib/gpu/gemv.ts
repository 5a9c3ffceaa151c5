/**
 * GPU schedules for the q4f16_1 GEMV family (q4Gemv, q4GemvF32, q4GemvResidual, q4QkvGemv,
 * q4GateUpSilu): a block of `rows` output rows (threadIdx.y), each row's reduction over groups
 * spread across `lanes` threads (threadIdx.x) with adjacent lanes on adjacent groups, so a warp's
 * 16-byte word loads are contiguous; the per-thread partial sums are combined by warp shuffles
 * (the cross_thread_reduction pass). The group's 4 words and 32 codes are unrolled, which lets
 * LLVM merge the loads into 16-byte vector loads.
 */
import { withConsts, type KernelDef } from "../../dsl/kernel.ts";
import type { Schedule } from "../../lower/schedule/schedule.ts";
import { tunedParams } from "./tuned.ts";
import { loopPath } from "../../lower/schedule/state.ts";
import { INVARIANT_BUFFERS } from "../../lower/passes/launch.ts";
import { ScheduleError, TargetUnsupportedError } from "../../lower/schedule/errors.ts";
import { MMA_GEMV_CHUNK } from "../q4_gemv_mma.ts";
import { bindWarpsAndLanes, hasMma } from "./gemm.ts";

export interface GemvSchedule {
  /** Output rows per block (threadIdx.y). */
  readonly rows: number;
  /**
   * Threads sharing one row's reduction (threadIdx.x), a power of two; beyond the warp size the
   * warps' partial sums meet in shared memory (more warps per row: better for long K, few rows).
   */
  readonly lanes: number;
  /** Unroll each thread's loop over its groups, so all its weight loads are in flight at once. */
  readonly unrollGroups?: boolean;
  /**
   * Unroll the groups only when each thread has at most this many (default: any number). NVIDIA's
   * Vulkan driver holds a 32-thread workgroup to 64 registers: four rows of 11 unrolled groups
   * (K = 11008) then ran 4x slower than not unrolled (bench/results/vulkan-bench-*.json).
   */
  readonly maxUnrolledGroups?: number;
}

/** Per-target defaults of the one-row kernels; bench/tune.ts stores measured ones in tuned.ts. */
export const GEMV_SCHEDULES: Readonly<Record<string, GemvSchedule>> = {
  sm_90: { rows: 4, lanes: 32, unrollGroups: true },
  sm_80: { rows: 4, lanes: 32, unrollGroups: true },
  gfx1100: { rows: 2, lanes: 32 },
  gfx942: { rows: 2, lanes: 64 },
  gfx90a: { rows: 2, lanes: 64 },
  vulkan: { rows: 4, lanes: 32, unrollGroups: true },
  cpu: { rows: 2, lanes: 4 },
};

/**
 * Per-target defaults of the rows-per-thread kernels (q4_gemv_rows*.ts, q4_gemv_rms.ts): each
 * thread already holds 4 rows (or 2 gate/up pairs), so a block of one warp is measured best
 * (bench/results/gemv-*.json).
 */
export const GEMV_ROWS_SCHEDULES: Readonly<Record<string, GemvSchedule>> = {
  sm_90: { rows: 1, lanes: 32, unrollGroups: true },
  sm_80: { rows: 1, lanes: 32, unrollGroups: true },
  gfx1100: { rows: 1, lanes: 32 },
  gfx942: { rows: 1, lanes: 64 },
  gfx90a: { rows: 1, lanes: 64 },
  // NVIDIA's Vulkan driver gave a 32-thread workgroup 64 registers and a 64-thread one 32: rows
  // 2 ran 2.5x slower at 4096 x 11008 on an H100 (bench/results/vulkan-bench-h100.json).
  vulkan: { rows: 1, lanes: 32, unrollGroups: true, maxUnrolledGroups: 4 },
  cpu: { rows: 2, lanes: 4 },
};

/**
 * The GEMV family's parameters for a target and, when known, a weight shape "NxK": tuned for that
 * shape, else tuned for the family (tuned.ts), else the defaults.
 */
export function gemvParams(target: string, family: "gemv" | "gemvRows", shape?: string): GemvSchedule {
  const table = family === "gemv" ? GEMV_SCHEDULES : GEMV_ROWS_SCHEDULES;
  return (
    (shape ? tunedParams<GemvSchedule>(target, `${family}:${shape}`) : undefined) ??
    tunedParams<GemvSchedule>(target, family) ??
    table[target] ??
    table.sm_90!
  );
}

/** The weight's shape "NxK" of a specialized GEMV (its `packed` parameter is [N, K / 8]). */
function weightShape(s: Schedule): string | undefined {
  const packed = s.func.params.find((p) => p.kind === "buffer" && p.buffer.name === "packed");
  if (packed?.kind !== "buffer") return undefined;
  const [n, kw] = packed.buffer.shape;
  return n?.kind === "const" && kw?.kind === "const" ? `${n.value}x${kw.value * 8}` : undefined;
}

/** Whether a thread's group loop has at most `limit` iterations (any number without a limit). */
function fewGroups(s: Schedule, loop: string, limit: number | undefined): boolean {
  if (limit === undefined) return true;
  const { extent } = loopPath(s.func, loop, "q4GemvSchedule").loop;
  return extent.kind === "const" && extent.value <= limit;
}

/** The tuned family of a GEMV schedule's row loop: one row an iteration ("gemv") or several. */
export const familyOf = (rowLoop: string) => (rowLoop === "n" || rowLoop === "i" ? "gemv" : "gemvRows");

/**
 * The GEMV schedule over output loop `rowLoop` (one row per iteration: family "gemv"; several:
 * "gemvRows"), with explicit parameters `p` (a tuner's candidate) or the target's.
 */
export function q4GemvSchedule(rowLoop = "n", p?: GemvSchedule, codeLoop = "r") {
  return (s: Schedule, target: string): void => {
    const params = p ?? gemvParams(target, familyOf(rowLoop), weightShape(s));
    const { rows, lanes, unrollGroups } = params;
    const [rowBlock, rowThread] = s.split(rowLoop, [null, rows]);
    const [groupOuter, groupLane] = s.split("g", [null, lanes]);
    s.reorder(groupLane!, groupOuter!, { reassociate: true });
    s.bind(rowBlock!, "blockIdx.x");
    s.bind(rowThread!, "threadIdx.y");
    s.bind(groupLane!, "threadIdx.x");
    s.unroll("w");
    s.unroll(codeLoop);
    if (unrollGroups && fewGroups(s, groupOuter!, params.maxUnrolledGroups)) s.unroll(groupOuter!);
  };
}

/**
 * The GEMV schedule for kernels with RMSNorm folded in (q4_gemv_rms.ts): the row's sum of squares
 * (loop j) is spread over the same lanes and reduced across them before the GEMV.
 */
export function q4GemvRmsSchedule(rowLoop: string, p?: GemvSchedule) {
  return (s: Schedule, target: string): void => {
    const params = p ?? gemvParams(target, familyOf(rowLoop), weightShape(s));
    q4GemvSchedule(rowLoop, params, "r8")(s, target);
    const [outer, lane] = s.split("j", [null, params.lanes]);
    s.reorder(lane!, outer!, { reassociate: true });
    s.bind(lane!, "threadIdx.x");
    // The sum of squares' loads in flight at once: serially, each waits out a cache latency
    // (measured 8 us of a 23 us QKV GEMV on an H100 before).
    s.unroll(outer!);
  };
}

/**
 * The tensor-core GEMVs (stdlib/q4_gemv_mma.ts): a block per 32 rows, its warps (threadIdx.y) and
 * lanes (threadIdx.x) as the kernel names them, every per-lane loop unrolled (codes, fragments and
 * accumulators in registers), the 16 x 8 x 16 nest tensorized into one mma.m16n8k16. Refuses
 * targets without that instruction (NVIDIA before sm_80, AMD, Vulkan: the per-lane nest reads
 * other lanes' registers, which only the instruction can) and weights whose N is not a multiple
 * of the rows per block or K of 256.
 */
export interface GemvMmaSchedule {
  /**
   * Chunks of K (256) a warp's loop takes per iteration, unrolled so that all their loads are in
   * flight together (1: one at a time).
   */
  readonly unrollChunks: number;
}

/** A tensor-core GEMV's variant: its kernel constants (warps splitting K, rows per block) and schedule. */
export interface MmaGemvVariant extends GemvMmaSchedule {
  readonly warps: number;
  readonly rows: 16 | 32;
}

export const MMA_GEMV_DEFAULT: MmaGemvVariant = { warps: 8, rows: 32, unrollChunks: 1 };

/**
 * A tensor-core GEMV's variant for an N x K weight: measured best at that shape by bench/tune.ts
 * (family "gemvMma", stdlib/gpu/tuned.ts), else best over the 7B shapes, else the default. Measured
 * on an H100 (sm_90) and used for every CUDA target.
 */
export function mmaGemvVariant(shape: string | undefined): MmaGemvVariant {
  return (
    (shape ? tunedParams<MmaGemvVariant>("sm_90", `gemvMma:${shape}`) : undefined) ??
    tunedParams<MmaGemvVariant>("sm_90", "gemvMma") ??
    MMA_GEMV_DEFAULT
  );
}

/**
 * The tensor-core GEMV kernel `def` (stdlib/q4_gemv_mma.ts) for an N x K weight, with its
 * variant's constants (and `stages` > 0: its weights through a ring of that many chunks a warp in
 * shared memory, copied asynchronously); undefined where the shape does not tile (K not a multiple of 256, N of
 * the rows per block; for the gate/up kernel, N / 2 of 16), where the four-rows kernels serve.
 */
export function mmaGemvKernel(
  def: KernelDef,
  n: number,
  k: number,
  { prefetch = false, stages = 0 }: { readonly prefetch?: boolean; readonly stages?: number } = {},
): KernelDef | undefined {
  // A gate/up block's outputs are half its rows (gate and up).
  const gateUp = def.name.startsWith("q4GateUpSilu");
  const v = mmaGemvVariant(`${n}x${k}`);
  if (k % MMA_GEMV_CHUNK !== 0 || (gateUp ? (n / 2) % (v.rows / 2) : n % v.rows) !== 0) return undefined;
  const variant = withMmaVariant(def, v);
  if (!Number.isInteger(stages) || stages < 0)
    throw new Error(`tkc: a GEMV's ring of weights has a whole number of stages (0: none), got ${stages}`);
  // A ring deeper than a warp's rounds of K would hold nothing more.
  const ring = Math.min(stages, Math.ceil(k / MMA_GEMV_CHUNK / v.warps));
  return withConsts(variant, { ...(prefetch ? { PREFETCH: 1 } : {}), ...(ring ? { STAGES: ring } : {}) });
}

/** A tensor-core GEMV kernel with a variant's constants (warps splitting K, rows per block). */
export function withMmaVariant(def: KernelDef, v: Pick<MmaGemvVariant, "warps" | "rows">): KernelDef {
  return withConsts(def, { WARPS: v.warps, MMA_ROWS: v.rows, TILES: v.rows / 16 });
}

export function q4GemvMmaSchedule(params?: GemvMmaSchedule) {
  return (s: Schedule, target: string): void => {
    const shape = weightShape(s);
    const p = params ?? mmaGemvVariant(shape);
    const packed = s.func.params.find((p) => p.kind === "buffer" && p.buffer.name === "packed");
    const [n, kw] = packed?.kind === "buffer" ? packed.buffer.shape : [];
    const ro = loopPath(s.func, "ro", "q4GemvMmaSchedule").loop.extent;
    const gateUp = s.func.params.some((p) => p.kind === "buffer" && p.buffer.name === "out");
    if (n?.kind === "const" && ro.kind === "const" && (gateUp ? n.value / 2 : n.value) % ro.value !== 0)
      throw new ScheduleError(
        "q4GemvMmaSchedule",
        `${gateUp ? `I = ${n.value / 2} gate/up pairs` : `N = ${n.value} rows`} is not a multiple of ${ro.value} (the rows of a block): use the four-rows kernels (q4_gemv_rows*.ts)`,
      );
    // The RoPE kernels (q4QkvRopeAppend*Mma): a block's 8 * TILES pairs within one head's d / 2.
    const qr = s.func.params.find((p) => p.kind === "buffer" && p.buffer.name === "qr");
    const d = qr?.kind === "buffer" ? qr.buffer.shape[1] : undefined;
    if (d?.kind === "const" && ro.kind === "const" && (d.value / 2) % ro.value !== 0)
      throw new ScheduleError(
        "q4GemvMmaSchedule",
        `${s.func.name} rotates ${ro.value} pairs a block within a head: d / 2 = ${d.value / 2} is not a multiple of ${ro.value}; use 16 rows a block (MMA_ROWS 16), or the GEMV then ropeHalfAppend`,
      );
    if (kw?.kind === "const" && (kw.value * 8) % MMA_GEMV_CHUNK !== 0)
      throw new ScheduleError(
        "q4GemvMmaSchedule",
        `K = ${kw.value * 8} is not a multiple of ${MMA_GEMV_CHUNK}: use the four-rows kernels (q4_gemv_rows*.ts)`,
      );
    // Without tensor cores the products would read other lanes' registers: refused, not wrong.
    if (!hasMma(target))
      throw new TargetUnsupportedError(
        "q4GemvMmaSchedule",
        `the tensor-core GEMVs need NVIDIA sm_80 or later (mma.m16n8k16); ${target} has none: use the four-rows kernels (q4_gemv_rows*.ts)`,
      );
    s.bind("blk", "blockIdx.x");
    // The weights are written by no kernel: the first round's loads go before the wait for the
    // previous kernel (programmatic dependent launch).
    s.annotate("blk", INVARIANT_BUFFERS, "packed,scales");
    bindWarpsAndLanes(s, [
      ["wq", "lq"],
      ["wz", "lz"],
      ["wx", "lx"],
      ["wg", "lg"],
      ["wf", "lf"],
      ["wp", "lane"],
      ["we", "le"],
      ["wr", "lr"],
    ]);
    s.bind("ro", "threadIdx.x");
    // The first round's register loads (without STAGES) or the ring's copies and reads (with).
    for (const [w, l] of [
      ["wb", "lb"],
      ["wa", "la"],
      ["wy", "ly"],
      ["wn2", "ln2"],
    ] as const) {
      for (const copy of s.loopCopies(w)) s.bind(copy, "threadIdx.y");
      for (const copy of s.loopCopies(l)) s.bind(copy, "threadIdx.x");
    }
    // The RoPE kernels' prefetch of the attention's cache rows (q4KvCachePrefetch).
    for (const l of s.loopCopies("wk")) s.bind(l, "threadIdx.y");
    for (const l of s.loopCopies("lk")) s.bind(l, "threadIdx.x");
    // RMSNorm folded in (q4GemvRmsMma, q4GateUpSiluRmsMma): each warp's lanes' sums of squares
    // meet by shuffles.
    if (s.func.params.some((p) => p.kind === "scalar" && p.v.name === "eps")) {
      s.bind("wv", "threadIdx.y");
      s.bind("lv", "threadIdx.x");
    }
    s.tensorize("r", "mma_m16n8k16", "lane");
    const unrolled = [
      "tq",
      "tz",
      "hz",
      "rz",
      "jx",
      "tt",
      "hh",
      "vv",
      "ss",
      "jf",
      "jg",
      "te",
      "re",
      "tr",
      "hr",
    ];
    for (const l of unrolled) s.unroll(l);
    // q4LoadChunk's loops, at both of its call sites (the first round, and each round's next), and
    // mmaRowSum's where an epilogue sums two rows (the RoPE kernels' pairs).
    for (const l of [
      "tc",
      "rc",
      "hc",
      "vc",
      "sc",
      "wo",
      "jo",
      "pa",
      "ta",
      "ra",
      "ha",
      "ty",
      "ry",
      "hy",
      "vy",
      "sy",
    ])
      for (const copy of s.loopCopies(l)) s.unroll(copy);
    // One 16-byte cp.async a lane per run of codes, and per tile row of scales.
    for (const l of ["va", "ga"]) for (const copy of s.loopCopies(l)) s.vectorize(copy);
    if (p.unrollChunks > 1) {
      const [, inner] = s.split("ci", [null, p.unrollChunks]);
      s.unroll(inner!);
    }
  };
}
