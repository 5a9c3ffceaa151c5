/**
 * Per-target schedule hyperparameters, kept as data next to each kernel so that a tuner can search
 * them on the device and a tuned result can be shipped per target.
 *
 * The schedules that run today live in stdlib/gpu/ with their own parameter tables (GEMV_SCHEDULES,
 * GEMM_SCHEDULES, ROW_THREADS), some measured on an H200 (bench/results). These per-kernel tables
 * are the seeds a tuner starts from, taken from TVM dlight's defaults for the same patterns (GEMV:
 * rows per block x threads per row with a cross-thread reduction; general reductions: 256 threads on
 * CUDA, 64 elsewhere); nothing reads them yet, and unifying them with stdlib/gpu is open work.
 */

/** The targets tkc's GPU backends render for. */
export type GpuTarget = "sm_90" | "gfx1100" | "vulkan";

export type PerTarget<P> = Readonly<Record<GpuTarget, Readonly<P>>>;

/** A GEMV: each output row is a dot product over K, split across threads and reduced across them. */
export interface GemvParams {
  /** Output rows computed by one thread block (dlight's TS). */
  readonly rowsPerBlock: number;
  /** Threads that share one row's reduction over K (dlight's TR). */
  readonly threadsPerRow: number;
  /** Consecutive K elements one thread loads at a time (8 = one u32 word of q4 codes). */
  readonly vec: number;
  /** Unroll the per-thread reduction loop up to this many steps. */
  readonly unroll: number;
}

/** A GEMM: a 2-D tile of outputs per block, each thread computing a small sub-tile. */
export interface GemmParams {
  readonly tileM: number;
  readonly tileN: number;
  readonly tileK: number;
  readonly threads: number;
  readonly vec: number;
}

/** A row-wise reduction (norms, softmax, argmax): one block per row, a cross-thread reduction. */
export interface RowReduceParams {
  readonly threads: number;
  readonly vec: number;
  readonly unroll: number;
}

/** An element-wise kernel: one element (or `vec` elements) per thread. */
export interface ElementwiseParams {
  readonly threads: number;
  readonly vec: number;
}

export const ROW_REDUCE_DEFAULTS: PerTarget<RowReduceParams> = {
  sm_90: { threads: 256, vec: 4, unroll: 256 },
  gfx1100: { threads: 64, vec: 4, unroll: 64 },
  vulkan: { threads: 64, vec: 4, unroll: 64 },
};

export const ELEMENTWISE_DEFAULTS: PerTarget<ElementwiseParams> = {
  sm_90: { threads: 256, vec: 4 },
  gfx1100: { threads: 256, vec: 4 },
  vulkan: { threads: 128, vec: 4 },
};
