/**
 * Loads the tokenizer a converted model carries, whichever kind it is: llama2.c's tokenizer.bin or
 * a Hugging Face tokenizer.json. The model's own BOS/EOS ids (from its config) win over the
 * tokenizer's guesses, and the vocabulary must match the model's.
 */
import { loadHfTokenizer } from "../tokenizer/hf.ts";
import { loadLlama2cTokenizer } from "../tokenizer/llama2c.ts";
import type { Tokenizer } from "../tokenizer/types.ts";
import type { ConvertedModel } from "./format.ts";

export function loadModelTokenizer(model: ConvertedModel): Tokenizer {
  const t = model.manifest.tokenizer;
  const file = model.tokenizerPath();
  if (!t || !file)
    throw new Error(`${model.dir}: the converted model has no tokenizer (convert it with one)`);
  const c = model.config;
  if (t.kind === "llama2c") return loadLlama2cTokenizer(file, c.vocabSize);
  const tok = loadHfTokenizer(file, { bosId: c.bosId, eosId: c.eosId });
  // HF vocabularies may be smaller than the embedding table (padded for speed), never larger.
  if (tok.vocabSize > c.vocabSize)
    throw new Error(`${file}: ${tok.vocabSize} tokens, more than the model's vocabulary of ${c.vocabSize}`);
  return tok;
}
