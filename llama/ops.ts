/**
 * Every compiled operation a Llama needs, for a config and a weight format: what `tkc compile`
 * builds ahead of time and what the model asks its device for. Decode operations are specialised
 * to one token; prefill operations keep the token count symbolic.
 */
import { withConsts, type KernelDef } from "../dsl/kernel.ts";
import * as S from "../stdlib/index.ts";
import { mmaGemvKernel } from "../stdlib/gpu/gemv.ts";
import { headDim, kvDim, type LlamaConfig } from "./config.ts";
import type { OpSpec, ScheduleFn } from "./device/types.ts";
import type { OpChoices } from "./op-choices.ts";
import { DEPENDENTS_LAUNCH_POINTS } from "../lower/passes/launch.ts";

export type WeightFormat = "f32" | "f16" | "q4f16_1";

/** Schedules by kernel name; supplied per target by stdlib's GPU schedules. */
export type ScheduleTable = Readonly<Record<string, ScheduleFn>>;

export interface LlamaOps {
  readonly format: WeightFormat;
  readonly decode: Readonly<Record<string, OpSpec>>;
  readonly prefill: Readonly<Record<string, OpSpec>>;
}

/** Outputs a block of two warpgroups of q4GateUpSiluGemmWgmma computes (WGMMA_BW / 2). */
const GATE_UP_BLOCK_OUTPUTS = 64;
/** Blocks of 128 tokens in a full prefill chunk (KernelLlama's default prefillChunk, 512). */
const CHUNK_TOKEN_BLOCKS = 4;

/**
 * How prefillGateUpWave cuts gate/up: the outputs of the first launch (the most whole blocks,
 * fewer than all, whose launch at a full chunk fills whole waves of `wave` blocks) and the splits
 * of K for the rest (as many as fit the rest's blocks in one wave, at most 8); none (0 outputs)
 * where no such cut exists or the rest would not split.
 */
export function gateUpCut(hidden: number, wave: number | undefined): { outputs: number; splits: number } {
  const none = { outputs: 0, splits: 1 };
  if (wave === undefined) return none;
  if (!Number.isInteger(wave) || wave < 1)
    throw new Error(`tkc: prefillGateUpWave must be a positive whole number of blocks, got ${wave}`);
  const blocks = Math.ceil(hidden / GATE_UP_BLOCK_OUTPUTS);
  if ((blocks * CHUNK_TOKEN_BLOCKS) % wave === 0) return none;
  for (let main = blocks - 1; main > 0; main--)
    if ((main * CHUNK_TOKEN_BLOCKS) % wave === 0) {
      const splits = Math.min(8, Math.floor(wave / ((blocks - main) * CHUNK_TOKEN_BLOCKS)));
      return splits > 1 ? { outputs: main * GATE_UP_BLOCK_OUTPUTS, splits } : none;
    }
  return none;
}

export function llamaOps(
  c: LlamaConfig,
  format: WeightFormat,
  schedules: ScheduleTable = {},
  choices: OpChoices = {},
): LlamaOps {
  const dim = c.dim;
  const hd = headDim(c);
  const kvd = kvDim(c);
  const hidden = c.hiddenDim;
  const ctx = c.contextLength;
  // Tensor cores take f16 operands: f32 weights keep the tiled kernels; f16GemmMma copies K in
  // runs of 8 (q4f16_1's K is a multiple of 32 already).
  const mma =
    (choices.prefillGemm === "mma" || choices.prefillGemm === "wgmma") &&
    format !== "f32" &&
    (format !== "f16" || (dim % 8 === 0 && hidden % 8 === 0));
  // Hopper's warpgroup kernels exist for q4f16_1 (stdlib/gemm_wgmma.ts).
  const wgmma = mma && choices.prefillGemm === "wgmma" && format === "q4f16_1";
  const warpsFit = hd % 32 === 0 && hd <= 256;
  const decodeWarps = choices.decodeAttention === "warps" && warpsFit;
  const splitLast = choices.decodeAttention === "splitLast";
  const attentionWarps = choices.decodeAttentionWarps;
  if (
    attentionWarps !== undefined &&
    !(Number.isInteger(attentionWarps) && attentionWarps >= 1 && attentionWarps <= 32)
  )
    throw new Error(
      `tkc: decodeAttentionWarps must be a whole number of warps from 1 to 32, got ${attentionWarps}`,
    );
  const splits = choices.decodeSplits ?? S.DECODE_SPLITS;
  if (!Number.isInteger(splits) || splits < 1)
    throw new Error(`tkc: decodeSplits must be a positive integer, got ${splits}`);
  const ahead = choices.prefillWeightsAhead ?? 0;
  if (!Number.isInteger(ahead) || ahead < 0)
    throw new Error(`tkc: prefillWeightsAhead must be a whole number of K stages (0: none), got ${ahead}`);
  const wideFrom = choices.prefillWideStagesFromK ?? 0;
  if (!Number.isInteger(wideFrom) || wideFrom < 0)
    throw new Error(`tkc: prefillWideStagesFromK must be a whole K (0: no GEMM), got ${wideFrom}`);
  // Tensor cores take f16 operands: f32 models keep attention by chunks.
  const prefillMma = choices.prefillAttention === "mma" && format !== "f32" && S.prefillMmaFits(hd);
  const prefillChunks =
    (choices.prefillAttention === "chunks" || choices.prefillAttention === "mma") && warpsFit;
  const prefillAttention = prefillMma
    ? S.attentionPrefillMma
    : prefillChunks
      ? S.attentionPrefillWarps
      : S.attentionPrefill;
  // The wgmma GEMMs over K, with the prefill's weight prefetch and wide stages where chosen.
  const wg = (k: KernelDef, K: number): KernelDef => {
    const consts = {
      ...(choices.prefetchPrefillWeights === true ? { PREFETCH: 1 } : {}),
      ...(ahead > 0 ? { PREFETCH_AHEAD: ahead } : {}),
      ...(wideFrom > 0 && K >= wideFrom ? { STAGE_GROUPS: 4 } : {}),
    };
    return Object.keys(consts).length > 0 ? withConsts(k, consts) : k;
  };
  const q4Gemm = (K: number) => (wgmma ? wg(S.q4GemmWgmma, K) : mma ? S.q4GemmMma : S.q4GemmTiled);
  const f16Gemm = mma ? S.f16GemmMma : S.f16GemmTiled;
  const retype = format === "f32" ? ({ from: "f16", to: "f32" } as const) : undefined;
  const tag = `${format}_${dim}x${hidden}_${c.nHeads}h${c.nKvHeads}kv_${c.vocabSize}v_${ctx}ctx`;
  const op = (
    role: string,
    kernel: KernelDef,
    specialize: Record<string, number>,
    extra: Partial<OpSpec> = {},
  ): OpSpec => ({
    key: `${role}_${tag}`,
    kernel,
    specialize,
    ...(retype && kernel !== S.q4Embedding ? { retype } : {}),
    ...(schedules[kernel.name] ? { schedule: schedules[kernel.name] } : {}),
    ...extra,
  });
  const q4 = (k: number, n: number) => ({ k, n, kw: k / 8, kg: k / 32 });
  const rope = c.ropeLayout === "half" ? S.ropeHalf : S.ropeInterleaved;
  const decode: Record<string, OpSpec> = {
    rmsNorm: op("rmsnorm1", S.rmsNorm, { m: 1, d: dim }),
    // Greedy decoding's choice on the device (f16 models' logits are f16).
    argmax: op(
      "argmax1",
      S.argmax,
      { m: 1, v: c.vocabSize },
      format === "f16" ? { retype: { from: "f32", to: "f16" } } : {},
    ),
    // ... and its bookkeeping, so that greedy steps run back to back.
    recordToken: op("recordtoken1", S.recordToken, { m: 1, ctx }),
    // q and k are adjacent in the fused qkv buffer: one launch rotates both and appends k and v
    // to the cache (RoPE then kvAppend, as prefill runs them, in one kernel).
    ropeAppend: op(
      "ropeappend1",
      c.ropeLayout === "half" ? S.ropeHalfAppend : S.ropeInterleavedAppend,
      { hqk: c.nHeads + c.nKvHeads, h: c.nHeads, kvh: c.nKvHeads, d: hd, ctx },
      { scalarsInMemory: ["pos"] },
    ),
    ...(decodeWarps
      ? {
          attention: op(
            "attnwarps1",
            attentionWarps === undefined
              ? S.attentionDecodeWarps
              : withConsts(S.attentionDecodeWarps, { DECODE_WARPS: attentionWarps }),
            { h: c.nHeads, d: hd, ctx, kvh: c.nKvHeads },
            { scalarsInMemory: ["len"] },
          ),
        }
      : splitLast
        ? {
            // Flash-decoding in one launch: the last block of each head combines its splits.
            attentionSplitLast: op(
              "attnsplitlast1",
              S.attentionDecodeSplitLast,
              { h: c.nHeads, d: hd, ctx, kvh: c.nKvHeads, splits },
              { scalarsInMemory: ["len"] },
            ),
          }
        : {
            // Flash-decoding: a block per (head, split of the positions), then the splits combined.
            attentionSplit: op(
              "attnsplit1",
              S.attentionDecodeSplit,
              { h: c.nHeads, d: hd, ctx, kvh: c.nKvHeads, splits },
              { scalarsInMemory: ["len"] },
            ),
            attentionCombine: op("attncombine1", S.attentionDecodeCombine, {
              h: c.nHeads,
              d: hd,
              splits,
            }),
          }),
  };
  const prefill: Record<string, OpSpec> = {
    rmsNorm: op("rmsnormT", S.rmsNorm, { d: dim }),
    ropeQ: op("ropeqT", rope, { h: c.nHeads, d: hd }),
    ropeK: op("ropekT", rope, { h: c.nKvHeads, d: hd }),
    kvAppend: op("kvappendT", S.kvAppend, { kvh: c.nKvHeads, d: hd, ctx }),
    attention: op("attnT", prefillAttention, {
      h: c.nHeads,
      d: hd,
      ctx,
      kvh: c.nKvHeads,
    }),
    residual: op("residualT", S.residualAdd, { d: dim }),
    siluMul: op("silumulT", S.siluMul, { d: hidden }),
  };
  if (format === "q4f16_1") {
    // On tensor cores where chosen and the shape tiles (stdlib/gpu/gemv.ts mmaGemvKernel).
    const prefetched = choices.prefetchDecodeWeights ?? false;
    const stages = choices.decodeGemvStages ?? 0;
    const mmaOf = (def: KernelDef, n: number, k: number, op: string) =>
      choices.decodeGemv === "mma"
        ? mmaGemvKernel(def, n, k, {
            prefetch: typeof prefetched === "boolean" ? prefetched : prefetched.includes(op),
            stages: typeof stages === "number" ? stages : (stages[op] ?? 0),
          })
        : undefined;
    const fold = choices.foldDecodeNorms ?? false;
    const qkvMma = mmaOf(fold ? S.q4GemvRmsMma : S.q4GemvMma, dim + 2 * kvd, dim, fold ? "qkv" : "qkvNormed");
    const oMma = mmaOf(S.q4GemvResidualMma, dim, dim, "oRes");
    const gateUpMma = mmaOf(
      fold ? S.q4GateUpSiluRmsMma : S.q4GateUpSiluMma,
      2 * hidden,
      dim,
      fold ? "gateUpRms" : "gateUp",
    );
    const downMma = mmaOf(S.q4GemvResidualMma, dim, hidden, "downRes");
    const lmHeadMma = mmaOf(S.q4GemvF32Mma, c.vocabSize, dim, "lmHead");
    const gateUpShape = { ...withN2(q4(dim, 2 * hidden)), i: hidden };
    const ropeFits = c.ropeLayout === "half" && hd % 32 === 0 && (choices.fuseDecodeRope ?? false);
    const qkvRopeDef = ropeFits
      ? mmaOf(
          fold ? S.q4QkvRopeAppendRmsMma : S.q4QkvRopeAppendMma,
          dim + 2 * kvd,
          dim,
          fold ? "qkvRopeRms" : "qkvRope",
        )
      : undefined;
    const qkvRope =
      qkvRopeDef && choices.prefetchDecodeKv === true
        ? withConsts(qkvRopeDef, { KV_PREFETCH: 1 })
        : qkvRopeDef;
    if (qkvRope) delete decode.ropeAppend;
    const qkvRopeSpec = (role: string) =>
      op(
        role,
        qkvRope!,
        { ...q4(dim, dim + 2 * kvd), h: c.nHeads, kvh: c.nKvHeads, d: hd, ctx },
        { scalarsInMemory: ["pos"] },
      );
    Object.assign(decode, {
      embed: op("embed1", S.q4Embedding, { t: 1, vocab: c.vocabSize, dw: dim / 8, dg: dim / 32, dim }),
      // Four rows per thread (q4_gemv_rows*.ts): x is loaded and converted once for four rows,
      // which relieves the L1 traffic that bounds the one-row kernels (Nsight Compute: 85% L1
      // throughput at 4096 x 11008 on an H100), measured 10-20% faster (bench/results/gemv-*.json);
      // each shape's threads per row are tuned (stdlib/gpu/tuned.ts). RMSNorm is folded into QKV.
      // On tensor cores (q4_gemv_mma.ts), QKV and gate/up follow their own norm launch
      // (qkvNormed, gateUp) unless folding is chosen (qkv, gateUpRms).
      ...(!qkvMma
        ? { qkv: op("qkv1", S.q4GemvRows4Rms, q4(dim, dim + 2 * kvd)) }
        : qkvRope
          ? // RoPE and the cache append in the epilogue, then the attention (after its own
            // rmsNorm launch where the norm is not folded).
            fold
            ? { qkvRopeRms: qkvRopeSpec("qkvropermsmma1") }
            : { qkvRope: qkvRopeSpec("qkvropemma1") }
          : fold
            ? { qkv: op("qkvrmsmma1", qkvMma, q4(dim, dim + 2 * kvd)) }
            : { qkvNormed: op("qkvmma1", qkvMma, q4(dim, dim + 2 * kvd)) }),
      oRes: oMma ? op("oresmma1", oMma, q4(dim, dim)) : op("ores1", S.q4GemvResidualRows4, q4(dim, dim)),
      ...(!gateUpMma
        ? choices.foldRowsGateUpNorm
          ? { gateUpRms: op("gateuprms1", S.q4GateUpSiluRms, gateUpShape) }
          : { gateUp: op("gateup1", S.q4GateUpSiluRows2, gateUpShape) }
        : fold
          ? { gateUpRms: op("gateuprmsmma1", gateUpMma, gateUpShape) }
          : { gateUp: op("gateupmma1", gateUpMma, gateUpShape) }),
      downRes: downMma
        ? op("downresmma1", downMma, q4(hidden, dim))
        : op(
            "downres1",
            choices.downRowsPerThread === 1 ? S.q4GemvResidual : S.q4GemvResidualRows4,
            q4(hidden, dim),
          ),
      // Four rows per thread needs a vocabulary that is a multiple of 4 (32000 is).
      lmHead: lmHeadMma
        ? op("lmheadmma1", lmHeadMma, q4(dim, c.vocabSize))
        : op("lmhead1", c.vocabSize % 4 === 0 ? S.q4GemvF32Rows4 : S.q4GemvF32, q4(dim, c.vocabSize)),
    });
    Object.assign(prefill, {
      embed: op("embedT", S.q4Embedding, { vocab: c.vocabSize, dw: dim / 8, dg: dim / 32, dim }),
      gemmQ: op("gemmqT", q4Gemm(dim), q4(dim, dim)),
      gemmKV: op("gemmkvT", q4Gemm(dim), q4(dim, kvd)),
      gemmO: op("gemmoT", q4Gemm(dim), q4(dim, dim)),
      gemmGateUp: op("gemmgateT", q4Gemm(dim), q4(dim, hidden)),
      gemmDown: op("gemmdownT", q4Gemm(hidden), q4(hidden, dim)),
    });
    if (mma && (choices.fusePrefillEpilogues ?? false)) {
      // Q, K and V in one launch; the O, gate/up and down products, residual adds and SwiGLU in
      // three instead of seven.
      for (const replaced of ["gemmQ", "gemmKV", "gemmO", "gemmGateUp", "gemmDown", "residual", "siluMul"])
        delete prefill[replaced];
      // RoPE and the KV append too, where a block's rotation pairs fit a head (32 with mma, 64
      // with wgmma; Llama-2's 64).
      if (c.ropeLayout === "half" && (hd / 2) % (wgmma ? 64 : 32) === 0) {
        for (const replaced of ["ropeQ", "ropeK", "kvAppend"]) delete prefill[replaced];
        prefill.gemmQkvRope = op(
          "gemmqkvropeT",
          wgmma ? wg(S.q4QkvRopeAppendGemmWgmma, dim) : S.q4QkvRopeAppendGemmMma,
          {
            ...q4(dim, dim + 2 * kvd),
            h: c.nHeads,
            kvh: c.nKvHeads,
            d: hd,
            ctx,
          },
        );
      } else
        prefill.gemmQKV = op("gemmqkvT", wgmma ? wg(S.q4QkvGemmWgmma, dim) : S.q4QkvGemmMma, {
          ...q4(dim, dim + 2 * kvd),
          qd: dim,
          kvd,
        });
      const residual = (K: number) => (wgmma ? wg(S.q4GemmResidualWgmma, K) : S.q4GemmResidualMma);
      Object.assign(prefill, {
        gemmORes: op("gemmoresT", residual(dim), q4(dim, dim)),
        gemmDownRes: op("gemmdownresT", residual(hidden), q4(hidden, dim)),
      });
      const cut = gateUpCut(hidden, wgmma ? choices.prefillGateUpWave : undefined);
      if (cut.outputs > 0) {
        // Whole waves, then the rest with K split (stdlib/gemm_wgmma.ts OUT_TO, OUT_FROM). A role
        // of its own for the first: its kernel stores only its part of the outputs.
        const rest = { s: cut.splits, p: hidden - cut.outputs };
        prefill.gemmGateUpSilu = op(
          "gemmgateupwavesT",
          withConsts(wg(S.q4GateUpSiluGemmWgmma, dim), { OUT_TO: cut.outputs }),
          gateUpShape,
        );
        prefill.gemmGateUpSplitK = op(
          "gemmgateupsplitkT",
          withConsts(wg(S.q4GateUpSplitKGemmWgmma, dim), { OUT_FROM: cut.outputs }),
          { ...withN2(q4(dim, 2 * hidden)), ...rest },
        );
        prefill.gateUpSplitReduce = op(
          "gateupreduceT",
          withConsts(S.gateUpSiluSplitReduce, { OUT_FROM: cut.outputs }),
          { ...rest, i: hidden },
        );
      } else
        prefill.gemmGateUpSilu = op(
          "gemmgateupT",
          wgmma ? wg(S.q4GateUpSiluGemmWgmma, dim) : S.q4GateUpSiluGemmMma,
          gateUpShape,
        );
    }
  } else {
    const g = (k: number, n: number) => ({ k, n });
    Object.assign(decode, {
      // Q, K and V (and gate and up) are adjacent rows of one matrix and adjacent outputs: one GEMV each.
      gemvQKV: op("gemvqkv1", S.f16Gemv, g(dim, dim + 2 * kvd)),
      // The residual add and SiLU in the GEMVs' epilogues (one launch each instead of two).
      gemvORes: op("gemvores1", S.f16GemvResidual, g(dim, dim)),
      gemvGateUpSilu: op("gemvgateup1", S.f16GateUpSilu, { k: dim, n2: 2 * hidden, i: hidden }),
      gemvDownRes: op("gemvdownres1", S.f16GemvResidual, g(hidden, dim)),
      lmHead: op("lmhead1", S.f16Gemv, g(dim, c.vocabSize)),
    });
    Object.assign(prefill, {
      gemmQ: op("gemmqT", f16Gemm, g(dim, dim)),
      gemmKV: op("gemmkvT", f16Gemm, g(dim, kvd)),
      gemmO: op("gemmoT", f16Gemm, g(dim, dim)),
      gemmGateUp: op("gemmgateT", f16Gemm, g(dim, hidden)),
      gemmDown: op("gemmdownT", f16Gemm, g(hidden, dim)),
    });
  }
  // Where the q4 GEMMs run on wgmma (one block a multiprocessor), the prefill's eager launches
  // overlap their predecessors' tails with programmatic dependent launch: 2.8% faster on an H100
  // (the mma GEMMs, several blocks a multiprocessor, are left without it: llama/device/cuda.ts).
  if (wgmma)
    for (const [name, spec] of Object.entries(prefill)) prefill[name] = { ...spec, programmaticEager: true };
  for (const [name, at] of Object.entries(choices.decodeDependentsLaunch ?? {})) {
    if (!DEPENDENTS_LAUNCH_POINTS.includes(at))
      throw new Error(
        `tkc: decodeDependentsLaunch maps decode ops to ${DEPENDENTS_LAUNCH_POINTS.map((x) => `"${x}"`).join(", ")}, got ${JSON.stringify(at)} for ${name}`,
      );
    // An op this model's choices leave out (another format's, say) has nothing to mark.
    if (decode[name]) decode[name] = { ...decode[name], dependentsLaunch: at };
  }
  // The lowering's launch pass refuses counts outside 1..32, naming the kernel.
  for (const [name, blocks] of Object.entries(choices.decodeMinBlocksPerSM ?? {}))
    if (decode[name]) decode[name] = { ...decode[name], minBlocksPerSM: blocks };
  return { format, decode, prefill };
}

function withN2(p: { k: number; n: number; kw: number; kg: number }) {
  return { k: p.k, n2: p.n, kw: p.kw, kg: p.kg };
}

/** Every distinct op, for ahead-of-time compilation. */
export function allOps(ops: LlamaOps): OpSpec[] {
  const seen = new Map<string, OpSpec>();
  for (const o of [...Object.values(ops.decode), ...Object.values(ops.prefill)]) seen.set(o.key, o);
  return [...seen.values()];
}
