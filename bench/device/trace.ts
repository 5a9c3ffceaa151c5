// Runs on the GPU machine: a timeline of the 7B q4f16_1 decode step from inside its kernels.
// The device machine has no Nsight Systems; instead each kernel of the library is instrumented
// (its PTX rewritten on the GPU machine, in memory) to write, for every block, the %globaltimer at
// its start, after its wait for the previous kernel (griddepcontrol.wait) and at its exit, with its
// multiprocessor, into one device buffer. A few greedy steps are replayed from the recorded graph;
// the records are grouped into launches, and each launch's share of the step's critical path (its
// last block's exit after the previous launch's) is split into the wait for the previous kernel
// (its first block passing the wait after the previous launch's last exit) and its run.
// Instrumentation costs each block a few instructions and three atomics (on its multiprocessor's
// counter): the timeline is the instrumented kernels', a little slower than the plain step (both
// are printed), and a record's own atomic delays what follows it in its thread.
// Position 256 by default: the middle of bench/device/decode.ts's 512 decoded tokens. Writes $OUT/trace.json.
//   trace [--lib lib/llama2-7b-q4-sm_90] [--choices '{...}'] [--position 256] [--steps 4] [--barriers]
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createCudaRuntime } from "../../backends/cuda/runtime.ts";
import { readLibrary, type Library } from "../../llama/device/library.ts";
import { createCudaDevice } from "../../llama/device/cuda.ts";
import { syntheticQ4 } from "../../llama/weights/source.ts";
import { KernelLlama } from "../../llama/model.ts";
import { CUDA_OP_CHOICES, type OpChoices } from "../../llama/op-choices.ts";
import { LLAMA2_7B, DECODE_CONTEXT } from "./models.ts";

/** Barrier sites recorded per kernel (trace --barriers), the first in program order. */
const MAX_BARRIERS = 8;
/**
 * Multiprocessors with a record counter of their own (u64 each, before the records): blocks append
 * to their multiprocessor's region, so the atomics that take a slot meet only those of the blocks
 * beside them, not every block that starts or exits at once.
 */
const MAX_SMS = 256;
/** Bytes before the first record: the counters. */
const HEADER = 8 * MAX_SMS;
/** Bytes per record: [kernel << 48 | event << 40 | smid << 32 | block, %globaltimer] as u64. */
const RECORD = 16;
/** Records a multiprocessor's region holds. */
const RECORDS_PER_SM = 1 << 14;

/**
 * The PTX of one kernel with timing records added: thread (0, 0, 0) of each block appends one
 * record as the block starts, one after `griddepcontrol.wait` (where there is one) and one at each
 * `ret`. Each record is written where its time is read, so no register stays live across the
 * kernel's body (which would change its register count, and so its occupancy).
 */
export function instrumentPtx(ptx: string, kernel: number, buffer: bigint, barriers = false): string {
  const lines = ptx.split("\n");
  const entry = lines.findIndex((l) => /^\.visible \.entry /.test(l));
  const open = lines.findIndex((l, i) => i > entry && l.trim() === "{");
  if (entry < 0 || open < 0) throw new Error("trace: no kernel entry in the PTX");
  let labels = 0;
  const record = (event: number): string[] => {
    const skip = `$TKC_TRACE_${labels++}`;
    return [
      "\tmov.u64 %tkc_t, %globaltimer;",
      "\tmov.u32 %tkc_u0, %tid.x;",
      "\tmov.u32 %tkc_u1, %tid.y;",
      "\tor.b32 %tkc_u0, %tkc_u0, %tkc_u1;",
      "\tmov.u32 %tkc_u1, %tid.z;",
      "\tor.b32 %tkc_u0, %tkc_u0, %tkc_u1;",
      "\tsetp.ne.u32 %tkc_p, %tkc_u0, 0;",
      `\t@%tkc_p bra ${skip};`,
      "\tmov.u32 %tkc_u3, %smid;",
      `\tmin.u32 %tkc_u2, %tkc_u3, ${MAX_SMS - 1};`,
      "\tcvt.u64.u32 %tkc_k, %tkc_u2;",
      `\tmov.u64 %tkc_a, ${buffer};`,
      "\tmad.lo.u64 %tkc_i, %tkc_k, 8, %tkc_a;",
      "\tatom.global.add.u64 %tkc_i, [%tkc_i], 1;",
      `\tmin.u64 %tkc_i, %tkc_i, ${RECORDS_PER_SM - 1};`,
      `\tmad.lo.u64 %tkc_i, %tkc_k, ${RECORDS_PER_SM}, %tkc_i;`,
      `\tmad.lo.u64 %tkc_a, %tkc_i, ${RECORD}, %tkc_a;`,
      "\tmov.u32 %tkc_u0, %ctaid.x;",
      "\tmov.u32 %tkc_u1, %ctaid.y;",
      "\tmov.u32 %tkc_u2, %nctaid.x;",
      "\tmad.lo.u32 %tkc_u0, %tkc_u1, %tkc_u2, %tkc_u0;",
      `\tor.b32 %tkc_u1, %tkc_u3, ${(kernel << 16) | (event << 8)};`,
      "\tmov.b64 %tkc_k, {%tkc_u0, %tkc_u1};",
      `\tst.global.v2.u64 [%tkc_a+${HEADER}], {%tkc_k, %tkc_t};`,
      `${skip}:`,
    ];
  };
  const out: string[] = [];
  let rets = 0;
  let sites = 0;
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (i > open && /^\s*ret;\s*$/.test(l)) {
      rets++;
      out.push(...record(2));
    }
    out.push(l);
    if (i === open)
      out.push(
        "\t.reg .u64 %tkc_t, %tkc_a, %tkc_i, %tkc_k;",
        "\t.reg .u32 %tkc_u<4>;",
        "\t.reg .pred %tkc_p;",
        ...record(0),
      );
    if (i > open && /^\s*griddepcontrol\.wait;/.test(l)) out.push(...record(1));
    // With barriers: one more record after each block-wide barrier, numbered by its place.
    if (barriers && i > open && /^\s*(bar|barrier)\.sync\b/.test(l) && sites < MAX_BARRIERS)
      out.push(...record(3 + sites++));
  }
  if (rets === 0) throw new Error("trace: no ret in the PTX");
  return out.join("\n");
}

interface Launch {
  readonly kernel: string;
  readonly blocks: number;
  readonly firstStart: number;
  readonly firstAfterWait: number;
  readonly lastAfterWait: number;
  readonly medianExit: number;
  readonly lastExit: number;
  /** The median time each recorded barrier site was passed (trace --barriers), by site. */
  readonly barriers: readonly number[];
}

/**
 * Records into launches. Per kernel, its exits sorted by time split where LAUNCH_GAP_NS pass
 * without one (one kernel's launches are a layer apart, over 40 µs at the 7B shape, and a launch
 * starts only after the one before it has exited: six kernels lie between them; within a launch of
 * several waves, exits are at most a block's run apart, which reached 5-8 µs); the starts and waits
 * up to a group's last exit, after the previous group's, are that launch's. A kernel without a
 * wait has its starts as waits.
 */
export const LAUNCH_GAP_NS = 15_000;

export function launchesOf(records: BigUint64Array, count: number, names: readonly string[]): Launch[] {
  const times = new Map<number, number[][]>();
  for (let r = 0; r < count; r++) {
    const key = records[r * 2]!;
    const kernel = Number(key >> 48n);
    const event = Number((key >> 40n) & 0xffn);
    const perKernel = times.get(kernel) ?? times.set(kernel, []).get(kernel)!;
    while (perKernel.length <= Math.max(event, 2)) perKernel.push([]);
    perKernel[event]!.push(Number(records[r * 2 + 1]!));
  }
  const launches: Launch[] = [];
  for (const [kernel, events] of times) {
    for (const ts of events) ts.sort((a, b) => a - b);
    const [starts, waitTimes, exits, ...sites] = events as [number[], number[], number[], ...number[][]];
    const waits = waitTimes.length ? waitTimes : starts;
    const ends: number[] = [];
    exits.forEach((t, i) => {
      if (i + 1 === exits.length || exits[i + 1]! - t > LAUNCH_GAP_NS) ends.push(t);
    });
    // The index past the last of ts (sorted) at or before end, from `from` on.
    const upTo = (ts: number[], from: number, end: number) => {
      let i = from;
      while (i < ts.length && ts[i]! <= end) i++;
      return i;
    };
    let [e0, s0, w0] = [0, 0, 0];
    const b0 = sites.map(() => 0);
    for (const end of ends) {
      const [e1, s1, w1] = [upTo(exits, e0, end), upTo(starts, s0, end), upTo(waits, w0, end)];
      if (s1 === s0 || w1 === w0)
        throw new Error(`trace: a launch of ${names[kernel]} has exits but no starts or waits before them`);
      const ex = exits.slice(e0, e1);
      const passed = sites.map((ts, k) => {
        const b1 = upTo(ts, b0[k]!, end);
        const mine = ts.slice(b0[k], b1);
        b0[k] = b1;
        return mine.length ? mine[mine.length >> 1]! : NaN;
      });
      launches.push({
        kernel: names[kernel]!,
        blocks: s1 - s0,
        firstStart: starts[s0]!,
        firstAfterWait: waits[w0]!,
        lastAfterWait: waits[w1 - 1]!,
        medianExit: ex[ex.length >> 1]!,
        lastExit: end,
        barriers: passed,
      });
      [e0, s0, w0] = [e1, s1, w1];
    }
  }
  return launches.sort((a, b) => a.lastExit - b.lastExit);
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      out: { type: "string", default: "bench/out" },
      lib: { type: "string", default: "lib/llama2-7b-q4-sm_90" },
      choices: { type: "string", default: "{}" },
      position: { type: "string", default: "256" },
      steps: { type: "string", default: "4" },
      // --barriers: also a record after each block-wide barrier (bar.sync), to see a block's phases.
      barriers: { type: "boolean", default: false },
    },
  });
  const here = new URL(".", import.meta.url).pathname;
  const rt = createCudaRuntime();
  const choices = { ...CUDA_OP_CHOICES, ...(JSON.parse(values.choices!) as object) } as OpChoices;
  const position = Number(values.position);
  const steps = Number(values.steps);
  const config = { ...LLAMA2_7B, contextLength: DECODE_CONTEXT };
  const plain = readLibrary(join(here, values.lib!));
  const buffer = rt.alloc(HEADER + RECORD * RECORDS_PER_SM * MAX_SMS);
  const zeroCounters = () => rt.upload(buffer, new BigUint64Array(MAX_SMS));
  const names = Object.keys(plain.kernels);
  const traced: Library = {
    ...plain,
    kernels: Object.fromEntries(
      names.map((n, i) => [
        n,
        { ...plain.kernels[n]!, image: instrumentPtx(plain.kernels[n]!.image, i, buffer, values.barriers) },
      ]),
    ),
  };
  const result: Record<string, unknown> = { device: rt.device.name, library: values.lib, position, steps };
  // The plain step, for how much the instrumentation costs.
  for (const [label, library] of [
    ["plain", plain],
    ["traced", traced],
  ] as const) {
    const device = createCudaDevice({ runtime: rt, library });
    const model = new KernelLlama(device, syntheticQ4(config), { format: "q4f16_1", opChoices: choices });
    model.decodeGreedy(1, position, 1);
    model.decodeGreedy(1, position, 1);
    let best = Infinity;
    for (let round = 0; round < 5; round++) {
      zeroCounters();
      const t0 = performance.now();
      model.decodeGreedy(1, position, steps);
      best = Math.min(best, ((performance.now() - t0) * 1e3) / steps);
    }
    result[`${label}HostUsPerStep`] = best;
    console.log(`${label}: ${best.toFixed(1)} us a step (host clock, ${steps} steps a call, best of 5)`);
    if (label === "traced") {
      zeroCounters();
      model.decodeGreedy(1, position, steps);
      device.sync();
      const counts = new BigUint64Array(MAX_SMS);
      rt.download(counts, buffer);
      const full = new BigUint64Array(RECORDS_PER_SM * MAX_SMS * 2);
      rt.download(full, buffer + BigInt(HEADER));
      // Each multiprocessor's records, one after another.
      const kept = [...counts].map((c) => Math.min(Number(c), RECORDS_PER_SM));
      const count = kept.reduce((a, b) => a + b, 0);
      const records = new BigUint64Array(count * 2);
      let at = 0;
      kept.forEach((n, sm) => {
        records.set(full.subarray(sm * RECORDS_PER_SM * 2, (sm * RECORDS_PER_SM + n) * 2), at);
        at += n * 2;
      });
      const launches = launchesOf(
        records,
        count,
        names.map((n) => n.replace(/_.*/, "")),
      );
      report(launches, result);
    }
    device.dispose();
  }
  writeFileSync(join(values.out!, "trace.json"), JSON.stringify(result, null, 1));
  rt.free(buffer);
  rt.dispose();
  return 0;
}

/** Per kernel: its launches' shares of the critical path, split into waiting and running. */
function report(launches: Launch[], result: Record<string, unknown>) {
  const us = (ns: number) => ns / 1e3;
  const rows = launches.map((l, i) => {
    const prev = launches[i - 1];
    return {
      ...l,
      // How much later than the previous launch's last exit this one's last exit comes.
      share: prev ? l.lastExit - prev.lastExit : 0,
      // From the previous launch's last exit to this one's first block past its wait.
      release: prev ? l.firstAfterWait - prev.lastExit : 0,
      // Blocks resident before the previous launch ended (early launch).
      lead: prev ? prev.lastExit - l.firstStart : 0,
      // From the median block's exit to the last's.
      tail: l.lastExit - l.medianExit,
    };
  });
  const step = rows.filter((r) => r.kernel.startsWith("embed1"));
  const stepNs =
    step.length > 1 ? (step[step.length - 1]!.lastExit - step[0]!.lastExit) / (step.length - 1) : NaN;
  const byKernel = new Map<string, typeof rows>();
  for (const r of rows.slice(1))
    (byKernel.get(r.kernel) ?? byKernel.set(r.kernel, []).get(r.kernel)!).push(r);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const summary = [...byKernel].map(([kernel, rs]) => ({
    kernel,
    launches: rs.length,
    blocks: rs[0]!.blocks,
    shareUs: us(mean(rs.map((r) => r.share))),
    releaseUs: us(mean(rs.map((r) => r.release))),
    runUs: us(mean(rs.map((r) => r.lastExit - r.firstAfterWait))),
    leadUs: us(mean(rs.map((r) => r.lead))),
    tailUs: us(mean(rs.map((r) => r.tail))),
    waitSpreadUs: us(mean(rs.map((r) => r.lastAfterWait - r.firstAfterWait))),
    // With --barriers: when the median block passed each barrier site, after the first wait.
    ...(rs[0]!.barriers.length
      ? {
          barriersUs: rs[0]!.barriers.map((_, k) =>
            us(mean(rs.map((r) => r.barriers[k]! - r.firstAfterWait))),
          ),
        }
      : {}),
    medianExitUs: us(mean(rs.map((r) => r.medianExit - r.firstAfterWait))),
  }));
  summary.sort((a, b) => b.shareUs * b.launches - a.shareUs * a.launches);
  console.log(`traced step (embedding to embedding): ${us(stepNs).toFixed(1)} us`);
  console.log(
    "kernel            launches blocks   share  release    run    lead   tail  waitspread (us, means per launch)",
  );
  for (const s of summary)
    console.log(
      `${s.kernel.padEnd(18)} ${String(s.launches).padStart(6)} ${String(s.blocks).padStart(6)} ${[
        s.shareUs,
        s.releaseUs,
        s.runUs,
        s.leadUs,
        s.tailUs,
        s.waitSpreadUs,
      ]
        .map((x) => x.toFixed(2).padStart(7))
        .join(
          " ",
        )}${s.barriersUs ? `  barriers ${s.barriersUs.map((x) => x.toFixed(2)).join(", ")}, median exit ${s.medianExitUs.toFixed(2)} after the wait` : ""}`,
    );
  result.tracedStepUs = us(stepNs);
  result.kernels = summary;
  // One layer's launches in order, from the middle of the trace.
  const mid = rows.findIndex((r, i) => i > rows.length / 2 && r.kernel.startsWith("qkv"));
  result.layer = rows.slice(mid, mid + 8).map((r) => ({
    kernel: r.kernel,
    blocks: r.blocks,
    firstStartUs: us(r.firstStart - rows[mid]!.firstStart),
    firstAfterWaitUs: us(r.firstAfterWait - rows[mid]!.firstStart),
    medianExitUs: us(r.medianExit - rows[mid]!.firstStart),
    lastExitUs: us(r.lastExit - rows[mid]!.firstStart),
  }));
  console.log("one layer (us from its QKV's first block start):");
  for (const r of result.layer as Record<string, number | string>[]) console.log(`  ${JSON.stringify(r)}`);
}

if (process.argv[1]?.endsWith("trace.mjs") || process.argv[1]?.endsWith("trace.ts"))
  main().then(
    (code) => process.exit(code),
    (e) => {
      console.error(`trace: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      process.exit(2);
    },
  );
