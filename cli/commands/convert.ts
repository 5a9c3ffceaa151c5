/** `tkc convert`: a llama2.c checkpoint or Hugging Face directory → tkc's converted model directory. */
import * as fs from "node:fs";
import { bundledModelFile, bundledTokenizerFile } from "../../llama/bundled.ts";
import { convertModel } from "../../llama/convert/convert.ts";
import { QUANTIZATIONS } from "../../llama/convert/format.ts";
import { progressBar } from "../../llama/convert/progress.ts";
import { choiceFlag, intFlag, parseFlags, UsageError } from "../args.ts";
import type { Command } from "../command.ts";
import { BUNDLED_MODEL } from "../load-model.ts";

const NAME = "convert";

const flags = {
  out: { type: "string", short: "o" },
  quantization: { type: "string", short: "q" },
  tokenizer: { type: "string" },
  "shard-mb": { type: "string" },
} as const;

export const convertCommand: Command = {
  name: NAME,
  summary: "convert a llama2.c or Hugging Face model to tkc's format (q4f16_1, f16, f32)",
  help: `Usage: tkc convert SRC --out DIR --quantization q4f16_1|f16|f32 [--tokenizer FILE] [--shard-mb N]

Converts SRC into a tkc model directory (tkc-config.json, params_shard_*.bin, the tokenizer), which
--model DIR of generate, chat and serve then loads. SRC is one of:
  a Hugging Face Llama directory (config.json, *.safetensors, tokenizer.json)
  a llama2.c checkpoint file (.bin), with --tokenizer tokenizer.bin (default: one next to it)
  "${BUNDLED_MODEL}": the bundled llama2.c model

Flags:
  -o, --out DIR            output directory (created; an earlier conversion there is replaced)
  -q, --quantization Q     q4f16_1 (MLC's 4-bit, groups of 32, f16 scales), f16 or f32
      --tokenizer FILE     a llama2.c checkpoint's tokenizer.bin
      --shard-mb N         largest parameter shard, in MB (default 64)
`,
  async run(argv, io) {
    const { values, positionals } = parseFlags(NAME, argv, flags, {
      min: 1,
      max: 1,
      name: "SRC (the model to convert)",
    });
    const src = positionals[0]!;
    if (values.out === undefined) throw new UsageError(`tkc ${NAME}: --out DIR is required`);
    if (values.quantization === undefined)
      throw new UsageError(`tkc ${NAME}: --quantization is required (one of ${QUANTIZATIONS.join(", ")})`);
    const quantization = choiceFlag(NAME, "quantization", values.quantization, QUANTIZATIONS)!;
    const shardMb = intFlag(NAME, "shard-mb", values["shard-mb"], 1);
    const bundled = src === BUNDLED_MODEL && !fs.existsSync(src);
    if (!bundled && !fs.existsSync(src)) throw new Error(`${src}: no such file or directory`);
    let tokenizer = values.tokenizer;
    if (tokenizer !== undefined && !fs.existsSync(tokenizer))
      throw new Error(`--tokenizer ${tokenizer}: no such file`);
    if (!bundled && tokenizer === undefined && fs.statSync(src).isFile()) {
      const beside = `${src.replace(/[^/\\]*$/, "")}tokenizer.bin`;
      if (fs.existsSync(beside)) tokenizer = beside;
      else
        io.stderr.write(
          `tkc ${NAME}: note: no --tokenizer and no ${beside}: the converted model will have no tokenizer\n`,
        );
    }
    const t0 = performance.now();
    const manifest = convertModel(bundled ? bundledModelFile() : src, values.out, {
      quantization,
      tokenizer: bundled ? bundledTokenizerFile() : tokenizer,
      maxShardBytes: shardMb === undefined ? undefined : shardMb * 1024 * 1024,
      onProgress: progressBar(`convert ${quantization}`, io.stderr as NodeJS.WriteStream, { every: 10 }),
    });
    const bytes = manifest.shards.reduce((n, s) => n + s.bytes, 0);
    io.stdout.write(
      `${values.out}: ${quantization}, ${manifest.shards.length} shard(s), ${(bytes / 1e6).toFixed(1)} MB, ` +
        `${Object.keys(manifest.tensors).length} tensors, in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`,
    );
    return 0;
  },
};
