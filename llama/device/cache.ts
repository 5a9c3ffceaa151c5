/**
 * Kernel libraries compiled on the fly and kept on disk, so a model's kernels are compiled once per
 * (ops, target, compiler) rather than on every run: `~/.cache/tkc/<hash>/` holds what writeLibrary
 * writes (manifest.json and one image per kernel). The hash covers the target, every op's key and
 * how it is made (kernel, specialisation, retyping, scalars in memory), and a fingerprint of the
 * compiler's own sources (dsl, lower, stdlib, the LLVM backend), so editing a kernel, a schedule
 * or a pass makes a new entry instead of loading stale code.
 *
 * TKC_CACHE_DIR overrides the root; otherwise $XDG_CACHE_HOME/tkc, else ~/.cache/tkc.
 */
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { compileLibrary } from "./compile.ts";
import { readLibrary, writeLibrary, type Library } from "./library.ts";
import type { OpSpec } from "./types.ts";

export function cacheRoot(): string {
  if (process.env.TKC_CACHE_DIR) return process.env.TKC_CACHE_DIR;
  const xdg = process.env.XDG_CACHE_HOME;
  return path.join(xdg ? xdg : path.join(os.homedir(), ".cache"), "tkc");
}

/** The folders (relative to the repository root) whose sources decide what a compiled kernel is. */
const COMPILER_SOURCES = ["dsl", "lower", "stdlib", "backends/llvm", "backends/gpu-common", "llama/device"];
const ROOT = fileURLToPath(new URL("../..", import.meta.url));

let fingerprint: string | undefined;

/**
 * A hash of the compiler's sources (file names and contents). Where they are not on disk (a
 * bundled runner), the hash is of nothing, and only the op keys and target tell entries apart.
 */
export function compilerFingerprint(): string {
  if (fingerprint) return fingerprint;
  const h = createHash("sha256");
  const visit = (rel: string): void => {
    const abs = path.join(ROOT, rel);
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(abs, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const r = `${rel}/${e.name}`;
      if (e.isDirectory()) visit(r);
      else if (e.isFile() && e.name.endsWith(".ts")) {
        h.update(`${r}\0`);
        h.update(fs.readFileSync(path.join(ROOT, r)));
        h.update("\0");
      }
    }
  };
  for (const d of COMPILER_SOURCES) visit(d);
  return (fingerprint = h.digest("hex"));
}

/** The cache entry's name: a hash of the target, the ops and the compiler. */
export function libraryHash(specs: readonly OpSpec[], target: string): string {
  const ops = specs
    .map((s) => ({
      key: s.key,
      kernel: s.kernel.name,
      specialize: s.specialize ?? null,
      retype: s.retype ?? null,
      scalarsInMemory: s.scalarsInMemory ?? null,
      dependentsLaunch: s.dependentsLaunch ?? null,
      minBlocksPerSM: s.minBlocksPerSM ?? null,
      scheduled: s.schedule !== undefined,
    }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return createHash("sha256")
    .update(JSON.stringify({ version: 1, target, ops, compiler: compilerFingerprint() }))
    .digest("hex")
    .slice(0, 20);
}

export interface CachedLibrary {
  readonly library: Library;
  readonly dir: string;
  /** True when the library came from the cache, false when it was compiled now. */
  readonly hit: boolean;
}

/**
 * The library for `specs` on `target` from the cache, or compiled now (LLVM needed) and stored.
 * A damaged entry (missing files, unreadable manifest) is compiled again.
 */
export function cachedLibrary(
  specs: readonly OpSpec[],
  target: string,
  opts: { root?: string; onProgress?: (done: number, total: number, key: string) => void } = {},
): CachedLibrary {
  const dir = path.join(opts.root ?? cacheRoot(), libraryHash(specs, target));
  if (fs.existsSync(path.join(dir, "manifest.json"))) {
    try {
      const library = readLibrary(dir);
      if (library.target === target && specs.every((s) => library.kernels[s.key]))
        return { library, dir, hit: true };
    } catch {
      // fall through: compile again and replace the entry
    }
  }
  const library = compileLibrary(specs, target, opts.onProgress);
  // Written beside the entry and renamed into place, so a concurrent reader never sees half of it.
  const tmp = `${dir}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  writeLibrary(library, tmp);
  fs.rmSync(dir, { recursive: true, force: true });
  try {
    fs.renameSync(tmp, dir);
  } catch (e) {
    // Another process put the same entry in place first: theirs is as good as ours.
    fs.rmSync(tmp, { recursive: true, force: true });
    if (!fs.existsSync(path.join(dir, "manifest.json"))) throw e;
  }
  return { library, dir, hit: false };
}
