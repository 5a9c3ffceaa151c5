// bench/tune: searches schedule parameters on the GPU and stores the best as data
// (stdlib/gpu/tuned.ts), per target and kernel family.
//
//   npx tsx bench/tune.ts build [.device]        here: every candidate schedule of every family,
//                                                compiled for sm_90 -> .device/kernels/tune.json.gz
//   bash bench/device/run.sh tune                 there: times each candidate -> $OUT/tune.json
//   npx tsx bench/tune.ts apply-vulkan <vulkan-bench.json>...
//                                                here: the Vulkan tuning runs' fastest checked
//                                                candidate at each shape (each candidate of the last
//                                                run at its least time over the runs) as TUNED.vulkan
//                                                "family:NxK" (the
//                                                candidates: bench/device/build-vulkan-bench.ts
//                                                --tune; timed by run.sh vulkan-bench --kernels
//                                                .device/kernels/vulkan-tune-sg32.json.gz); the
//                                                timings in bench/results/vulkan-tune-<gpu>.json
//   npx tsx bench/tune.ts apply <tune.json>       here: the fastest candidate of each family (least
//                                                total time over the family's shapes) is written
//                                                to stdlib/gpu/tuned.ts, and the fastest at each
//                                                GEMV shape as "family:NxK"; the timings are kept in
//                                                bench/results/tune-<gpu>.json
//
// Families and their candidates:
//   gemv      one row per thread (q4Gemv stands for its fused variants), rows per block x lanes
//   gemvRows  four rows per thread (q4GemvRows4 stands for its fused variants), likewise
//   gemvMma   the tensor-core GEMVs (q4GemvMma stands for its fused variants): warps splitting K,
//             rows per block (one or two 16-row tiles) and chunks unrolled per warp iteration;
//             22016x4096 (the gate/up pair, whose kernel needs two tiles) only with 32 rows
//   rowReduce rmsNorm's threads per row
// Shapes are Llama-2-7B's decode shapes (bench/device/build-bench.ts GEMV_SHAPES; RMSNorm of 4096).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { spawnSync } from "node:child_process";
import { join, resolve } from "node:path";
import * as S from "../stdlib/index.ts";
import {
  q4GemvMmaSchedule,
  q4GemvSchedule,
  withMmaVariant,
  type GemvSchedule,
  type MmaGemvVariant,
} from "../stdlib/gpu/gemv.ts";
import { rowReduction } from "../stdlib/gpu/schedules.ts";
import { TUNED, type TunedEntry } from "../stdlib/gpu/tuned.ts";
import type { KernelArtifact } from "../backends/gpu-common/kernel.ts";
import type { OpSpec } from "../llama/device/types.ts";
import { compileOp } from "../llama/device/compile.ts";

/** One candidate at one shape, as the device runner (bench/device/tune.ts) takes it. */
export interface TuneCandidate {
  readonly family: string;
  readonly params: Readonly<Record<string, number | boolean>>;
  readonly shape: string;
  /** Bytes of each buffer argument (allocated and filled with a constant byte there). */
  readonly buffers: Readonly<Record<string, number>>;
  readonly scalars: Readonly<Record<string, number>>;
  /** Bytes the kernel must move at least (for the bandwidth column). */
  readonly bytes: number;
  readonly artifact: KernelArtifact;
  /** Buffers with given contents (token ids), uploaded instead of a constant fill. */
  readonly fixedBuffers?: Readonly<Record<string, readonly number[]>>;
  /** Floating-point operations of one launch (GEMMs), for TFLOP/s. */
  readonly flops?: number;
  /** Why it is listed but not timed. */
  readonly skip?: string;
}

export interface TuneResult {
  readonly family: string;
  readonly params: Readonly<Record<string, number | boolean>>;
  readonly shape: string;
  readonly us: number;
  readonly fractionOfCopy: number;
  readonly tflops?: number;
  readonly skipped?: string;
}

const GEMV_SHAPES: readonly [number, number][] = [
  [4096, 4096],
  [12288, 4096],
  [22016, 4096],
  [4096, 11008],
  [32000, 4096],
];

const ARCH = "sm_90";

function gemvGrid(family: "gemv" | "gemvRows"): GemvSchedule[] {
  const out: GemvSchedule[] = [];
  // Measured on an H100 (bench/results/tune-h100.json): 16 lanes always lost, so the grid now
  // spends its candidates on several warps per row instead.
  for (const rows of family === "gemv" ? [1, 2, 4] : [1, 2])
    for (const lanes of [32, 64, 128])
      for (const unrollGroups of [true, false])
        if (rows * lanes <= 512) out.push({ rows, lanes, unrollGroups });
  return out;
}

/**
 * The tensor-core GEMV's variants at K: 4, 8 and 16 warps, and the warp counts that split K's
 * chunks of 256 into 2 to 4 rounds most evenly (K = 11008's 43 chunks: 22, 15 and 11 warps, where
 * 16 leave 5 of the last round's warps idle).
 */
function mmaGrid(k: number): MmaGemvVariant[] {
  const chunks = Math.ceil(k / S.MMA_GEMV_CHUNK);
  const balanced = [2, 3, 4].map((r) => Math.ceil(chunks / r)).filter((w) => w <= 32);
  const out: MmaGemvVariant[] = [];
  for (const warps of [...new Set([4, 8, 16, ...balanced])].sort((a, b) => a - b))
    for (const rows of [16, 32] as const)
      for (const unrollChunks of [1, 2, 4]) out.push({ warps, rows, unrollChunks });
  return out;
}

function candidates(): TuneCandidate[] {
  const out: TuneCandidate[] = [];
  /** One GEMV candidate at an N x K shape: its weight, x and y buffers, compiled for ARCH. */
  const gemv = (
    family: string,
    params: GemvSchedule | MmaGemvVariant,
    n: number,
    k: number,
    spec: Omit<OpSpec, "specialize">,
  ) => {
    const buffers = { x: k * 2, packed: (n * k) / 2, scales: (n * k) / 16, y: n * 2 };
    out.push({
      family,
      params: { ...params },
      shape: `${n}x${k}`,
      buffers,
      scalars: {},
      bytes: Object.values(buffers).reduce((a, b) => a + b, 0),
      artifact: compileOp({ ...spec, specialize: { n, k, kw: k / 8, kg: k / 32 } }, ARCH),
    });
  };
  for (const [family, kernel, rowLoop] of [
    ["gemv", S.q4Gemv, "n"],
    ["gemvRows", S.q4GemvRows4, "n4"],
  ] as const)
    for (const p of gemvGrid(family))
      for (const [n, k] of GEMV_SHAPES)
        gemv(family, p, n, k, {
          key: `tune_${family}_${n}x${k}_r${p.rows}l${p.lanes}${p.unrollGroups ? "u" : ""}`,
          kernel,
          schedule: q4GemvSchedule(rowLoop, p),
        });
  for (const [n, k] of GEMV_SHAPES)
    for (const p of mmaGrid(k)) {
      if (n === 22016 && p.rows !== 32) continue;
      gemv("gemvMma", p, n, k, {
        key: `tune_gemvMma_${n}x${k}_w${p.warps}r${p.rows}u${p.unrollChunks}`,
        kernel: withMmaVariant(S.q4GemvMma, p),
        schedule: q4GemvMmaSchedule(p),
      });
    }
  for (const threads of [128, 256, 512, 1024]) {
    const d = 4096;
    const spec: OpSpec = {
      key: `tune_rowReduce_${d}_t${threads}`,
      kernel: S.rmsNorm,
      specialize: { m: 1, d },
      schedule: rowReduction("m", "i", "i_1", threads),
    };
    const buffers = { x: d * 2, w: d * 2, y: d * 2 };
    out.push({
      family: "rowReduce",
      params: { threads },
      shape: `1x${d}`,
      buffers,
      scalars: { eps: 1e-5 },
      bytes: Object.values(buffers).reduce((a, b) => a + b, 0),
      artifact: compileOp(spec, ARCH),
    });
  }
  return out;
}

/** The fastest parameters of each family at each of its shapes, keyed "family:NxK" (GEMVs only). */
export function bestPerShape(
  results: readonly TuneResult[],
): Map<string, { params: TuneResult["params"]; us: number }> {
  const best = new Map<string, { params: TuneResult["params"]; us: number }>();
  for (const r of results) {
    if (r.family === "rowReduce" || typeof r.us !== "number" || !Number.isFinite(r.us)) continue;
    const key = `${r.family}:${r.shape}`;
    const b = best.get(key);
    if (!b || r.us < b.us) best.set(key, { params: r.params, us: r.us });
  }
  return best;
}

/** The fastest parameters of each family: least total time over its shapes. */
export function bestPerFamily(
  results: readonly TuneResult[],
): Map<string, { params: TuneResult["params"]; us: number }> {
  const totals = new Map<string, { params: TuneResult["params"]; us: number; shapes: number }>();
  const shapes = new Map<string, Set<string>>();
  for (const r of results) {
    shapes.set(r.family, (shapes.get(r.family) ?? new Set()).add(r.shape));
    const key = `${r.family} ${JSON.stringify(r.params)}`;
    const t = totals.get(key) ?? { params: r.params, us: 0, shapes: 0 };
    // A failed timing is written as null (JSON has no Infinity).
    t.us += typeof r.us === "number" ? r.us : Infinity;
    t.shapes++;
    totals.set(key, t);
  }
  const best = new Map<string, { params: TuneResult["params"]; us: number }>();
  for (const [key, t] of totals) {
    const family = key.split(" ")[0]!;
    // A candidate that failed at some shape is not a candidate.
    if (t.shapes !== shapes.get(family)!.size || !Number.isFinite(t.us)) continue;
    const b = best.get(family);
    if (!b || t.us < b.us) best.set(family, { params: t.params, us: t.us });
  }
  return best;
}

/** Writes `table` as stdlib/gpu/tuned.ts's TUNED, in the repository's formatting (CI checks it). */
function writeTuned(table: Record<string, Record<string, TunedEntry>>): void {
  const tunedFile = new URL("../stdlib/gpu/tuned.ts", import.meta.url);
  writeFileSync(tunedFile, renderTuned(table));
  spawnSync("npx", ["prettier", "--write", tunedFile.pathname], { stdio: "ignore" });
}

/** The results file's tag for a GPU's name. */
const gpuTag = (device: string) => {
  const d = device.toLowerCase();
  return d.includes("h200") ? "h200" : d.includes("h100") ? "h100" : "gpu";
};

function renderTuned(table: Record<string, Record<string, TunedEntry>>): string {
  const src = readFileSync(new URL("../stdlib/gpu/tuned.ts", import.meta.url), "utf8");
  const start = src.indexOf("export const TUNED");
  const end = src.indexOf("\n\n", start);
  const body = `export const TUNED: Readonly<Record<string, Readonly<Record<string, TunedEntry>>>> = ${JSON.stringify(table, null, 2)};`;
  return src.slice(0, start) + body + src.slice(end);
}

/** One timed candidate of a Vulkan tuning run (bench/device/vulkan-bench.ts's result). */
export interface VulkanTuneResult {
  readonly name: string;
  readonly params: { family: string; n: number; k: number } & Record<string, number | boolean | string>;
  readonly usPerDispatch?: number;
  /** Host time of the dispatches recorded without timestamps (what the tuner goes by). */
  readonly hostUsPerDispatch?: number;
  readonly gbps?: number;
  readonly check?: { ok: boolean };
  readonly error?: string;
  readonly driver?: readonly { statistics: Record<string, number> }[];
}

/** The fastest candidate that passed its check at each "family:NxK" of a Vulkan tuning run. */
export function bestVulkanPerShape(
  results: readonly VulkanTuneResult[],
): Map<string, { params: Record<string, number | boolean>; us: number; name: string }> {
  const best = new Map<string, { params: Record<string, number | boolean>; us: number; name: string }>();
  for (const r of results) {
    const us = r.hostUsPerDispatch ?? r.usPerDispatch;
    if (r.check?.ok !== true || typeof us !== "number" || !Number.isFinite(us) || !r.params?.family) continue;
    const key = `${r.params.family}:${r.params.n}x${r.params.k}`;
    const b = best.get(key);
    if (!b || us < b.us)
      best.set(key, {
        params: {
          rows: Number(r.params.rows),
          lanes: Number(r.params.lanes),
          unrollGroups: !!r.params.unrollGroups,
        },
        us,
        name: r.name,
      });
  }
  return best;
}

function applyVulkan(files: readonly string[]): void {
  const runs = files.map(
    (f) =>
      JSON.parse(readFileSync(f, "utf8")) as {
        device: string;
        failed: number;
        results: VulkanTuneResult[];
      },
  );
  const run = runs.at(-1)!;
  // The last run's candidates (the current grid), each at its least time over the runs: a
  // candidate timed while the clocks were still coming up once is not held to that time.
  const timings = new Map<string, number[]>();
  for (const r of runs.flatMap((x) => x.results))
    if (r.check?.ok === true && typeof r.hostUsPerDispatch === "number")
      timings.set(r.name, [...(timings.get(r.name) ?? []), r.hostUsPerDispatch]);
  const results = run.results
    .filter((r) => r.params?.family)
    .map((r) => ({
      ...r,
      hostUsPerDispatch: Math.min(...(timings.get(r.name) ?? [Infinity])),
      runs: timings.get(r.name),
    }));
  if (results.length === 0) throw new Error(`tune apply-vulkan: ${files.at(-1)} has no tuning candidates`);
  const table: Record<string, Record<string, TunedEntry>> = JSON.parse(JSON.stringify(TUNED));
  table.vulkan ??= {};
  const date = new Date().toISOString().slice(0, 10);
  const best = bestVulkanPerShape(results);
  for (const [shape, b] of best) {
    // A candidate's name starts with its kernel's.
    const kernel = b.name.split(" ")[0];
    table.vulkan[shape] = {
      params: b.params,
      device: `${run.device} (Vulkan)`,
      measured: `${date}: least time at this shape of ${kernel} through the Vulkan driver, ${b.us.toFixed(1)} us a dispatch timed from the host (bench/device/build-vulkan-bench.ts --tune, bench/results/vulkan-tune-*.json)`,
    };
    console.log(`${shape}: ${JSON.stringify(b.params)} (${b.us.toFixed(1)} us, ${b.name})`);
  }
  writeTuned(table);
  const out = new URL(`./results/vulkan-tune-${gpuTag(run.device)}.json`, import.meta.url);
  const slim = results.map((r) => ({
    name: r.name,
    params: r.params,
    hostUsPerDispatch: r.hostUsPerDispatch,
    timestampedUsPerDispatch: r.usPerDispatch,
    checkOk: r.check?.ok,
    hostUsRuns: r.runs,
    ...(r.error ? { error: r.error } : {}),
    registers: r.driver?.[0]?.statistics["Register Count"],
  }));
  writeFileSync(
    out,
    JSON.stringify(
      {
        command:
          "npx tsx bench/device/build-vulkan-bench.ts .device/kernels --tune; bash bench/device/run.sh vulkan-bench --kernels .device/kernels/vulkan-tune-sg32.json.gz (in several calls); npx tsx bench/tune.ts apply-vulkan <each call's vulkan-bench.json>",
        device: run.device,
        description:
          "The Vulkan 7B model's decode GEMVs (its own fused kernels) under each schedule of the tuner's grid through the Vulkan driver, each checked against the kernel's CPU reference at the 7B shape: 100 dispatches with a barrier before each, after 200 ms of the same to bring the clocks up, timed from the host (hostUsPerDispatch: the least over the runs; hostUsRuns: each run's) and with timestamps (timestampedUsPerDispatch, the last run's). Schedules whose rows span several subgroups are left out for kernels that add the residual in place (the model would stage it). A kernel alone can time otherwise than inside the decode step: vulkan-h200.json twentyFifthSession.",
        runs: runs.length,
        failed: runs.map((x) => x.failed),
        best: Object.fromEntries(best),
        results: slim,
      },
      null,
      1,
    ),
  );
  console.log(`tune: stdlib/gpu/tuned.ts updated (vulkan); timings in ${out.pathname}`);
}

function main(): void {
  const [cmd, arg] = process.argv.slice(2);
  if (cmd === "build") {
    const dir = resolve(arg ?? ".device", "kernels");
    mkdirSync(dir, { recursive: true });
    const list = candidates();
    // Gzipped: the unrolled PTX of 124 candidates is 11 MB of text, and .device travels.
    writeFileSync(join(dir, "tune.json.gz"), gzipSync(JSON.stringify(list)));
    console.log(`tune: ${list.length} candidates -> ${join(dir, "tune.json.gz")}`);
    return;
  }
  if (cmd === "apply-vulkan" && arg) {
    applyVulkan(process.argv.slice(3));
    return;
  }
  if (cmd === "apply" && arg) {
    const run = JSON.parse(readFileSync(arg, "utf8")) as {
      device: string;
      copyBandwidthGBs: number;
      /** Timed with programmatic dependent launch (bench/device/tune.ts on sm_90). */
      programmaticLaunch?: boolean;
      /** The one family timed (--family), where the run was so limited. */
      family?: string;
      results: TuneResult[];
    };
    const best = bestPerFamily(run.results);
    const table: Record<string, Record<string, TunedEntry>> = JSON.parse(JSON.stringify(TUNED));
    table[ARCH] ??= {};
    const date = new Date().toISOString().slice(0, 10);
    const how = run.programmaticLaunch ? ", with programmatic launch" : "";
    for (const [shape, b] of bestPerShape(run.results)) {
      // An entry measured inside the decode step's graph (with the kernels the model runs, not
      // the tuner's stand-ins) outranks a time alone: kept until that measurement is redone.
      if (table[ARCH]![shape]?.measured.includes("in its graph")) {
        console.log(`${shape}: kept (${table[ARCH]![shape]!.measured})`);
        continue;
      }
      table[ARCH]![shape] = {
        params: b.params,
        device: run.device,
        measured: `${date}: least time at this shape, ${b.us.toFixed(1)} us (bench/tune.ts${how})`,
      };
      console.log(`${shape}: ${JSON.stringify(b.params)} (${b.us.toFixed(1)} us)`);
    }
    for (const [family, b] of best) {
      table[ARCH]![family] = {
        params: b.params,
        device: run.device,
        measured: `${date}: least total time over ${family === "rowReduce" ? "RMSNorm of 4096" : "the 7B GEMV shapes"}, ${b.us.toFixed(1)} us (bench/tune.ts${how})`,
      };
      console.log(`${family}: ${JSON.stringify(b.params)} (${b.us.toFixed(1)} us over its shapes)`);
    }
    writeTuned(table);
    const out = new URL(`./results/tune-${gpuTag(run.device)}.json`, import.meta.url);
    // A run of one family (--family) keeps the other families' timings of the file it updates.
    const family = run.family;
    const previous =
      family && existsSync(out)
        ? (JSON.parse(readFileSync(out, "utf8")) as { results: TuneResult[]; best: Record<string, unknown> })
        : undefined;
    const results = [...(previous?.results.filter((r) => r.family !== family) ?? []), ...run.results];
    const bestAll = { ...(previous?.best ?? {}), ...Object.fromEntries(best) };
    writeFileSync(out, JSON.stringify({ ...run, results, best: bestAll }, null, 1));
    console.log(`tune: stdlib/gpu/tuned.ts updated; timings in ${out.pathname}`);
    return;
  }
  console.error(
    "usage: npx tsx bench/tune.ts build [deviceDir] | apply <tune.json from the GPU machine> | apply-vulkan <vulkan-bench.json of a tuning run>",
  );
  process.exit(2);
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(new URL(import.meta.url).pathname)) main();
