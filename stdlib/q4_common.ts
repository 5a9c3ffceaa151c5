/**
 * MLC-LLM's q4f16_1 weight format, as kernels read it (llama/quant/q4f16_1.ts writes it):
 * a weight [N, K] is stored as `packed` u32 [N, K/8], eight 4-bit codes per word with element r of
 * the word at bits 4r..4r+3, and `scales` f16 [N, K/32], one per group of 32 consecutive elements
 * along K. The weight is (q - 7) * scale. K must be a multiple of 32.
 *
 * Arithmetic, all f32, never rounding a weight to f16: the GEMVs sum each group's x * (q - 7) in
 * f32 (each product is exact: an 11-bit f16 significand times a 4-bit integer) and scale that sum
 * once by f32(scale); q4Gemm and the embedding form each weight (q - 7) * scale as an exact f32
 * product (q4Value). MLC forms the weight in f16 (f16(f16(q) - 7) * scale, rounded to f16), which
 * can differ from the exact value by half an f16 ulp (2^-11 relative). Sums are f32 and each output
 * is rounded to f16 once (so the embedding's f16 rows equal MLC's dequantized values bit for bit).
 */
import { f32FromBits, u32, type f32, type i32 } from "../dsl/index.ts";

/** Elements of K sharing one scale. */
export const Q4_GROUP = 32;
/** 4-bit codes per u32 word. */
export const Q4_PER_WORD = 8;
/** Words per group: Q4_GROUP / Q4_PER_WORD. */
export const Q4_WORDS_PER_GROUP = 4;
/** The stored code of zero: codes 0..14 hold -7..7. */
export const Q4_ZERO = 7;

/**
 * The weight (q - 7) * scale held by code `r` (bits 4r..4r+3) of `word`, exact in f32.
 * The code becomes a float without an int-to-float conversion (a quarter-rate instruction on
 * NVIDIA GPUs, which would bound a GEMV below the memory bandwidth): its 4 bits OR-ed into the
 * mantissa of 2^23 read as the f32 2^23 + q, and subtracting 2^23 + 7 leaves q - 7 exactly.
 */
export function q4Value(word: u32, r: i32, scale: f32): f32 {
  return (f32FromBits(((word >> u32(4 * r)) & 15) | MAGIC_2P23) - (8388608 + Q4_ZERO)) * scale;
}

/** The code r of `word` as the f32 q - 7 (the weight divided by its group's scale), exact. */
export function q4Code(word: u32, r: i32): f32 {
  return f32FromBits(((word >> u32(4 * r)) & 15) | MAGIC_2P23) - (8388608 + Q4_ZERO);
}

/** The bits of the f32 2^23 (0x4B000000). */
const MAGIC_2P23 = 0x4b000000;
