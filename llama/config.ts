/** A Llama model's hyperparameters: tkc's counterpart of MLC's mlc-chat-config.json model section. */
export interface LlamaConfig {
  /** Model width (hidden size). */
  readonly dim: number;
  /** FFN inner width (intermediate size). */
  readonly hiddenDim: number;
  readonly nLayers: number;
  readonly nHeads: number;
  /** Key/value heads; fewer than nHeads means grouped-query attention. */
  readonly nKvHeads: number;
  readonly vocabSize: number;
  readonly normEps: number;
  readonly ropeTheta: number;
  /** Maximum sequence length the KV cache holds. */
  readonly contextLength: number;
  /**
   * "interleaved": rotate adjacent pairs (2i, 2i+1), as Meta's original and llama2.c checkpoints do.
   * "half": rotate (i, i + headDim/2), as Hugging Face checkpoints do (their conversion permutes wq, wk).
   */
  readonly ropeLayout: "interleaved" | "half";
  /** The classifier (lm_head) shares the token embedding table. */
  readonly sharedClassifier: boolean;
  readonly bosId: number;
  readonly eosId: number;
}

export const headDim = (c: LlamaConfig): number => c.dim / c.nHeads;
export const kvDim = (c: LlamaConfig): number => (c.dim / c.nHeads) * c.nKvHeads;

/** Checks a config for consistency; throws a message naming the field at fault. */
export function validateConfig(c: LlamaConfig, where = "config"): LlamaConfig {
  const positive = [
    "dim",
    "hiddenDim",
    "nLayers",
    "nHeads",
    "nKvHeads",
    "vocabSize",
    "contextLength",
  ] as const;
  for (const k of positive) {
    const v = c[k];
    if (!Number.isInteger(v) || v <= 0)
      throw new Error(`${where}: ${k} must be a positive integer, got ${v}`);
  }
  if (c.dim % c.nHeads !== 0)
    throw new Error(`${where}: dim ${c.dim} is not divisible by nHeads ${c.nHeads}`);
  if (c.nHeads % c.nKvHeads !== 0)
    throw new Error(`${where}: nHeads ${c.nHeads} is not a multiple of nKvHeads ${c.nKvHeads}`);
  if ((c.dim / c.nHeads) % 2 !== 0)
    throw new Error(`${where}: head dimension ${c.dim / c.nHeads} must be even`);
  if (!(c.normEps > 0)) throw new Error(`${where}: normEps must be positive, got ${c.normEps}`);
  if (!(c.ropeTheta > 0)) throw new Error(`${where}: ropeTheta must be positive, got ${c.ropeTheta}`);
  return c;
}
