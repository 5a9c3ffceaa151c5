/**
 * Ahead-of-time lowering for packages shipped as compiled JavaScript: lowers every kernel a module
 * exports and writes their IR to `<module>.js.tkc.json`, which lowerKernel reads when the kernel's
 * call site is a .js file without its .ts source.
 */
import fs from "node:fs";
import { pathToFileURL } from "node:url";
import type { KernelDef } from "../dsl/kernel.ts";
import { lowerKernel } from "./frontend/lower.ts";
import { funcToJson, type FuncJson } from "./ir/serialize.ts";

const isKernel = (x: unknown): x is KernelDef =>
  typeof x === "object" && x !== null && (x as { kind?: unknown }).kind === "kernel";

/** Kernels exported by a module, directly or inside exported plain objects (one level). */
export function exportedKernels(mod: Record<string, unknown>): KernelDef[] {
  const out: KernelDef[] = [];
  for (const v of Object.values(mod)) {
    if (isKernel(v)) out.push(v);
    else if (v && typeof v === "object" && !Array.isArray(v))
      for (const w of Object.values(v as Record<string, unknown>)) if (isKernel(w)) out.push(w);
  }
  return out;
}

export async function lowerModule(
  sourceFile: string,
): Promise<Record<string, FuncJson & { ordinal: number }>> {
  const mod = (await import(pathToFileURL(fs.realpathSync(sourceFile)).href)) as Record<string, unknown>;
  const table: Record<string, FuncJson & { ordinal: number }> = {};
  for (const k of exportedKernels(mod)) {
    if (table[k.name]) throw new Error(`tkc lower: two kernels named ${k.name} in ${sourceFile}`);
    table[k.name] = { ...funcToJson(lowerKernel(k)), ordinal: k.ordinal };
  }
  if (Object.keys(table).length === 0) throw new Error(`tkc lower: ${sourceFile} exports no kernels`);
  return table;
}

export async function writeLoweredModule(sourceFile: string, outFile: string): Promise<string[]> {
  const table = await lowerModule(sourceFile);
  fs.writeFileSync(outFile, JSON.stringify(table));
  return Object.keys(table);
}
