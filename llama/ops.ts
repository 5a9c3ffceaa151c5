/**
 * Every compiled operation a Llama needs, for a config and a weight format: what `tkc compile`
 * builds ahead of time and what the model asks its device for. Decode operations are specialised
 * to one token; prefill operations keep the token count symbolic.
 */
import { withConsts, type KernelDef } from "../dsl/kernel.ts";
import * as S from "../stdlib/index.ts";
import { hasWgmma } from "../stdlib/gpu/gemm.ts";
import { mmaGemvKernel } from "../stdlib/gpu/gemv.ts";
import { headDim, kvDim, type LlamaConfig } from "./config.ts";
import type { OpSpec, ScheduleFn } from "./device/types.ts";
import { DEPENDENTS_LAUNCH_POINTS } from "../lower/passes/launch.ts";
import type { DependentsLaunch } from "../lower/ir/nodes.ts";

export type WeightFormat = "f32" | "f16" | "q4f16_1";

/** Schedules by kernel name; supplied per target by stdlib's GPU schedules. */
export type ScheduleTable = Readonly<Record<string, ScheduleFn>>;

export interface LlamaOps {
  readonly format: WeightFormat;
  readonly decode: Readonly<Record<string, OpSpec>>;
  readonly prefill: Readonly<Record<string, OpSpec>>;
}

/**
 * Kernel choices that differ by target, where one kernel's variants measured best on one and the
 * other elsewhere (ops keep their keys: a library holds whichever its target chose).
 */
export interface OpChoices {
  /**
   * Rows per thread of the down projection's GEMV (K = hidden): 4 (default: measured best through
   * CUDA) or 1 (through NVIDIA's Vulkan driver, whose 64-register cap made the four-rows kernel 3x
   * slower at K = 11008 than the one-row kernel; bench/results/vulkan-bench-*.json).
   */
  readonly downRowsPerThread?: 1 | 4;
  /**
   * The prefill GEMMs: "tiled" (default: q4GemmTiled / f16GemmTiled, FMA register tiles), "mma"
   * (q4GemmMma / f16GemmMma, tensorized into mma.m16n8k16 on NVIDIA sm_80 and later) or "wgmma"
   * (Hopper, sm_90 only: the q4f16_1 GEMMs on wgmma.mma_async, stdlib/gemm_wgmma.ts; f16 as "mma").
   */
  readonly prefillGemm?: "tiled" | "mma" | "wgmma";
  /**
   * Decode attention: "split" (default: attentionDecodeSplit + attentionDecodeCombine, a block per
   * head and split of the positions, 8 splits a head, then a combining launch) or "warps"
   * (attentionDecodeWarps: one launch, a block per head whose warps take the chunks in turn; head
   * dimensions that are multiples of 32 up to 256). On an H200 at position 256, the 7B decode
   * step's graph took 1627.5 us with "split" (4.7 + 1.4 us a layer) and 1639.7 us with "warps"
   * (7.2 us a layer; bench/results/decode-attention-split-h200.json). "splitLast"
   * (attentionDecodeSplitLast): as "split" in one launch, the last block of each head to finish
   * combining the splits (an atomic counter per head; one kernel boundary fewer a layer). Not
   * CUDA's choice: on an H200 the 7B q4f16_1 step's graph took 1,361.5 and 1,361.0 µs against
   * 1,351.0 and 1,349.2 with "split" (the fence and atomic before the last block combines cost
   * what the boundary did, and O's weight loads, launched during the attention, slow it), 1,384.7
   * with O launched at the attention's exit, 1,392.9 with 8 splits
   * (bench/results/decode-split-last-ab-h200.json).
   */
  readonly decodeAttention?: "split" | "warps" | "splitLast";
  /**
   * With decodeAttention "warps": warps per block (default DECODE_WARPS, 8); with 16 a block covers
   * 512 positions in one round of chunks. Not CUDA's choice: on an H200 the 7B q4f16_1 step's graph
   * took 1,341.1-1,341.9 us with 16 warps, 1,359.3-1,359.7 with 8 and 1,748.3-1,748.5 with 32,
   * against 1,328.2-1,329.4 with the split attention and its combination
   * (bench/results/decode-attention-warps16-ab-h200.json).
   */
  readonly decodeAttentionWarps?: number;
  /**
   * With decodeAttention "split": splits per head (default DECODE_SPLITS, 8). CUDA takes 4: on an
   * H100 the 7B step's graph (positions 157-356 of a 1,100-position cache) took 1874.0 us with 4,
   * 1908.3 with 2, 1909.0 with 8 and 1981.5 with 16 (bench/results/decode-attention-splits-ab-h100.json):
   * 4 x 32 heads = 128 blocks, one a multiprocessor. Each split's 4 warps take 128 positions a
   * round, so at 4,096 positions 4 splits take 8 rounds (8 splits: 4); not measured there.
   */
  readonly decodeSplits?: number;
  /**
   * Prefill attention: "rows" (default: attentionPrefill, a warp per (token, head) walking the
   * positions one at a time), "chunks" (attentionPrefillWarps: a block per head and 8 tokens, a
   * warp per token walking the positions 32 at a time; head dimensions as for decodeAttention) or
   * "mma" (attentionPrefillMma: flash attention on tensor cores, a block per head and 128 tokens;
   * NVIDIA sm_80 and later, head dimensions that are multiples of 16 up to 128, else "chunks").
   */
  readonly prefillAttention?: "rows" | "chunks" | "mma";
  /**
   * The q4f16_1 decode GEMVs: "rows" (default: the four-rows FMA kernels, q4_gemv_rows*.ts, with
   * RMSNorm folded into QKV) or "mma" (q4_gemv_mma.ts: codes decoded into f16 pairs and
   * multiplied on tensor cores, NVIDIA sm_80 and later; QKV after its own RMSNorm launch). Each
   * weight whose shape does not tile (K a multiple of 256, N of the rows per block) keeps "rows".
   */
  readonly decodeGemv?: "rows" | "mma";
  /**
   * With decodeGemv "mma": RMSNorm folded into the QKV and gate/up GEMVs (true, CUDA's choice:
   * the warps stage x * wn for their chunks and sum x's squares on the way, and each row's sum is
   * scaled by rsqrt(mean(x^2) + eps) at the end, so the norm costs neither a launch nor a pass over
   * x before the weights stream) or each norm as its own launch (false, the default). On an H100,
   * in one call: 468 against 455 tok/s with programmatic dependent launch, 467 against 445 without
   * (bench/results/decode-fold-ab-h100.json). The seventh session's fold replaced one that summed
   * the squares of all of x in every block before its first weight load: 3-6% slower then.
   */
  readonly foldDecodeNorms?: boolean;
  /**
   * With decodeGemv "mma", RoPE pairs (i, i + d/2) and head dimensions that are multiples of 32:
   * RoPE and the KV-cache append in the QKV GEMV's epilogue (q4QkvRopeAppendMma, or
   * q4QkvRopeAppendRmsMma with foldDecodeNorms: one launch fewer per layer; true) or their own
   * launch (false, the default). CUDA's choice is true: with the norm folded in and the attention
   * launched at the fused GEMV's exit (decodeDependentsLaunch), the 7B q4f16_1 decode step's graph
   * took 1,695.6 against 1,703.0 µs on an H100 (1,695.5 against 1,701.8 in another call), and
   * 1,783.0 with the attention launched early (bench/results/decode-rope-fused-ab-h100.json). The
   * fourth session measured the unfolded fused GEMV at the two launches' time (19.8 µs against
   * 16.7 + 3.0; decode-rope-ab-h100.json).
   */
  readonly fuseDecodeRope?: boolean;
  /**
   * Decode ops, by their names in LlamaOps.decode, after which the next kernel launches once their
   * blocks start ("start"), reach their epilogue (their first store to global memory: "epilogue")
   * or exit ("exit") (OpSpec.dependentsLaunch; CUDA sm_90 with programmatic dependent launch), not
   * as soon as their blocks pass their wait for the previous kernel (the default for every op).
   * CUDA's choice is { qkvRopeRms: "epilogue", downRes: "epilogue", attentionCombine: "start" }.
   * The combination at "start" launches the O projection while the attention runs, so that O's
   * first (and only) round of weights loads beside it (the attention slows by 1.7 µs a layer, O's
   * share drops by 2): on an H200 1,334.2/1,332.6 and 1,338.3 µs against 1,338.1/1,335.4 and
   * 1,343.6/1,344.4 in two calls (O without its early loads then: 1,358.3 and 1,359.0;
   * bench/results/decode-launch-order-experiments-h200.json). A kernel resident on the
   * multiprocessors while the QKV GEMV's 768 blocks take their places makes them a wave and a
   * bit. On an H100 the 7B q4f16_1 step's graph took 1,695.5 µs with the fused QKV at "exit" and
   * 1,783.0 without; 1,688.1 with the down projection (before the next layer's QKV) so too; with
   * O, gate/up, the split attention, its combination or the embedding so: 1,750.1, 1,759.3,
   * 1,696.2, 1,697.3, 1,697.3 (bench/results/decode-rope-fused-ab-h100.json; the seventeenth
   * session saw the same with RoPE's own launch after QKV, decode-session17-experiments-h100.json).
   * At "epilogue" the next kernel's launch overlaps the last blocks' epilogues: on an H200,
   * 1,347.2 and 1,345.1 µs against 1,363.5 and 1,360.2 at "exit"; QKV alone 1,355.9, the down
   * projection alone 1,354.8 (bench/results/decode-dependents-epilogue-ab-h200.json, the trigger
   * put into the PTX by hand). Names this model's other choices leave out (an f16 model has no
   * downRes) mark nothing.
   */
  readonly decodeDependentsLaunch?: Readonly<Record<string, DependentsLaunch>>;
  /**
   * With fuseDecodeRope: each block of the fused QKV GEMV, after its epilogue, prefetches into L2
   * the key and value rows of its share of the positions the attention will read
   * (stdlib/q4_qkv_rope_mma.ts's KV_PREFETCH), so that the attention, launched at the GEMV's exit,
   * reads them from L2 (true); or not (false, the default). CUDA's choice is true: the attention
   * is latency-bound, the GEMV's last blocks leave DRAM bandwidth idle. On an H200 the 7B q4f16_1
   * step's graph took 1,371.0 and 1,374.0 / 1,371.3 µs against 1,394.1 / 1,390.8 and 1,396.1 in two
   * calls; the down projection's blocks prefetching the next layer's QKV weights' first round
   * likewise (its launch follows the down projection's exit) took 1,440.6, and 1,413.1 with the KV
   * prefetch: those bytes land in a bandwidth-bound tail (bench/results/decode-kv-prefetch-ab-h200.json).
   */
  readonly prefetchDecodeKv?: boolean;
  /**
   * With decodeGemv "mma": each block of a tensor-core GEMV first prefetches its weight rows into
   * L2 (true), before it waits for the previous kernel (programmatic dependent launch), so the
   * weight stream starts during that kernel's tail; or not (false, the default). On an H200 the
   * prefetch made decode 10-12% slower, with programmatic launch and without, as per-line
   * prefetches and as one bulk prefetch per tile (bench/results/decode-prefetch-ab-h200.json).
   * A list names the decode ops (LlamaOps.decode) that prefetch: the O projection alone, whose
   * weights could stream during the latency-bound attention before it, made the step 0.9% slower
   * on an H200 (1,385.9 against 1,374.0 µs), and the LM head with it 1.2%
   * (bench/results/decode-kv-prefetch-ab-h200.json).
   */
  readonly prefetchDecodeWeights?: boolean | readonly string[];
  /**
   * With decodeGemv "mma": how many chunks of K each warp of a tensor-core GEMV keeps in flight
   * through a ring in shared memory, filled by asynchronous copies (cp.async) that many rounds
   * ahead of its products, the first ones issued before the wait for the previous kernel
   * (stdlib/q4_gemv_mma.ts STAGES); 0 or absent: the next chunk into registers at the end of each
   * round (CUDA's choice: every ring measured slower on an H200, 0.3-49% a step, as its registers
   * and shared memory cost blocks a multiprocessor and changed the kernels' L1/shared carveout;
   * bench/results/decode-gemv-ring-ab-h200.json). A number for every GEMV, or per op.
   */
  readonly decodeGemvStages?: number | Readonly<Record<string, number>>;
  /**
   * Decode ops (LlamaOps.decode's names) whose kernels must fit that many blocks on a
   * multiprocessor at once (OpSpec.minBlocksPerSM: ptxas caps their registers to fit them).
   */
  readonly decodeMinBlocksPerSM?: Readonly<Record<string, number>>;
  /**
   * With prefillGemm "wgmma": each block of a prefill GEMM first prefetches all of its weight rows
   * into L2 (true: stdlib/gemm_wgmma.ts's PREFETCH), so its K loop reads the weights from L2
   * rather than DRAM; or loads them as it goes (false, the default). On an H100 every prefill
   * GEMM was 1.5-4.6% slower with it, even each launch timed after an L2 flush, and the 512-token
   * prefill 1% slower (bench/results/prefill-prefetch-ab-h100.json).
   */
  readonly prefetchPrefillWeights?: boolean;
  /**
   * With prefillGemm "wgmma": how many K stages ahead each block of a prefill GEMM prefetches its
   * weight rows' next L2 lines (stdlib/gemm_wgmma.ts's PREFETCH_AHEAD; 4 is the next line), or 0
   * (the default): none. CUDA's choice is 4: on an H100 the 512-token prefill 2.1-2.4% faster in
   * two calls, 8 the same (bench/results/prefill-weights-ahead-ab-h100.json).
   */
  readonly prefillWeightsAhead?: number;
  /**
   * With prefillGemm "wgmma": the GEMMs whose K is at least this take K stages of 128 (four q4
   * groups: stdlib/gemm_wgmma.ts's STAGE_GROUPS 4) instead of 64: half the stages and their waits
   * and barriers, each with twice the products and loads, against a longer first stage before the
   * products start; 0 (the default): none, 1: all. CUDA's choice is 8192, the down projection at
   * Llama-2-7B's sizes (K = 11,008): on an H100 it took 114 against 136 us inside the 512-token
   * prefill and 107 against 125 alone, while at K = 4,096 (32 stages of 128) the GEMMs were 1-4%
   * slower alone and within 2% inside the prefill; the prefill 3.3% faster with every GEMM so
   * (bench/results/prefill-stage-groups-ab-h100.json, gemm-h100.json).
   */
  readonly prefillWideStagesFromK?: number;
  /**
   * With prefillGemm "wgmma": the blocks a wave of the GPU runs (its multiprocessors: one block of
   * two warpgroups each), for which gate/up's GEMM is cut: a launch of the most blocks of outputs
   * that fill whole waves at a full prefill chunk of 512 tokens (four blocks of 128 tokens), then
   * the rest of the outputs with K split so that they fit in one wave (q4GateUpSplitKGemmWgmma:
   * f32 sums of each split; gateUpSiluSplitReduce adds them and applies SwiGLU). A block's time
   * goes with its K stages, each waiting on its loads, not with its outputs. At Llama-2-7B's
   * 11,008 outputs and 132 multiprocessors: 165 of 172 blocks (5 waves), then 7 blocks in 4
   * splits (112 blocks of a quarter of K), instead of a sixth wave of 28 blocks. Unset (the
   * default): one launch. CUDA's choice is 132 (H100 SXM, H200).
   */
  readonly prefillGateUpWave?: number;
  /**
   * With prefillGemm "mma" and q4f16_1 weights: the prefill's Q, K and V in one GEMM
   * (q4QkvGemmMma; with RoPE and the KV-cache append in its epilogue, q4QkvRopeAppendGemmMma, for
   * "half" RoPE and head sizes multiple of 64), the residual adds in the O and down GEMMs' epilogues (q4GemmResidualMma) and
   * gate, up and SwiGLU in one GEMM whose warps pair gate and up tiles (q4GateUpSiluGemmMma): 7
   * launches a layer instead of 16 (10 without RoPE fused), the same values (true); or the separate
   * launches (false, the default).
   */
  readonly fusePrefillEpilogues?: boolean;
}

/**
 * Kernel choices for CUDA on Hopper (sm_90): tensor-core prefill GEMMs (the q4f16_1 ones on
 * wgmma) and decode GEMVs. cudaOpChoices gives other architectures' (sm_80: mma.m16n8k16).
 */
export const CUDA_OP_CHOICES: OpChoices = {
  prefillGemm: "wgmma",
  decodeGemv: "mma",
  foldDecodeNorms: true,
  fuseDecodeRope: true,
  decodeDependentsLaunch: { qkvRopeRms: "epilogue", downRes: "epilogue", attentionCombine: "start" },
  prefetchDecodeKv: true,
  decodeSplits: 4,
  prefillAttention: "mma",
  fusePrefillEpilogues: true,
  prefillWeightsAhead: 4,
  prefillGateUpWave: 132,
  prefillWideStagesFromK: 8192,
};

/**
 * CUDA_OP_CHOICES for a CUDA architecture: wgmma only where there is one, sm_90 (its sm_90a
 * kernels run on Hopper alone: a newer GPU given sm_90 PTX, compute capability 10 or more, gets mma).
 */
export function cudaOpChoices(arch: string, computeCapability?: readonly [number, number]): OpChoices {
  const hopper = hasWgmma(arch) && (computeCapability === undefined || computeCapability[0] === 9);
  return hopper ? CUDA_OP_CHOICES : { ...CUDA_OP_CHOICES, prefillGemm: "mma" };
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
        ? { gateUp: op("gateup1", S.q4GateUpSiluRows2, gateUpShape) }
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
