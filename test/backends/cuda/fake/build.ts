// Compiles the fake driver libraries once per content (cached in the temp dir); undefined when
// there is no gcc, so tests that need them skip.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));

function build(src: string, name: string, deps: string[]): string | undefined {
  const hash = createHash("sha256");
  for (const f of [src, ...deps]) hash.update(readFileSync(f));
  const dir = join(tmpdir(), `tkc-fake-${hash.digest("hex").slice(0, 16)}`);
  const lib = join(dir, name);
  if (existsSync(lib)) return lib;
  mkdirSync(dir, { recursive: true });
  const tmp = `${lib}.${process.pid}`;
  const r = spawnSync("gcc", ["-shared", "-fPIC", "-O1", "-Wall", "-Werror", "-o", tmp, src], {
    encoding: "utf8",
  });
  if ((r.error as NodeJS.ErrnoException | undefined)?.code === "ENOENT") return undefined;
  if (r.error || r.status !== 0) throw new Error(`building ${name} failed: ${r.stderr}`);
  renameSync(tmp, lib); // atomic, so parallel test files never load a half-written library
  return lib;
}

const cudaSrc = join(here, "fake-libcuda.c");

export function buildFakeLibcuda(): string | undefined {
  return build(cudaSrc, "libcuda.so.1", []);
}

export function buildFakeLibamdhip(): string | undefined {
  return build(join(here, "../../hip/fake/fake-libamdhip64.c"), "libamdhip64.so", [cudaSrc]);
}
