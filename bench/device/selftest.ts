// The GPU machine's first check (bundled to .device/selftest.mjs by prepare.sh, run by run.sh):
// loads the PTX that prepare.sh compiled from the LLVM fixtures, runs each kernel on random
// inputs and compares with the CPU, measures device-to-device copy bandwidth with events, and
// replays a captured graph of 100 launches. Writes <out>/selftest.json; exits 1 if a check fails.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createCudaRuntime } from "../../backends/cuda/runtime.ts";
import { CudaUnavailableError } from "../../backends/cuda/errors.ts";
import { i32, u32 } from "../../backends/gpu-common/args.ts";
import { f16BitsToNumber, toF16Bits } from "../../backends/gpu-common/f16.ts";
import type { GpuFunction, GpuRuntime, GpuStream } from "../../backends/gpu-common/runtime.ts";
import type { KernelBundle } from "./build-kernels.ts";

interface Check {
  name: string;
  ok: boolean;
  detail: string;
  ms?: number;
}

const args = parseArgs(process.argv.slice(2));
const results: Record<string, unknown> = { runner: "selftest", startedAt: new Date().toISOString() };
const checks: Check[] = [];

function parseArgs(argv: string[]): { out: string; copyMiB: number; kernels: string } {
  const get = (flag: string) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  // The bundle lives in .device/, next to kernels/.
  const here = dirname(fileURLToPath(import.meta.url));
  return {
    out: get("--out") ?? process.env.OUT ?? "bench/out",
    copyMiB: Number(get("--copy-mib") ?? 1024),
    kernels: get("--kernels") ?? join(here, "kernels/selftest.json"),
  };
}

/** Deterministic uniform floats in [lo, hi), so a failure reproduces. */
function random(n: number, lo: number, hi: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    out[i] = lo + (((t ^ (t >>> 14)) >>> 0) / 4294967296) * (hi - lo);
  }
  return out;
}

type Result = { ok: boolean; detail: string; ms?: number };

/** Runs one check; an exception (a driver error, a missing kernel) fails it, not the run. */
function check(name: string, f: () => Result): void {
  try {
    const r = f();
    checks.push({ name, ...r });
  } catch (e) {
    checks.push({ name, ok: false, detail: e instanceof Error ? e.message : String(e) });
  }
  const c = checks[checks.length - 1]!;
  console.log(`${c.ok ? "ok  " : "FAIL"} ${name}: ${c.detail}`);
}

/** Runs `body` `iters` times between two events on `stream`; returns milliseconds per iteration. */
function timeOnStream(rt: GpuRuntime, stream: GpuStream, iters: number, body: () => void): number {
  const [e0, e1] = [rt.createEvent(), rt.createEvent()];
  e0.record(stream);
  for (let i = 0; i < iters; i++) body();
  e1.record(stream);
  e1.synchronize();
  const ms = e1.elapsedSince(e0) / iters;
  e0.destroy();
  e1.destroy();
  return ms;
}

function vectorAdd(rt: GpuRuntime, fn: GpuFunction, stream: GpuStream): Result {
  const n = (1 << 24) + 123; // not a multiple of the block size: the bounds check matters
  const a = random(n, -100, 100, 1);
  const b = random(n, -100, 100, 2);
  return withBuffers(rt, [4 * n, 4 * n, 4 * n], ([da, db, dc]) => {
    rt.upload(da!, a);
    rt.upload(db!, b);
    const grid = Math.ceil(n / 256);
    const launch = () => rt.launch(fn, [da!, db!, dc!, i32(n)], { grid, block: 256, stream });
    launch();
    const c = new Float32Array(n);
    rt.download(c, dc!, stream);
    // f32 addition compares exactly: Math.fround of the double sum is the correctly rounded sum.
    let bad = 0;
    for (let i = 0; i < n; i++) if (c[i] !== Math.fround(a[i]! + b[i]!)) bad++;
    const ms = timeOnStream(rt, stream, 20, launch);
    const gbs = (3 * 4 * n) / (ms * 1e6);
    results.vaddBandwidthGBs = gbs;
    return {
      ok: bad === 0,
      detail: `${n} elements, ${bad} mismatches; ${ms.toFixed(3)} ms = ${gbs.toFixed(0)} GB/s`,
      ms,
    };
  });
}

/** Allocates device buffers for `body` and frees them whatever happens. */
function withBuffers<T>(rt: GpuRuntime, sizes: number[], body: (ptrs: bigint[]) => T): T {
  const ptrs: bigint[] = [];
  try {
    for (const s of sizes) ptrs.push(rt.alloc(s));
    return body(ptrs);
  } finally {
    for (const p of ptrs) rt.free(p);
  }
}

function blockSum(rt: GpuRuntime, fn: GpuFunction, stream: GpuStream): Result {
  const n = (1 << 22) + 77;
  const x = random(n, -1, 1, 3);
  const grid = Math.ceil(n / 256);
  return withBuffers(rt, [4 * n, 4 * grid], ([dx, dout]) => {
    rt.upload(dx!, x);
    rt.launch(fn, [dx!, dout!, i32(n)], { grid, block: 256, stream });
    const out = new Float32Array(grid);
    rt.download(out, dout!, stream);
    let worst = 0;
    for (let g = 0; g < grid; g++) {
      let sum = 0;
      let abs = 0;
      for (let i = g * 256; i < Math.min(n, (g + 1) * 256); i++) {
        sum += x[i]!;
        abs += Math.abs(x[i]!);
      }
      worst = Math.max(worst, Math.abs(out[g]! - sum) / (abs * 2 ** -20 + 1e-30));
    }
    // A tree sum of 256 f32 terms errs by far less than 2^-20 of the sum of magnitudes.
    return { ok: worst <= 1, detail: `${grid} blocks, worst error ${worst.toFixed(3)} x 2^-20 sum|x|` };
  });
}

function halfFma(rt: GpuRuntime, fn: GpuFunction, stream: GpuStream): Result {
  const n = 1 << 20;
  const toHalf = (v: Float32Array) => Uint16Array.from(v, (f) => toF16Bits(f));
  const [a, b, c] = [toHalf(random(n, -2, 2, 4)), toHalf(random(n, -2, 2, 5)), toHalf(random(n, -2, 2, 6))];
  return withBuffers(rt, [2 * n, 2 * n, 2 * n, 2 * n, 4 * n], ([da, db, dc, dy, ds]) => {
    rt.upload(da!, a);
    rt.upload(db!, b);
    rt.upload(dc!, c);
    rt.launch(fn, [da!, db!, dc!, dy!, ds!, i32(n)], { grid: n / 2 / 256, block: 256, stream });
    const y = new Uint16Array(n);
    const s = new Float32Array(n);
    rt.download(y, dy!, stream);
    rt.download(s, ds!, stream);
    // In f64, a*b + c of halves in [-2, 2] is exact, so one rounding to f16 is the fma's.
    let bad = 0;
    for (let i = 0; i < n; i++) {
      const f = f16BitsToNumber(a[i]!) * f16BitsToNumber(b[i]!) + f16BitsToNumber(c[i]!);
      const want = f16BitsToNumber(toF16Bits(Math.max(f, 0)));
      if (f16BitsToNumber(y[i]!) !== want || s[i] !== want) bad++;
    }
    return { ok: bad === 0, detail: `${n} elements, ${bad} mismatches` };
  });
}

function reverseTile(rt: GpuRuntime, fn: GpuFunction, stream: GpuStream): Result {
  const tile = 16384; // 64 KB of f32: over the 48 KB default, so it needs the opt-in
  const blocks = 132;
  const n = tile * blocks;
  const x = random(n, 0, 1, 7);
  return withBuffers(rt, [4 * n, 4 * n], ([dx, dy]) => {
    rt.upload(dx!, x);
    fn.setMaxDynamicSharedMemory(4 * tile);
    rt.launch(fn, [dx!, dy!, u32(tile)], { grid: blocks, block: 1024, sharedBytes: 4 * tile, stream });
    const y = new Float32Array(n);
    rt.download(y, dy!, stream);
    let bad = 0;
    for (let g = 0; g < blocks; g++)
      for (let j = 0; j < tile; j++) if (y[g * tile + j] !== x[g * tile + tile - 1 - j]) bad++;
    return { ok: bad === 0, detail: `${blocks} tiles of ${tile}, ${bad} mismatches` };
  });
}

function copyBandwidth(rt: GpuRuntime, stream: GpuStream): Result {
  const bytes = args.copyMiB * 2 ** 20;
  return withBuffers(rt, [bytes, bytes], ([src, dst]) => {
    rt.memset8(src!, 1, bytes, stream);
    rt.copy(dst!, src!, bytes, stream); // warm up
    const ms = timeOnStream(rt, stream, 10, () => rt.copy(dst!, src!, bytes, stream));
    const gbs = (2 * bytes) / (ms * 1e6); // bytes read + bytes written
    results.copyBandwidthGBs = gbs;
    return {
      ok: gbs > 0,
      detail: `${ms.toFixed(3)} ms per copy = ${gbs.toFixed(0)} GB/s (read + write)`,
      ms,
    };
  });
}

function graphReplay(rt: GpuRuntime, fn: GpuFunction, stream: GpuStream): Result {
  const n = 1 << 16;
  const launches = 100;
  const x = Float32Array.from({ length: n }, (_, i) => i % 64); // small integers: sums stay exact
  return withBuffers(rt, [4 * n, 4 * n, 4], ([dy, dx, ds]) => {
    rt.upload(dx!, x);
    rt.memset8(dy!, 0, 4 * n, stream);
    const step = () => rt.launch(fn, [dy!, dx!, ds!, i32(n)], { grid: n / 256, block: 256, stream });
    const graph = rt.captureGraph(stream, () => {
      for (let k = 0; k < launches; k++) step();
    });
    try {
      // The per-step value lives in device memory: replay with scale 1, then 2.
      for (const scale of [1, 2]) {
        rt.upload(ds!, Float32Array.of(scale), stream);
        graph.launch(stream);
      }
      const y = new Float32Array(n);
      rt.download(y, dy!, stream);
      let bad = 0;
      for (let i = 0; i < n; i++) if (y[i] !== 3 * launches * x[i]!) bad++;
      // The same launches one by one (device time and host time per launch), then as a graph.
      const t0 = performance.now();
      const direct = timeOnStream(rt, stream, 10, () => {
        for (let k = 0; k < launches; k++) step();
      });
      const hostUs = ((performance.now() - t0) * 1e3) / (10 * launches);
      const replay = timeOnStream(rt, stream, 10, () => graph.launch(stream));
      const perLaunch = { direct: (direct * 1e3) / launches, host: hostUs, graph: (replay * 1e3) / launches };
      results.graph = {
        launches,
        usPerLaunchDirect: perLaunch.direct,
        hostUsPerLaunch: hostUs,
        usPerLaunchGraph: perLaunch.graph,
      };
      return {
        ok: bad === 0,
        detail:
          `${bad} mismatches after 2 replays; ${perLaunch.direct.toFixed(2)} us/launch direct ` +
          `(host ${hostUs.toFixed(2)}), ${perLaunch.graph.toFixed(2)} us/launch in the graph`,
      };
    } finally {
      graph.destroy();
    }
  });
}

function main(): number {
  mkdirSync(args.out, { recursive: true });
  const write = () =>
    writeFileSync(join(args.out, "selftest.json"), JSON.stringify({ ...results, checks }, null, 2));
  let rt: GpuRuntime;
  try {
    rt = createCudaRuntime();
  } catch (e) {
    if (!(e instanceof CudaUnavailableError)) throw e;
    console.error(`selftest: ${e.message}`);
    results.error = e.message;
    write();
    return 2;
  }
  results.device = rt.device;
  console.log(`device: ${rt.device.name} (${rt.device.arch}, ${rt.device.multiprocessors} SMs)`);
  const bundle = JSON.parse(readFileSync(args.kernels, "utf8")) as KernelBundle;
  const fns: Record<string, GpuFunction> = {};
  const jitLogs: Record<string, string> = {};
  check(`load ${Object.keys(bundle.kernels).length} PTX modules`, () => {
    for (const [name, k] of Object.entries(bundle.kernels)) {
      const mod = rt.loadModule(k.ptx);
      fns[name] = mod.getFunction(name);
      jitLogs[name] = mod.log;
    }
    const attrs = Object.entries(fns).map(([n, f]) => [
      n,
      { ...f.attributes(), ptxasHere: bundle.kernels[n]!.resources },
    ]);
    results.kernels = Object.fromEntries(attrs);
    return {
      ok: true,
      detail: attrs.map(([n, a]) => `${n} ${(a as { registers: number }).registers} regs`).join(", "),
    };
  });
  results.jitLogs = jitLogs;
  const stream = rt.createStream();
  const needs = (name: string, run: (fn: GpuFunction) => Result) => () => {
    if (!fns[name]) throw new Error(`kernel ${name} did not load`);
    return run(fns[name]);
  };
  check(
    "vadd",
    needs("vadd", (fn) => vectorAdd(rt, fn, stream)),
  );
  check(
    "block_sum (shared memory + shuffles)",
    needs("block_sum", (fn) => blockSum(rt, fn, stream)),
  );
  check(
    "hfma_relu (f16x2 fma, max, widening)",
    needs("hfma_relu", (fn) => halfFma(rt, fn, stream)),
  );
  check(
    "reverse_tile (64 KB dynamic shared memory)",
    needs("reverse_tile", (fn) => reverseTile(rt, fn, stream)),
  );
  check(`copy ${args.copyMiB} MiB device to device`, () => copyBandwidth(rt, stream));
  check(
    "graph of 100 launches",
    needs("accum", (fn) => graphReplay(rt, fn, stream)),
  );
  stream.destroy();
  rt.dispose();
  results.ok = checks.every((c) => c.ok);
  results.finishedAt = new Date().toISOString();
  write();
  console.log(
    `selftest: ${results.ok ? "all checks passed" : "FAILED"}; results in ${join(args.out, "selftest.json")}`,
  );
  return results.ok ? 0 : 1;
}

process.exitCode = main();
