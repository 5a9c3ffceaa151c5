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
function ropeAngle(pos: i32, i: i32, headDim: i32, theta: f32): f32 {
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

// Seeds for tuning (see params.ts); the schedule applied today is in stdlib/gpu/schedules.ts.
export const ropeParams: PerTarget<ElementwiseParams> = ELEMENTWISE_DEFAULTS;
