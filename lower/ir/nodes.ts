/**
 * The loop IR: every node kind of tkc's intermediate representation, from the frontend's output to
 * the device IR that renderers consume (the device IR is the same node set after the lowering
 * passes have bound threads, flattened buffers and removed blocks).
 *
 * Nodes are plain immutable objects. Variables and buffers are compared by identity; `id`s exist
 * for printing and serialisation.
 */
import type { DType } from "../../dsl/dtypes.ts";

export type { DType };

export type Scope = "global" | "shared" | "local";

export interface Var {
  readonly kind: "var";
  readonly name: string;
  readonly dtype: DType;
  readonly id: number;
}

export interface Buffer {
  readonly kind: "buffer";
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly Expr[];
  readonly scope: Scope;
  readonly id: number;
  /** Allocated extent of each dimension (>= shape) when storageAlign pads rows; absent means dense. */
  readonly allocShape?: readonly Expr[];
}

export type BinaryOp =
  | "+"
  | "-"
  | "*"
  | "/" // floats: division; integers: truncating (C) division
  | "%" // integers: truncating remainder (sign of the dividend); floats: fmod
  | "floordiv"
  | "floormod"
  | "min"
  | "max"
  | "&"
  | "|"
  | "^"
  | "<<"
  | ">>" // arithmetic for signed, logical for unsigned
  | "=="
  | "!="
  | "<"
  | "<="
  | ">"
  | ">="
  | "&&"
  | "||";

export type UnaryOp = "neg" | "not" | "bitnot";

export type CallName =
  | "exp"
  | "exp2"
  | "log"
  | "log2"
  | "sqrt"
  | "rsqrt"
  | "tanh"
  | "erf"
  | "sin"
  | "cos"
  | "floor"
  | "ceil"
  | "round"
  | "pow"
  | "fma"
  | "abs"
  // Device-level calls that passes introduce (never written by users):
  | "shfl_xor" // (value, laneMask, width): warp/wavefront butterfly shuffle
  // (a0..a7 f16, b0..b3 f16, c0..c3 f32, field): field of a warp's 16x8x16 tensor-core product
  // (lower/schedule/tensorize.ts has the register layout; one instruction per warp on NVIDIA)
  | "mma_m16n8k16"
  // (a0..a7 f16, b: f16 load of the B tile's origin in shared memory, c0..c63 f32, field): field of
  // a warpgroup's 64x128x16 tensor-core product (wgmma.mma_async m64n128k16, A from registers in
  // each warp's mma.m16n8k16 A layout, B read by the instruction from a tile of 128 rows of 64
  // halves in shared memory, 128-byte swizzled; lower/schedule/tensorize.ts has the layouts)
  | "wgmma_m64n128k16"
  // (row f16 load from shared memory, count 1 | 2 | 4, register): register `register` of a warp's
  // ldmatrix.m8n8.x{count}.b16. Lane 8j + i names, by the load, the first of the eight contiguous
  // halves of row i of matrix j; lane l receives row l >> 2, halves 2 (l & 3) and + 1 of matrix
  // `register`, packed as pack_f16x2 packs them (the mma.m16n8k16 operand layout)
  | "ldmatrix"
  | "thread_id" // (axis 0..2) threadIdx
  | "block_id" // (axis 0..2) blockIdx
  | "bitcast" // (value): the same 32 bits as another dtype (f32 <-> u32/i32)
  // Two f16 in the 32 bits of a u32 (element 0 in bits 0..15), NVIDIA's f16x2 registers:
  | "pack_f16x2" // (lo f16, hi f16) -> u32
  | "unpack_f16x2" // (v u32, element: constant 0 or 1) -> f16
  | "fma_f16x2"; // (a, b, c u32) -> u32: a * b + c per element, rounded once to f16

export interface Const {
  readonly kind: "const";
  readonly dtype: DType;
  readonly value: number;
}
export interface Binary {
  readonly kind: "binary";
  readonly op: BinaryOp;
  readonly a: Expr;
  readonly b: Expr;
  readonly dtype: DType;
}
export interface Unary {
  readonly kind: "unary";
  readonly op: UnaryOp;
  readonly a: Expr;
  readonly dtype: DType;
}
export interface Cast {
  readonly kind: "cast";
  readonly dtype: DType;
  readonly value: Expr;
}
export interface Load {
  readonly kind: "load";
  readonly buffer: Buffer;
  readonly indices: readonly Expr[];
  readonly dtype: DType;
}
export interface Call {
  readonly kind: "call";
  readonly name: CallName;
  readonly args: readonly Expr[];
  readonly dtype: DType;
}
export interface Select {
  readonly kind: "select";
  readonly cond: Expr;
  readonly t: Expr;
  readonly f: Expr;
  readonly dtype: DType;
}

export type Expr = Const | Var | Binary | Unary | Cast | Load | Call | Select;

export type ForKind = "serial" | "parallel" | "vectorized" | "unrolled" | "thread";
export type ThreadTag =
  "blockIdx.x" | "blockIdx.y" | "blockIdx.z" | "threadIdx.x" | "threadIdx.y" | "threadIdx.z";

export interface For {
  readonly kind: "for";
  readonly loopVar: Var;
  readonly min: Expr;
  readonly extent: Expr;
  readonly forKind: ForKind;
  /** Set when forKind is "thread". */
  readonly thread?: ThreadTag;
  readonly body: Stmt;
  readonly annotations: Readonly<Record<string, string | number | boolean>>;
}

/**
 * A named computation stage: schedules find work by block name (`s.getBlock("y")`). Blocks are
 * labels over their body; the reduction structure is computed from the body on demand. `init`,
 * when present (after decomposeReduction), runs before the reduction loops.
 */
export interface Block {
  readonly kind: "block";
  readonly name: string;
  readonly body: Stmt;
  /** Hints set by `annotate` (absent on most blocks); the printer shows them after the name. */
  readonly annotations?: Readonly<Record<string, string | number | boolean>>;
}

/**
 * `buffer[indices] = value`. With `async` (`copyAsync` in a kernel) the buffer is shared, the value
 * a load of a global buffer of the same dtype, and the copy lands at some point before the
 * thread's `waitAsync` that covers its group (Barrier scopes "async_commit", "async_wait"):
 * NVIDIA sm_80+ copies with `cp.async` (4, 8 or 16 bytes a thread: a vectorized loop of lanes is
 * one copy), which needs no registers and can run ahead of the arithmetic by many stages;
 * elsewhere it is an ordinary load and store.
 */
export interface Store {
  readonly kind: "store";
  readonly buffer: Buffer;
  readonly indices: readonly Expr[];
  readonly value: Expr;
  readonly async?: true;
}

export interface Allocate {
  readonly kind: "allocate";
  readonly buffer: Buffer;
  readonly body: Stmt;
}

export interface IfThenElse {
  readonly kind: "if";
  readonly cond: Expr;
  readonly then: Stmt;
  readonly else?: Stmt;
}

export interface Seq {
  readonly kind: "seq";
  readonly body: readonly Stmt[];
}

/** Binds an immutable scalar (`const` in the kernel source) for the extent of `body`. */
export interface LetStmt {
  readonly kind: "let";
  readonly v: Var;
  readonly value: Expr;
  readonly body: Stmt;
}

/**
 * Waits for every thread of the block (scope "shared") or of the warp ("warp"), or ("grid", device
 * IR on CUDA only, placed by lower/passes/dependency_wait.ts) until the grid launched before this
 * one in its stream has finished and its writes are visible: programmatic dependent launch starts
 * a kernel early, and everything before this wait overlaps the previous kernel's tail. Scope
 * "dependents" (device IR on CUDA only, placed by the same pass) waits for nothing: it lets the
 * next kernel in the stream launch once every block of this one has passed it or exited.
 * Scopes "async_commit" and "async_wait" group and wait for this thread's asynchronous copies
 * (Store.async) only.
 */
export interface Barrier {
  readonly kind: "barrier";
  readonly scope: "shared" | "warp" | "grid" | "dependents" | "async_commit" | "async_wait";
  /**
   * Scope "async_wait": how many of this thread's most recently committed groups of asynchronous
   * copies may still be in flight (the older ones have landed; a constant once loops are
   * unrolled). Scope "async_commit" closes the thread's copies issued since the last commit into a
   * group (possibly empty). Neither waits for other threads.
   */
  readonly pending?: number;
}

/**
 * A hint that `count` elements of a global buffer, from the one at `indices` on in storage order,
 * will be read soon: their cache lines are fetched into the L2 cache (NVIDIA: a line with
 * `prefetch.global.L2`, a range with sm_90's `cp.async.bulk.prefetch.L2` or below sm_90 a loop of
 * line prefetches; elsewhere nothing).
 * No effect on results; the range should lie in the buffer (a hint past its end fetches
 * nothing useful, and no renderer faults on it).
 */
export interface Prefetch {
  readonly kind: "prefetch";
  readonly buffer: Buffer;
  readonly indices: readonly Expr[];
  readonly count: Expr;
}

/**
 * `result = atomicAdd(buffer[indices], value)`: adds `value` to one element of a global or shared
 * buffer as one indivisible read-modify-write (no other thread's update to the element is lost)
 * and, with `result`, stores the element's previous value there (a local or shared element).
 * i32 and u32 elements wrap; f32 elements round as an f32 addition.
 * On a global buffer it orders memory at device scope (acquire and release): what this thread
 * wrote before it (and, through the barrier the `barriers` pass puts before it, what its block
 * wrote) is visible to a thread of any block that reads the value it left and then accesses
 * memory. That is how the last block to finish learns it is last and reads the others' results.
 */
export interface Atomic {
  readonly kind: "atomic";
  readonly op: "add";
  readonly buffer: Buffer;
  readonly indices: readonly Expr[];
  readonly value: Expr;
  readonly result?: { readonly buffer: Buffer; readonly indices: readonly Expr[] };
}

export type Stmt = For | Block | Store | Allocate | IfThenElse | Seq | LetStmt | Barrier | Prefetch | Atomic;

export type Param =
  { readonly kind: "buffer"; readonly buffer: Buffer } | { readonly kind: "scalar"; readonly v: Var };

/**
 * How a device function is launched: set by the lowering pass lower/passes/launch.ts from the
 * loops bound to blockIdx/threadIdx (lower/passes/DEVICE_IR.md is the contract).
 */
export interface LaunchConfig {
  /** Blocks along x, y, z: expressions over the function's symbols and scalar params. */
  readonly grid: readonly [Expr, Expr, Expr];
  /** Threads per block along x, y, z. */
  readonly block: readonly [number, number, number];
  /** Lanes per warp (wavefront) the code was lowered for: the width of every shfl_xor. */
  readonly warpSize: number;
  /** Static shared memory per block in bytes (0 until buffers are flattened). */
  readonly sharedBytes: number;
  /**
   * Blocks the code generator should fit on one multiprocessor at once (NVIDIA: registers capped to
   * allow it), from a `min_blocks_per_sm` annotation on a blockIdx loop; absent: no constraint.
   */
  readonly minBlocksPerSM?: number;
  /**
   * NVIDIA sm_90, programmatic dependent launch: when the next kernel in the stream may launch
   * (a `dependents_launch` annotation on a blockIdx loop or function attribute). Absent (the
   * default): once every block has passed its wait for the previous kernel. "start": once every
   * block has started (before its wait: the next kernel's early loads overlap this kernel's
   * predecessor too). "epilogue": once every block has reached its first store to global memory
   * (a GEMV's epilogue: the next kernel's blocks take the places of this one's as they exit,
   * without waiting for the launch). "exit": as the blocks exit. For a kernel whose blocks fill
   * the GPU in one wave only when nothing else is resident (lower/passes/dependency_wait.ts
   * places the trigger).
   */
  readonly dependentsLaunch?: DependentsLaunch;
}

/** Where a kernel lets the next one launch (LaunchConfig.dependentsLaunch). */
export type DependentsLaunch = "start" | "epilogue" | "exit";

export interface PrimFunc {
  readonly kind: "func";
  readonly name: string;
  readonly params: readonly Param[];
  /** Symbolic dimensions, bound from argument shapes at launch. */
  readonly symbols: readonly Var[];
  readonly body: Stmt;
  readonly attrs: Readonly<Record<string, string | number | boolean>>;
  /** Present on device functions (after lower/passes/launch.ts). */
  readonly launch?: LaunchConfig;
}

export type Node = Expr | Stmt;
