/**
 * GPU schedules for the prefill GEMMs (y = x W^T: x [M, K] f16, W [N, K] in q4f16_1 or f16):
 * the classic shared-memory tiling with cooperative fetching.
 *
 * For the register-tiled kernels of stdlib/q4_gemm_tiled.ts (q4GemmTiled, f16GemmTiled), whose
 * output loops step over GEMM_TILE_M x GEMM_TILE_N (4 x 4) tiles: a block of threadsM x threadsN
 * threads (threadIdx.y, threadIdx.x) computes a (threadsM * 4) x (threadsN * 4) tile of y, 64 x 64
 * with 16 x 16 threads, each thread 4 x 4 outputs in registers. Per step of K (one q4 group, or kTile
 * elements of f16), the block's x tile and weight tile are copied to shared memory by all its
 * threads together (cacheRead + computeAt under the K-step loop, then the copy loops fused, split
 * and bound to the same threadIdx axes: cooperative fetching), the barriers pass separates the
 * copies from the compute, and the compute loops are unrolled so the accumulators, operands and
 * copies of the step live in registers.
 *
 * For q4Gemm and f16Gemm themselves (one scalar accumulator per output, so no register tile can
 * form), the same staging with one output per thread: 16 x 16 outputs per block.
 *
 * Tile sizes and copy widths are per-target data (GEMM_SCHEDULES); a tuner can replace them.
 */
import { ScheduleError, TargetUnsupportedError } from "../../lower/schedule/errors.ts";
import { MIN_BLOCKS_PER_SM } from "../../lower/passes/launch.ts";
import type { Schedule } from "../../lower/schedule/schedule.ts";
import { loopPath, namesIn } from "../../lower/schedule/state.ts";
import { allocatedIn } from "../../lower/schedule/analysis.ts";
import { printExpr } from "../../lower/ir/printer.ts";

export interface GemmSchedule {
  /** Threads per block along threadIdx.y, each over GEMM_TILE_M rows of x (one row unless tiled). */
  readonly threadsM: number;
  /** Threads per block along threadIdx.x, each over GEMM_TILE_N rows of W. */
  readonly threadsN: number;
  /** K elements per shared-memory stage for f16 weights (q4 stages one group of 32). */
  readonly kTile: number;
  /**
   * Elements of a row of the x (and f16 weight) tile each thread copies with one vectorized access
   * (8 f16: 16 bytes); 1 copies element by element. A tile larger than the threads x vec copies in
   * several steps, and the barriers pass puts a barrier in each (it cannot tell the steps write
   * different elements). Vectorized copies also need the barriers pass to treat a vectorized loop
   * as one access; until it does, lowering refuses them (a barrier inside the vector loop), so the
   * defaults copy element by element.
   */
  readonly vec: number;
  /**
   * K steps unrolled inside a stage of the register-tiled kernels (the rest of the stage runs as a
   * loop): more keeps more operands in flight but costs registers (a whole q4 group of 32: about 240
   * registers a thread, so one block per SM; 8: about 90).
   */
  readonly unrollK: number;
}

/** Per-target parameters: data a tuner can replace (bench/device/build-gemm.ts builds variants). */
export const GEMM_SCHEDULES: Readonly<Record<string, GemmSchedule>> = {
  sm_90: { threadsM: 16, threadsN: 16, kTile: 32, vec: 8, unrollK: 8 },
  sm_80: { threadsM: 16, threadsN: 16, kTile: 32, vec: 8, unrollK: 8 },
  gfx1100: { threadsM: 16, threadsN: 16, kTile: 32, vec: 1, unrollK: 8 },
  gfx942: { threadsM: 16, threadsN: 16, kTile: 32, vec: 1, unrollK: 8 },
  gfx90a: { threadsM: 16, threadsN: 16, kTile: 32, vec: 1, unrollK: 8 },
  vulkan: { threadsM: 16, threadsN: 8, kTile: 16, vec: 1, unrollK: 8 },
  cpu: { threadsM: 2, threadsN: 4, kTile: 8, vec: 1, unrollK: 8 },
};

const paramsFor = (target: string, p?: GemmSchedule): GemmSchedule =>
  p ?? GEMM_SCHEDULES[target] ?? GEMM_SCHEDULES.sm_90!;

/** Whether the function has the register-tiled loop structure of q4_gemm_tiled.ts. */
const isTiled = (s: Schedule): boolean => s.getLoops("acc_1").includes("mo");

/**
 * Output loops to blocks and threads: `rows` and `cols` split by the thread counts, the block
 * loops outside the thread loops.
 */
function bindOutputs(s: Schedule, rows: string, cols: string, p: GemmSchedule): void {
  const [mb, mt] = s.split(rows, [null, p.threadsM]);
  const [nb, nt] = s.split(cols, [null, p.threadsN]);
  s.reorder(mb!, nb!, mt!, nt!);
  s.bind(mb!, "blockIdx.y");
  s.bind(nb!, "blockIdx.x");
  s.bind(mt!, "threadIdx.y");
  s.bind(nt!, "threadIdx.x");
}

/**
 * Caches `buffer` (read by `block`) in shared memory, computed under `at` (the K-step loop), and
 * spreads the copy over the block's threads (spreadCopy).
 */
export function cooperativeCopy(
  s: Schedule,
  block: string,
  buffer: string,
  at: string,
  p: Pick<GemmSchedule, "threadsM" | "threadsN" | "vec">,
): string {
  const cache = s.cacheRead(block, buffer, "shared");
  s.computeAt(cache, at);
  const all = s.getLoops(cache);
  spreadCopy(s, cache, all.slice(all.indexOf(at) + 1), p.threadsM, p.threadsN, p.vec);
  return cache;
}

/**
 * Spreads a copy nest of constant extents (`loops`, outermost first, the last the contiguous one)
 * over a block of threadsY x threadsX threads: the last loop split by `vec` and vectorized
 * (16-byte accesses for f16) when it divides, the loops fused and split over threadIdx.y x
 * threadIdx.x, with a serial loop outside when the tile has more elements than the threads copy
 * in one step. `what` names the copy in errors.
 */
function spreadCopy(
  s: Schedule,
  what: string,
  copyLoops: readonly string[],
  threadsY: number,
  threadsX: number,
  vec: number,
): void {
  let loops = [...copyLoops];
  let lanes: string | undefined;
  const extents = copyExtents(s, what, loops);
  const inner = extents[extents.length - 1]!;
  if (vec > 1 && inner % vec === 0) {
    const [outer, v] = s.split(loops[loops.length - 1]!, [null, vec]);
    loops = [...loops.slice(0, -1), outer!];
    lanes = v;
    extents[extents.length - 1] = inner / vec;
  }
  const fused = loops.length > 1 ? s.fuse(...loops) : loops[0]!;
  const total = extents.reduce((a, b) => a * b, 1);
  const parts =
    total <= threadsY * threadsX
      ? s.split(fused, [threadsY, threadsX])
      : s.split(fused, [null, threadsY, threadsX]);
  const [ty, tx] = parts.slice(-2);
  s.bind(ty!, "threadIdx.y");
  s.bind(tx!, "threadIdx.x");
  if (lanes) s.vectorize(lanes);
}

/** The constant extents of a copy's loops (computeAt makes the tile a constant size). */
function copyExtents(s: Schedule, what: string, loops: readonly string[]): number[] {
  return loops.map((name) => {
    const { extent } = loopPath(s.func, name, "gemm").loop;
    if (extent.kind !== "const")
      throw new ScheduleError("gemm", `the copy loop ${name} of ${what} has no constant extent`);
    return extent.value;
  });
}

/** The register tile's loops (q4_gemm_tiled.ts), unrolled so the tile lives in registers. */
const TILE_LOOPS = ["mz", "nz", "mq", "nq", "ni", "mi", "my", "ny"];

/** q4f16_1 GEMM (q4GemmTiled, or q4Gemm with one output per thread). */
export function q4GemmSchedule(p?: GemmSchedule) {
  return (s: Schedule, target: string): void => {
    const q = paramsFor(target, p);
    if (isTiled(s)) {
      bindOutputs(s, "mo", "no", q);
      cooperativeCopy(s, "xq", "x", "g", q);
      cooperativeCopy(s, "wq", "packed", "g", { ...q, vec: 1 });
      cooperativeCopy(s, "wq", "scales", "g", { ...q, vec: 1 });
      // A group is w (4 words) x r (8 codes): unroll the codes, and the words when asked to.
      if (q.unrollK >= 32) s.unroll("w");
      for (const l of ["r", ...TILE_LOOPS]) s.unroll(l);
    } else {
      bindOutputs(s, "m", "n", q);
      // The weight words and scales are read by lets outside the update block: only x is staged.
      cooperativeCopy(s, "acc_1", "x", "g", q);
      s.unroll("w");
      s.unroll("r");
    }
  };
}

/** f16 GEMM (f16GemmTiled, or f16Gemm with one output per thread). */
export function f16GemmSchedule(p?: GemmSchedule) {
  return (s: Schedule, target: string): void => {
    const q = paramsFor(target, p);
    const tiled = isTiled(s);
    const reads = tiled ? (["xq", "wq"] as const) : (["acc_1", "acc_1"] as const);
    bindOutputs(s, tiled ? "mo" : "m", tiled ? "no" : "n", q);
    const [ko, ki] = s.split("k", [null, q.kTile]);
    cooperativeCopy(s, reads[0], "x", ko!, q);
    cooperativeCopy(s, reads[1], "w", ko!, q);
    const unrolled = Math.min(q.unrollK, q.kTile);
    if (unrolled >= q.kTile) s.unroll(ki!);
    else if (unrolled > 1) s.unroll(s.split(ki!, [null, unrolled])[1]!);
    if (tiled) for (const l of TILE_LOOPS) s.unroll(l);
  };
}

/** Parameters of the tensor-core GEMM schedule (the tile shape is the kernel's: stdlib/gemm_mma.ts). */
export interface MmaGemmSchedule {
  /** f16 elements per vectorized copy into shared memory (8: 16 bytes); 1 copies element by element. */
  readonly vec: number;
  /** Pads each shared row so the stride is 8 halves past a multiple of 32: lanes' fragment reads hit distinct banks. */
  readonly padRows: boolean;
  /**
   * Blocks per multiprocessor the registers must allow (0: no cap), for q4GemmMma (four warps) and
   * f16GemmMma (eight warps). H100: f16GemmMma capped to 128 registers (two blocks) ran 3x faster
   * than uncapped; q4GemmMma takes 222 (two blocks), and capped to 168 for three it is 6-21%
   * slower (bench/results/gemm-h100.json's "registers for 3 blocks/SM" variant).
   */
  readonly minBlocksPerSM: { readonly q4: number; readonly f16: number };
  /**
   * Two halves of each shared tile, alternating by K stage (doubleBuffer): one barrier a stage
   * instead of two. H100: f16GemmMma 7-11% faster with it; q4GemmMma 2-5% slower (232 registers
   * against 222; bench/results/gemm-double-buffer-ab-h100.json).
   */
  readonly doubleBuffer: { readonly q4: boolean; readonly f16: boolean };
}

export const MMA_GEMM_SCHEDULE: MmaGemmSchedule = {
  vec: 8,
  padRows: true,
  minBlocksPerSM: { q4: 0, f16: 2 },
  doubleBuffer: { q4: false, f16: true },
};

/** The kernel to use where q4GemmMma and its fused variants are refused (no mma). */
const Q4_MMA_FALLBACK: Readonly<Record<string, string>> = {
  q4GemmMma: "q4GemmTiled",
  q4GemmResidualMma: "q4GemmResidual",
  q4QkvGemmMma: "q4QkvGemm",
  q4QkvRopeAppendGemmMma: "q4QkvGemm, ropeHalf and kvAppend",
  q4GateUpSiluGemmMma: "q4GateUpSiluGemm",
};

/** Targets with the tensor-core instruction mma.m16n8k16 (NVIDIA sm_80 and later). */
export const hasMma = (target: string): boolean => /^sm_(8\d|9\d|1\d\d)$/.test(target);

/**
 * Binds each (warp, lane) pair of loops to threadIdx.y and threadIdx.x: the tensor-core kernels
 * name every nest's warp and lane loops themselves (copies, fragments, products, epilogues).
 */
export function bindWarpsAndLanes(s: Schedule, pairs: readonly (readonly [string, string])[]): void {
  for (const [warp, lane] of pairs) {
    s.bind(warp, "threadIdx.y");
    s.bind(lane, "threadIdx.x");
  }
}

/**
 * q4GemmMma and f16GemmMma (stdlib/gemm_mma.ts): tiles of y to blocks, warps to threadIdx.y and
 * lanes to threadIdx.x, the shared-memory copies spread over the block, the per-lane nests
 * unrolled (accumulators and fragments in registers) and, on NVIDIA sm_80 and later, each
 * 16 x 8 x 16 nest tensorized into one mma.m16n8k16 per warp. Elsewhere f16GemmMma's nests stay
 * per-lane loops of f32 multiply-adds (correct on any GPU; f16GemmTiled is the faster choice
 * there) and q4GemmMma, whose B operands are the instruction's registers, is refused.
 */
export function mmaGemmSchedule(p: MmaGemmSchedule = MMA_GEMM_SCHEDULE) {
  return (s: Schedule, target: string): void => {
    const q4 = s.func.params.some((x) => x.kind === "buffer" && x.buffer.name === "packed");
    // q4GemmMma's B operands are registers laid out for the instruction: without it each lane
    // would read other lanes' registers. Refused, not wrong.
    if (q4 && !hasMma(target))
      throw new TargetUnsupportedError(
        "mmaGemmSchedule",
        `${s.func.name} needs NVIDIA sm_80 or later (mma.m16n8k16); ${target} has none: use ${Q4_MMA_FALLBACK[s.func.name] ?? "q4GemmTiled"}`,
      );
    if (s.func.name === "q4QkvRopeAppendGemmMma") {
      const d = s.func.params.find((x) => x.kind === "buffer" && x.buffer.name === "qr");
      const dim = d?.kind === "buffer" ? d.buffer.shape[2] : undefined;
      if (dim?.kind !== "const" || dim.value % 64 !== 0)
        throw new ScheduleError(
          "mmaGemmSchedule",
          `q4QkvRopeAppendGemmMma pairs a block's 32 rotations in one head: it needs the head size specialized to a multiple of 64 (${dim ? printExpr(dim) : "?"}); use q4QkvGemmMma with ropeHalf and kvAppend`,
        );
    }
    s.bind("bm", "blockIdx.y");
    s.bind("bn", "blockIdx.x");
    const minBlocks = q4 ? p.minBlocksPerSM.q4 : p.minBlocksPerSM.f16;
    if (minBlocks > 0) s.annotate("bm", MIN_BLOCKS_PER_SM, minBlocks);
    // q4GemmMma names each copy's thread itself (software pipelining through registers).
    const threadLoops: [string, string][] = q4
      ? [
          ["wz", "lz"],
          ["wc", "lc"],
          ["wf", "lf"],
          ["wp", "lane"],
          ["wy", "ly"],
        ]
      : [
          ["wz", "lz"],
          ["wx", "lx"],
          ["wl", "ll"],
          ["wp", "lane"],
          ["wy", "ly"],
        ];
    bindWarpsAndLanes(s, threadLoops);
    const unrolled = ["mz", "nz", "rz", "kt", "mt", "nt", "my", "ny", "ry"];
    if (q4) {
      // x's chunks load as 16-byte vectors; their stores to shared memory reorder the halves
      // (stdlib/gemm_mma.ts), unrolled, and LLVM merges each pair into one 32-bit store.
      if (p.vec > 1) s.vectorize("vf");
      unrolled.push("sx", "vx", "nw", "hw", "jw", "sf", "sg", "vg");
      if (p.vec <= 1) unrolled.push("vf");
    } else {
      // f16GemmMma's copies: 16-byte chunks, each thread's named by the kernel, loaded into
      // registers a step ahead and stored from them (vectorized when the stores are too).
      for (const v of ["vl", "vm", "vx", "vw"]) if (p.vec > 1) s.vectorize(v);
      unrolled.push("sx", "sw", "sl", "sm");
      if (p.vec <= 1) unrolled.push("vl", "vm", "vx", "vw");
    }
    if (p.padRows) {
      s.storageAlign("xs", 0, 32, 8);
      if (!q4) s.storageAlign("ws", 0, 32, 8); // q4GemmMma's weights skip shared memory
    }
    if (hasMma(target)) s.tensorize("r", "mma_m16n8k16", "lane");
    // A stage is staged in one half of each tile while the other half's products still read:
    // one barrier per stage instead of two.
    if (q4 ? p.doubleBuffer.q4 : p.doubleBuffer.f16) {
      const stage = q4 ? "g" : "ks";
      for (const b of q4 ? ["xs"] : ["xs", "ws"]) s.doubleBuffer(b, stage);
    }
    // q4GemmResidualMma loads its residuals in a nest of their own.
    const names = namesIn(s.func);
    for (const l of [...unrolled, "mr", "nr", "rr"]) if (names.has(l)) s.unroll(l);
  };
}

/** Targets with Hopper's warpgroup instruction wgmma.mma_async (sm_90a: H100, H200). */
export const hasWgmma = (target: string): boolean => target === "sm_90";

/** Parameters of the wgmma GEMM schedule (the tile shape is the kernel's: stdlib/gemm_wgmma.ts). */
export interface WgmmaGemmSchedule {
  /**
   * Copies of the x tile, taken in turn by K stage (doubleBuffer): 2, one barrier a stage instead
   * of 1's two; 3 or 4, and the stage's products keep running past the next stage's barriers
   * (backends/llvm/render-wgmma.ts), so the tensor cores need not drain between stages. Four
   * copies (64 KB) go to dynamic shared memory on NVIDIA (backends/llvm/render-shared.ts).
   */
  readonly xCopies: 1 | 2 | 3 | 4;
  /** Blocks per multiprocessor the registers must allow (0: no cap). */
  readonly minBlocksPerSM: number;
  /**
   * Which tiles neighbouring blocks take: "tokens" (blockIdx.x over the blocks of tokens: the
   * blocks that read one tile of weights run together, so it comes from DRAM once) or "weights"
   * (blockIdx.x over weight rows: the blocks that read one x tile run together).
   */
  readonly blocksAlong: "tokens" | "weights";
}

/**
 * H100, 512 tokens (bench/results/gemm-wgmma-ab-h100.json): double-buffered, registers uncapped
 * (157-159: one block of two warpgroups per multiprocessor), 339-417 TFLOP/s at the three 7B
 * shapes with neighbouring blocks along tokens (the 512-token prefill 6% faster than along
 * weights); capped to 128 registers for two blocks it spills and runs at 254-302; one x buffer
 * 267-358.
 */
export const WGMMA_GEMM_SCHEDULE: WgmmaGemmSchedule = {
  xCopies: 2,
  minBlocksPerSM: 0,
  blocksAlong: "tokens",
};

/**
 * q4GemmWgmma (stdlib/gemm_wgmma.ts): tiles of y to blocks, warps to threadIdx.y (a warpgroup is
 * four consecutive warps) and lanes to threadIdx.x, the per-lane nests unrolled, each stage's
 * 64 x 128 x 16 nests tensorized into one wgmma.mma_async per warpgroup. Hopper only: elsewhere
 * q4GemmMma does the same work with mma.m16n8k16.
 */
export function wgmmaGemmSchedule(p: WgmmaGemmSchedule = WGMMA_GEMM_SCHEDULE) {
  return (s: Schedule, target: string): void => {
    if (!hasWgmma(target))
      throw new TargetUnsupportedError(
        "wgmmaGemmSchedule",
        `${s.func.name} needs NVIDIA sm_90 (wgmma.mma_async, sm_90a); ${target} has none: use ${s.func.name === "q4GateUpSplitKGemmWgmma" ? "q4GateUpSiluGemmMma (whole, K not split)" : s.func.name.replace(/Wgmma.*$/, "Mma")}`,
      );
    // q4QkvRopeAppendGemmWgmma (the kernel with a rotated-q output).
    const d = s.func.params.find((x) => x.kind === "buffer" && x.buffer.name === "qr");
    if (d) {
      const dim = d.kind === "buffer" ? d.buffer.shape[2] : undefined;
      if (dim?.kind !== "const" || dim.value % 128 !== 0)
        throw new ScheduleError(
          "wgmmaGemmSchedule",
          `q4QkvRopeAppendGemmWgmma pairs a block's 64 rotations in one head: it needs the head size specialized to a multiple of 128 (${dim ? printExpr(dim) : "?"}); use q4QkvGemmWgmma with ropeHalf and kvAppend`,
        );
    }
    // stdlib/gemm_wgmma.ts stages x as one tile of 128 tokens (two q4 groups a K stage) or two.
    const xRows = [...allocatedIn(s.func.body)].find((b) => b.name === "xs")?.shape[0];
    if (xRows?.kind === "const" && xRows.value !== 128 && xRows.value !== 256)
      throw new ScheduleError(
        "wgmmaGemmSchedule",
        `${s.func.name} stages ${xRows.value} rows of x a K stage: its STAGE_GROUPS must be 2 or 4 (q4 groups of 32 a stage)`,
      );
    if (p.blocksAlong === "tokens") {
      s.reorder("bn", "bm");
      s.bind("bn", "blockIdx.y");
      s.bind("bm", "blockIdx.x");
    } else {
      s.bind("bm", "blockIdx.y");
      s.bind("bn", "blockIdx.x");
    }
    if (p.minBlocksPerSM > 0)
      s.annotate(p.blocksAlong === "tokens" ? "bn" : "bm", MIN_BLOCKS_PER_SM, p.minBlocksPerSM);
    const names = namesIn(s.func);
    bindWarpsAndLanes(
      s,
      (
        [
          ["wh", "lh"],
          ["wz", "lz"],
          ["wc", "lc"],
          ["wf", "lf"],
          ["wa", "la"],
          ["wp", "lane"],
          ["wy", "ly"],
          // The epilogues' unguarded nests (whole tiles).
          ["wu", "lu"],
        ] as const
      ).filter(([w]) => names.has(w)),
    );
    s.vectorize("vf");
    s.tensorize("nt", "wgmma_m64n128k16", "lane");
    if (p.xCopies > 1) s.doubleBuffer("xs", "g", p.xCopies);
    // q4GemmResidualWgmma loads its residuals in a nest of their own.
    for (const l of [
      "nz",
      "rz",
      "kt",
      "ny",
      "ry",
      "sx",
      "vx",
      "sq",
      "vq",
      "hw",
      "jw",
      "sf",
      "sg",
      "vg",
      "sp",
      "nr",
      "rr",
      "nq",
      "rq",
      "nu",
      "ru",
    ])
      if (names.has(l)) s.unroll(l);
  };
}
