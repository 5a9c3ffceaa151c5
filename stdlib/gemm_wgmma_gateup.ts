/**
 * The prefill's gate/up GEMM on Hopper's warpgroup instruction (gemm_wgmma.ts's q4WgmmaBlock, its
 * rows PAIRED): out = SiLU(x Wg^T) * (x Wu^T), with SwiGLU in the epilogue, and the same cut in two
 * (llama/op-choices.ts's prefillGateUpWave): the outputs of whole waves of blocks, then the rest with K
 * split so that they fit in one wave, their f32 sums added and SwiGLU applied by
 * gateUpSiluSplitReduce.
 */
import { kernel, f16, f32, idiv, local, min, select, type Tensor, type Sym, type u32 } from "../dsl/index.ts";
import { silu } from "./elementwise.ts";
import { LANES, TILES, WARPS, WGMMA_BT, WGMMA_BW, q4WgmmaBlock, tokenOf, wholeTile } from "./gemm_wgmma.ts";

/**
 * q4GateUpSiluGemmWgmma computes the outputs before OUT_TO (withConsts; 0: all of them);
 * q4GateUpSplitKGemmWgmma and gateUpSiluSplitReduce those from OUT_FROM on. llama/ops.ts's
 * prefillGateUpWave cuts gate/up so: whole waves of blocks, then the rest with K split.
 */
const OUT_TO: number = 0;
const OUT_FROM: number = 0;

/**
 * out = SiLU(x Wg^T) * (x Wu^T), W = [Wg; Wu] ([2 I, K], as q4GateUpSiluGemmMma: each product
 * rounded to f16 first, the same values): each warp's rows l >> 2 are gate rows and rows
 * l >> 2 + 8 the same outputs' up rows (I further); a block computes WGMMA_BW / 2 outputs.
 */
export const q4GateUpSiluGemmWgmma = kernel(
  function q4GateUpSiluGemmWgmma(
    x: Tensor<f16, [Sym<"m">, Sym<"k">]>,
    packed: Tensor<u32, [Sym<"n2">, Sym<"kw">]>,
    scales: Tensor<f16, [Sym<"n2">, Sym<"kg">]>,
    out: Tensor<f16, [Sym<"m">, Sym<"i">]>,
  ) {
    const M = out.shape[0];
    const I = out.shape[1];
    const blocks = idiv(I + WGMMA_BW / 2 - 1, WGMMA_BW / 2);
    // This launch's outputs: those before OUT_TO where it is set.
    const end = select(OUT_TO > 0, min(OUT_TO, I), I);
    for (let bm = 0; bm < idiv(M + WGMMA_BT - 1, WGMMA_BT); bm++) {
      for (let bn = 0; bn < idiv(end + WGMMA_BW / 2 - 1, WGMMA_BW / 2); bn++) {
        const acc = local("f32", [WARPS, LANES, TILES, 4]);
        q4WgmmaBlock(x, packed, scales, bm, bn, I, blocks, 0, 1, acc);
        if (wholeTile(bm, M, bn * (WGMMA_BW / 2) + WGMMA_BW / 2, end)) {
          for (let wu = 0; wu < WARPS; wu++)
            for (let lu = 0; lu < LANES; lu++)
              for (let nu = 0; nu < TILES; nu++)
                for (let ru = 0; ru < 2; ru++) {
                  const gate = f32(f16(acc[wu][lu][nu][ru]));
                  const up = f32(f16(acc[wu][lu][nu][ru + 2]));
                  out[tokenOf(bm, nu, lu, ru)][bn * (WGMMA_BW / 2) + wu * 8 + (lu >> 2)] = f16(
                    silu(gate) * up,
                  );
                }
        } else {
          for (let wy = 0; wy < WARPS; wy++)
            for (let ly = 0; ly < LANES; ly++)
              for (let ny = 0; ny < TILES; ny++)
                for (let ry = 0; ry < 2; ry++) {
                  const token = tokenOf(bm, ny, ly, ry);
                  const col = bn * (WGMMA_BW / 2) + wy * 8 + (ly >> 2);
                  const gate = f32(f16(acc[wy][ly][ny][ry]));
                  const up = f32(f16(acc[wy][ly][ny][ry + 2]));
                  if (token < M && col < end)
                    out[tokenOf(bm, ny, ly, ry)][bn * (WGMMA_BW / 2) + wy * 8 + (ly >> 2)] = f16(
                      silu(gate) * up,
                    );
                }
        }
      }
    }
  },
  { consts: { PAIRED: 1 } },
);

/**
 * Split K for q4GateUpSiluGemmWgmma's outputs from OUT_FROM on (the last wave's worth of a
 * prefill, llama/op-choices.ts's prefillGateUpWave): block (bm, bn) takes split bn % S of the K stages
 * for the outputs of block OUT_FROM / 64 + bn / S and stores its f32 sums, not yet rounded, in
 * partial[split][0 gate, 1 up][token][output - OUT_FROM]; gateUpSiluSplitReduce adds the S splits
 * and applies SwiGLU. A block's time goes with its stages, not its outputs (each stage waits on
 * its loads), so S splits of a block take about 1 / S of its time.
 */
export const q4GateUpSplitKGemmWgmma = kernel(
  function q4GateUpSplitKGemmWgmma(
    x: Tensor<f16, [Sym<"m">, Sym<"k">]>,
    packed: Tensor<u32, [Sym<"n2">, Sym<"kw">]>,
    scales: Tensor<f16, [Sym<"n2">, Sym<"kg">]>,
    partial: Tensor<f32, [Sym<"s">, 2, Sym<"m">, Sym<"p">]>,
  ) {
    const M = x.shape[0];
    const I = idiv(packed.shape[0], 2);
    const S = partial.shape[0];
    const P = partial.shape[3];
    const blocks = idiv(I + WGMMA_BW / 2 - 1, WGMMA_BW / 2);
    for (let bm = 0; bm < idiv(M + WGMMA_BT - 1, WGMMA_BT); bm++) {
      for (let bn = 0; bn < idiv(P + WGMMA_BW / 2 - 1, WGMMA_BW / 2) * S; bn++) {
        const acc = local("f32", [WARPS, LANES, TILES, 4]);
        q4WgmmaBlock(
          x,
          packed,
          scales,
          bm,
          idiv(OUT_FROM, WGMMA_BW / 2) + idiv(bn, S),
          I,
          blocks,
          bn % S,
          S,
          acc,
        );
        for (let wy = 0; wy < WARPS; wy++)
          for (let ly = 0; ly < LANES; ly++)
            for (let ny = 0; ny < TILES; ny++)
              for (let ry = 0; ry < 2; ry++) {
                const token = tokenOf(bm, ny, ly, ry);
                const j = idiv(bn, S) * (WGMMA_BW / 2) + wy * 8 + (ly >> 2);
                if (token < M && j < P) {
                  partial[bn % S][0][tokenOf(bm, ny, ly, ry)][
                    idiv(bn, S) * (WGMMA_BW / 2) + wy * 8 + (ly >> 2)
                  ] = acc[wy][ly][ny][ry];
                  partial[bn % S][1][tokenOf(bm, ny, ly, ry)][
                    idiv(bn, S) * (WGMMA_BW / 2) + wy * 8 + (ly >> 2)
                  ] = acc[wy][ly][ny][ry + 2];
                }
              }
      }
    }
  },
  { consts: { PAIRED: 1 } },
);

/**
 * out[t][OUT_FROM + j] = SiLU(gate) * up, gate and up the sums of q4GateUpSplitKGemmWgmma's S
 * splits, each rounded to f16 first (as q4GateUpSiluGemmWgmma rounds its products).
 */
export const gateUpSiluSplitReduce = kernel(function gateUpSiluSplitReduce(
  partial: Tensor<f32, [Sym<"s">, 2, Sym<"m">, Sym<"p">]>,
  out: Tensor<f16, [Sym<"m">, Sym<"i">]>,
) {
  for (let t = 0; t < partial.shape[2]; t++) {
    for (let j = 0; j < partial.shape[3]; j++) {
      let gate = f32(0);
      let up = f32(0);
      for (let s = 0; s < partial.shape[0]; s++) {
        gate += partial[s][0][t][j];
        up += partial[s][1][t][j];
      }
      out[t][OUT_FROM + j] = f16(silu(f32(f16(gate))) * f32(f16(up)));
    }
  }
});
