// tkc's command line: the launcher, generate, chat over piped stdin, serve, convert, and bad flags.
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { BIN, ROOT, runBin, runInProcess } from "./run.ts";

// llama2.c's published greedy output of stories15M from BOS.
const PUBLISHED =
  "Once upon a time, there was a little girl named Lily. She loved to play outside in the sunshine. " +
  "One day, she saw a big, red ball in the sky.";

describe("tkc (child process through bin/tkc.mjs)", () => {
  it("generate --max-tokens 256 --temperature 0 prints the published stories15M text", async () => {
    const r = await runBin(["generate", "--max-tokens", "256", "--temperature", "0"]);
    expect(r.stderr).toMatch(/prefill [\d.]+ tok\/s; generated \d+ tokens, decode [\d.]+ tok\/s/);
    expect(r.code).toBe(0);
    expect(r.stdout.startsWith(PUBLISHED)).toBe(true);
  });

  it("chat reads piped lines, answers /stats, stops at /exit", async () => {
    const input = "Once upon a time\n/stats\n/exit\nThis line comes after /exit\n";
    const r = await runBin(["chat", "--temperature", "0", "--max-tokens", "12"], input);
    expect(r.code).toBe(0);
    const lines = r.stdout.split("\n");
    expect(lines[0]).toBe(", there was a little girl named Lily. She loved");
    expect(lines[1]).toMatch(
      /^\[prefill: 5 tokens at [\d.]+ tok\/s; decode: 12 tokens at [\d.]+ tok\/s; stop: length\]$/,
    );
    expect(lines.slice(2).join("")).toBe(""); // nothing after /exit
    expect(r.stderr).toContain("plain continuation");
  });

  it("bad flags exit 2 with a message naming the flag", async () => {
    const r = await runBin(["generate", "--temperature", "hot"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--temperature must be a number >= 0, got 'hot'");
    expect(r.stdout).toBe("");
  });

  it("serve --port 0 prints its URL, answers, and exits 0 on SIGTERM", async () => {
    const child = spawn(process.execPath, [BIN, "serve", "--port", "0", "--quiet"], { cwd: ROOT });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let err = "";
        const timer = setTimeout(() => reject(new Error(`no URL within 30 s; stderr: ${err}`)), 30_000);
        child.stderr.on("data", (d: Buffer) => {
          err += d.toString();
          const m = /listening on (http:\/\/\S+\/v1)/.exec(err);
          if (m) {
            clearTimeout(timer);
            resolve(m[1]!);
          }
        });
        child.on("exit", (code) => reject(new Error(`serve exited with ${code}: ${err}`)));
      });
      const models = (await (await fetch(`${url}/models`)).json()) as { data: { id: string }[] };
      expect(models.data[0]!.id).toBe("stories15M");
      const code = new Promise((resolve) => child.on("exit", resolve));
      child.kill("SIGTERM");
      expect(await code).toBe(0);
    } finally {
      child.kill("SIGKILL");
    }
  });
});

describe("tkc (in process)", () => {
  it("prints help for tkc and each command", async () => {
    const top = await runInProcess(["--help"]);
    expect(top.code).toBe(0);
    for (const c of ["generate", "chat", "serve", "convert"]) expect(top.stdout).toContain(`  ${c}`);
    const gen = await runInProcess(["generate", "--help"]);
    expect(gen.code).toBe(0);
    expect(gen.stdout).toContain("--max-tokens");
    expect((await runInProcess(["help", "chat"])).stdout).toContain("/reset");
    const none = await runInProcess([]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain("Usage: tkc <command>");
  });

  it.each([
    [["frobnicate"], "unknown command 'frobnicate'"],
    [["--prompt", "x"], "a command must come first"],
    [["generate", "--bogus"], "Unknown option '--bogus'"],
    [["generate", "--max-tokens"], "argument missing"],
    [["generate", "--max-tokens", "0"], "--max-tokens must be an integer >= 1, got '0'"],
    [["generate", "--max-tokens", "2.5"], "--max-tokens must be an integer >= 1"],
    [["generate", "--top-p", "1.5"], "--top-p must be a number from 0 to 1, got '1.5'"],
    [["generate", "--top-p", "0"], "--top-p must be greater than 0"],
    [["generate", "--seed=-1"], "--seed must be an integer from 0 to"],
    [["generate", "--seed", "-1"], "use '--seed=-XYZ'"],
    [["generate", "--device", "tpu"], "--device must be one of cpu, cuda, vulkan, got 'tpu'"],
    [["generate", "stray"], "Unexpected argument 'stray'"],
    [["chat", "--temperature=-1"], "--temperature must be a number >= 0"],
    [["serve", "--port", "70000"], "--port must be an integer from 0 to 65535"],
    [["convert"], "missing SRC"],
    [["convert", "stories15M", "--out", "x"], "--quantization is required"],
    [
      ["convert", "stories15M", "--out", "x", "--quantization", "q8"],
      "must be one of q4f16_1, f16, f32, got 'q8'",
    ],
  ])("tkc %j exits 2: %s", async (args, message) => {
    const r = await runInProcess(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
  });

  it("reports unavailable devices and missing models with exit 1", async () => {
    // No GPU driver here: the CUDA library cannot be loaded, and the message says so.
    const saved = process.env.TKC_LIBCUDA;
    process.env.TKC_LIBCUDA = "/nonexistent/libcuda.so.1";
    try {
      const cuda = await runInProcess(["generate", "--device", "cuda"]);
      expect(cuda.code).toBe(1);
      expect(cuda.stderr).toMatch(/could not be loaded/);
    } finally {
      if (saved === undefined) delete process.env.TKC_LIBCUDA;
      else process.env.TKC_LIBCUDA = saved;
    }
    const missing = await runInProcess(["generate", "--model", "/nonexistent/model.bin"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("no such file or directory");
  });

  it("converts the bundled model and generates from the converted directory", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tkc-cli-"));
    try {
      const out = path.join(dir, "stories15M-f32");
      const conv = await runInProcess(["convert", "stories15M", "--out", out, "--quantization", "f32"]);
      expect(conv.stderr).not.toContain("error");
      expect(conv.code).toBe(0);
      expect(conv.stdout).toContain("f32");
      const gen = await runInProcess([
        "generate",
        "--model",
        out,
        "--max-tokens",
        "20",
        "--temperature",
        "0",
      ]);
      expect(gen.code).toBe(0);
      expect(PUBLISHED.startsWith(gen.stdout.trimEnd())).toBe(true);
      expect(gen.stdout.length).toBeGreaterThan(40);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
