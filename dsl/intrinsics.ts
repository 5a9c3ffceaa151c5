/**
 * Intrinsics a kernel calls. They exist for the type checker and the frontend, which recognises
 * them by their declaration in this file; calling one outside a compiled kernel is a mistake, and
 * says so.
 */
import type { DType } from "./dtypes.ts";
import type { Scalar, Shape, Tensor } from "./types.ts";

// Scalar types share their names with the cast functions below, as in `const y: f16 = f16(x)`.
export type f32 = Scalar<"f32">;
export type f16 = Scalar<"f16">;
export type bf16 = Scalar<"bf16">;
export type i64 = Scalar<"i64">;
export type i32 = Scalar<"i32">;
export type u32 = Scalar<"u32">;
export type i8 = Scalar<"i8">;
export type u8 = Scalar<"u8">;

function onlyInKernels(name: string): never {
  throw new Error(
    `tkc: ${name}() is a kernel intrinsic; it runs only inside a compiled kernel. ` +
      `Compile the kernel (for example cpuKernel(k)) and call the result instead.`,
  );
}

// Casts between every pair of dtypes. Float to integer truncates toward zero and saturates (NaN
// gives 0); to f16/bf16/f32 rounds to nearest even; integer to narrower integer wraps.
export function f32(x: number | boolean): f32 {
  return onlyInKernels("f32");
}
export function f16(x: number | boolean): f16 {
  return onlyInKernels("f16");
}
export function bf16(x: number | boolean): bf16 {
  return onlyInKernels("bf16");
}
export function i64(x: number | boolean): i64 {
  return onlyInKernels("i64");
}
export function i32(x: number | boolean): i32 {
  return onlyInKernels("i32");
}
export function u32(x: number | boolean): u32 {
  return onlyInKernels("u32");
}
export function i8(x: number | boolean): i8 {
  return onlyInKernels("i8");
}
export function u8(x: number | boolean): u8 {
  return onlyInKernels("u8");
}

// Float math: the argument's dtype is the result's (f32, f16 or bf16).
export function exp<T extends number>(x: T): T {
  return onlyInKernels("exp");
}
export function exp2<T extends number>(x: T): T {
  return onlyInKernels("exp2");
}
export function log<T extends number>(x: T): T {
  return onlyInKernels("log");
}
export function log2<T extends number>(x: T): T {
  return onlyInKernels("log2");
}
export function sqrt<T extends number>(x: T): T {
  return onlyInKernels("sqrt");
}
export function rsqrt<T extends number>(x: T): T {
  return onlyInKernels("rsqrt");
}
export function tanh<T extends number>(x: T): T {
  return onlyInKernels("tanh");
}
export function erf<T extends number>(x: T): T {
  return onlyInKernels("erf");
}
export function sin<T extends number>(x: T): T {
  return onlyInKernels("sin");
}
export function cos<T extends number>(x: T): T {
  return onlyInKernels("cos");
}
export function floor<T extends number>(x: T): T {
  return onlyInKernels("floor");
}
export function ceil<T extends number>(x: T): T {
  return onlyInKernels("ceil");
}
/** Rounds to the nearest integer, ties to even. */
export function round<T extends number>(x: T): T {
  return onlyInKernels("round");
}
export function pow<T extends number>(x: T, y: T): T {
  return onlyInKernels("pow");
}
/** a * b + c with a single rounding. */
export function fma<T extends number>(a: T, b: T, c: T): T {
  return onlyInKernels("fma");
}

// Any numeric dtype.
export function abs<T extends number>(x: T): T {
  return onlyInKernels("abs");
}
export function min<T extends number>(a: T, b: T): T {
  return onlyInKernels("min");
}
export function max<T extends number>(a: T, b: T): T {
  return onlyInKernels("max");
}
/** `cond ? a : b` with both sides evaluated (no branch). */
export function select<T extends number>(cond: boolean, a: T, b: T): T {
  return onlyInKernels("select");
}
/** Integer division truncating toward zero (C's `/`); `/` on integers is refused as ambiguous. */
export function idiv<T extends number>(a: T, b: T): T {
  return onlyInKernels("idiv");
}
/** Integer division rounding toward negative infinity. */
export function floordiv<T extends number>(a: T, b: T): T {
  return onlyInKernels("floordiv");
}
/** The remainder of floordiv: its sign follows the divisor. */
export function floormod<T extends number>(a: T, b: T): T {
  return onlyInKernels("floormod");
}

/** The 32 bits of a u32 or i32 read as an f32 (no conversion). */
export function f32FromBits(x: number): f32 {
  return onlyInKernels("f32FromBits");
}
/** The 32 bits of an f32 read as a u32 (no conversion). */
export function bitsOfF32(x: number): u32 {
  return onlyInKernels("bitsOfF32");
}

// Two f16 values in one u32 (element 0 in the low 16 bits): the register pairs that NVIDIA's
// f16x2 arithmetic and tensor-core operands take (GLSL's packHalf2x16 without the f32 detour).
/** lo and hi as the two halves of a u32 (lo in bits 0..15). */
export function packF16x2(lo: number, hi: number): u32 {
  return onlyInKernels("packF16x2");
}
/** Element `element` (0: bits 0..15, 1: bits 16..31; other values are unspecified) of a packed pair. */
export function unpackF16x2(v: number, element: number): f16 {
  return onlyInKernels("unpackF16x2");
}
/** a * b + c on each f16 element of three packed pairs, rounded once (one HFMA2 on NVIDIA). */
export function fmaF16x2(a: number, b: number, c: number): u32 {
  return onlyInKernels("fmaF16x2");
}

// Memory hints.
/**
 * A statement: `count` elements (default 1) of a parameter tensor, from this one on in row-major
 * order (write the element access: `prefetchL2(w[row][0], 16 * k)`), will be read soon; fetch
 * their cache lines into the L2 cache. Results are the same with or without it; only NVIDIA's
 * renderer emits instructions (a line: `prefetch.global.L2`; a range on sm_90: one
 * `cp.async.bulk.prefetch.L2`, which the copy engine works through; below sm_90 a line prefetch per
 * 128 bytes). The kernel's first prefetches are issued before it waits for the previous kernel under
 * programmatic dependent launch, so prefetching weights first overlaps that kernel's tail. A range
 * prefetch counts toward the grid's completion: one issued near a kernel's end delays the next
 * kernel's wait until the copy engine has fetched it (measured on an H200:
 * bench/results/decode-gateup-ahead-ab-h200.json).
 */
export function prefetchL2(element: number, count?: number): void {
  return onlyInKernels("prefetchL2");
}

// Asynchronous copies (global to shared memory).
/**
 * A statement: `copyAsync(tile[w][i], weights[row][col]);` copies one element of a kernel's tensor
 * parameter into an element of a shared(...) tensor of the same dtype, asynchronously: the copy
 * lands by this thread's `waitAsync` that covers it, so the thread (and, after a barrier that the
 * lowering places, its block) may read it only then. Copies are grouped by `commitAsync()`;
 * `waitAsync(n)` waits until at most the n most recent groups are still in flight. NVIDIA sm_80+
 * copies with `cp.async`, 4, 8 or 16 bytes a thread (vectorize the loop over consecutive elements
 * for 16), without holding registers, so a kernel can have many stages of weights in flight; other
 * targets load and store at once. Copies read before the kernel waits for the previous one when
 * their source is invariant (weights), as loads do.
 */
export function copyAsync<T extends number>(dst: T, src: T): void {
  return onlyInKernels("copyAsync");
}
/** A statement: closes this thread's copyAsync calls since the last commit into a group (possibly empty). */
export function commitAsync(): void {
  return onlyInKernels("commitAsync");
}
/**
 * A statement: waits until at most `pending` (a constant once loops are unrolled) of this thread's
 * most recently committed groups of copies are in flight; the older groups have landed.
 */
export function waitAsync(pending: number): void {
  return onlyInKernels("waitAsync");
}

// Atomics.
/**
 * Adds `value` to one element of a kernel's tensor parameter or of a shared(...) tensor (i32 and
 * u32 wrap, f32 rounds) as one indivisible update, and gives the element's previous value. A
 * statement: `atomicAdd(hist[bin], 1);`, or `old[0] = atomicAdd(count[h], 1);` to keep the old
 * value (in a local or shared element; in shared memory when the element is the same for every
 * thread, as at the kernel's block level, where one thread makes the update).
 * On a tensor parameter it orders memory at device scope: what the block wrote before it is
 * visible to any block that sees its update and then reads memory, so the last block to finish
 * (old value = blocks - 1) can read every other block's results. Vulkan adds i32 and u32 only.
 */
export function atomicAdd<T extends number>(element: T, value: number): T {
  return onlyInKernels("atomicAdd");
}

// Memory: scratch tensors allocated inside a kernel.
type ElemOf<D extends DType> = D extends "f32"
  ? f32
  : D extends "f16"
    ? f16
    : D extends "bf16"
      ? bf16
      : D extends "i64"
        ? i64
        : D extends "i32"
          ? i32
          : D extends "u32"
            ? u32
            : D extends "i8"
              ? i8
              : D extends "u8"
                ? u8
                : Scalar<D>;

/** A tensor in registers (thread-private), of a static shape. */
export function local<D extends DType, const S extends Shape>(dtype: D, shape: S): Tensor<ElemOf<D>, S> {
  return onlyInKernels("local");
}
/** A tensor in shared memory (one per thread block), of a static shape. */
export function shared<D extends DType, const S extends Shape>(dtype: D, shape: S): Tensor<ElemOf<D>, S> {
  return onlyInKernels("shared");
}

/** The names the frontend treats as intrinsics, with how many arguments each takes. */
export const INTRINSIC_ARITY: Readonly<Record<string, number>> = {
  f32: 1,
  f16: 1,
  bf16: 1,
  i64: 1,
  i32: 1,
  u32: 1,
  i8: 1,
  u8: 1,
  exp: 1,
  exp2: 1,
  log: 1,
  log2: 1,
  sqrt: 1,
  rsqrt: 1,
  tanh: 1,
  erf: 1,
  sin: 1,
  cos: 1,
  floor: 1,
  ceil: 1,
  round: 1,
  pow: 2,
  fma: 3,
  abs: 1,
  min: 2,
  max: 2,
  select: 3,
  idiv: 2,
  floordiv: 2,
  floormod: 2,
  local: 2,
  shared: 2,
  f32FromBits: 1,
  bitsOfF32: 1,
  packF16x2: 2,
  unpackF16x2: 2,
  fmaF16x2: 3,
  prefetchL2: 1,
  atomicAdd: 2,
  copyAsync: 2,
  commitAsync: 0,
  waitAsync: 1,
};
