import { describe, expect, it } from "vitest";
import { Sampler, XorShift64Star, argmax } from "../../llama/sampler.ts";

/** xorshift64* with BigInt, straight from its definition, to check the two-halves version. */
function* bigXorShift(seed: bigint): Generator<number> {
  const mask = (1n << 64n) - 1n;
  let s = seed;
  for (;;) {
    s ^= s >> 12n;
    s = (s ^ (s << 25n)) & mask;
    s ^= s >> 27n;
    yield Number(((s * 0x2545f4914f6cdd1dn) & mask) >> 32n);
  }
}

const take = (n: number, next: () => number) => Array.from({ length: n }, next);

describe("sampler", () => {
  it("xorshift64* matches a BigInt implementation and llama2.c's C output", () => {
    for (const seed of [1, 42, 2 ** 40 + 7, 2 ** 53 - 1, 0xdeadbeef]) {
      const r = new XorShift64Star(seed);
      const big = bigXorShift(BigInt(seed));
      expect(take(1000, () => r.nextU32())).toEqual(take(1000, () => big.next().value));
    }
    // printed by llama2.c's random_u32 compiled with gcc (rng_seed = 42, then 1099511627783)
    const c42 = new XorShift64Star(42);
    expect(take(5, () => c42.nextU32())).toEqual([
      1456360119, 3359763283, 3393612768, 4054632243, 3283045847,
    ]);
    const cBig = new XorShift64Star(1099511627783);
    expect(take(5, () => cBig.nextU32())).toEqual([641214375, 17393913, 3203980007, 3003671026, 4233818523]);
    // seed 0 would stick at 0 forever; it is remapped to a non-zero state
    expect(new XorShift64Star(0).nextU32()).not.toBe(0);
    expect(() => new XorShift64Star(-1)).toThrow("sampler seed must be an integer in 0..2^53-1, got -1");
  });

  it("greedy is argmax with the lowest index winning ties, and catches NaN", () => {
    expect(argmax(Float32Array.of(1, 3, 3, 2))).toBe(1);
    expect(argmax(Float32Array.of(-Infinity, -5, -Infinity))).toBe(1);
    const s = new Sampler({ temperature: 0, topP: 0.9, seed: 1 });
    expect(s.sample(Float32Array.of(0, 7, 1, 7))).toBe(1);
    expect(() => s.sample(Float32Array.of(0, NaN, 1))).toThrow("logits[1] is NaN");
  });

  it("is deterministic for a seed and differs across seeds", () => {
    const logits = Float32Array.from({ length: 100 }, (_, i) => Math.sin(i) * 2);
    const run = (seed: number) => {
      const s = new Sampler({ temperature: 1, topP: 0.95, seed });
      return take(200, () => s.sample(logits));
    };
    expect(run(123)).toEqual(run(123));
    expect(run(123)).not.toEqual(run(124));
  });

  it("does not modify the logits it is given", () => {
    const logits = Float32Array.of(1, 2, 3, 4);
    new Sampler({ temperature: 0.7, topP: 0.5, seed: 3 }).sample(logits);
    expect(logits).toEqual(Float32Array.of(1, 2, 3, 4));
  });

  it("top-p samples only the nucleus, in proportion to probability", () => {
    // probabilities 0.5, 0.3, 0.15, 0.05 (logits = log p at temperature 1)
    const p = [0.5, 0.3, 0.15, 0.05];
    const logits = Float32Array.from(p, Math.log);
    const counts = (topP: number, n: number) => {
      const s = new Sampler({ temperature: 1, topP, seed: 99 });
      const c = [0, 0, 0, 0];
      for (let i = 0; i < n; i++) c[s.sample(logits)]++;
      return c.map((x) => x / n);
    };
    // cumulative mass exceeds 0.75 at the second token: the nucleus is {0, 1}, renormalized 5/8, 3/8
    const f = counts(0.75, 20000);
    expect(f[2] + f[3]).toBe(0);
    expect(f[0]).toBeCloseTo(0.625, 1);
    expect(f[1]).toBeCloseTo(0.375, 1);
    // topP 0.4: the top token alone exceeds it
    expect(counts(0.4, 500)).toEqual([1, 0, 0, 0]);
    // topP 1 turns nucleus sampling off: plain multinomial over all four
    const all = counts(1, 40000);
    p.forEach((q, i) => expect(Math.abs(all[i] - q)).toBeLessThan(0.01));
  });

  it("temperature sharpens and flattens the distribution", () => {
    const logits = Float32Array.of(0, 1);
    const share = (temperature: number) => {
      const s = new Sampler({ temperature, topP: 1, seed: 5 });
      let ones = 0;
      for (let i = 0; i < 20000; i++) ones += s.sample(logits);
      return ones / 20000;
    };
    // P(1) = 1 / (1 + e^(-1/T))
    expect(share(0.25)).toBeCloseTo(1 / (1 + Math.exp(-4)), 1);
    expect(share(4)).toBeCloseTo(1 / (1 + Math.exp(-0.25)), 1);
    expect(() => new Sampler({ temperature: -1, topP: 1, seed: 1 })).toThrow(
      "temperature must be a finite number >= 0, got -1",
    );
  });
});
