/**
 * Kernels shipped as compiled JavaScript: types are gone, so the IR is lowered ahead of time and
 * read from `<module>.js.tkc.json`. This builds such a package in a temp folder with esbuild.
 */
import { describe, expect, test } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { buildSync } from "esbuild";
import { writeLoweredModule } from "../../lower/aot.ts";
import { lowerKernel } from "../../lower/frontend/lower.ts";
import { printFunc } from "../../lower/ir/printer.ts";
import { cpuKernel } from "../../backends/cpu/runtime.ts";
import { ndarray, zeros } from "../../dsl/ndarray.ts";
import type { KernelDef } from "../../dsl/kernel.ts";
import * as examples from "../../examples/kernels.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

describe("kernels in compiled JavaScript", () => {
  test("run from lowered IR shipped next to the module, with no .ts source", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tkc-aot-"));
    const out = path.join(dir, "kernels.js");
    // The package: examples/kernels.ts compiled to JS; dsl imports stay pointed at this checkout.
    buildSync({
      entryPoints: [path.join(root, "examples/kernels.ts")],
      outfile: out,
      format: "esm",
      platform: "node",
      bundle: false,
      logLevel: "silent",
    });
    const js = fs
      .readFileSync(out, "utf8")
      .replace(
        /from "\.\.\/dsl\/index\.ts"/,
        `from ${JSON.stringify(pathToFileURL(path.join(root, "dsl/index.ts")).href)}`,
      );
    fs.writeFileSync(out, js);
    const mod = (await import(pathToFileURL(out).href)) as Record<string, KernelDef>;

    // Without the IR file the error says what to do.
    expect(() => lowerKernel(mod.softmax!)).toThrow(/compiled JavaScript[\s\S]*tkc lower/);

    const names = await writeLoweredModule(path.join(root, "examples/kernels.ts"), `${out}.tkc.json`);
    expect(names).toContain("softmax");
    const shipped = lowerKernel(mod.softmax!);
    expect(printFunc(shipped)).toBe(printFunc(lowerKernel(examples.softmax)));
    const x = ndarray("f32", [2, 3], [1, 2, 3, 4, 5, 6]);
    const y1 = zeros("f32", [2, 3]);
    const y2 = zeros("f32", [2, 3]);
    cpuKernel(mod.softmax!)({ x, y: y1 });
    cpuKernel(examples.softmax)({ x, y: y2 });
    expect(Array.from(y1.data)).toEqual(Array.from(y2.data));
  });
});
