/**
 * A plain-TypeScript Llama forward pass on float32 weights: no kernels, no compiler. It is the
 * oracle that the kernel-built model is compared against, so it favours being obviously right over
 * being fast; it is still written with typed arrays and tight loops so that stories15M decodes at
 * interactive speed on one core.
 *
 * Per token and layer: RMSNorm, q/k/v projections, rotary embedding of q and k (either layout),
 * keys and values appended to the KV cache, causal attention where each group of
 * nHeads / nKvHeads query heads shares one key/value head, output projection and residual, then
 * RMSNorm and the SwiGLU feed-forward w2(silu(w1 x) * w3 x) and residual; finally RMSNorm and the
 * classifier. Activations live in float32 arrays like the weights; dot products accumulate in
 * float64 (JavaScript numbers), which is at least as accurate as llama2.c's float32 sums.
 */
import { type LlamaConfig, headDim, kvDim } from "./config.ts";
import type { LanguageModel } from "./generate.ts";
import type { LlamaWeights } from "./weights/types.ts";
import { validateWeights } from "./weights/validate.ts";

export interface ReferenceOptions {
  /** Hold fewer positions than config.contextLength in the KV cache (saves memory for big models). */
  readonly contextLength?: number;
}

export class ReferenceLlama implements LanguageModel {
  readonly config: LlamaConfig;
  private readonly w: LlamaWeights;
  private readonly hd: number;
  private readonly kvd: number;
  /** Per layer, [contextLength, kvDim]. */
  private readonly keyCache: Float32Array[];
  private readonly valueCache: Float32Array[];
  /** How many positions of the KV cache hold valid keys and values. */
  private cached = 0;
  /** theta^(-2i/headDim) for i < headDim/2: the rotation speed of each pair. */
  private readonly invFreq: Float64Array;
  private readonly cos: Float64Array;
  private readonly sin: Float64Array;
  // scratch activations, reused by every call
  private readonly x: Float32Array;
  private readonly xb: Float32Array;
  private readonly xb2: Float32Array;
  private readonly q: Float32Array;
  private readonly k: Float32Array;
  private readonly v: Float32Array;
  private readonly hb: Float32Array;
  private readonly hb2: Float32Array;
  private readonly att: Float64Array;
  private readonly logits: Float32Array;

  constructor(weights: LlamaWeights, options: ReferenceOptions = {}) {
    this.w = validateWeights(weights);
    const c = weights.config;
    const ctx = options.contextLength ?? c.contextLength;
    if (!Number.isInteger(ctx) || ctx <= 0 || ctx > c.contextLength)
      throw new Error(`contextLength ${ctx} must be an integer in 1..${c.contextLength} (the model's)`);
    this.config = ctx === c.contextLength ? c : { ...c, contextLength: ctx };
    this.hd = headDim(c);
    this.kvd = kvDim(c);
    this.keyCache = Array.from({ length: c.nLayers }, () => new Float32Array(ctx * this.kvd));
    this.valueCache = Array.from({ length: c.nLayers }, () => new Float32Array(ctx * this.kvd));
    const half = this.hd / 2;
    this.invFreq = new Float64Array(half);
    for (let i = 0; i < half; i++) this.invFreq[i] = Math.pow(c.ropeTheta, (-2 * i) / this.hd);
    this.cos = new Float64Array(half);
    this.sin = new Float64Array(half);
    this.x = new Float32Array(c.dim);
    this.xb = new Float32Array(c.dim);
    this.xb2 = new Float32Array(c.dim);
    this.q = new Float32Array(c.dim);
    this.k = new Float32Array(this.kvd);
    this.v = new Float32Array(this.kvd);
    this.hb = new Float32Array(c.hiddenDim);
    this.hb2 = new Float32Array(c.hiddenDim);
    this.att = new Float64Array(ctx);
    this.logits = new Float32Array(c.vocabSize);
  }

  reset(): void {
    this.cached = 0;
  }

  /** Runs tokens at positions startPos.. and returns the logits after the last one. */
  prefill(tokens: readonly number[], startPos: number): Float32Array {
    if (tokens.length === 0) throw new Error("prefill needs at least one token");
    for (let i = 0; i < tokens.length; i++) this.step(tokens[i], startPos + i, i === tokens.length - 1);
    return this.logits;
  }

  decode(token: number, pos: number): Float32Array {
    this.step(token, pos, true);
    return this.logits;
  }

  /** One token through the model; the returned array is overwritten by the next call. */
  forward(token: number, pos: number): Float32Array {
    return this.decode(token, pos);
  }

  private step(token: number, pos: number, wantLogits: boolean): void {
    const c = this.config;
    if (!Number.isInteger(token) || token < 0 || token >= c.vocabSize)
      throw new Error(`token id ${token} is outside the vocabulary (0..${c.vocabSize - 1})`);
    if (!Number.isInteger(pos) || pos < 0 || pos >= c.contextLength)
      throw new Error(`position ${pos} is outside the context (0..${c.contextLength - 1})`);
    // Attention reads positions 0..pos, so all earlier ones must already be in the cache.
    if (pos > this.cached)
      throw new Error(`position ${pos} skips ahead: the KV cache holds positions 0..${this.cached - 1}`);
    const { dim, hiddenDim } = c;
    const x = this.x;
    x.set(this.w.tokenEmbedding.subarray(token * dim, (token + 1) * dim));
    this.setRotation(pos);
    for (let l = 0; l < c.nLayers; l++) {
      const lw = this.w.layers[l];
      rmsNorm(this.xb, x, lw.attnNorm, c.normEps);
      matVec(this.q, lw.wq, this.xb, dim, dim);
      matVec(this.k, lw.wk, this.xb, this.kvd, dim);
      matVec(this.v, lw.wv, this.xb, this.kvd, dim);
      this.rotate(this.q);
      this.rotate(this.k);
      this.keyCache[l].set(this.k, pos * this.kvd);
      this.valueCache[l].set(this.v, pos * this.kvd);
      this.attention(l, pos);
      matVec(this.xb2, lw.wo, this.xb, dim, dim);
      for (let i = 0; i < dim; i++) x[i] += this.xb2[i];

      rmsNorm(this.xb, x, lw.ffnNorm, c.normEps);
      matVec(this.hb, lw.w1, this.xb, hiddenDim, dim);
      matVec(this.hb2, lw.w3, this.xb, hiddenDim, dim);
      for (let i = 0; i < hiddenDim; i++) {
        const g = this.hb[i];
        this.hb[i] = (g / (1 + Math.exp(-g))) * this.hb2[i];
      }
      matVec(this.xb, lw.w2, this.hb, dim, hiddenDim);
      for (let i = 0; i < dim; i++) x[i] += this.xb[i];
    }
    this.cached = pos + 1;
    if (!wantLogits) return;
    rmsNorm(x, x, this.w.finalNorm, c.normEps);
    matVec(this.logits, this.w.classifier, x, c.vocabSize, dim);
  }

  private setRotation(pos: number): void {
    for (let i = 0; i < this.invFreq.length; i++) {
      const angle = pos * this.invFreq[i];
      this.cos[i] = Math.cos(angle);
      this.sin[i] = Math.sin(angle);
    }
  }

  /** Rotary embedding of every head in `vec`: pair i of a head turns by pos * invFreq[i]. */
  private rotate(vec: Float32Array): void {
    const hd = this.hd;
    const half = hd / 2;
    // Pair i is (2i, 2i+1) in Meta's layout, (i, i + hd/2) in Hugging Face's.
    const interleaved = this.config.ropeLayout === "interleaved";
    for (let h = 0; h < vec.length; h += hd) {
      for (let i = 0; i < half; i++) {
        const a = interleaved ? h + 2 * i : h + i;
        const b = interleaved ? a + 1 : a + half;
        const v0 = vec[a];
        const v1 = vec[b];
        vec[a] = v0 * this.cos[i] - v1 * this.sin[i];
        vec[b] = v0 * this.sin[i] + v1 * this.cos[i];
      }
    }
  }

  /** Causal attention of this.q over cached positions 0..pos of layer l, into this.xb. */
  private attention(l: number, pos: number): void {
    const { nHeads, nKvHeads } = this.config;
    const hd = this.hd;
    const kvd = this.kvd;
    const group = nHeads / nKvHeads;
    const keys = this.keyCache[l];
    const values = this.valueCache[l];
    const att = this.att;
    const scale = 1 / Math.sqrt(hd);
    const q = this.q;
    const out = this.xb;
    for (let h = 0; h < nHeads; h++) {
      const qo = h * hd;
      const kvo = Math.floor(h / group) * hd;
      let max = -Infinity;
      for (let t = 0; t <= pos; t++) {
        const ko = t * kvd + kvo;
        let s = 0;
        for (let i = 0; i < hd; i++) s += q[qo + i] * keys[ko + i];
        s *= scale;
        att[t] = s;
        if (s > max) max = s;
      }
      let sum = 0;
      for (let t = 0; t <= pos; t++) sum += att[t] = Math.exp(att[t] - max);
      out.fill(0, qo, qo + hd);
      for (let t = 0; t <= pos; t++) {
        const a = att[t] / sum;
        const vo = t * kvd + kvo;
        for (let i = 0; i < hd; i++) out[qo + i] += a * values[vo + i];
      }
    }
  }
}

/** out[i] = x[i] * w[i] / sqrt(mean(x^2) + eps); out may be x. */
function rmsNorm(out: Float32Array, x: Float32Array, w: Float32Array, eps: number): void {
  let ss = 0;
  for (let i = 0; i < x.length; i++) ss += x[i] * x[i];
  const r = 1 / Math.sqrt(ss / x.length + eps);
  for (let i = 0; i < x.length; i++) out[i] = w[i] * (r * x[i]);
}

/** out = W x for row-major W [rows, cols]. Four partial sums break the add dependency chain. */
function matVec(out: Float32Array, w: Float32Array, x: Float32Array, rows: number, cols: number): void {
  const tail = cols & ~3;
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    let j = 0;
    for (; j < tail; j += 4) {
      s0 += w[o + j] * x[j];
      s1 += w[o + j + 1] * x[j + 1];
      s2 += w[o + j + 2] * x[j + 2];
      s3 += w[o + j + 3] * x[j + 3];
    }
    for (; j < cols; j++) s0 += w[o + j] * x[j];
    out[r] = s0 + s1 + s2 + s3;
  }
}
