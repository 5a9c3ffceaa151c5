import { describe, expect, it } from "vitest";
import type { LlamaConfig } from "../../llama/config.ts";
import { ReferenceLlama } from "../../llama/reference.ts";
import type { LlamaWeights } from "../../llama/weights/types.ts";
import { float64Logits } from "./helpers/float64-llama.ts";
import { randomWeights, seededRandom, tinyConfig } from "./helpers/random-weights.ts";

/** Largest |a - b| relative to the largest |b| in the row. */
function relError(a: Float32Array, b: number[]): number {
  let err = 0;
  let mag = 0;
  b.forEach((v, i) => {
    err = Math.max(err, Math.abs(a[i] - v));
    mag = Math.max(mag, Math.abs(v));
  });
  return err / mag;
}

function checkAgainstFloat64(config: LlamaConfig, seed: number): void {
  const w = randomWeights(config, seed);
  const rand = seededRandom(seed + 1);
  const tokens = Array.from({ length: config.contextLength }, () => Math.floor(rand() * config.vocabSize));
  const want = float64Logits(w, tokens);
  const model = new ReferenceLlama(w);
  tokens.forEach((t, pos) => {
    const got = model.decode(t, pos);
    expect(relError(got, want[pos]), `position ${pos}`).toBeLessThan(1e-5);
  });
}

/** Hugging Face's permutation of wq/wk rows: row (head h, pair i, half c) moves from h*hd + 2i + c to h*hd + c*hd/2 + i. */
function toHalfLayout(rows: Float32Array, nHeads: number, hd: number, cols: number): Float32Array {
  const out = new Float32Array(rows.length);
  for (let h = 0; h < nHeads; h++)
    for (let i = 0; i < hd / 2; i++)
      for (let c = 0; c < 2; c++) {
        const from = (h * hd + 2 * i + c) * cols;
        const to = (h * hd + c * (hd / 2) + i) * cols;
        out.set(rows.subarray(from, from + cols), to);
      }
  return out;
}

describe("reference Llama", () => {
  const cases: [string, Partial<LlamaConfig>][] = [
    ["multi-head, interleaved rope", { nHeads: 4, nKvHeads: 4 }],
    ["GQA 4:2, interleaved rope", { nHeads: 4, nKvHeads: 2 }],
    ["MQA 4:1, half rope", { nHeads: 4, nKvHeads: 1, ropeLayout: "half" }],
    [
      "GQA 4:2, half rope, shared classifier, theta 5e5, eps 1e-6",
      {
        nKvHeads: 2,
        ropeLayout: "half",
        sharedClassifier: true,
        ropeTheta: 500000,
        normEps: 1e-6,
      },
    ],
    ["GQA 6:3, wider heads", { dim: 48, nHeads: 6, nKvHeads: 3, hiddenDim: 64 }],
  ];
  for (const [name, over] of cases) {
    it(`matches a float64 re-implementation: ${name}`, () =>
      checkAgainstFloat64(tinyConfig(over), name.length));
  }

  it("half layout with HF-permuted wq, wk equals the interleaved layout", () => {
    const c = tinyConfig({ nHeads: 4, nKvHeads: 2 });
    const w = randomWeights(c, 77);
    const hd = c.dim / c.nHeads;
    const half: LlamaWeights = {
      ...w,
      config: { ...c, ropeLayout: "half" },
      layers: w.layers.map((l) => ({
        ...l,
        wq: toHalfLayout(l.wq, c.nHeads, hd, c.dim),
        wk: toHalfLayout(l.wk, c.nKvHeads, hd, c.dim),
      })),
    };
    const a = new ReferenceLlama(w);
    const b = new ReferenceLlama(half);
    const unpermuted = new ReferenceLlama({ ...half, layers: w.layers });
    let differs = false;
    for (let pos = 0; pos < c.contextLength; pos++) {
      const tok = (pos * 37) % c.vocabSize;
      const la = Array.from(a.decode(tok, pos));
      expect(relError(b.decode(tok, pos), la)).toBeLessThan(1e-5);
      // without the permutation the half layout computes something else (from position 1 on)
      if (relError(unpermuted.decode(tok, pos), la) > 1e-3) differs = true;
    }
    expect(differs).toBe(true);
  });

  it("prefill gives the same logits and cache as token-by-token decode", () => {
    const w = randomWeights(tinyConfig(), 3);
    const tokens = [5, 17, 250, 3, 99, 1];
    const a = new ReferenceLlama(w);
    let last = new Float32Array(0);
    tokens.forEach((t, i) => (last = Float32Array.from(a.decode(t, i))));
    const b = new ReferenceLlama(w);
    expect(b.prefill(tokens, 0)).toEqual(last);
    // continuing after prefill, and after prefill in two chunks
    const next = Float32Array.from(a.decode(42, tokens.length));
    expect(b.decode(42, tokens.length)).toEqual(next);
    const c = new ReferenceLlama(w);
    c.prefill(tokens.slice(0, 2), 0);
    c.prefill(tokens.slice(2), 2);
    expect(c.decode(42, tokens.length)).toEqual(next);
  });

  it("reset and rewinding recompute from the given position", () => {
    const w = randomWeights(tinyConfig(), 4);
    const m = new ReferenceLlama(w);
    const first = Float32Array.from(m.prefill([1, 2, 3], 0));
    m.decode(200, 3);
    // rewrite position 2 with the same token: same logits as the first time
    expect(m.decode(3, 2)).toEqual(first);
    m.reset();
    expect(() => m.decode(3, 2)).toThrow("position 2 skips ahead: the KV cache holds positions 0..-1");
    expect(m.prefill([1, 2, 3], 0)).toEqual(first);
  });

  it("rejects bad tokens, positions and context sizes", () => {
    const w = randomWeights(tinyConfig(), 5);
    const m = new ReferenceLlama(w);
    expect(() => m.decode(300, 0)).toThrow("token id 300 is outside the vocabulary (0..299)");
    expect(() => m.decode(0, 12)).toThrow("position 12 is outside the context (0..11)");
    expect(() => m.prefill([], 0)).toThrow("prefill needs at least one token");
    expect(() => new ReferenceLlama(w, { contextLength: 13 })).toThrow(
      "contextLength 13 must be an integer in 1..12",
    );
    expect(new ReferenceLlama(w, { contextLength: 4 }).config.contextLength).toBe(4);
  });
});
