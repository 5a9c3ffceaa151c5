/**
 * Causal prefill attention on tensor cores (flash attention, FlashAttention-2's split of the
 * work): a block per head and PREFILL_MMA_ROWS (128) query rows, eight warps of 16 rows each;
 * the block walks the positions in chunks of PREFILL_MMA_KEYS (64), and each warp computes its
 * rows' scores S = Q K^T and its output O += P V with mma.m16n8k16 (16 x 8 x 16 nests written in
 * the instruction's accumulator layout, tensorized by the GPU schedule, as in gemm_mma.ts).
 *
 * Per chunk: the block stages the chunk's keys (K [position][channel]) and values transposed
 * (V^T [channel][position], so that both products read their B operand as [n][k]) in shared
 * memory. The softmax stays in registers, as FlashAttention-2's: each lane scales and masks its
 * score fields (positions past a row's own weigh exactly 0), the four lanes holding a row meet
 * their partial maxima in warp-private shared slots, and each lane forms its probabilities
 * P = exp2(S - max) rounded to f16 directly as the A fragments of P V (two 16 x 8 score tiles'
 * accumulator layout is one 16 x 16 step's A layout) and adds the rounded values to its share of
 * the row's sum (so the output is exactly the weighted mean that the products form; the shares
 * meet at the end). The outputs and sums are rescaled by exp2(old max - new max) before the
 * chunk's products are added. Q's fragments stay in registers for the whole walk, and the next
 * chunk's keys and values are loaded into registers before this chunk's products (software
 * pipelining, as q4GemmMma does).
 *
 * On an H100 at Llama-2-7B's 512-token prefill (32 heads of 128) this took 34 µs a layer against
 * 42 µs for the previous design (scores and probabilities through shared memory, 64 rows and 32
 * positions a block), and 37 µs with the new softmax at 64 rows and 32 positions
 * (bench/results/prefill-attention-ab-h100.json); PyTorch's FlashAttention-2 took 26 µs.
 *
 * Rows past N repeat the last row (not stored); every position read is clamped to the block's
 * last, so every access stays in bounds. Arithmetic is attentionPrefill's but for the f16
 * rounding of the probabilities (as FlashAttention's) and the grouping of f32 sums; results agree
 * to about 1e-3. Head dimensions: multiples of 16, at most PREFILL_MMA_MAX_D (128). On the CPU,
 * without a schedule, the nests are plain loops; with its schedule it needs NVIDIA sm_80 or later.
 */
import {
  kernel,
  exp2,
  f16,
  f32,
  idiv,
  local,
  max,
  min,
  packF16x2,
  rsqrt,
  select,
  shared,
  unpackF16x2,
  type i32,
  type Tensor,
  type Sym,
} from "../dsl/index.ts";
import * as L from "./mma_layout.ts";

/** Warps per block, 16 query rows each. */
export const PREFILL_MMA_WARPS = 8;
/** Query rows per block. */
export const PREFILL_MMA_ROWS = 16 * PREFILL_MMA_WARPS;
/** Positions per chunk (eight 16 x 8 score tiles a warp, four K steps of P V). */
export const PREFILL_MMA_KEYS = 64;
/** The largest head dimension: Q's fragments (d / 4 registers) and the output's (d / 2) per lane. */
export const PREFILL_MMA_MAX_D = 128;

const W = PREFILL_MMA_WARPS;
const ROWS = PREFILL_MMA_ROWS;
const KEYS = PREFILL_MMA_KEYS;
const MAX_D = PREFILL_MMA_MAX_D;
const LANES = 32;
const THREADS = W * LANES;
/** 16-byte pieces (8 channels) of the staged keys or values each thread copies per chunk, at most. */
const COPIES = (KEYS * MAX_D) / 8 / THREADS;

/** Whether attentionPrefillMma takes a head dimension. */
export const prefillMmaFits = (headDim: number): boolean => headDim % 16 === 0 && headDim <= MAX_D;

/**
 * N query tokens at positions start..start+N-1, each attending to positions 0..its own (their keys
 * and values appended to the cache first). q, out f16 [N, H, D]; kCache, vCache f16 [maxLen, kvH, D].
 */
export const attentionPrefillMma = kernel(function attentionPrefillMma(
  q: Tensor<f16, [Sym<"n">, Sym<"h">, Sym<"d">]>,
  kCache: Tensor<f16, [Sym<"ctx">, Sym<"kvh">, Sym<"d">]>,
  vCache: Tensor<f16, [Sym<"ctx">, Sym<"kvh">, Sym<"d">]>,
  start: i32,
  out: Tensor<f16, [Sym<"n">, Sym<"h">, Sym<"d">]>,
) {
  const N = q.shape[0];
  const d = q.shape[2];
  const kSteps = idiv(d, 16);
  const dTiles = idiv(d, 8);
  const pieces = idiv(d, 8);
  const group = idiv(q.shape[1], kCache.shape[1]);
  // 1 / sqrt(d), times log2(e): the scores in base 2, for exp2.
  const scale2 = rsqrt(f32(d)) * f32(1.4426950408889634);
  for (let nb = 0; nb < idiv(N + ROWS - 1, ROWS); nb++) {
    for (let h = 0; h < q.shape[1]; h++) {
      // The last rows first: they walk the most positions, so the grid's tail is short.
      const r0 = (idiv(N + ROWS - 1, ROWS) - 1 - nb) * ROWS;
      const kvh = idiv(h, group);
      // Positions up to the block's last row: the same for every thread of the block.
      const seen = start + min(r0 + ROWS, N);
      const rounds = idiv(seen + KEYS - 1, KEYS);
      const ks = shared("f16", [KEYS, MAX_D]);
      const vt = shared("f16", [MAX_D, KEYS]);
      // A row's 16 score fields lie across the 4 lanes of a quad: their partial maxima (each
      // chunk) and sums (at the end) meet in these warp-private slots [warp][row][quad lane].
      const quadMax = shared("f32", [W, 16, 4]);
      const quadSum = shared("f32", [W, 16, 4]);
      // Per lane: Q's A fragments, the output's and the chunk's score accumulators, P's A
      // fragments, and for each of its two rows (lane >> 2 and 8 more) the running max, the
      // lane's share of the running sum, this chunk's rescale and its partial max.
      const qf = local("u32", [W, MAX_D / 16, LANES, 4]);
      const oacc = local("f32", [W, LANES, MAX_D / 8, 4]);
      const sacc = local("f32", [W, LANES, KEYS / 8, 4]);
      const pf = local("u32", [W, KEYS / 16, LANES, 4]);
      const mrun = local("f32", [W, LANES, 2]);
      const lrun = local("f32", [W, LANES, 2]);
      const alpha = local("f32", [W, LANES, 2]);
      const mpart = local("f32", [W, LANES, 2]);
      const kr = local("f16", [W, LANES, COPIES, 8]);
      const vr = local("f16", [W, LANES, COPIES, 8]);
      for (let wq = 0; wq < W; wq++) {
        for (let lq = 0; lq < LANES; lq++) {
          for (let kq = 0; kq < kSteps; kq++) {
            for (let jq = 0; jq < 4; jq++) {
              const row = min(r0 + wq * 16 + L.mmaARow(lq, jq), N - 1);
              const k0 = kq * 16 + L.mmaAK(lq, jq, 0);
              qf[wq][kq][lq][jq] = packF16x2(q[row][h][k0], q[row][h][k0 + 1]);
            }
          }
          for (let nz = 0; nz < dTiles; nz++) for (let rz = 0; rz < 4; rz++) oacc[wq][lq][nz][rz] = f32(0);
          for (let hz = 0; hz < 2; hz++) {
            mrun[wq][lq][hz] = f32(-Infinity);
            lrun[wq][lq][hz] = f32(0);
          }
        }
      }
      // Chunk c - 1's products while chunk c's keys and values load into registers (software
      // pipelining: the loads' latency hides behind the tensor-core work; the last round reloads
      // the last chunk).
      for (let c = 0; c < rounds + 1; c++) {
        if (c > 0) {
          // Chunk c - 1's keys to shared memory (a warp's copies are whole rows) and its values
          // transposed (a warp's lanes are consecutive positions of one channel run).
          for (let wk = 0; wk < W; wk++) {
            for (let lk = 0; lk < LANES; lk++) {
              for (let sk = 0; sk < COPIES; sk++) {
                const e = sk * THREADS + wk * LANES + lk;
                if (e < KEYS * pieces)
                  for (let vs = 0; vs < 8; vs++)
                    ks[idiv(e, pieces)][(e % pieces) * 8 + vs] = kr[wk][lk][sk][vs];
              }
              for (let st = 0; st < COPIES; st++) {
                const e = st * THREADS + wk * LANES + lk;
                if (e < KEYS * pieces)
                  for (let vt2 = 0; vt2 < 8; vt2++)
                    vt[idiv(e, KEYS) * 8 + vt2][e % KEYS] = vr[wk][lk][st][vt2];
              }
            }
          }
        }
        // Chunk c's keys and values into registers, 16 bytes a load (reads past the head
        // dimension's pieces are clamped in bounds and not stored).
        const cl = min(c, rounds - 1) * KEYS;
        for (let wg = 0; wg < W; wg++) {
          for (let lg = 0; lg < LANES; lg++) {
            for (let sg = 0; sg < COPIES; sg++) {
              const e = sg * THREADS + wg * LANES + lg;
              for (let vk = 0; vk < 8; vk++)
                kr[wg][lg][sg][vk] =
                  kCache[min(cl + idiv(e, pieces), seen - 1)][kvh][min(e % pieces, pieces - 1) * 8 + vk];
            }
            for (let sv = 0; sv < COPIES; sv++) {
              const e = sv * THREADS + wg * LANES + lg;
              for (let vv = 0; vv < 8; vv++)
                vr[wg][lg][sv][vv] =
                  vCache[min(cl + (e % KEYS), seen - 1)][kvh][min(idiv(e, KEYS), pieces - 1) * 8 + vv];
            }
          }
        }
        if (c > 0) {
          const c0 = (c - 1) * KEYS;
          // S = Q K^T for the warp's 16 rows and the chunk's positions, scaled (log2 e folded in,
          // for exp2) and masked past each row's own position; each lane's maximum over its
          // fields of each of its two rows goes to the quad's slots (a row lies across 4 lanes).
          for (let wm = 0; wm < W; wm++) {
            for (let lm = 0; lm < LANES; lm++) {
              for (let nm = 0; nm < KEYS / 8; nm++)
                for (let rs = 0; rs < 4; rs++) sacc[wm][lm][nm][rs] = f32(0);
              for (let km = 0; km < kSteps; km++) {
                for (let ns = 0; ns < KEYS / 8; ns++) {
                  for (let rm = 0; rm < 4; rm++) {
                    for (let kkm = 0; kkm < 16; kkm++) {
                      sacc[wm][lm][ns][rm] +=
                        f32(
                          unpackF16x2(
                            qf[wm][km][L.mmaALane(L.mmaCRow(lm, rm), kkm)][L.mmaAReg(L.mmaCRow(lm, rm), kkm)],
                            kkm & 1,
                          ),
                        ) * f32(ks[ns * 8 + L.mmaCCol(lm, rm)][km * 16 + kkm]);
                    }
                  }
                }
              }
              for (let hm = 0; hm < 2; hm++) mpart[wm][lm][hm] = f32(-Infinity);
              for (let ne = 0; ne < KEYS / 8; ne++) {
                for (let re = 0; re < 4; re++) {
                  const row = wm * 16 + L.mmaCRow(lm, re);
                  const col = ne * 8 + L.mmaCCol(lm, re);
                  const v = select(
                    c0 + col <= start + min(r0 + row, N - 1),
                    sacc[wm][lm][ne][re] * scale2,
                    f32(-Infinity),
                  );
                  sacc[wm][lm][ne][re] = v;
                  mpart[wm][lm][re >> 1] = max(mpart[wm][lm][re >> 1], v);
                }
              }
              for (let hq = 0; hq < 2; hq++) quadMax[wm][(lm >> 2) + 8 * hq][lm & 3] = mpart[wm][lm][hq];
            }
          }
          // Each row's new running max from its quad's four slots; the probabilities
          // P = exp2(S - max) rounded to f16 straight into the lane's A fragments of P V (the
          // accumulator layout of two 16 x 8 score tiles is the A layout of one 16 x 16 step);
          // each lane sums its own rounded values (the quad's partial sums meet at the end), and
          // the sums and outputs so far are rescaled by exp2(old max - new max).
          for (let wy = 0; wy < W; wy++) {
            for (let ly = 0; ly < LANES; ly++) {
              for (let hy = 0; hy < 2; hy++) {
                const row = (ly >> 2) + 8 * hy;
                // Every row sees position 0 in the first chunk, so the running max is finite from then on.
                const mNew = max(
                  mrun[wy][ly][hy],
                  max(
                    max(quadMax[wy][row][0], quadMax[wy][row][1]),
                    max(quadMax[wy][row][2], quadMax[wy][row][3]),
                  ),
                );
                alpha[wy][ly][hy] = exp2(mrun[wy][ly][hy] - mNew);
                mrun[wy][ly][hy] = mNew;
                lrun[wy][ly][hy] *= alpha[wy][ly][hy];
              }
              for (let kp = 0; kp < KEYS / 16; kp++) {
                for (let jp = 0; jp < 4; jp++) {
                  // A register jp of step kp: row half jp & 1, score tile 2 kp + (jp >> 1).
                  const p0 = f16(exp2(sacc[wy][ly][2 * kp + (jp >> 1)][2 * (jp & 1)] - mrun[wy][ly][jp & 1]));
                  const p1 = f16(
                    exp2(sacc[wy][ly][2 * kp + (jp >> 1)][2 * (jp & 1) + 1] - mrun[wy][ly][jp & 1]),
                  );
                  pf[wy][kp][ly][jp] = packF16x2(p0, p1);
                  lrun[wy][ly][jp & 1] += f32(p0) + f32(p1);
                }
              }
              for (let na = 0; na < dTiles; na++)
                for (let ra = 0; ra < 4; ra++) oacc[wy][ly][na][ra] *= alpha[wy][ly][ra >> 1];
            }
          }
          // O += P V.
          for (let wv = 0; wv < W; wv++) {
            for (let lv = 0; lv < LANES; lv++) {
              for (let kv = 0; kv < KEYS / 16; kv++) {
                for (let nv = 0; nv < dTiles; nv++) {
                  for (let rv = 0; rv < 4; rv++) {
                    for (let kkv = 0; kkv < 16; kkv++) {
                      oacc[wv][lv][nv][rv] +=
                        f32(
                          unpackF16x2(
                            pf[wv][kv][L.mmaALane(L.mmaCRow(lv, rv), kkv)][L.mmaAReg(L.mmaCRow(lv, rv), kkv)],
                            kkv & 1,
                          ),
                        ) * f32(vt[nv * 8 + L.mmaCCol(lv, rv)][kv * 16 + kkv]);
                    }
                  }
                }
              }
            }
          }
        }
      }
      // Each row's sum: its quad's four partial sums.
      for (let wl = 0; wl < W; wl++)
        for (let ll = 0; ll < LANES; ll++)
          for (let hl = 0; hl < 2; hl++) quadSum[wl][(ll >> 2) + 8 * hl][ll & 3] = lrun[wl][ll][hl];
      for (let wo = 0; wo < W; wo++) {
        for (let lo = 0; lo < LANES; lo++) {
          for (let no = 0; no < dTiles; no++) {
            for (let ro = 0; ro < 4; ro++) {
              const row = L.mmaCRow(lo, ro);
              const sum =
                quadSum[wo][row][0] + quadSum[wo][row][1] + (quadSum[wo][row][2] + quadSum[wo][row][3]);
              if (r0 + wo * 16 + row < N)
                out[r0 + wo * 16 + row][h][no * 8 + L.mmaCCol(lo, ro)] = f16(oacc[wo][lo][no][ro] / sum);
            }
          }
        }
      }
    }
  }
});
