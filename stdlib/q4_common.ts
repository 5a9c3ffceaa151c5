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
import { f32, f32FromBits, fma, fmaF16x2, select, u32, type i32 } from "../dsl/index.ts";

/** Elements of K sharing one scale. */
export const Q4_GROUP = 32;
/** 4-bit codes per u32 word. */
export const Q4_PER_WORD = 8;
/** Words per group: Q4_GROUP / Q4_PER_WORD. */
export const Q4_WORDS_PER_GROUP = 4;
/** The stored code of zero: codes 0..14 hold -7..7. */
export const Q4_ZERO = 7;

/** The weight (q - 7) * scale held by code `r` (bits 4r..4r+3) of `word`, exact in f32. */
export function q4Value(word: u32, r: i32, scale: f32): f32 {
  return q4Code(word, r) * scale;
}

/**
 * The code r of `word` as the f32 q - 7 (the weight divided by its group's scale), exact.
 * The code becomes a float without an int-to-float conversion (a quarter-rate instruction on
 * NVIDIA GPUs) and without shifting it down: codes 0..3 are masked in place in the word, codes
 * 4..7 in place in word >> 16 (one shift per word, shared by its four codes), and OR-ed into the
 * mantissa of 2^23, which reads as the f32 2^23 + q * 16^p (p = r mod 4, exact below 2^24).
 * One fused multiply-add by the powers of two 16^-p and -(2^(23-4p) + 7) leaves q - 7 exactly.
 * With r known (the GPU schedules unroll it) that is an AND-OR (one LOP3 on NVIDIA) and an FMA.
 */
export function q4Code(word: u32, r: i32): f32 {
  const p = r & 3;
  const half = select(r < 4, word, word >> u32(16));
  const magic = f32FromBits((half & (u32(15) << u32(4 * p))) | MAGIC_2P23);
  return fma(magic, 1 / f32(1 << (4 * p)), -f32((1 << (23 - 4 * p)) + Q4_ZERO));
}

/** The bits of the f32 2^23 (0x4B000000). */
const MAGIC_2P23 = 0x4b000000;

/**
 * Codes p and p + 4 of `word` (p = 0..3) as the f16 pair (q_p - 7, q_{p+4} - 7), element 0 in the
 * low half: the operand register of an f16 tensor-core product. Both codes are masked in place
 * (codes 0..3 in the low half-word, 4..7 in the high one; word >> 8 for p >= 2) and OR-ed into the
 * f16 1024 (0x6400), which reads as 1024 + q (p even) or 1024 + 16 q (p odd); one f16x2 fused
 * multiply-add by (1, -1031) or (1/16, -71) leaves q - 7, exactly (every value is an integer
 * below 2^11). With p known that is a LOP3 and an HFMA2 for two weights on NVIDIA GPUs.
 */
export function q4PairF16x2(word: u32, p: i32): u32 {
  const odd = (p & 1) === 1;
  const w = select(p >= 2, word >> u32(8), word);
  const biased = (w & select(odd, u32(0x00f000f0), u32(0x000f000f))) | u32(F16X2_1024);
  return fmaF16x2(
    biased,
    select(odd, u32(F16X2_SIXTEENTH), u32(F16X2_ONE)),
    select(odd, u32(F16X2_MINUS_71), u32(F16X2_MINUS_1031)),
  );
}

/**
 * Codes t and t + 4 of `word` (t = 0..3, known only at run time, as a lane index) as the f16 pair
 * (q_t - 7, q_{t+4} - 7), element 0 in the low half: shifted down by 4t, masked into the mantissa
 * of the f16 1024 and offset by -1031, exactly (a shift, a LOP3 and an HADD2 on NVIDIA GPUs).
 */
export function q4PairF16x2Lane(word: u32, t: i32): u32 {
  const biased = ((word >> u32(4 * t)) & u32(0x000f000f)) | u32(F16X2_1024);
  return fmaF16x2(biased, u32(F16X2_ONE), u32(F16X2_MINUS_1031));
}

/** f16 pairs (both elements equal) by their bits: 1024, 1, 1/16, -71 and -1031. */
export const F16X2_1024 = 0x64006400;
export const F16X2_ONE = 0x3c003c00;
export const F16X2_SIXTEENTH = 0x2c002c00;
export const F16X2_MINUS_71 = 0xd470d470;
export const F16X2_MINUS_1031 = 0xe407e407;
