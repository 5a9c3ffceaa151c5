/**
 * Where NVIDIA's mma.m16n8k16 (f16 operands, f32 accumulators) keeps each element in a warp's
 * registers (PTX ISA, "Matrix Fragments for mma.m16n8k16 with floating point type"), for kernels
 * that form operands in registers (fragments: local u32 tensors [..., lane, register] of f16
 * pairs) and are then tensorized (lower/schedule/tensorize.ts checks the same layout).
 *
 * A is 16 x 16 (row, k): four registers per lane; B is 16 x 8 stored by column (n, k): two;
 * C is 16 x 8: four f32 fields per lane. Element e of a register is its k & 1.
 */
import type { i32 } from "../dsl/index.ts";

/** Lane `lane`'s A register `reg` holds row mmaARow and columns mmaAK(e = 0, 1). */
export const mmaARow = (lane: i32, reg: i32): i32 => (lane >> 2) + 8 * (reg & 1);
export const mmaAK = (lane: i32, reg: i32, e: i32): i32 => 2 * (lane & 3) + 8 * (reg >> 1) + e;
/** Lane `lane`'s B registers hold column lane >> 2; register `reg` holds k = mmaBK(e = 0, 1). */
export const mmaBN = (lane: i32): i32 => lane >> 2;
export const mmaBK = (lane: i32, reg: i32, e: i32): i32 => 2 * (lane & 3) + 8 * reg + e;
/** The lane and register holding A's element (row, k). */
export const mmaALane = (row: i32, k: i32): i32 => (row & 7) * 4 + ((k & 7) >> 1);
export const mmaAReg = (row: i32, k: i32): i32 => (row >> 3) + 2 * (k >> 3);
/** The lane and register holding B's element (n, k). */
export const mmaBLane = (n: i32, k: i32): i32 => n * 4 + ((k & 7) >> 1);
export const mmaBReg = (k: i32): i32 => k >> 3;
/** Accumulator field r (0..3) of lane `lane` is C's element (mmaCRow, mmaCCol). */
export const mmaCRow = (lane: i32, r: i32): i32 => (lane >> 2) + 8 * (r >> 1);
export const mmaCCol = (lane: i32, r: i32): i32 => 2 * (lane & 3) + (r & 1);
