/**
 * Rotary position embedding (RoPE) of queries or keys x [T, H, D]: token t sits at position
 * `offset + t`, and pair i of each head (i < D/2) turns by the angle pos * theta^(-2i/D).
 *
 * Two layouts, one kernel each (they differ only in which elements form pair i):
 * - ropeInterleaved: pairs (2i, 2i+1), Meta's original layout and llama2.c checkpoints;
 * - ropeHalf: pairs (i, i + D/2), Hugging Face checkpoints (their conversion permutes wq and wk).
 *
 * cos and sin are computed in f32 from the f32 frequency 1 / theta^(2i/D) and the f32 angle, as
 * Hugging Face's rotary embedding does; the rotation is f32, each output rounded to f16 once.
 * Positions are exact in f32 up to 2^24. y may alias x (each pair is read before it is written).
 */
import { kernel, cos, f16, f32, idiv, pow, sin, type i32, type Tensor, type Sym } from "../dsl/index.ts";
import { ELEMENTWISE_DEFAULTS, type ElementwiseParams, type PerTarget } from "./params.ts";

/** theta^(-2i/D) * pos in f32: the angle of pair i at position pos. */
export function ropeAngle(pos: i32, i: i32, headDim: i32, theta: f32): f32 {
  return f32(pos) * (1 / pow(theta, f32(2 * i) / f32(headDim)));
}

/** Pairs (2i, 2i+1). x, y f16 [T, H, D] with D even; offset i32 (position of token 0); theta f32. */
export const ropeInterleaved = kernel(function ropeInterleaved(
  x: Tensor<f16, [Sym<"t">, Sym<"h">, Sym<"d">]>,
  y: Tensor<f16, [Sym<"t">, Sym<"h">, Sym<"d">]>,
  offset: i32,
  theta: f32,
) {
  const d = x.shape[2];
  for (let t = 0; t < x.shape[0]; t++) {
    for (let h = 0; h < x.shape[1]; h++) {
      for (let i = 0; i < idiv(d, 2); i++) {
        const angle = ropeAngle(offset + t, i, d, theta);
        const c = cos(angle);
        const s = sin(angle);
        const a = f32(x[t][h][2 * i]);
        const b = f32(x[t][h][2 * i + 1]);
        y[t][h][2 * i] = f16(a * c - b * s);
        y[t][h][2 * i + 1] = f16(a * s + b * c);
      }
    }
  }
});

/** Pairs (i, i + D/2). x, y f16 [T, H, D] with D even; offset i32 (position of token 0); theta f32. */
export const ropeHalf = kernel(function ropeHalf(
  x: Tensor<f16, [Sym<"t">, Sym<"h">, Sym<"d">]>,
  y: Tensor<f16, [Sym<"t">, Sym<"h">, Sym<"d">]>,
  offset: i32,
  theta: f32,
) {
  const d = x.shape[2];
  const half = idiv(d, 2);
  for (let t = 0; t < x.shape[0]; t++) {
    for (let h = 0; h < x.shape[1]; h++) {
      for (let i = 0; i < half; i++) {
        const angle = ropeAngle(offset + t, i, d, theta);
        const c = cos(angle);
        const s = sin(angle);
        const a = f32(x[t][h][i]);
        const b = f32(x[t][h][i + half]);
        y[t][h][i] = f16(a * c - b * s);
        y[t][h][i + half] = f16(a * s + b * c);
      }
    }
  }
});

/**
 * One decode token's rotary embedding and KV-cache append in one launch (as ropeHalf on its q and
 * k heads, then kvAppend at pos, computing the same values): qk f16 [H + kvH, D] holds the q heads
 * then the k heads (the fused QKV projection's layout); rotated q heads go to qr [H, D], rotated k
 * heads and the v heads to the caches' row pos.
 */
export const ropeHalfAppend = kernel(function ropeHalfAppend(
  qk: Tensor<f16, [Sym<"hqk">, Sym<"d">]>,
  v: Tensor<f16, [Sym<"kvh">, Sym<"d">]>,
  qr: Tensor<f16, [Sym<"h">, Sym<"d">]>,
  kCache: Tensor<f16, [Sym<"ctx">, Sym<"kvh">, Sym<"d">]>,
  vCache: Tensor<f16, [Sym<"ctx">, Sym<"kvh">, Sym<"d">]>,
  pos: i32,
  theta: f32,
) {
  const d = qk.shape[1];
  const half = idiv(d, 2);
  const heads = qr.shape[0];
  for (let hh = 0; hh < qk.shape[0]; hh++) {
    for (let i = 0; i < half; i++) {
      const angle = ropeAngle(pos, i, d, theta);
      const c = cos(angle);
      const s = sin(angle);
      const a = f32(qk[hh][i]);
      const b = f32(qk[hh][i + half]);
      const y0 = f16(a * c - b * s);
      const y1 = f16(a * s + b * c);
      if (hh < heads) {
        qr[hh][i] = y0;
        qr[hh][i + half] = y1;
      } else {
        kCache[pos][hh - heads][i] = y0;
        kCache[pos][hh - heads][i + half] = y1;
        vCache[pos][hh - heads][i] = v[hh - heads][i];
        vCache[pos][hh - heads][i + half] = v[hh - heads][i + half];
      }
    }
  }
});

/** As ropeHalfAppend for pairs (2i, 2i+1) (ropeInterleaved, then kvAppend). */
export const ropeInterleavedAppend = kernel(function ropeInterleavedAppend(
  qk: Tensor<f16, [Sym<"hqk">, Sym<"d">]>,
  v: Tensor<f16, [Sym<"kvh">, Sym<"d">]>,
  qr: Tensor<f16, [Sym<"h">, Sym<"d">]>,
  kCache: Tensor<f16, [Sym<"ctx">, Sym<"kvh">, Sym<"d">]>,
  vCache: Tensor<f16, [Sym<"ctx">, Sym<"kvh">, Sym<"d">]>,
  pos: i32,
  theta: f32,
) {
  const d = qk.shape[1];
  const heads = qr.shape[0];
  for (let hh = 0; hh < qk.shape[0]; hh++) {
    for (let i = 0; i < idiv(d, 2); i++) {
      const angle = ropeAngle(pos, i, d, theta);
      const c = cos(angle);
      const s = sin(angle);
      const a = f32(qk[hh][2 * i]);
      const b = f32(qk[hh][2 * i + 1]);
      const y0 = f16(a * c - b * s);
      const y1 = f16(a * s + b * c);
      if (hh < heads) {
        qr[hh][2 * i] = y0;
        qr[hh][2 * i + 1] = y1;
      } else {
        kCache[pos][hh - heads][2 * i] = y0;
        kCache[pos][hh - heads][2 * i + 1] = y1;
        vCache[pos][hh - heads][2 * i] = v[hh - heads][2 * i];
        vCache[pos][hh - heads][2 * i + 1] = v[hh - heads][2 * i + 1];
      }
    }
  }
});

// Seeds for tuning (see params.ts); the schedule applied today is in stdlib/gpu/schedules.ts.
export const ropeParams: PerTarget<ElementwiseParams> = ELEMENTWISE_DEFAULTS;
export const ropeHalfAppendParams = ropeParams;
export const ropeInterleavedAppendParams = ropeParams;
