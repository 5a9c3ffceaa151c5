/**
 * The kernel choices llamaOps (llama/ops.ts) takes per target, each with what was measured when it
 * was chosen, and CUDA's: which kernel variant a model's ops compile to.
 */
import { hasWgmma } from "../stdlib/gpu/gemm.ts";
import type { DependentsLaunch } from "../lower/ir/nodes.ts";

/**
 * Kernel choices that differ by target, where one kernel's variants measured best on one and the
 * other elsewhere (ops keep their keys: a library holds whichever its target chose).
 */
export interface OpChoices {
  /**
   * Rows per thread of the down projection's GEMV (K = hidden): 4 (default: measured best through
   * CUDA) or 1 (Vulkan's choice). Through NVIDIA's Vulkan driver on an H200 the four-rows kernel
   * with 32 lanes a row timed 16.3 us alone against the one-row kernel's 17.8
   * (bench/results/vulkan-tune-h200.json), but 50 us a launch inside the 7B decode step against
   * the one-row kernel's 19.6 there (with 128 lanes 24 us, and the in-place residual then read
   * through a staging copy; bench/results/vulkan-h200.json `twentyFifthSession`).
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
   * round, so at 4,096 positions 4 splits take 8 rounds (8 splits: 4); not measured there. On an
   * H200, greedy decoding of 512 tokens: 754.4 tok/s with 4, 740.0 with 2, 728.0 with 8
   * (bench/results/decode-splits-ab-h200.json).
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
   * Without tensor-core GEMVs (the row kernels Vulkan runs): the FFN's RMSNorm folded into the
   * gate/up GEMV (q4GateUpSiluRms, each workgroup summing x's squares itself; true) or its own
   * launch before q4GateUpSiluRows2 (false, the default). QKV's row kernel folds its norm always
   * (q4GemvRows4Rms). On an H200 through NVIDIA's Vulkan driver the folded kernel took 43.0 us a
   * launch inside the 7B decode step against 32.9 + 7.4 for the gate/up and norm launches (the
   * step's GPU time 4.07 against 3.96 ms; bench/results/vulkan-choices-ab-h200.json).
   */
  readonly foldRowsGateUpNorm?: boolean;
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
