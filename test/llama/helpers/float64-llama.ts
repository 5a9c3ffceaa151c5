/**
 * A second, deliberately naive Llama for tests: float64 everywhere, no KV cache (every call
 * recomputes the whole sequence), matrices as row arrays, rotary embedding written from the
 * complex-number definition of each layout. It shares no code with llama/reference.ts.
 */
import type { LlamaWeights } from "../../../llama/weights/types.ts";

type Vec = number[];

const matRows = (flat: Float32Array, rows: number, cols: number): Vec[] =>
  Array.from({ length: rows }, (_, r) => Array.from(flat.subarray(r * cols, (r + 1) * cols)));
const apply = (m: Vec[], x: Vec): Vec => m.map((row) => row.reduce((s, w, j) => s + w * x[j], 0));
const rmsnorm = (x: Vec, w: Float32Array, eps: number): Vec => {
  const ms = x.reduce((s, v) => s + v * v, 0) / x.length;
  return x.map((v, i) => (v / Math.sqrt(ms + eps)) * w[i]);
};

/** Rotates one head vector at position pos: pair (re, im) indices depend on the layout. */
function rope(head: Vec, pos: number, theta: number, layout: "interleaved" | "half"): Vec {
  const d = head.length;
  const out = head.slice();
  for (let i = 0; i < d / 2; i++) {
    const [re, im] = layout === "interleaved" ? [2 * i, 2 * i + 1] : [i, i + d / 2];
    const angle = pos / Math.pow(theta, (2 * i) / d);
    // (re + i*im) * e^{i*angle}
    out[re] = head[re] * Math.cos(angle) - head[im] * Math.sin(angle);
    out[im] = head[re] * Math.sin(angle) + head[im] * Math.cos(angle);
  }
  return out;
}

/** Logits after each token of `tokens` (positions 0..n-1). */
export function float64Logits(w: LlamaWeights, tokens: readonly number[]): Vec[] {
  const c = w.config;
  const hd = c.dim / c.nHeads;
  const kvd = hd * c.nKvHeads;
  let xs: Vec[] = tokens.map((t) => Array.from(w.tokenEmbedding.subarray(t * c.dim, (t + 1) * c.dim)));
  for (const L of w.layers) {
    const wq = matRows(L.wq, c.dim, c.dim);
    const wk = matRows(L.wk, kvd, c.dim);
    const wv = matRows(L.wv, kvd, c.dim);
    const wo = matRows(L.wo, c.dim, c.dim);
    const heads = (v: Vec, n: number): Vec[] =>
      Array.from({ length: n }, (_, h) => v.slice(h * hd, (h + 1) * hd));
    const normed = xs.map((x) => rmsnorm(x, L.attnNorm, c.normEps));
    const qs = normed.map((x, p) =>
      heads(apply(wq, x), c.nHeads).map((h) => rope(h, p, c.ropeTheta, c.ropeLayout)),
    );
    const ks = normed.map((x, p) =>
      heads(apply(wk, x), c.nKvHeads).map((h) => rope(h, p, c.ropeTheta, c.ropeLayout)),
    );
    const vs = normed.map((x) => heads(apply(wv, x), c.nKvHeads));
    xs = xs.map((x, p) => {
      const attnOut: Vec = [];
      for (let h = 0; h < c.nHeads; h++) {
        // query heads h are split into nKvHeads consecutive groups
        const g = Math.floor((h * c.nKvHeads) / c.nHeads);
        const scores = ks
          .slice(0, p + 1)
          .map((k) => k[g].reduce((s, v, i) => s + v * qs[p][h][i], 0) / Math.sqrt(hd));
        const m = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - m));
        const z = e.reduce((a, b) => a + b, 0);
        for (let i = 0; i < hd; i++) attnOut.push(e.reduce((s, a, t) => s + (a / z) * vs[t][g][i], 0));
      }
      const proj = apply(wo, attnOut);
      const h1 = x.map((v, i) => v + proj[i]);
      const n2 = rmsnorm(h1, L.ffnNorm, c.normEps);
      const gate = apply(matRows(L.w1, c.hiddenDim, c.dim), n2);
      const up = apply(matRows(L.w3, c.hiddenDim, c.dim), n2);
      const act = gate.map((g2, i) => (g2 / (1 + Math.exp(-g2))) * up[i]);
      const down = apply(matRows(L.w2, c.dim, c.hiddenDim), act);
      return h1.map((v, i) => v + down[i]);
    });
  }
  const cls = matRows(w.classifier, c.vocabSize, c.dim);
  return xs.map((x) => apply(cls, rmsnorm(x, w.finalNorm, c.normEps)));
}
