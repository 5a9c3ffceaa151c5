/**
 * The Llama model assembled from stdlib kernels, on any Device: weights uploaded once in the
 * chosen format, activation buffers planned once and reused, the KV cache on the device, decode
 * as one recorded launch sequence (a CUDA graph on NVIDIA) whose per-step values (token id,
 * position) live in device memory, and prefill through GEMM kernels.
 */
import { fromF16Array, toF16Array } from "../dsl/dtypes.ts";
import { headDim, kvDim, validateConfig, type LlamaConfig } from "./config.ts";
import { checkedGreedyTokens, type LanguageModel } from "./generate.ts";
import type { LlamaWeights } from "./weights/types.ts";
import { fromLlamaWeights, type WeightSource } from "./weights/source.ts";
import { placeWeights } from "./model-weights.ts";
import type { Device, DeviceTensor, Op, OpSpec, Recording } from "./device/types.ts";
import {
  decodeLaunches,
  logitsLaunches,
  type LaunchContext,
  type Layer,
  type Matrix,
} from "./decode-launches.ts";
import { llamaOps, type LlamaOps, type ScheduleTable, type WeightFormat } from "./ops.ts";
import { type OpChoices } from "./op-choices.ts";
import { STEP_LEN, STEP_POS, STEP_TOKEN, STEP_WORDS, stepWords } from "../stdlib/sampling.ts";

export interface KernelLlamaOptions {
  readonly format: WeightFormat;
  /**
   * Tokens per prefill launch (default 512); longer prompts go in chunks. Each chunk reads every
   * weight once, so larger chunks fill the GEMMs' tiles (128 rows for the tensor-core GEMM) better.
   */
  readonly prefillChunk?: number;
  readonly contextLength?: number;
  readonly schedules?: ScheduleTable;
  /** Per-target kernel choices; must match the library's (default: the device's `opChoices`). */
  readonly opChoices?: OpChoices;
  /** Record decode once and replay it (default: true on GPUs). */
  readonly recordDecode?: boolean;
  /**
   * Greedy steps a decodeGreedy call runs back to back when the caller wants many (default:
   * GREEDY_STEPS on GPUs with the embedding on the device, 1 elsewhere).
   */
  readonly greedySteps?: number;
  /**
   * Greedy steps one recording holds (one CUDA graph; default greedySteps): inside a graph each
   * step's first kernel launches early (programmatic launch); a new graph waits for the last. 1
   * records each step alone.
   */
  readonly greedyGraphSteps?: number;
  /**
   * Each kind of per-layer tensor (a weight matrix's codes or scales, a norm's weights, the key or
   * value cache) in one device tensor for all layers, each layer's a view at a multiple of
   * VIEW_ALIGN_BYTES (llama/device/types.ts; true), instead of a tensor a layer (false, the default): a handful of
   * buffers instead of hundreds. Measured on an H200 through NVIDIA's Vulkan driver, not faster:
   * the 7B decode step's GPU time was the same as with a tensor a layer, with or without the
   * runtime's dynamic offsets (13 descriptor sets a step instead of 230;
   * bench/results/vulkan-layout-ab-h200.json).
   */
  readonly sharedLayerBuffers?: boolean;
}

/**
 * Greedy steps run back to back per host wait on GPUs: each wait costs the GPU about 50 µs idle
 * (the host reads the tokens, then launches again; Llama-2-7B, H100 and H200), which 8 steps
 * share; tokens then reach a streaming caller 8 at a time.
 */
export const GREEDY_STEPS = 8;

export class KernelLlama implements LanguageModel {
  readonly config: LlamaConfig;
  /** The compiled operations this model runs (kernel choices included). */
  readonly ops: LlamaOps;
  private readonly compiled = new Map<string, Op>();
  private readonly layers: Layer[] = [];
  private readonly act: Record<string, DeviceTensor> = {};
  private readonly embedQ4?: Matrix;
  private readonly embedHost?: Float32Array;
  private readonly finalNorm: DeviceTensor;
  private readonly lmHead: Matrix;
  private readonly chunk: number;
  private decodeRecording?: Recording;
  private greedyRecording?: Recording;
  /** greedySteps steps in one recording (one CUDA graph), so that only every greedySteps-th step
   * starts a graph: inside one, each step's first kernel launches early (programmatic launch). */
  private greedyBatchRecording?: Recording;
  private prefillBuffers?: { t: number; bufs: Record<string, DeviceTensor> };

  constructor(
    private readonly device: Device,
    weights: LlamaWeights | WeightSource,
    private readonly options: KernelLlamaOptions,
  ) {
    const src: WeightSource = "matrixQ4" in weights ? weights : fromLlamaWeights(weights);
    const c = { ...src.config, contextLength: options.contextLength ?? src.config.contextLength };
    this.config = validateConfig(c);
    if (options.format === "q4f16_1" && (c.dim % 32 !== 0 || c.hiddenDim % 32 !== 0))
      throw new Error(
        `tkc: q4f16_1 needs dim and hiddenDim to be multiples of 32 (got ${c.dim}, ${c.hiddenDim})`,
      );
    for (const k of ["greedySteps", "greedyGraphSteps", "prefillChunk"] as const) {
      const v = options[k];
      if (v !== undefined && !(Number.isInteger(v) && v >= 1))
        throw new RangeError(`tkc: the model option ${k} must be a whole number of at least 1, got ${v}`);
    }
    this.ops = llamaOps(c, options.format, options.schedules, options.opChoices ?? device.opChoices);
    this.chunk = options.prefillChunk ?? 512;
    const d = device;
    const fmt = options.format;
    const actDtype = fmt === "f32" ? "f32" : "f16";
    const placed = placeWeights(d, src, c, fmt, options.sharedLayerBuffers ?? false);
    this.layers.push(...placed.layers);
    this.finalNorm = placed.finalNorm;
    this.lmHead = placed.lmHead;
    if (placed.embedQ4) this.embedQ4 = placed.embedQ4;
    if (placed.embedHost) this.embedHost = placed.embedHost;
    const a = (name: string, shape: number[], dtype: "f16" | "f32" | "i32" = actDtype) =>
      (this.act[name] = d.tensor(dtype, shape));
    // The step's token, position and length in one buffer (one upload a step), each at an offset
    // every device can bind a view at (stdlib/sampling.ts STEP_POS).
    a("step", [STEP_WORDS], "i32");
    this.act.ids = d.view(this.act.step!, [1], STEP_TOKEN);
    this.act.pos = d.view(this.act.step!, [1], STEP_POS);
    this.act.len = d.view(this.act.step!, [1], STEP_LEN);
    a("next", [1], "i32");
    // The tokens greedy decoding chose, by the position of the step that chose them.
    a("history", [c.contextLength], "i32");
    a("x", [1, c.dim]);
    a("xn", [1, c.dim]);
    // q, k and v are views of one buffer, so the fused projection is one plain GEMV.
    a("qkv", [c.dim + 2 * kvDim(c)]);
    this.act.q = d.view(this.act.qkv!, [1, c.nHeads, headDim(c)], 0);
    // Rotated q (the rotated k goes straight into the cache: ropeHalfAppend/ropeInterleavedAppend).
    a("qr", [1, c.nHeads, headDim(c)]);
    this.act.k = d.view(this.act.qkv!, [1, c.nKvHeads, headDim(c)], c.dim);
    this.act.v = d.view(this.act.qkv!, [1, c.nKvHeads, headDim(c)], c.dim + kvDim(c));
    a("attn", [c.nHeads, headDim(c)]);
    // Split decode attention's partial results, as many splits as its op was compiled for.
    const split = this.ops.decode.attentionSplit ?? this.ops.decode.attentionSplitLast;
    const splits = split?.specialize?.splits ?? 1;
    a("partAcc", [c.nHeads, splits, headDim(c)], "f32");
    a("partMax", [c.nHeads, splits], "f32");
    a("partSum", [c.nHeads, splits], "f32");
    // attentionDecodeSplitLast's counters: 0 before its first launch, and after each.
    if (this.ops.decode.attentionSplitLast) {
      a("splitCount", [c.nHeads], "i32");
      d.write(this.act.splitCount!, new Int32Array(c.nHeads));
    }
    a("h", [c.hiddenDim]);
    a("logits", [c.vocabSize], fmt === "f16" ? "f16" : "f32");
  }

  private op(spec: OpSpec): Op {
    let o = this.compiled.get(spec.key);
    if (!o) this.compiled.set(spec.key, (o = this.device.op(spec)));
    return o;
  }

  private run(spec: OpSpec, args: Record<string, DeviceTensor | number>): void {
    this.device.run(this.op(spec), args);
  }

  reset(): void {
    // The cache needs no clearing: attention reads positions below the current one only.
    this.greedyEnd = undefined;
  }

  /** Rows [from, from + count) of a matrix, as the views a GEMM/GEMV takes. */
  private rows(m: Matrix, from: number, count: number): Record<string, DeviceTensor> {
    const d = this.device;
    if (m.packed)
      return {
        packed: d.view(m.packed, [count, m.k / 8], from * (m.k / 8)),
        scales: d.view(m.scales!, [count, m.k / 32], from * (m.k / 32)),
      };
    return { w: d.view(m.w!, [count, m.k], from * m.k) };
  }

  /** What the launch sequences (decode-launches.ts) read of the model. */
  private get launchContext(): LaunchContext {
    return (this.launches ??= {
      config: this.config,
      ops: this.ops,
      device: this.device,
      act: this.act,
      layers: this.layers,
      ...(this.embedQ4 ? { embedQ4: this.embedQ4 } : {}),
      finalNorm: this.finalNorm,
      lmHead: this.lmHead,
      run: (spec, args) => this.run(spec, args),
    });
  }
  private launches?: LaunchContext;

  private setStep(token: number, pos: number): void {
    const c = this.config;
    if (!Number.isInteger(token) || token < 0 || token >= c.vocabSize)
      throw new RangeError(`tkc: token ${token} is outside the vocabulary of ${c.vocabSize}`);
    if (pos < 0 || pos >= c.contextLength)
      throw new RangeError(`tkc: position ${pos} is outside the context of ${c.contextLength}`);
    const d = this.device;
    d.write(this.act.step!, stepWords(token, pos, pos + 1));
    if (this.embedHost) {
      const row = this.embedHost.subarray(token * c.dim, (token + 1) * c.dim);
      d.write(this.act.x!, this.options.format === "f16" ? toF16Array(row) : row);
    }
  }

  private readLogits(): Float32Array {
    const raw = this.device.read(this.act.logits!);
    if (raw instanceof Float32Array) return raw;
    return fromF16Array(raw as Uint16Array);
  }

  decode(token: number, pos: number): Float32Array {
    this.greedyEnd = undefined;
    this.setStep(token, pos);
    if (this.recordsDecode) {
      this.decodeRecording ??= this.device.record(() => decodeLaunches(this.launchContext));
      this.decodeRecording.replay();
    } else decodeLaunches(this.launchContext);
    this.device.sync();
    return this.readLogits();
  }

  /**
   * Greedy decoding on the device: runs `token` at `pos`, then `steps - 1` more steps each fed the
   * token the one before chose (the argmax of its logits, the first on ties), and returns the
   * `steps` tokens chosen; only token ids leave the device. With the embedding table on the device
   * (q4f16_1) the steps run back to back, each advancing the next one's token, position and length
   * itself (stdlib recordToken), and the host waits once for all of them; otherwise (the host
   * uploads f16 and f32 models' embedding rows) it waits for each. `greedySteps` is how many a
   * call should run when the caller wants many.
   */
  decodeGreedy(token: number, pos: number, steps = 1): Int32Array {
    return Int32Array.from(
      checkedGreedyTokens(this.enqueueGreedy(token, pos, steps)(), pos, this.config.vocabSize),
    );
  }

  /**
   * decodeGreedy without the wait: enqueues the steps and returns a function that waits for their
   * tokens (unchecked: -1 where the logits held a NaN; checkedGreedyTokens), which must be called
   * once they are no longer wanted too, so that the read's resources return to the device. With
   * `token` undefined the steps continue those enqueued last, which must end at `pos`: the device
   * carries their last choice, position and length over, so the host enqueues the next steps
   * before it reads the last ones' tokens and the GPU never idles between them (`greedyAhead`).
   * Steps after a stop token are wasted, and the cache positions they wrote are rewritten before
   * anything reads them.
   */
  enqueueGreedy(token: number | undefined, pos: number, steps = 1): () => Int32Array {
    const c = this.config;
    if (!Number.isInteger(steps) || steps < 1 || pos + steps > c.contextLength)
      throw new RangeError(
        `tkc: ${steps} greedy steps from position ${pos} do not fit the context of ${c.contextLength}`,
      );
    if (token === undefined && this.greedyEnd !== pos)
      throw new Error(
        `tkc: greedy steps continue from position ${pos}, but the last ones enqueued ${this.greedyEnd === undefined ? "were followed by other work" : `end at ${this.greedyEnd}`}; pass the token`,
      );
    const o = this.ops.decode;
    const A = this.act;
    const d = this.device;
    const launches = () => {
      decodeLaunches(this.launchContext);
      this.run(o.argmax!, { logits: d.view(A.logits!, [1, c.vocabSize]), out: A.next! });
      this.run(o.recordToken!, { next: A.next!, step: A.step!, history: A.history! });
    };
    const runStep = () => {
      if (this.recordsDecode) (this.greedyRecording ??= d.record(launches)).replay();
      else launches();
    };
    const chosen = (from: number, n: number) => d.view(A.history!, [n], from);
    this.greedyEnd = undefined;
    if (this.embedHost) {
      const out = new Int32Array(steps);
      let t = token ?? (d.read(chosen(pos - 1, 1)) as Int32Array)[0]!;
      for (let i = 0; i < steps; i++) {
        this.setStep(t, pos + i);
        runStep();
        t = out[i] = (d.read(chosen(pos + i, 1)) as Int32Array)[0]!;
        if (t < 0) break;
      }
      this.greedyEnd = pos + steps;
      return () => out;
    }
    if (token !== undefined) this.setStep(token, pos);
    let done = 0;
    const per = this.options.greedyGraphSteps ?? this.greedySteps;
    if (this.recordsDecode && per > 1)
      for (; done + per <= steps; done += per)
        (this.greedyBatchRecording ??= d.record(() => {
          for (let i = 0; i < per; i++) launches();
        })).replay();
    for (; done < steps; done++) runStep();
    this.greedyEnd = pos + steps;
    // readLater's storage is the caller's already: no copy.
    const tokens = d.readLater(chosen(pos, steps));
    return () => tokens() as Int32Array;
  }

  /** Where the greedy steps enqueued last end, while nothing else has run after them. */
  private greedyEnd?: number;

  /**
   * Whether a caller should enqueue the next greedy steps before it reads the last ones'
   * (enqueueGreedy): on CUDA, where reading them waits for them alone; the CPU runs each call at
   * once, and the Vulkan device's read waits for everything enqueued.
   */
  get greedyAhead(): boolean {
    return this.device.kind === "cuda" && !this.embedHost;
  }

  /** Whether decode steps are recorded once and replayed (options.recordDecode; GPUs by default). */
  private get recordsDecode(): boolean {
    return this.options.recordDecode ?? this.device.kind !== "cpu";
  }

  /** How many steps a decodeGreedy call should run when more are wanted (see decodeGreedy). */
  get greedySteps(): number {
    return this.options.greedySteps ?? (this.embedHost || this.device.kind === "cpu" ? 1 : GREEDY_STEPS);
  }

  prefill(tokens: readonly number[], startPos: number): Float32Array {
    if (tokens.length === 0) throw new Error("tkc: prefill needs at least one token");
    this.greedyEnd = undefined;
    // Every token through the GEMMs, chunk by chunk, and the logits of the last one only, from the
    // last row of the final chunk (a decode step for it would read every weight once more); a
    // final chunk of one token is a decode step (it needs no prefill kernels).
    for (let i = 0; ; i += this.chunk) {
      const part = tokens.slice(i, i + this.chunk);
      if (i + part.length < tokens.length) this.prefillChunk(part, startPos + i);
      else if (part.length === 1) return this.decode(part[0]!, startPos + i);
      else {
        this.prefillChunk(part, startPos + i);
        return this.prefillLogits(part.length - 1);
      }
    }
  }

  /** The logits of row `row` of the prefill buffers' x. */
  private prefillLogits(row: number): Float32Array {
    const dim = this.config.dim;
    logitsLaunches(this.launchContext, this.device.view(this.prefillBuffers!.bufs.x!, [1, dim], row * dim));
    this.device.sync();
    return this.readLogits();
  }

  /** Runs T tokens through every layer with GEMMs, filling the KV cache (no logits). */
  private prefillChunk(tokens: readonly number[], start: number): void {
    const c = this.config;
    const T = tokens.length;
    const d = this.device;
    const o = this.ops.prefill;
    const hd = headDim(c);
    const kv = kvDim(c);
    const actDtype = this.options.format === "f32" ? "f32" : "f16";
    if (start + T > c.contextLength)
      throw new RangeError(`tkc: ${start + T} tokens exceed the context of ${c.contextLength}`);
    if (!this.prefillBuffers || this.prefillBuffers.t < T) {
      const n = Math.max(T, this.chunk);
      const t = (shape: number[], dtype: "f16" | "f32" | "i32" = actDtype) => d.tensor(dtype, shape);
      this.prefillBuffers = {
        t: n,
        bufs: {
          ids: t([n], "i32"),
          x: t([n, c.dim]),
          xn: t([n, c.dim]),
          q: t([n, c.dim]),
          qr: t([n, c.dim]),
          k: t([n, kv]),
          kr: t([n, kv]),
          v: t([n, kv]),
          attn: t([n, c.dim]),
          tmp: t([n, c.dim]),
          gate: t([n, c.hiddenDim]),
          up: t([n, c.hiddenDim]),
          // gemmGateUpSplitK's f32 sums, [splits, gate/up, tokens, outputs].
          ...(o.gemmGateUpSplitK
            ? {
                part: t(
                  [o.gemmGateUpSplitK.specialize!.s! * 2 * n * o.gemmGateUpSplitK.specialize!.p!],
                  "f32",
                ),
              }
            : {}),
        },
      };
    }
    const B = this.prefillBuffers.bufs;
    const v = (name: string, shape: number[]) => d.view(B[name]!, shape);
    const x = v("x", [T, c.dim]);
    const xn = v("xn", [T, c.dim]);
    if (this.embedQ4) {
      d.write(B.ids!, new Int32Array(tokens));
      this.run(o.embed!, {
        ids: v("ids", [T]),
        packed: this.embedQ4.packed!,
        scales: this.embedQ4.scales!,
        out: x,
      });
    } else {
      const rows = new Float32Array(T * c.dim);
      tokens.forEach((tok, i) =>
        rows.set(this.embedHost!.subarray(tok * c.dim, (tok + 1) * c.dim), i * c.dim),
      );
      d.write(B.x!, actDtype === "f16" ? toF16Array(rows) : rows);
    }
    const gemm = (
      spec: OpSpec,
      input: DeviceTensor,
      m: Matrix,
      from: number,
      count: number,
      out: DeviceTensor,
    ) => this.run(spec, { x: input, ...this.rows(m, from, count), y: out });
    // x += attn Wo^T, and x += SwiGLU(xn) Wdown^T: in the GEMMs' epilogues where fused.
    const addProduct = (
      fused: OpSpec | undefined,
      plain: OpSpec | undefined,
      input: DeviceTensor,
      m: Matrix,
    ) => {
      if (fused) this.run(fused, { x: input, ...this.rows(m, 0, c.dim), residual: x, y: x });
      else {
        gemm(plain!, input, m, 0, c.dim, v("tmp", [T, c.dim]));
        this.run(o.residual!, { a: x, b: v("tmp", [T, c.dim]), y: x });
      }
    };
    for (const L of this.layers) {
      this.run(o.rmsNorm!, { x, w: L.attnNorm, y: xn, eps: c.normEps });
      // Q, K and V rotated and appended to the cache in one launch where fused.
      if (o.gemmQkvRope)
        this.run(o.gemmQkvRope, {
          x: xn,
          ...this.rows(L.qkv, 0, c.dim + 2 * kv),
          qr: v("qr", [T, c.nHeads, hd]),
          kCache: L.kCache,
          vCache: L.vCache,
          start,
          theta: c.ropeTheta,
        });
      else {
        if (o.gemmQKV)
          this.run(o.gemmQKV, {
            x: xn,
            ...this.rows(L.qkv, 0, c.dim + 2 * kv),
            q: v("q", [T, c.dim]),
            k: v("k", [T, kv]),
            v: v("v", [T, kv]),
          });
        else {
          gemm(o.gemmQ!, xn, L.qkv, 0, c.dim, v("q", [T, c.dim]));
          gemm(o.gemmKV!, xn, L.qkv, c.dim, kv, v("k", [T, kv]));
          gemm(o.gemmKV!, xn, L.qkv, c.dim + kv, kv, v("v", [T, kv]));
        }
        this.run(o.ropeQ!, {
          x: v("q", [T, c.nHeads, hd]),
          y: v("qr", [T, c.nHeads, hd]),
          offset: start,
          theta: c.ropeTheta,
        });
        this.run(o.ropeK!, {
          x: v("k", [T, c.nKvHeads, hd]),
          y: v("kr", [T, c.nKvHeads, hd]),
          offset: start,
          theta: c.ropeTheta,
        });
        this.run(o.kvAppend!, {
          k: v("kr", [T, c.nKvHeads, hd]),
          v: v("v", [T, c.nKvHeads, hd]),
          kCache: L.kCache,
          vCache: L.vCache,
          pos: start,
        });
      }
      this.run(o.attention!, {
        q: v("qr", [T, c.nHeads, hd]),
        kCache: L.kCache,
        vCache: L.vCache,
        start,
        out: v("attn", [T, c.nHeads, hd]),
      });
      addProduct(o.gemmORes, o.gemmO, v("attn", [T, c.dim]), L.o);
      this.run(o.rmsNorm!, { x, w: L.ffnNorm, y: xn, eps: c.normEps });
      if (o.gemmGateUpSilu) {
        const args = { x: xn, ...this.rows(L.gateUp, 0, 2 * c.hiddenDim), out: v("gate", [T, c.hiddenDim]) };
        this.run(o.gemmGateUpSilu, args);
        // The outputs past the first launch's whole waves, K split (ops' prefillGateUpWave).
        if (o.gemmGateUpSplitK && o.gateUpSplitReduce) {
          const { s: splits, p } = o.gemmGateUpSplitK.specialize!;
          const partial = v("part", [splits!, 2, T, p!]);
          this.run(o.gemmGateUpSplitK, { ...args, partial });
          this.run(o.gateUpSplitReduce, { partial, out: args.out });
        }
      } else {
        gemm(o.gemmGateUp!, xn, L.gateUp, 0, c.hiddenDim, v("gate", [T, c.hiddenDim]));
        gemm(o.gemmGateUp!, xn, L.gateUp, c.hiddenDim, c.hiddenDim, v("up", [T, c.hiddenDim]));
        this.run(o.siluMul!, {
          gate: v("gate", [T, c.hiddenDim]),
          up: v("up", [T, c.hiddenDim]),
          out: v("gate", [T, c.hiddenDim]),
        });
      }
      addProduct(o.gemmDownRes, o.gemmDown, v("gate", [T, c.hiddenDim]), L.down);
    }
    this.device.sync();
  }

  dispose(): void {
    this.decodeRecording?.dispose();
    this.greedyRecording?.dispose();
    this.greedyBatchRecording?.dispose();
    this.device.dispose();
  }
}
