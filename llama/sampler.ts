/**
 * Token sampling as llama2.c's run.c does it: greedy argmax at temperature 0, otherwise softmax of
 * logits / temperature, then either plain multinomial sampling (topP <= 0 or >= 1) or nucleus
 * (top-p) sampling.
 *
 * The random numbers come from llama2.c's own generator, xorshift64* (Marsaglia's xorshift with
 * shifts 12, 25, 27, then multiplied by 0x2545F4914F6CDD1D; the high 32 bits are the output) and a
 * float in [0, 1) is the top 24 of those bits / 2^24. Using the same generator means that given the
 * same logits and seed, we pick what llama2.c picks. The 64-bit state is two uint32 halves: BigInt
 * would allocate on every draw.
 */

/** llama2.c's xorshift64* generator. */
export class XorShift64Star {
  private hi: number;
  private lo: number;

  /**
   * `seed` is an integer (0 <= seed < 2^53). State 0 is a fixed point of xorshift (it would only ever
   * yield 0), so seed 0 is replaced by the golden-ratio constant 0x9E3779B97F4A7C15.
   */
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed) || seed < 0)
      throw new Error(`sampler seed must be an integer in 0..2^53-1, got ${seed}`);
    if (seed === 0) {
      this.hi = 0x9e3779b9;
      this.lo = 0x7f4a7c15;
    } else {
      this.hi = Math.floor(seed / 2 ** 32) >>> 0;
      this.lo = seed >>> 0;
    }
  }

  /** Next 32-bit output (llama2.c's random_u32). */
  nextU32(): number {
    let hi = this.hi;
    let lo = this.lo;
    // state ^= state >> 12
    lo = (lo ^ ((lo >>> 12) | (hi << 20))) >>> 0;
    hi = (hi ^ (hi >>> 12)) >>> 0;
    // state ^= state << 25
    hi = (hi ^ ((hi << 25) | (lo >>> 7))) >>> 0;
    lo = (lo ^ (lo << 25)) >>> 0;
    // state ^= state >> 27
    lo = (lo ^ ((lo >>> 27) | (hi << 5))) >>> 0;
    hi = (hi ^ (hi >>> 27)) >>> 0;
    this.hi = hi;
    this.lo = lo;
    return mulHigh32(hi, lo);
  }

  /** Uniform float in [0, 1) with 24 bits (llama2.c's random_f32). */
  nextFloat(): number {
    return (this.nextU32() >>> 8) / 16777216;
  }
}

/** Bits 32..63 of the 64-bit product (hi:lo) * 0x2545F4914F6CDD1D, in 16-bit limbs to stay exact. */
function mulHigh32(hi: number, lo: number): number {
  const a = [lo & 0xffff, lo >>> 16, hi & 0xffff, hi >>> 16];
  const b = [0x4f6cdd1d & 0xffff, 0x4f6cdd1d >>> 16, 0x2545f491 & 0xffff, 0x2545f491 >>> 16];
  // Limbs 0..3 of the product modulo 2^64; each column sum stays far below 2^53.
  const limb = [0, 0, 0, 0];
  let carry = 0;
  for (let k = 0; k < 4; k++) {
    let sum = carry;
    for (let i = 0; i <= k; i++) sum += a[i] * b[k - i];
    limb[k] = sum % 65536;
    carry = Math.floor(sum / 65536);
  }
  return (limb[2] | (limb[3] << 16)) >>> 0;
}

export interface SamplerOptions {
  /** 0 means greedy. */
  readonly temperature: number;
  /** Nucleus mass in (0, 1); values <= 0 or >= 1 sample from the whole distribution. */
  readonly topP: number;
  readonly seed: number;
}

/** Index of the largest value; the lowest index wins ties. Throws on NaN (a broken model). */
export function argmax(logits: Float32Array): number {
  let best = 0;
  let bestVal = -Infinity;
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i];
    if (v > bestVal) {
      bestVal = v;
      best = i;
    } else if (v !== v) throw new Error(`logits[${i}] is NaN`);
  }
  return best;
}

export class Sampler {
  private readonly rng: XorShift64Star;
  private probs = new Float32Array(0);
  private order = new Int32Array(0);

  constructor(readonly options: SamplerOptions) {
    const { temperature, topP } = options;
    if (!(temperature >= 0) || !Number.isFinite(temperature))
      throw new Error(`temperature must be a finite number >= 0, got ${temperature}`);
    if (!Number.isFinite(topP)) throw new Error(`topP must be a finite number, got ${topP}`);
    this.rng = new XorShift64Star(options.seed);
  }

  /** Picks the next token. Leaves `logits` untouched (a model may hand out its own buffer). */
  sample(logits: Float32Array): number {
    const { temperature, topP } = this.options;
    if (temperature === 0) return argmax(logits);
    const n = logits.length;
    if (this.probs.length !== n) {
      this.probs = new Float32Array(n);
      this.order = new Int32Array(n);
    }
    const p = this.probs;
    // softmax(logits / temperature) in float32, as llama2.c computes it
    let max = -Infinity;
    for (let i = 0; i < n; i++) {
      const v = (p[i] = logits[i] / temperature);
      if (v > max) max = v;
      else if (v !== v) throw new Error(`logits[${i}] is NaN`);
    }
    let sum = 0;
    for (let i = 0; i < n; i++) sum += p[i] = Math.exp(p[i] - max);
    for (let i = 0; i < n; i++) p[i] /= sum;
    const coin = this.rng.nextFloat();
    return topP <= 0 || topP >= 1 ? sampleMultinomial(p, coin) : this.sampleTopP(p, topP, coin);
  }

  /**
   * Samples from the smallest set of most likely tokens whose mass exceeds topP. Tokens below
   * (1 - topP) / (n - 1) cannot be in that set, so they are dropped before sorting (llama2.c's trick).
   */
  private sampleTopP(p: Float32Array, topP: number, coin: number): number {
    const n = p.length;
    const cutoff = (1 - topP) / (n - 1);
    let n0 = 0;
    for (let i = 0; i < n; i++) if (p[i] >= cutoff) this.order[n0++] = i;
    // Most likely first; equal probabilities keep index order (the sort is stable).
    const cand = Array.from(this.order.subarray(0, n0)).sort((a, b) => p[b] - p[a]);
    let cumulative = 0;
    let last = n0 - 1;
    for (let i = 0; i < n0; i++) {
      cumulative += p[cand[i]];
      if (cumulative > topP) {
        last = i;
        break;
      }
    }
    const r = coin * cumulative;
    let cdf = 0;
    for (let i = 0; i <= last; i++) {
      cdf += p[cand[i]];
      if (r < cdf) return cand[i];
    }
    return cand[last];
  }
}

/** Samples index i with probability p[i]; rounding leftovers go to the last index. */
export function sampleMultinomial(p: Float32Array, coin: number): number {
  let cdf = 0;
  for (let i = 0; i < p.length; i++) {
    cdf += p[i];
    if (coin < cdf) return i;
  }
  return p.length - 1;
}
