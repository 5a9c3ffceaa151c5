/**
 * The kernel-built Llama against the plain-TypeScript reference on stories15M: in f32 the logits
 * agree closely; in q4f16_1 against a reference holding the same dequantized weights.
 */
import { describe, expect, test } from "vitest";
import { loadBundledStories15M } from "../../llama/bundled.ts";
import { ReferenceLlama } from "../../llama/reference.ts";
import { KernelLlama } from "../../llama/model.ts";
import { VIEW_ALIGN_BYTES, type Device, type DeviceTensor } from "../../llama/device/types.ts";
import { bytesOf } from "../../dsl/dtypes.ts";
import { createCpuDevice } from "../../llama/device/cpu.ts";
import { dequantizeQ4f16_1, quantizeQ4f16_1 } from "../../llama/quant/q4f16_1.ts";
import { generate, generateText, type LanguageModel } from "../../llama/generate.ts";
import type { LlamaWeights } from "../../llama/weights/types.ts";
import { syntheticF16, syntheticQ4 } from "../../llama/weights/source.ts";
import { TINY_GQA } from "../../llama/presets.ts";
import { randomWeights } from "./helpers/random-weights.ts";
import { STEP_LEN, STEP_POS, STEP_TOKEN } from "../../stdlib/sampling.ts";
import { gateUpCut, llamaOps } from "../../llama/ops.ts";
import { CUDA_OP_CHOICES, cudaOpChoices } from "../../llama/op-choices.ts";

const { weights, tokenizer } = loadBundledStories15M();
const TOKENS = [1, 9038, 2501, 263, 931, 29892, 727, 471];

function relErr(a: Float32Array, b: Float32Array): number {
  let scale = 0;
  let err = 0;
  for (let i = 0; i < a.length; i++) {
    scale = Math.max(scale, Math.abs(a[i]!));
    err = Math.max(err, Math.abs(a[i]! - b[i]!));
  }
  return err / scale;
}

const argmax = (x: Float32Array): number => x.indexOf(Math.max(...x));

/** The weights a q4f16_1 model actually holds, as f32 (its "dequantized reference"). */
function dequantized(w: LlamaWeights): LlamaWeights {
  const q = (m: Float32Array, n: number, k: number) => dequantizeQ4f16_1(quantizeQ4f16_1(m, n, k), n, k);
  const c = w.config;
  const kv = (c.dim / c.nHeads) * c.nKvHeads;
  return {
    ...w,
    tokenEmbedding: q(w.tokenEmbedding, c.vocabSize, c.dim),
    classifier: q(w.classifier, c.vocabSize, c.dim),
    layers: w.layers.map((l) => ({
      ...l,
      wq: q(l.wq, c.dim, c.dim),
      wk: q(l.wk, kv, c.dim),
      wv: q(l.wv, kv, c.dim),
      wo: q(l.wo, c.dim, c.dim),
      w1: q(l.w1, c.hiddenDim, c.dim),
      w2: q(l.w2, c.dim, c.hiddenDim),
      w3: q(l.w3, c.hiddenDim, c.dim),
    })),
  };
}

describe("the kernel-built Llama on the CPU device", () => {
  test("f32: logits within 1e-4 (relative to the largest) of the reference, decode and prefill", () => {
    const ref = new ReferenceLlama(weights);
    const model = new KernelLlama(createCpuDevice(), weights, { format: "f32" });
    for (let p = 0; p < TOKENS.length; p++) {
      const a = ref.decode(TOKENS[p]!, p).slice();
      const b = model.decode(TOKENS[p]!, p);
      expect(relErr(a, b), `position ${p}`).toBeLessThan(1e-4);
      expect(argmax(b)).toBe(argmax(a));
    }
    // Prefill through the GEMM kernels (chunks of 3) reaches the same last logits.
    const chunked = new KernelLlama(createCpuDevice(), weights, { format: "f32", prefillChunk: 3 });
    const last = chunked.prefill(TOKENS, 0);
    const ref2 = new ReferenceLlama(weights);
    const expected = ref2.prefill(TOKENS, 0);
    expect(relErr(expected, last)).toBeLessThan(1e-4);
  });

  test("q4f16_1: within 5% of its dequantized reference, and fluent", async () => {
    const ref = new ReferenceLlama(dequantized(weights));
    const model = new KernelLlama(createCpuDevice(), weights, { format: "q4f16_1", prefillChunk: 4 });
    let agree = 0;
    for (let p = 0; p < TOKENS.length; p++) {
      const a = ref.decode(TOKENS[p]!, p).slice();
      const b = model.decode(TOKENS[p]!, p);
      expect(relErr(a, b), `position ${p}`).toBeLessThan(0.05);
      if (argmax(a) === argmax(b)) agree++;
    }
    expect(agree).toBeGreaterThanOrEqual(TOKENS.length - 1);
    model.reset();
    const out = await generateText(model, tokenizer, { maxTokens: 24, temperature: 0, topP: 1, seed: 1 });
    expect(out.text).toMatch(/^Once upon a time/);
  });
});

describe("greedy decoding on the device (decodeGreedy: argmax after each step, token ids read back)", () => {
  test.each(["f32", "f16", "q4f16_1"] as const)(
    "%s: the argmax of decode's logits, step by step and several steps a call",
    (format) => {
      const config = { ...TINY_GQA, contextLength: 40 };
      // A synthetic source draws its weights as it is read: one each, with the same seed; f32 has
      // none (stories15M's weights then).
      const source = () =>
        format === "f32" ? weights : format === "q4f16_1" ? syntheticQ4(config, 5) : syntheticF16(config, 5);
      const logitsModel = new KernelLlama(createCpuDevice(), source(), { format });
      const stepModel = new KernelLlama(createCpuDevice(), source(), { format });
      const batchModel = new KernelLlama(createCpuDevice(), source(), { format });
      const aheadModel = new KernelLlama(createCpuDevice(), source(), { format });
      // Recorded, greedySteps steps a recording (one CUDA graph) and the rest one a recording.
      const recordedModel = new KernelLlama(createCpuDevice(), source(), {
        format,
        recordDecode: true,
        greedySteps: 3,
      });
      const steps = format === "f32" ? 4 : 12;
      const want: number[] = [];
      let token = 1;
      for (let p = 0; p < steps; p++) {
        token = argmax(logitsModel.decode(token, p));
        want.push(token);
        expect(stepModel.decodeGreedy(p === 0 ? 1 : want[p - 1]!, p)[0], `position ${p}`).toBe(token);
      }
      // Back to back on the device (q4f16_1: the embedding table is there), in two calls.
      const half = steps / 2;
      const first = Array.from(batchModel.decodeGreedy(1, 0, half));
      const rest = Array.from(batchModel.decodeGreedy(first[half - 1]!, half, steps - half));
      expect([...first, ...rest]).toEqual(want);
      // Enqueued ahead: the second call continues from the first's last choice on the device and
      // goes in before the first's tokens are read.
      const firstLater = aheadModel.enqueueGreedy(1, 0, half);
      const restLater = aheadModel.enqueueGreedy(undefined, half, steps - half);
      expect([...firstLater(), ...restLater()]).toEqual(want);
      expect(Array.from(recordedModel.decodeGreedy(1, 0, steps - 1))).toEqual(want.slice(0, steps - 1));
    },
  );

  test("steps enqueued to continue others must start where they end, with nothing run between", () => {
    const config = { ...TINY_GQA, contextLength: 40 };
    const model = new KernelLlama(createCpuDevice(), syntheticQ4(config, 5), { format: "q4f16_1" });
    expect(() => model.enqueueGreedy(undefined, 0, 2)).toThrow(/were followed by other work; pass the token/);
    model.enqueueGreedy(1, 0, 3);
    expect(() => model.enqueueGreedy(undefined, 4, 2)).toThrow(
      /continue from position 4, but the last ones enqueued end at 3/,
    );
    model.decode(1, 3);
    expect(() => model.enqueueGreedy(undefined, 3, 2)).toThrow(/were followed by other work/);
  });

  test("generate() with several greedy steps a call: the same tokens as one a call, to the budget and to a stop token", async () => {
    const one = new KernelLlama(createCpuDevice(), weights, { format: "q4f16_1", greedySteps: 1 });
    const five = new KernelLlama(createCpuDevice(), weights, { format: "q4f16_1", greedySteps: 5 });
    const options = { maxTokens: 13, temperature: 0, topP: 1, seed: 1 };
    const a = await generateText(one, tokenizer, options);
    expect(a.tokens).toHaveLength(13);
    expect((await generateText(five, tokenizer, options)).tokens).toEqual(a.tokens);
    // A stop token inside a call's steps: generation ends there, the later steps are dropped.
    const stop = { ...options, stopTokens: [a.tokens[6]!] };
    const stopped = await generateText(five, tokenizer, stop);
    expect(stopped.tokens).toEqual(a.tokens.slice(0, a.tokens.indexOf(a.tokens[6]!)));
    expect(stopped.stats.stopReason).toBe("eos");
  });

  test("generate() enqueueing each call's steps before reading the last call's (greedyAhead): the same tokens, never past the budget", async () => {
    const one = new KernelLlama(createCpuDevice(), weights, { format: "q4f16_1", greedySteps: 1 });
    const five = new KernelLlama(createCpuDevice(), weights, { format: "q4f16_1", greedySteps: 5 });
    const calls: [number | undefined, number, number][] = [];
    let unread = 0;
    // The CPU device runs each call at once (greedyAhead false); this stand-in asks for the order a
    // CUDA model gets, and logs what generate() enqueues.
    const ahead: LanguageModel = {
      config: five.config,
      reset: () => five.reset(),
      prefill: (tokens, pos) => five.prefill(tokens, pos),
      decode: (token, pos) => five.decode(token, pos),
      decodeGreedy: (token, pos, steps) => five.decodeGreedy(token, pos, steps),
      greedySteps: five.greedySteps,
      greedyAhead: true,
      enqueueGreedy: (token, pos, steps) => {
        calls.push([token, pos, steps]);
        const wait = five.enqueueGreedy(token, pos, steps);
        unread++;
        return () => {
          unread--;
          return wait();
        };
      },
    };
    const options = { maxTokens: 13, temperature: 0, topP: 1, seed: 1 };
    const a = await generateText(one, tokenizer, options);
    expect((await generateText(ahead, tokenizer, options)).tokens).toEqual(a.tokens);
    // The prompt (BOS) gives the first token; then 5 + 5 + 2 steps, the last two continuing.
    expect(calls).toEqual([
      [a.tokens[0], 1, 5],
      [undefined, 6, 5],
      [undefined, 11, 2],
    ]);
    const stop = { ...options, stopTokens: [a.tokens[6]!] };
    const stopped = await generateText(ahead, tokenizer, stop);
    expect(stopped.tokens).toEqual(a.tokens.slice(0, a.tokens.indexOf(a.tokens[6]!)));
    expect(stopped.stats.stopReason).toBe("eos");
    // The steps enqueued past the stop were read too (their buffers return to the device), as
    // are those of a caller that leaves early.
    expect(unread).toBe(0);
    const early = generate(ahead, tokenizer, options);
    for (let i = 0; i < 3; i++) await early.next();
    expect(unread).toBeGreaterThan(0);
    await early.return(undefined as never);
    expect(unread).toBe(0);
    // Generation after a stop starts afresh (the steps enqueued past it are not continued).
    expect((await generateText(ahead, tokenizer, options)).tokens).toEqual(a.tokens);
  });

  test("steps past the context are refused", () => {
    const config = { ...TINY_GQA, contextLength: 10 };
    const model = new KernelLlama(createCpuDevice(), syntheticQ4(config, 5), { format: "q4f16_1" });
    expect(() => model.decodeGreedy(1, 8, 3)).toThrow(
      /3 greedy steps from position 8 do not fit the context of 10/,
    );
    expect(model.decodeGreedy(1, 8, 2)).toHaveLength(2);
    expect(
      () =>
        new KernelLlama(createCpuDevice(), syntheticQ4(config, 5), {
          format: "q4f16_1",
          greedyGraphSteps: 0,
        }),
    ).toThrow("tkc: the model option greedyGraphSteps must be a whole number of at least 1, got 0");
  });
});

describe("the row kernels' choices (Vulkan's GEMVs), run on the CPU", () => {
  test("foldRowsGateUpNorm: the FFN's norm inside the gate/up GEMV gives the logits of its own launch", () => {
    const config = { ...TINY_GQA, dim: 256, hiddenDim: 512, vocabSize: 64, contextLength: 16 };
    const apart = new KernelLlama(createCpuDevice(), syntheticQ4(config, 4), { format: "q4f16_1" });
    const folded = new KernelLlama(createCpuDevice(), syntheticQ4(config, 4), {
      format: "q4f16_1",
      opChoices: { foldRowsGateUpNorm: true },
    });
    expect(apart.ops.decode.gateUp!.kernel.name).toBe("q4GateUpSiluRows2");
    expect(folded.ops.decode.gateUpRms!.kernel.name).toBe("q4GateUpSiluRms");
    expect(folded.ops.decode.gateUp).toBeUndefined();
    for (const [pos, token] of [5, 17, 42, 3].entries()) {
      const want = apart.decode(token, pos);
      const got = folded.decode(token, pos);
      const scale = Math.max(...want.map(Math.abs));
      // Both round x̂ to f16 before the products; only the norm's f32 sum order may differ.
      expect(Math.max(...got.map((v, i) => Math.abs(v - want[i]!))) / scale).toBeLessThan(1e-4);
    }
  });
});

describe("CUDA's kernel choices (tensor-core prefill GEMMs, decode GEMVs and prefill attention), run on the CPU", () => {
  test("q4f16_1: the same logits as the default kernels, up to f32 rounding, over a 40-token prefill and decode", () => {
    // K multiples of 256 and N of 32: every decode GEMV takes the tensor-core kernels.
    const config = { ...TINY_GQA, dim: 256, hiddenDim: 512, vocabSize: 64, contextLength: 80 };
    const base = new KernelLlama(createCpuDevice(), syntheticQ4(config, 3), { format: "q4f16_1" });
    // Heads of 64: the mma kernels (Hopper's wgmma ones pair 64 rotations a block; below).
    const mmaChoices = { ...CUDA_OP_CHOICES, prefillGemm: "mma" } as const;
    const cuda = new KernelLlama(createCpuDevice(), syntheticQ4(config, 3), {
      format: "q4f16_1",
      opChoices: mmaChoices,
    });
    expect(Object.keys(cuda.ops.decode)).toContain("attentionSplit");
    expect(cuda.ops.prefill.attention!.kernel.name).toBe("attentionPrefillMma");
    // RMSNorm folded into QKV and gate/up (CUDA's choice), and each norm its own launch; RoPE and
    // the cache append in QKV's epilogue (CUDA's choice), whose kernel lets the attention launch
    // only at its exit on CUDA.
    expect(cuda.ops.decode.qkvRopeRms!.kernel.name).toBe("q4QkvRopeAppendRmsMma");
    expect([cuda.ops.decode.qkv, cuda.ops.decode.ropeAppend]).toEqual([undefined, undefined]);
    expect(cuda.ops.decode.gateUpRms!.kernel.name).toBe("q4GateUpSiluRmsMma");
    const unfolded = new KernelLlama(createCpuDevice(), syntheticQ4(config, 3), {
      format: "q4f16_1",
      opChoices: { ...mmaChoices, foldDecodeNorms: false, fuseDecodeRope: false, decodeSplits: 3 },
    });
    const d = unfolded.ops.decode;
    expect(d.attentionSplit!.specialize!.splits).toBe(3);
    expect(d.qkv).toBeUndefined();
    expect([d.qkvNormed, d.oRes, d.gateUp, d.downRes, d.lmHead].map((o) => o!.kernel.name)).toEqual([
      "q4GemvMma",
      "q4GemvResidualMma",
      "q4GateUpSiluMma",
      "q4GemvResidualMma",
      "q4GemvF32Mma",
    ]);
    // RoPE and the cache append in the QKV GEMV's epilogue; decode attention in one launch.
    const fusedRope = new KernelLlama(createCpuDevice(), syntheticQ4(config, 3), {
      format: "q4f16_1",
      opChoices: {
        ...mmaChoices,
        foldDecodeNorms: false,
        fuseDecodeRope: true,
        decodeAttention: "warps",
        prefillAttention: "chunks",
      },
    });
    expect(fusedRope.ops.decode.qkvRope!.kernel.name).toBe("q4QkvRopeAppendMma");
    expect(fusedRope.ops.decode.attention!.kernel.name).toBe("attentionDecodeWarps");
    expect(fusedRope.ops.decode.ropeAppend).toBeUndefined();
    expect(fusedRope.ops.prefill.attention!.kernel.name).toBe("attentionPrefillWarps");
    // RoPE its own launch after the folded QKV GEMV.
    const ropeApart = new KernelLlama(createCpuDevice(), syntheticQ4(config, 3), {
      format: "q4f16_1",
      opChoices: { ...mmaChoices, fuseDecodeRope: false },
    });
    expect([ropeApart.ops.decode.qkv!.kernel.name, ropeApart.ops.decode.ropeAppend!.kernel.name]).toEqual([
      "q4GemvRmsMma",
      "ropeHalfAppend",
    ]);
    ropeApart.prefill(
      Array.from({ length: 40 }, (_, i) => (i * 7) % config.vocabSize),
      0,
    );
    fusedRope.prefill(
      Array.from({ length: 40 }, (_, i) => (i * 7) % config.vocabSize),
      0,
    );
    unfolded.prefill(
      Array.from({ length: 40 }, (_, i) => (i * 7) % config.vocabSize),
      0,
    );
    const prompt = Array.from({ length: 40 }, (_, i) => (i * 7) % config.vocabSize);
    // The prefill's residual adds and SwiGLU in the GEMMs' epilogues: the same values as the
    // separate launches.
    const p = cuda.ops.prefill;
    expect([p.gemmQkvRope, p.gemmORes, p.gemmDownRes, p.gemmGateUpSilu].map((o) => o!.kernel.name)).toEqual([
      "q4QkvRopeAppendGemmMma",
      "q4GemmResidualMma",
      "q4GemmResidualMma",
      "q4GateUpSiluGemmMma",
    ]);
    const separate = new KernelLlama(createCpuDevice(), syntheticQ4(config, 3), {
      format: "q4f16_1",
      opChoices: { ...mmaChoices, fusePrefillEpilogues: false },
    });
    expect(separate.ops.prefill.gemmGateUpSilu).toBeUndefined();
    // Heads of 32: RoPE keeps its own launches after one QKV GEMM.
    const narrow = llamaOps({ ...config, nHeads: 8, nKvHeads: 4 }, "q4f16_1", {}, mmaChoices).prefill;
    expect([narrow.gemmQkvRope, narrow.gemmQKV?.kernel.name, narrow.ropeQ?.kernel.name]).toEqual([
      undefined,
      "q4QkvGemmMma",
      "ropeHalf",
    ]);
    expect(Array.from(separate.prefill(prompt, 0))).toEqual(Array.from(cuda.prefill(prompt, 0)));
    expect(relErr(base.prefill(prompt, 0), cuda.prefill(prompt, 0))).toBeLessThan(2e-3);
    // CUDA's choices on Hopper: the q4f16_1 GEMMs on wgmma, the same values as mma's (heads of
    // 128 fuse RoPE; heads of 64 keep it apart, after one QKV GEMM).
    const wide = { ...config, nHeads: 2, nKvHeads: 1 };
    const hopper = new KernelLlama(createCpuDevice(), syntheticQ4(wide, 3), {
      format: "q4f16_1",
      opChoices: CUDA_OP_CHOICES,
    });
    const ampere = new KernelLlama(createCpuDevice(), syntheticQ4(wide, 3), {
      format: "q4f16_1",
      opChoices: cudaOpChoices("sm_80"),
    });
    const h = hopper.ops.prefill;
    expect([h.gemmQkvRope, h.gemmORes, h.gemmDownRes, h.gemmGateUpSilu].map((o) => o!.kernel.name)).toEqual([
      "q4QkvRopeAppendGemmWgmma",
      "q4GemmResidualWgmma",
      "q4GemmResidualWgmma",
      "q4GateUpSiluGemmWgmma",
    ]);
    expect(ampere.ops.prefill.gemmQkvRope!.kernel.name).toBe("q4QkvRopeAppendGemmMma");
    // Their weights' L2 lines prefetched 4 stages ahead (prefillWeightsAhead); stages of four
    // groups from K = 8192 on (prefillWideStagesFromK): none at these sizes; invalid values refused.
    expect([h.gemmQkvRope, h.gemmORes, h.gemmGateUpSilu].map((o) => o!.kernel.consts)).toEqual(
      new Array(3).fill(expect.objectContaining({ PREFETCH_AHEAD: 4 })),
    );
    expect(h.gemmDownRes!.kernel.consts).toEqual({ PREFETCH_AHEAD: 4 });
    // Their eager launches with programmatic dependent launch (wgmma only), every prefill op's.
    expect(Object.values(h).every((o) => o.programmaticEager === true)).toBe(true);
    expect(Object.values(ampere.ops.prefill).some((o) => o.programmaticEager)).toBe(false);
    expect(() =>
      llamaOps(config, "q4f16_1", {}, { decodeAttention: "warps", decodeAttentionWarps: 33 }),
    ).toThrow("tkc: decodeAttentionWarps must be a whole number of warps from 1 to 32, got 33");
    expect(() => llamaOps(config, "q4f16_1", {}, { ...CUDA_OP_CHOICES, prefillWeightsAhead: -1 })).toThrow(
      /prefillWeightsAhead must be a whole number of K stages \(0: none\), got -1/,
    );
    expect(() =>
      llamaOps(config, "q4f16_1", {}, { ...CUDA_OP_CHOICES, prefillWideStagesFromK: 0.5 }),
    ).toThrow(/prefillWideStagesFromK must be a whole K \(0: no GEMM\), got 0.5/);
    // From K = 512 on: the down projection (K = hidden = 512) alone.
    const fromHidden = llamaOps(
      wide,
      "q4f16_1",
      {},
      { ...CUDA_OP_CHOICES, prefillWideStagesFromK: 512 },
    ).prefill;
    expect([fromHidden.gemmDownRes, fromHidden.gemmORes].map((o) => o!.kernel.consts?.STAGE_GROUPS)).toEqual([
      4,
      undefined,
    ]);
    expect(llamaOps(config, "q4f16_1", {}, CUDA_OP_CHOICES).prefill.gemmQKV!.kernel.name).toBe(
      "q4QkvGemmWgmma",
    );
    // Two groups a K stage: mma's values bit for bit; four in every GEMM: the products of a stage
    // summed in another order.
    expect(Array.from(hopper.prefill(prompt, 0))).toEqual(Array.from(ampere.prefill(prompt, 0)));
    const wideStages = new KernelLlama(createCpuDevice(), syntheticQ4(wide, 3), {
      format: "q4f16_1",
      opChoices: { ...CUDA_OP_CHOICES, prefillWideStagesFromK: 1 },
    });
    expect(wideStages.ops.prefill.gemmORes!.kernel.consts).toEqual({ PREFETCH_AHEAD: 4, STAGE_GROUPS: 4 });
    expect(relErr(ampere.prefill(prompt, 0), wideStages.prefill(prompt, 0))).toBeLessThan(1e-3);
    // Gate/up cut (prefillGateUpWave 24): 6 of the 8 blocks of 64 outputs fill one wave at a full
    // chunk of 4 token blocks; the other 2 blocks go in 24 / 8 = 3 splits of K. At 12 the other 2
    // would fit only 1 split: no cut. The same values up to the grouping of f32 sums.
    const cut = new KernelLlama(createCpuDevice(), syntheticQ4(wide, 3), {
      format: "q4f16_1",
      opChoices: { ...CUDA_OP_CHOICES, prefillGateUpWave: 24 },
    });
    const c2 = cut.ops.prefill;
    expect([
      c2.gemmGateUpSilu!.kernel.consts?.OUT_TO,
      c2.gemmGateUpSplitK!.kernel.consts?.OUT_FROM,
      c2.gemmGateUpSplitK!.specialize,
    ]).toEqual([384, 384, expect.objectContaining({ s: 3, p: 128 })]);
    expect([gateUpCut(512, 12), gateUpCut(11008, 132), gateUpCut(11008, undefined)]).toEqual([
      { outputs: 0, splits: 1 },
      { outputs: 10560, splits: 4 },
      { outputs: 0, splits: 1 },
    ]);
    expect(h.gemmGateUpSplitK).toBeUndefined(); // 132 a wave: no cut of 8 blocks fills whole waves
    expect(relErr(hopper.prefill(prompt, 0), cut.prefill(prompt, 0))).toBeLessThan(2e-3);
    expect(() => llamaOps(config, "q4f16_1", {}, { ...CUDA_OP_CHOICES, prefillGateUpWave: 0 })).toThrow(
      /prefillGateUpWave must be a positive whole number of blocks, got 0/,
    );
    for (let p = 40; p < 44; p++) {
      const want = base.decode(p % 40, p).slice();
      const got = cuda.decode(p % 40, p).slice();
      expect(relErr(want, got)).toBeLessThan(2e-3);
      expect(relErr(want, unfolded.decode(p % 40, p))).toBeLessThan(2e-3);
      expect(relErr(want, fusedRope.decode(p % 40, p))).toBeLessThan(2e-3);
      // The same sums, roundings and rotations as the GEMV then ropeHalfAppend: bit for bit.
      expect(Array.from(ropeApart.decode(p % 40, p))).toEqual(Array.from(got));
    }
  });
});

describe("decode attention combined by the last split's block (decodeAttention splitLast)", () => {
  test("the same logits as the split attention and its combining launch, step after step", () => {
    const config = { ...TINY_GQA, dim: 256, hiddenDim: 512, vocabSize: 64, contextLength: 80 };
    const model = (decodeAttention: "split" | "splitLast") =>
      new KernelLlama(createCpuDevice(), syntheticQ4(config, 5), {
        format: "q4f16_1",
        opChoices: { ...CUDA_OP_CHOICES, prefillGemm: "mma", decodeAttention },
      });
    const [split, last] = [model("split"), model("splitLast")];
    expect(last.ops.decode.attentionSplitLast!.kernel.name).toBe("attentionDecodeSplitLast");
    expect([last.ops.decode.attentionSplit, last.ops.decode.attentionCombine]).toEqual([
      undefined,
      undefined,
    ]);
    // A step with one position (three splits empty), then steps past the first split's 32.
    expect(Array.from(last.decode(1, 0))).toEqual(Array.from(split.decode(1, 0)));
    const prompt = Array.from({ length: 35 }, (_, i) => (i * 5 + 2) % config.vocabSize);
    last.prefill(prompt, 1);
    split.prefill(prompt, 1);
    for (let p = 36; p < 39; p++) {
      const token = (p * 5 + 1) % config.vocabSize;
      expect(Array.from(last.decode(token, p)), `position ${p}`).toEqual(Array.from(split.decode(token, p)));
    }
  });
});

describe("synthetic f16 weights (the 7B f16 benchmark's)", () => {
  test("load as raw f16 bits and give the logits the f32 path gives", () => {
    // Two sources of one seed: each draws its tiles from its own random stream.
    const raw = new KernelLlama(createCpuDevice(), syntheticF16(TINY_GQA, 5), { format: "f16" });
    const src = syntheticF16(TINY_GQA, 5);
    const viaF32 = new KernelLlama(createCpuDevice(), { ...src, matrixF16: undefined }, { format: "f16" });
    const a = raw.decode(3, 0);
    const b = viaF32.decode(3, 0);
    expect(a.length).toBe(TINY_GQA.vocabSize);
    expect(a.some((v) => v !== 0)).toBe(true);
    expect(Array.from(a)).toEqual(Array.from(b));
  });
});

describe("per-layer tensors in shared buffers (sharedLayerBuffers)", () => {
  /** The CPU device, noting the tensors it allocates and, while `noting`, the views into them. */
  function countingDevice() {
    const d = createCpuDevice();
    const allocated: DeviceTensor[] = [];
    const viewBytes = new Map<DeviceTensor, number[]>();
    const noted = { noting: true };
    const device: Device = {
      ...d,
      tensor(dtype, shape) {
        const t = d.tensor(dtype, shape);
        allocated.push(t);
        return t;
      },
      view(t, shape, offset = 0) {
        if (noted.noting) viewBytes.set(t, [...(viewBytes.get(t) ?? []), offset * bytesOf(t.dtype)]);
        return d.view(t, shape, offset);
      },
    };
    return { device, allocated, viewBytes, noted };
  }

  test.each(["q4f16_1", "f32"] as const)(
    "%s: the same logits and greedy tokens as a tensor a layer; a handful of tensors, views at 256-byte multiples",
    (format) => {
      // 5 layers: while the model is built, a shared tensor gets 5 views, an activation 3 at most.
      const config = { ...TINY_GQA, vocabSize: 64, contextLength: 40, nLayers: 5 };
      // A source each: syntheticQ4 draws its weights as they are asked for.
      const src = () => (format === "q4f16_1" ? syntheticQ4(config, 11) : randomWeights(config, 11));
      const separate = countingDevice();
      const shared = countingDevice();
      const a = new KernelLlama(separate.device, src(), { format });
      const b = new KernelLlama(shared.device, src(), { format, sharedLayerBuffers: true });
      shared.noted.noting = false;
      // 4 matrices (2 tensors each in q4f16_1), 2 norms and 2 caches a layer.
      const perLayer = format === "q4f16_1" ? 12 : 8;
      expect(separate.allocated.length - shared.allocated.length).toBe(perLayer * (config.nLayers - 1));
      const slabs = shared.allocated.filter((t) => (shared.viewBytes.get(t) ?? []).length === config.nLayers);
      expect(slabs.length).toBe(perLayer);
      for (const t of slabs)
        expect(shared.viewBytes.get(t)!.filter((o) => o % VIEW_ALIGN_BYTES !== 0)).toEqual([]);
      expect(Array.from(b.decode(3, 0))).toEqual(Array.from(a.decode(3, 0)));
      const prompt = [5, 9, 2, 7];
      b.prefill(prompt, 1);
      a.prefill(prompt, 1);
      expect(Array.from(b.decode(4, 5))).toEqual(Array.from(a.decode(4, 5)));
      expect(Array.from(b.decodeGreedy(6, 6, 4))).toEqual(Array.from(a.decodeGreedy(6, 6, 4)));
    },
  );

  test("the step's token, position and length sit at view-aligned offsets too", () => {
    for (const word of [STEP_TOKEN, STEP_POS, STEP_LEN]) expect((word * 4) % VIEW_ALIGN_BYTES).toBe(0);
  });

  test("a kind too large for one buffer is refused with what to do", () => {
    const d = createCpuDevice();
    const small: Device = {
      ...d,
      tensor(dtype, shape) {
        if (shape.reduce((x, y) => x * y, 1) > 100_000) throw new Error("buffer too large for this device");
        return d.tensor(dtype, shape);
      },
    };
    const config = { ...TINY_GQA, vocabSize: 64, contextLength: 40, nLayers: 40, hiddenDim: 1024 };
    expect(
      () => new KernelLlama(small, syntheticQ4(config, 1), { format: "q4f16_1", sharedLayerBuffers: true }),
    ).toThrow(
      /sharedLayerBuffers: the gateUp\.packed tensors of all 40 layers \(\d+ bytes\) do not fit one buffer on cpu.*build the model without sharedLayerBuffers \(buffer too large/,
    );
  });
});
