// `tkc compile`: the stories15M kernels ahead of time for CUDA (each PTX file accepted by ptxas),
// ROCm (code objects with the kernel inside), Vulkan (SPIR-V) and the CPU (JavaScript modules that
// run); the manifest a GPU machine reads; flag mistakes; the on-disk library cache; and
// `--device cuda` where there is no driver, and its kernels compiled on the fly (a fake driver);
// `--device vulkan` (lavapipe here).
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { bindArgs } from "../../backends/cpu/exec.ts";
import { runtime } from "../../backends/cpu/semantics.ts";
import { createVulkanRuntime, VulkanUnavailableError } from "../../backends/vulkan/runtime.ts";
import { ndarray, toNumbers, zeros } from "../../dsl/ndarray.ts";
import { f16Bits, f16FromBits } from "../../dsl/dtypes.ts";
import { cachedLibrary, libraryHash } from "../../llama/device/cache.ts";
import { readLibrary } from "../../llama/device/library.ts";
import { specializedFunc } from "../../llama/device/prepare.ts";
import { allOps, llamaOps } from "../../llama/ops.ts";
import { CUDA_OP_CHOICES, type OpChoices } from "../../llama/op-choices.ts";
import { GPU_SCHEDULES, ROW_THREADS } from "../../stdlib/gpu/schedules.ts";
import { tunedParams } from "../../stdlib/gpu/tuned.ts";
import { loadModel, modelSpec, resolveModelConfig } from "../../cli/load-model.ts";
import { buildFakeLibcuda } from "../backends/cuda/fake/build.ts";
import { llama2cCheckpointBytes } from "../llama/helpers/llama2c-writer.ts";
import { randomWeights, tinyConfig } from "../llama/helpers/random-weights.ts";
import { runInProcess } from "./run.ts";
import { hasTool, llvmMissing } from "../backends/llvm/helpers.ts";

const ptxas = hasTool("ptxas");
const lld = hasTool(process.env.TKC_LD_LLD ?? "ld.lld-19");
const objdump = hasTool("llvm-objdump-19");
const skipped = (why: string) => (why ? ` [skipped: ${why}]` : "");

/** A llama2.c tokenizer.bin (max length, then score, length and bytes per piece): n > 259 pieces. */
function llama2cTokenizerBytes(n: number): Buffer {
  const piece = (i: number) =>
    i === 0
      ? "<unk>"
      : i < 3
        ? ["", "<s>", "</s>"][i]!
        : i < 259
          ? `<0x${(i - 3).toString(16).toUpperCase().padStart(2, "0")}>`
          : i === 259
            ? " "
            : `t${i}`;
  const pieces = Array.from({ length: n }, (_, i) => Buffer.from(piece(i)));
  const head = Buffer.alloc(4);
  head.writeInt32LE(Math.max(...pieces.map((p) => p.length)));
  return Buffer.concat([
    head,
    ...pieces.flatMap((p, i) => {
      const h = Buffer.alloc(8);
      h.writeFloatLE(-i);
      h.writeInt32LE(p.length, 4);
      return [h, p];
    }),
  ]);
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tkc-compile-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const stories = resolveModelConfig("stories15M").config;
const storiesOps = (format: "q4f16_1" | "f16", choices: OpChoices = {}) =>
  allOps(llamaOps(stories, format, GPU_SCHEDULES, choices));

interface Manifest {
  format: string;
  version: number;
  target: string;
  api: string;
  arch?: string;
  model: { id: string; config: { dim: number } };
  weightFormat: string;
  ops: { decode: Record<string, string>; prefill: Record<string, string> };
  kernels: Record<
    string,
    {
      file: string;
      entry: string;
      kernel: string;
      abi: { name: string; kind: string; dtype: string }[];
      launch: { grid: unknown[]; block: unknown[] };
      launchText?: { grid: string[]; block: string[] };
      sharedBytes: number;
      registers?: number;
    }
  >;
}
const manifestOf = (dir: string) =>
  JSON.parse(fs.readFileSync(path.join(dir, "manifest.json"), "utf8")) as Manifest;

/** Every op of the model has a kernel file, and the manifest describes how to launch each. */
function expectComplete(m: Manifest, dir: string, keys: string[], ext: string): void {
  expect(Object.keys(m.kernels).sort()).toEqual([...keys].sort());
  for (const key of [...Object.values(m.ops.decode), ...Object.values(m.ops.prefill)])
    expect(m.kernels[key], key).toBeDefined();
  for (const [key, k] of Object.entries(m.kernels)) {
    expect(k.file).toBe(`${key}.${ext}`);
    expect(fs.statSync(path.join(dir, k.file)).size).toBeGreaterThan(0);
    expect(k.abi.length).toBeGreaterThan(0);
    expect(k.abi.every((a) => ["buffer", "scalar", "symbol"].includes(a.kind))).toBe(true);
    expect(typeof k.sharedBytes).toBe("number");
  }
}

describe.skipIf(llvmMissing !== "")(`tkc compile for GPUs${skipped(llvmMissing)}`, () => {
  it(`--target cuda --arch sm_90 --model stories15M: one PTX per kernel, each accepted by ptxas${skipped(ptxas ? "" : "ptxas not found")}`, async () => {
    const out = path.join(tmp, "cuda");
    const r = await runInProcess([
      "compile",
      "--target",
      "cuda",
      "--arch",
      "sm_90",
      "--model",
      "stories15M",
      "--out",
      out,
    ]);
    expect(r.stderr).toMatch(
      /^tkc compile: \d+ kernels of stories15M \(bundled llama2\.c checkpoint\) in q4f16_1 for cuda sm_90\n/,
    );
    expect(r.stderr).toMatch(/\[ ?1\/\d+\] rmsnorm1_q4f16_1_288x768/);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^compiled \\d+ kernels for cuda sm_90 in [\\d.]+ s into ${out}`));

    const m = manifestOf(out);
    // CUDA's kernel choices: at stories15M's shapes the down projection (K = 768) takes the
    // tensor-core GEMV.
    const keys = storiesOps("q4f16_1", CUDA_OP_CHOICES).map((o) => o.key);
    expect(keys).toContain("downresmma1_q4f16_1_288x768_6h6kv_32000v_256ctx");
    expect(m).toMatchObject({
      format: "tkc-library",
      version: 1,
      target: "sm_90",
      api: "cuda",
      arch: "sm_90",
    });
    expect(m.weightFormat).toBe("q4f16_1");
    expect(m.model.id).toBe("stories15M");
    expect(m.model.config).toEqual(stories);
    expectComplete(m, out, keys, "ptx");
    const rms = m.kernels[m.ops.decode.rmsNorm!]!;
    expect(rms.kernel).toBe("rmsNorm");
    expect(rms.abi.map((a) => `${a.kind} ${a.name}: ${a.dtype}`)).toEqual([
      "buffer x: f16",
      "buffer w: f16",
      "buffer y: f16",
      "scalar eps: f32",
    ]);
    // One block per row, of the row-reduction threads tuned for sm_90 (or the default).
    const threads = tunedParams<{ threads: number }>("sm_90", "rowReduce")?.threads ?? ROW_THREADS.sm_90!;
    expect(rms.launchText).toEqual({ grid: ["1", "1", "1"], block: [String(threads), "1", "1"] });
    expect(rms.sharedBytes).toBeGreaterThan(0); // the cross-warp partial sums

    // What a GPU machine loads: the same kernels, PTX text intact.
    const lib = readLibrary(out);
    expect(Object.keys(lib.kernels).sort()).toEqual([...keys].sort());
    for (const [key, k] of Object.entries(m.kernels)) {
      const ptx = fs.readFileSync(path.join(out, k.file), "utf8");
      expect(ptx).toContain(".target sm_90");
      expect(ptx).toContain(`.visible .entry ${k.entry}(`);
      expect(lib.kernels[key]!.image).toBe(ptx);
      if (!ptxas) continue;
      expect(k.registers, key).toBeGreaterThan(0);
      // The prefill's q4f16_1 GEMMs use wgmma: their PTX targets sm_90a.
      const arch = /^\.target sm_90a/m.test(ptx) ? "sm_90a" : "sm_90";
      const p = spawnSync("ptxas", [`-arch=${arch}`, path.join(out, k.file), "-o", "/dev/null"], {
        encoding: "utf8",
      });
      expect(`${p.stdout}${p.stderr}`, key).toBe("");
      expect(p.status, key).toBe(0);
    }
  });

  it(`--target rocm --arch gfx1100: HSA code objects holding each kernel${skipped(lld ? "" : "ld.lld-19 not found")}`, async () => {
    if (!lld) return;
    const out = path.join(tmp, "rocm");
    const r = await runInProcess([
      "compile",
      "--target",
      "rocm",
      "--arch",
      "gfx1100",
      "--model",
      "stories15M",
      "--out",
      out,
    ]);
    expect(r.code).toBe(0);
    const m = manifestOf(out);
    expect(m).toMatchObject({ target: "gfx1100", api: "rocm", arch: "gfx1100" });
    expectComplete(
      m,
      out,
      storiesOps("q4f16_1").map((o) => o.key),
      "hsaco",
    );
    for (const k of Object.values(m.kernels)) {
      const bytes = fs.readFileSync(path.join(out, k.file));
      expect(bytes.subarray(0, 4).toString("latin1")).toBe("\x7fELF");
      if (!objdump) continue;
      const d = spawnSync("llvm-objdump-19", ["-d", "--mcpu=gfx1100", path.join(out, k.file)], {
        encoding: "utf8",
      });
      expect(d.status).toBe(0);
      expect(d.stdout).toContain(`<${k.entry}>:`);
    }
  });

  it("a second compile into the same directory replaces the first library", async () => {
    const out = path.join(tmp, "cuda-again");
    const args = ["compile", "--target", "cuda", "--model", "stories15M", "--out", out];
    expect((await runInProcess([...args, "--format", "f16"])).code).toBe(0);
    expect((await runInProcess(args)).code).toBe(0);
    const files = fs.readdirSync(out).filter((f) => f !== "manifest.json");
    expect(files.every((f) => f.includes("_q4f16_1_"))).toBe(true);
    expect(files).toHaveLength(storiesOps("q4f16_1", CUDA_OP_CHOICES).length);
  });
});

describe("tkc compile for Vulkan and the CPU", () => {
  it("--target vulkan writes SPIR-V modules", async () => {
    const out = path.join(tmp, "vulkan");
    const r = await runInProcess([
      "compile",
      "--target",
      "vulkan",
      "--model",
      "stories15M",
      "--format",
      "f16",
      "--out",
      out,
    ]);
    expect(r.code).toBe(0);
    const m = manifestOf(out);
    expect(m).toMatchObject({ target: "vulkan", api: "vulkan", weightFormat: "f16" });
    expectComplete(
      m,
      out,
      storiesOps("f16").map((o) => o.key),
      "spv",
    );
    for (const k of Object.values(m.kernels))
      expect(fs.readFileSync(path.join(out, k.file)).readUInt32LE(0)).toBe(0x07230203); // SPIR-V magic
  });

  it("--target cpu writes JavaScript modules that run", async () => {
    const out = path.join(tmp, "cpu");
    const r = await runInProcess(["compile", "--target", "cpu", "--model", "stories15M", "--out", out]);
    expect(r.code).toBe(0);
    const m = manifestOf(out);
    expect(m).toMatchObject({ target: "cpu", api: "cpu" });
    const ops = storiesOps("q4f16_1");
    expectComplete(
      m,
      out,
      ops.map((o) => o.key),
      "js",
    );
    // The prefill residual add from its file, against plain arithmetic.
    const spec = ops.find((o) => o.key === m.ops.prefill.residual)!;
    const mod = (await import(pathToFileURL(path.join(out, m.kernels[spec.key]!.file)).href)) as {
      default: (args: unknown, rt: unknown) => void;
    };
    const d = stories.dim;
    const a = Array.from({ length: 2 * d }, (_, i) => (i % 7) - 3);
    const b = Array.from({ length: 2 * d }, (_, i) => (i % 5) * 0.5);
    const y = zeros("f16", [2, d]);
    mod.default(
      bindArgs(specializedFunc(spec), { a: ndarray("f16", [2, d], a), b: ndarray("f16", [2, d], b), y }),
      runtime,
    );
    expect(Array.from(toNumbers(y))).toEqual(a.map((v, i) => f16FromBits(f16Bits(v + b[i]!))));
  });
});

describe("tkc compile's flags", () => {
  const never = path.join(tmp, "never");
  it.each([
    [
      ["--target", "cuda", "--arch", "gfx1100", "--out", never],
      "--arch gfx1100 is not a cuda architecture (it is an AMD GPU: use --target rocm)",
    ],
    [
      ["--target", "rocm", "--arch", "sm_90", "--out", never],
      "--arch sm_90 is not a rocm architecture (it is an NVIDIA GPU: use --target cuda)",
    ],
    [["--target", "rocm", "--arch", "gfx803", "--out", never], "--target rocm takes gfx1100, gfx942, gfx90a"],
    [
      ["--target", "vulkan", "--arch", "sm_90", "--out", never],
      "--target vulkan takes no --arch (got 'sm_90'); sm_90 goes with --target cuda",
    ],
    [["--target", "metal", "--out", never], "--target must be one of cuda, rocm, vulkan, cpu, got 'metal'"],
    [["--arch", "sm_75", "--out", never], "missing --target"],
    [["--target", "cuda"], "missing --out DIR"],
    [
      ["--target", "cuda", "--format", "q8", "--out", never],
      "--format must be one of q4f16_1, f16, f32, got 'q8'",
    ],
  ])("%j is a usage error", async (args, message) => {
    const r = await runInProcess(["compile", ...args]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
    expect(fs.existsSync(never)).toBe(false);
  });

  it("refuses to write into a directory holding other files", async () => {
    const dir = path.join(tmp, "busy");
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, "notes.txt"), "mine");
    const r = await runInProcess(["compile", "--target", "cpu", "--model", "stories15M", "--out", dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("is a non-empty directory that holds no kernel library");
    expect(fs.readdirSync(dir)).toEqual(["notes.txt"]);
  });

  it("takes a JSON LlamaConfig, and caps the context at what decode attention holds", async () => {
    const file = path.join(tmp, "tiny.json");
    fs.writeFileSync(
      file,
      JSON.stringify({ dim: 64, hiddenDim: 128, nLayers: 2, nHeads: 4, vocabSize: 100, contextLength: 8192 }),
    );
    const out = path.join(tmp, "tiny");
    const r = await runInProcess(["compile", "--target", "cpu", "--model", file, "--out", out]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("tiny's context of 8192 is compiled for 4096 positions");
    const m = manifestOf(out);
    expect(m.model.config).toMatchObject({ dim: 64, nKvHeads: 4, contextLength: 4096, ropeLayout: "half" });
    expect(Object.keys(m.kernels).every((k) => k.includes("_64x128_4h4kv_100v_4096ctx"))).toBe(true);
  });
});

describe.skipIf(llvmMissing !== "")(`the kernel library cache${skipped(llvmMissing)}`, () => {
  it("compiles once, then loads what it stored", () => {
    const ops = storiesOps("q4f16_1").filter((o) => /^(rmsnorm1|residualT)_/.test(o.key));
    expect(ops).toHaveLength(2);
    expect(libraryHash(ops, "sm_90")).toBe(libraryHash([...ops].reverse(), "sm_90"));
    expect(libraryHash(ops, "sm_90")).not.toBe(libraryHash(ops, "sm_80"));
    const root = path.join(tmp, "cache");
    const first = cachedLibrary(ops, "sm_90", { root });
    expect(first.hit).toBe(false);
    expect(path.dirname(first.dir)).toBe(root);
    const second = cachedLibrary(ops, "sm_90", { root });
    expect(second.hit).toBe(true);
    for (const o of ops) expect(second.library.kernels[o.key]).toMatchObject(first.library.kernels[o.key]!);
    // A damaged entry is compiled again.
    fs.rmSync(path.join(first.dir, `${ops[0]!.key}.ptx`));
    expect(cachedLibrary(ops, "sm_90", { root }).hit).toBe(false);
  });
});

describe("--device cuda and vulkan", () => {
  it("without the NVIDIA driver, says so and exits 1", async () => {
    const saved = process.env.TKC_LIBCUDA;
    process.env.TKC_LIBCUDA = "/nonexistent/libcuda.so.1";
    try {
      const r = await runInProcess(["generate", "--device", "cuda", "--max-tokens", "2"]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(
        /^tkc generate: error: libcuda\.so\.1 \(the NVIDIA driver's CUDA library\) could not be loaded/,
      );
      expect(r.stdout).toBe("");
    } finally {
      if (saved === undefined) delete process.env.TKC_LIBCUDA;
      else process.env.TKC_LIBCUDA = saved;
    }
  });

  // The fake driver (test/backends/cuda/fake) reports an sm_90 GPU and keeps "device" memory on
  // the host; it runs only its own test kernels, so this stops at loading the model: a tiny
  // llama2.c checkpoint (random weights), which runs in f32 by default.
  const fake = llvmMissing ? undefined : buildFakeLibcuda();
  it.skipIf(!fake)(
    `compiles the model's kernels on the fly into the cache, then reuses them${skipped(fake ? "" : llvmMissing || "no gcc to build the fake libcuda")}`,
    async () => {
      const dir = path.join(tmp, "tiny-llama2c");
      fs.mkdirSync(dir);
      const config = tinyConfig({ dim: 64, hiddenDim: 128, contextLength: 16 });
      fs.writeFileSync(path.join(dir, "model.bin"), llama2cCheckpointBytes(randomWeights(config, 1), 0));
      fs.writeFileSync(path.join(dir, "tokenizer.bin"), llama2cTokenizerBytes(config.vocabSize));
      const saved = { lib: process.env.TKC_LIBCUDA, cache: process.env.TKC_CACHE_DIR };
      const cache = path.join(tmp, "device-cache");
      process.env.TKC_LIBCUDA = fake;
      process.env.TKC_CACHE_DIR = cache;
      try {
        const lines: string[] = [];
        const spec = modelSpec("generate", { device: "cuda", model: path.join(dir, "model.bin") });
        const first = await loadModel(spec, { log: (l) => lines.push(l) });
        expect(lines[0]).toMatch(/^tkc: compiling \d+ kernels for sm_90/);
        expect(first.description).toMatch(
          /^model \(.*\) on cuda \(Fake H100 \(CPU\), sm_90, f32; kernels compiled in .*device-cache/,
        );
        const entries = fs.readdirSync(cache);
        expect(entries).toHaveLength(1);
        const lib = readLibrary(path.join(cache, entries[0]!));
        const keys = allOps(llamaOps(config, "f32", GPU_SCHEDULES)).map((o) => o.key);
        expect(Object.keys(lib.kernels).sort()).toEqual(keys.sort());
        const again = await loadModel(spec, { log: (l) => lines.push(l) });
        expect(again.description).toContain("kernels cached in");
        expect(lines).toHaveLength(2); // "compiling", "compiled in": nothing the second time
      } finally {
        for (const [k, v] of [
          ["TKC_LIBCUDA", saved.lib],
          ["TKC_CACHE_DIR", saved.cache],
        ] as const)
          if (v === undefined) delete process.env[k];
          else process.env[k] = v;
      }
    },
  );

  it("--library and --format belong to the GPU devices", async () => {
    const lib = await runInProcess(["generate", "--library", tmp]);
    expect(lib.code).toBe(2);
    expect(lib.stderr).toContain("--library applies to --device cuda only");
    const fmt = await runInProcess(["generate", "--format", "f16"]);
    expect(fmt.code).toBe(2);
    expect(fmt.stderr).toContain("--format applies to the GPU devices");
  });
});

const vulkanMissing = (() => {
  try {
    createVulkanRuntime().destroy();
    return "";
  } catch (e) {
    if (e instanceof VulkanUnavailableError) return `no Vulkan device: ${e.message}`;
    throw e;
  }
})();

describe.skipIf(vulkanMissing !== "")(`--device vulkan${skipped(vulkanMissing)}`, () => {
  it("runs the kernel-built stories15M (f32: llama2.c's published text)", async () => {
    const r = await runInProcess([
      "generate",
      "--device",
      "vulkan",
      "--format",
      "f32",
      "--temperature",
      "0",
      "--max-tokens",
      "12",
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("Once upon a time, there was a little girl named L\n");
    expect(r.stderr).toMatch(/generated 12 tokens/);
  });
});
