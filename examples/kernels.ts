/**
 * Example kernels: each is ordinary TypeScript that `tsc` checks, lowered by tkc's frontend.
 * test/kernels.test.ts runs every one on the CPU against a plain-TypeScript reference.
 */
import {
  kernel,
  f32,
  f16,
  i32,
  u32,
  exp,
  rsqrt,
  max,
  select,
  idiv,
  min,
  floor,
  atomicAdd,
  copyAsync,
  commitAsync,
  waitAsync,
  local,
  shared,
  type Tensor,
  type Sym,
} from "../dsl/index.ts";

/** Rows of the RMSNorm example; a module-level const the frontend evaluates. */
export const NORM_DIM = 40;
/** Elements per quantization group of the int4 example (as in MLC's q4f16_1). */
const GROUP = 32;

/** y = x + b, with b broadcast along the rows. */
export const addBroadcast = kernel(function addBroadcast(
  x: Tensor<f32, [Sym<"m">, Sym<"n">]>,
  b: Tensor<f32, [Sym<"n">]>,
  y: Tensor<f32, [Sym<"m">, Sym<"n">]>,
) {
  for (let i = 0; i < x.shape[0]; i++) {
    for (let j = 0; j < x.shape[1]; j++) {
      y[i][j] = x[i][j] + b[j];
    }
  }
});

function silu(v: f32): f32 {
  return v / (1 + exp(-v));
}

/** out = silu(gate) * up, in f16 with f32 arithmetic (a helper function, inlined). */
export const siluMul = kernel(function siluMul(
  gate: Tensor<f16, [Sym<"n">]>,
  up: Tensor<f16, [Sym<"n">]>,
  out: Tensor<f16, [Sym<"n">]>,
) {
  for (let i = 0; i < gate.shape[0]; i++) {
    out[i] = f16(silu(f32(gate[i])) * f32(up[i]));
  }
});

/** Numerically stable softmax over each row. */
export const softmax = kernel(function softmax(
  x: Tensor<f32, [Sym<"m">, Sym<"n">]>,
  y: Tensor<f32, [Sym<"m">, Sym<"n">]>,
) {
  for (let i = 0; i < x.shape[0]; i++) {
    let m = f32(-Infinity);
    for (let j = 0; j < x.shape[1]; j++) m = max(m, x[i][j]);
    let s = f32(0);
    for (let j = 0; j < x.shape[1]; j++) s += exp(x[i][j] - m);
    for (let j = 0; j < x.shape[1]; j++) y[i][j] = exp(x[i][j] - m) / s;
  }
});

/** RMSNorm over rows of a static width, f16 in and out, f32 accumulation. */
export const rmsNorm = kernel(function rmsNorm(
  x: Tensor<f16, [Sym<"n">, typeof NORM_DIM]>,
  w: Tensor<f16, [typeof NORM_DIM]>,
  y: Tensor<f16, [Sym<"n">, typeof NORM_DIM]>,
  eps: f32,
) {
  for (let i = 0; i < x.shape[0]; i++) {
    let ss = f32(0);
    for (let k = 0; k < NORM_DIM; k++) ss += f32(x[i][k]) * f32(x[i][k]);
    const r = rsqrt(ss / NORM_DIM + eps);
    for (let k = 0; k < NORM_DIM; k++) y[i][k] = f16(f32(x[i][k]) * r * f32(w[k]));
  }
});

/** C = A B in f32. */
export const matmul = kernel(function matmul(
  a: Tensor<f32, [Sym<"m">, Sym<"k">]>,
  b: Tensor<f32, [Sym<"k">, Sym<"n">]>,
  c: Tensor<f32, [Sym<"m">, Sym<"n">]>,
) {
  for (let i = 0; i < a.shape[0]; i++) {
    for (let j = 0; j < b.shape[1]; j++) {
      let acc = f32(0);
      for (let k = 0; k < a.shape[1]; k++) acc += a[i][k] * b[k][j];
      c[i][j] = acc;
    }
  }
});

/** C = A B^T with f16 inputs, f32 accumulation and an f16 result (the [N, K] weight layout). */
export const matmulF16 = kernel(function matmulF16(
  a: Tensor<f16, [Sym<"m">, Sym<"k">]>,
  w: Tensor<f16, [Sym<"n">, Sym<"k">]>,
  c: Tensor<f16, [Sym<"m">, Sym<"n">]>,
) {
  for (let i = 0; i < a.shape[0]; i++) {
    for (let j = 0; j < w.shape[0]; j++) {
      let acc = f32(0);
      for (let k = 0; k < a.shape[1]; k++) acc += f32(a[i][k]) * f32(w[j][k]);
      c[i][j] = f16(acc);
    }
  }
});

export const transpose = kernel(function transpose(
  x: Tensor<i32, [Sym<"m">, Sym<"n">]>,
  y: Tensor<i32, [Sym<"n">, Sym<"m">]>,
) {
  for (let i = 0; i < x.shape[0]; i++) {
    for (let j = 0; j < x.shape[1]; j++) {
      y[j][i] = x[i][j];
    }
  }
});

/** The sum of a vector whose length is known only at launch. */
export const sumAll = kernel(function sumAll(x: Tensor<f32, [Sym<"n">]>, out: Tensor<f32, [1]>) {
  let s = f32(0);
  for (let i = 0; i < x.shape[0]; i++) s += x[i];
  out[0] = s;
});

/**
 * Unpacks int4 values (eight per u32, element r at bits 4r) and scales them per group of 32:
 * w = (q - 7) * scale, as MLC's q4f16_1 stores weights.
 */
export const int4Dequant = kernel(function int4Dequant(
  packed: Tensor<u32, [Sym<"n">, Sym<"kw">]>,
  scales: Tensor<f16, [Sym<"n">, Sym<"kg">]>,
  out: Tensor<f16, [Sym<"n">, Sym<"k">]>,
) {
  for (let r = 0; r < out.shape[0]; r++) {
    for (let c = 0; c < out.shape[1]; c++) {
      const word = packed[r][idiv(c, 8)];
      const q = i32((word >> u32(4 * (c % 8))) & 15);
      out[r][c] = f16(q - 7) * scales[r][idiv(c, GROUP)];
    }
  }
});

/** The index of each row's maximum (the first one on ties). */
export const argmax = kernel(function argmax(
  x: Tensor<f32, [Sym<"m">, Sym<"n">]>,
  out: Tensor<i32, [Sym<"m">]>,
) {
  for (let i = 0; i < x.shape[0]; i++) {
    let best = x[i][0];
    let at = i32(0);
    for (let j = 1; j < x.shape[1]; j++) {
      const better = x[i][j] > best;
      at = select(better, j, at);
      best = select(better, x[i][j], best);
    }
    out[i] = at;
  }
});

/**
 * hist[b] += how many x fall in bin b of [0, 1) cut into `bins` (values outside go to the end
 * bins): every element adds one to its bin with atomicAdd, so the elements may run in any order
 * (on a GPU, at once).
 */
export const histogram = kernel(function histogram(
  x: Tensor<f32, [Sym<"n">]>,
  hist: Tensor<i32, [Sym<"bins">]>,
) {
  const bins = hist.shape[0];
  for (let i = 0; i < x.shape[0]; i++) {
    const b = i32(floor(x[i] * f32(bins)));
    atomicAdd(hist[max(0, min(b, bins - 1))], 1);
  }
});

/** Tiles of stagedRowSums in flight a block: copies run this many tiles ahead of the sums. */
export const RING = 2;

/**
 * y[i] = the sum of row i of x, a row being `tiles` tiles of 128 elements (the static 128 tells
 * the compiler every tile starts on 16 bytes, as a 16-byte copy needs). A block streams its row
 * through a ring of RING tiles in shared memory, each tile copied asynchronously (copyAsync: on
 * NVIDIA one 16-byte cp.async a thread) RING tiles ahead of the sums, so the loads overlap the
 * arithmetic without holding registers; each of 32 threads sums a strided quarter of each tile
 * (elements another thread copied: the lowering puts a barrier after each wait), then the
 * threads' sums are added up.
 */
export const stagedRowSums = kernel(function stagedRowSums(
  x: Tensor<f32, [Sym<"m">, Sym<"tiles">, 128]>,
  y: Tensor<f32, [Sym<"m">]>,
) {
  for (let i = 0; i < x.shape[0]; i++) {
    const ring = shared("f32", [RING, 128]);
    const part = local("f32", [32]);
    const tiles = x.shape[1];
    for (let t0 = 0; t0 < 32; t0++) part[t0] = f32(0);
    for (let p = 0; p < RING; p++) {
      if (p < tiles)
        for (let tp = 0; tp < 32; tp++)
          for (let vp = 0; vp < 4; vp++) copyAsync(ring[p][tp * 4 + vp], x[i][p][tp * 4 + vp]);
      // A group for every tile, empty past the last, so that a wait for all but the latest
      // RING - 1 groups is always a wait for this tile.
      commitAsync();
    }
    for (let c = 0; c < tiles; c++) {
      waitAsync(RING - 1);
      for (let t1 = 0; t1 < 32; t1++) for (let v1 = 0; v1 < 4; v1++) part[t1] += ring[c % RING][t1 + 32 * v1];
      if (c + RING < tiles)
        for (let t2 = 0; t2 < 32; t2++)
          for (let v2 = 0; v2 < 4; v2++) copyAsync(ring[c % RING][t2 * 4 + v2], x[i][c + RING][t2 * 4 + v2]);
      commitAsync();
    }
    let s = f32(0);
    for (let t3 = 0; t3 < 32; t3++) s += part[t3];
    y[i] = s;
  }
});
