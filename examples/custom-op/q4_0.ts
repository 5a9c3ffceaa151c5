/**
 * A custom op written outside tkc's stdlib: llama.cpp's Q4_0 matrix-vector product, reading the
 * weight exactly as a GGUF file stores it.
 *
 * Q4_0 (ggml's block_q4_0): each row of K weights is K/32 blocks of 18 bytes, an f16 scale d
 * (little-endian) then 16 bytes of 4-bit codes q in [0, 15]. Byte j holds element j in its low
 * nibble and element j + 16 in its high nibble. The weight is (q - 8) * d.
 *
 * The kernel takes the row's raw bytes (u8 [N, K/32 * 18]). tkc's bit casts are 32-bit only, so
 * the f16 scale is rebuilt from its two bytes with integer arithmetic and exact f32 products
 * (f16FromBits).
 * x is f16 [K]; products and sums are f32, as in q4f16_1's GEMV; y is f16 [N].
 */
import type { Schedule } from "../../lower/schedule/schedule.ts";
import { kernel, f16, f32, i32, idiv, select, type u8, type Tensor, type Sym } from "../../dsl/index.ts";

/** Elements per block and bytes per block (2 bytes of scale, 16 of codes). */
export const Q4_0_BLOCK = 32;
export const Q4_0_BLOCK_BYTES = 18;

/**
 * The value of the f16 with bit pattern `bits` (0..65535), exact in f32: normal numbers are
 * (1024 + mantissa) * 2^(exponent - 25), subnormals mantissa * 2^-24. (Inf and NaN, exponent 31,
 * are not scales and are not decoded.)
 */
export function f16FromBits(bits: i32): f32 {
  const e = (bits >> 10) & 31;
  const m = bits & 1023;
  const magnitude = select(e == 0, f32(m) * 2 ** -24, f32(m + 1024) * f32(1 << e) * 2 ** -25);
  // One use of magnitude: a helper's consts are substituted where they are used.
  return select((bits & 0x8000) != 0, f32(-1), f32(1)) * magnitude;
}

/** y[n] = sum_k x[k] * W[n][k] with W in Q4_0 blocks: x f16 [K], blocks u8 [N, K/32 * 18], y f16 [N]. */
export const q4_0Gemv = kernel(function q4_0Gemv(
  x: Tensor<f16, [Sym<"k">]>,
  blocks: Tensor<u8, [Sym<"n">, Sym<"rowBytes">]>,
  y: Tensor<f16, [Sym<"n">]>,
) {
  for (let n = 0; n < y.shape[0]; n++) {
    let acc = f32(0);
    for (let b = 0; b < idiv(x.shape[0], Q4_0_BLOCK); b++) {
      const at = b * Q4_0_BLOCK_BYTES;
      // A helper's consts are substituted where they are used, so the bits are a const here.
      const bits = i32(blocks[n][at]) | (i32(blocks[n][at + 1]) << 8);
      const d = f16FromBits(bits);
      for (let j = 0; j < 16; j++) {
        const byte = blocks[n][at + 2 + j];
        const low = f32(i32(byte & 15) - 8) * d; // element j
        const high = f32(i32(byte >> 4) - 8) * d; // element j + 16
        acc += f32(x[b * Q4_0_BLOCK + j]) * low + f32(x[b * Q4_0_BLOCK + j + 16]) * high;
      }
    }
    y[n] = f16(acc);
  }
});

/** Per-target parameters of the GPU schedule below: data a tuner can replace. */
export const q4_0GemvParams = {
  sm_90: { rows: 4, lanes: 32 },
  gfx1100: { rows: 2, lanes: 32 },
  vulkan: { rows: 4, lanes: 32 },
} as const;

/**
 * A GPU schedule, as for stdlib's q4 GEMV: `rows` output rows per block (threadIdx.y), each row's
 * blocks of 32 weights spread over `lanes` threads (adjacent lanes on adjacent blocks) and reduced
 * across them with warp shuffles; the 16 bytes of a block unrolled.
 */
export function q4_0GemvSchedule(
  s: Schedule,
  p: { rows: number; lanes: number } = q4_0GemvParams.sm_90,
): void {
  const [rowBlock, rowThread] = s.split("n", [null, p.rows]);
  const [outer, lane] = s.split("b", [null, p.lanes]);
  s.reorder(lane!, outer!, { reassociate: true });
  s.bind(rowBlock!, "blockIdx.x");
  s.bind(rowThread!, "threadIdx.y");
  s.bind(lane!, "threadIdx.x");
  s.unroll("j");
}
