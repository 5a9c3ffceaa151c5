/**
 * Where the kernel-built model gets its weights, matrix by matrix, so a 7B model never sits whole
 * in the JS heap: each matrix is produced, uploaded and dropped. Matrices come already fused the
 * way the kernels read them: qkv = [Wq; Wk; Wv], gateUp = [Wgate; Wup].
 */
import { quantizeQ4f16_1, type Q4f16_1 } from "../quant/q4f16_1.ts";
import { f16Bits, fromF16Array } from "../../dsl/dtypes.ts";
import { kvDim, type LlamaConfig } from "../config.ts";
import type { LlamaWeights } from "./types.ts";

export type MatrixName = "qkv" | "o" | "gateUp" | "down" | "lmHead" | "embed";
export type VectorName = "attnNorm" | "ffnNorm" | "finalNorm";

export interface WeightSource {
  readonly config: LlamaConfig;
  /** The matrix as f32 [N, K] (f16/f32 models, and the host embedding table). */
  matrixF32(name: MatrixName, layer: number): Float32Array;
  /** The matrix in q4f16_1 (q4 models). */
  matrixQ4(name: MatrixName, layer: number): Q4f16_1;
  /** The matrix as f16 bits [N, K], where the source holds f16 already (no f32 round trip). */
  matrixF16?(name: MatrixName, layer: number): Uint16Array;
  vector(name: VectorName, layer: number): Float32Array;
}

/** Rows x columns of each fused matrix. */
export function matrixShape(c: LlamaConfig, name: MatrixName): [number, number] {
  switch (name) {
    case "qkv":
      return [c.dim + 2 * kvDim(c), c.dim];
    case "o":
      return [c.dim, c.dim];
    case "gateUp":
      return [2 * c.hiddenDim, c.dim];
    case "down":
      return [c.dim, c.hiddenDim];
    case "lmHead":
    case "embed":
      return [c.vocabSize, c.dim];
  }
}

const concat = (parts: readonly Float32Array[]): Float32Array => {
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
};

/** Weights held as f32 arrays (llama2.c checkpoints, the reference model's format). */
export function fromLlamaWeights(w: LlamaWeights): WeightSource {
  const f32 = (name: MatrixName, layer: number): Float32Array => {
    const l = w.layers[layer]!;
    switch (name) {
      case "qkv":
        return concat([l.wq, l.wk, l.wv]);
      case "o":
        return l.wo;
      case "gateUp":
        return concat([l.w1, l.w3]);
      case "down":
        return l.w2;
      case "lmHead":
        return w.classifier;
      case "embed":
        return w.tokenEmbedding;
    }
  };
  return {
    config: w.config,
    matrixF32: f32,
    matrixQ4: (name, layer) => {
      const [n, k] = matrixShape(w.config, name);
      return quantizeQ4f16_1(f32(name, layer), n, k, { name });
    },
    vector: (name, layer) => (name === "finalNorm" ? w.finalNorm : w.layers[layer]![name]),
  };
}

/**
 * Random weights in the real q4f16_1 layout (every 4-bit code and scale as a real model stores
 * them), for benchmarks of model shapes whose weights are not at hand: the bytes read per token
 * and the kernels run are exactly a real model's. Norm weights are 1, scales small, so the
 * activations stay finite.
 */
export function syntheticQ4(config: LlamaConfig, seed = 1): WeightSource {
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return s >>> 0;
  };
  const scaleBits = [0.002, 0.003, 0.004, 0.005].map(f16Bits);
  // Random pools copied in at random offsets: a 7B model's 3.5 GB fill in seconds, not minutes.
  const wordPool = new Uint32Array(1 << 20);
  for (let i = 0; i < wordPool.length; i++) {
    let word = 0;
    let r = next();
    for (let j = 0; j < 8; j++) {
      // Codes 0..14 only: 15 is never stored.
      word |= (r % 15) << (4 * j);
      r = Math.floor(r / 15) || next();
    }
    wordPool[i] = word >>> 0;
  }
  const scalePool = new Uint16Array(1 << 18);
  for (let i = 0; i < scalePool.length; i++) scalePool[i] = scaleBits[next() & 3]!;
  return {
    config,
    matrixF32: () => {
      throw new Error("tkc: synthetic weights exist only in q4f16_1");
    },
    matrixQ4: (name) => {
      const [n, k] = matrixShape(config, name);
      return { packed: tile(wordPool, (n * k) / 8, next), scales: tile(scalePool, (n * k) / 32, next) };
    },
    vector: () => new Float32Array(config.dim).fill(1),
  };
}

/**
 * Random f16 weights for a config (uniform in +-0.02, as bits), for benchmarks of f16 models at
 * shapes whose real weights are not at hand: tiled from a random pool, so a 7B model's 13 GB
 * fill in seconds. The embedding table comes out as f32 (the host reads its rows).
 */
export function syntheticF16(config: LlamaConfig, seed = 1): WeightSource {
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return s >>> 0;
  };
  const pool = new Uint16Array(1 << 20);
  for (let i = 0; i < pool.length; i++) pool[i] = f16Bits(((next() / 2 ** 32) * 2 - 1) * 0.02);
  const matrixF16 = (name: MatrixName) => {
    const [n, k] = matrixShape(config, name);
    return tile(pool, n * k, next);
  };
  return {
    config,
    matrixF16,
    matrixF32: (name) => fromF16Array(matrixF16(name)),
    matrixQ4: () => {
      throw new Error("tkc: these synthetic weights are f16; syntheticQ4 makes q4f16_1 ones");
    },
    vector: () => new Float32Array(config.dim).fill(1),
  };
}

function tile<T extends Uint32Array | Uint16Array>(pool: T, n: number, next: () => number): T {
  const out = new (pool.constructor as new (n: number) => T)(n);
  for (let o = 0; o < n;) {
    const start = next() % (pool.length >> 1);
    const len = Math.min(n - o, pool.length - start);
    out.set(pool.subarray(start, start + len) as never, o);
    o += len;
  }
  return out;
}

/** The subset of a converted model directory (llama/convert/format.ts) a WeightSource reads. */
export interface ConvertedTensors {
  readonly config: LlamaConfig;
  readQ4(weightName: string): Q4f16_1;
  readF32(weightName: string): Float32Array;
  has?(name: string): boolean;
}

/** A tkc model directory (tkc convert) as a weight source: quantized matrices are used as stored. */
export function fromConverted(m: ConvertedTensors, hasTensor: (name: string) => boolean): WeightSource {
  const L = (i: number, rest: string) => `model.layers.${i}.${rest}`;
  const names = (name: MatrixName, i: number): string[] => {
    switch (name) {
      case "qkv":
        return ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"].map((n) => L(i, `${n}.weight`));
      case "o":
        return [L(i, "self_attn.o_proj.weight")];
      case "gateUp":
        return [L(i, "mlp.gate_proj.weight"), L(i, "mlp.up_proj.weight")];
      case "down":
        return [L(i, "mlp.down_proj.weight")];
      case "embed":
        return ["model.embed_tokens.weight"];
      case "lmHead":
        return [
          hasTensor("lm_head.weight") || hasTensor("lm_head.q_weight")
            ? "lm_head.weight"
            : "model.embed_tokens.weight",
        ];
    }
  };
  const cat32 = (parts: Uint32Array[]) => {
    const out = new Uint32Array(parts.reduce((a, p) => a + p.length, 0));
    let o = 0;
    for (const p of parts) (out.set(p, o), (o += p.length));
    return out;
  };
  const cat16 = (parts: Uint16Array[]) => {
    const out = new Uint16Array(parts.reduce((a, p) => a + p.length, 0));
    let o = 0;
    for (const p of parts) (out.set(p, o), (o += p.length));
    return out;
  };
  return {
    config: m.config,
    matrixF32: (name, i) => concat(names(name, i).map((n) => m.readF32(n))),
    matrixQ4: (name, i) => {
      const parts = names(name, i).map((n) => m.readQ4(n));
      return { packed: cat32(parts.map((p) => p.packed)), scales: cat16(parts.map((p) => p.scales)) };
    },
    vector: (name, i) =>
      m.readF32(
        name === "finalNorm"
          ? "model.norm.weight"
          : L(i, name === "attnNorm" ? "input_layernorm.weight" : "post_attention_layernorm.weight"),
      ),
  };
}
