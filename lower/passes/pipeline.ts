/**
 * The lowering pipeline: scheduled loop IR to device IR, as one explicit ordered list of named
 * passes (each in its own file). Every stage's output is a PrimFunc that prints and, from `launch`
 * on, runs on the CPU device emulation (backends/cpu/device.ts), so any stage can be dumped and
 * checked. DEVICE_IR.md describes what the last stage guarantees to renderers.
 */
import type { PrimFunc } from "../ir/nodes.ts";
import { printFunc } from "../ir/printer.ts";
import { barriersPass } from "./barriers.ts";
import { compactLocalPass } from "./compact_local.ts";
import { crossThreadReductionPass } from "./cross_thread_reduction.ts";
import { dependencyWaitPass } from "./dependency_wait.ts";
import { disjointWritesPass } from "./disjoint_writes.ts";
import { LoweringError } from "./errors.ts";
import { flattenPass } from "./flatten.ts";
import { hoistGuardsPass } from "./hoist_guards.ts";
import { launchPass } from "./launch.ts";
import { simplifyPass } from "./simplify.ts";
import { singleWriterPass } from "./single_writer.ts";
import type { Target } from "./target.ts";
import { threadGuardsPass } from "./thread_guards.ts";
import { unrollPass } from "./unroll.ts";
import { vectorizePass } from "./vectorize.ts";
import { verifyDeviceIR } from "./verify.ts";

export interface Pass {
  readonly name: string;
  run(f: PrimFunc, target: Target): PrimFunc;
}

export const PASSES: readonly Pass[] = [
  /** Thread-bound loops -> func.launch (grid, block); thread limits. */
  { name: "launch", run: launchPass },
  /** Reductions over threadIdx loops -> partials, warp shuffles, shared memory, broadcast. */
  { name: "cross_thread_reduction", run: crossThreadReductionPass },
  /** Copy loops whose steps write different shared elements, marked for the barriers pass. */
  { name: "disjoint_writes", run: disjointWritesPass },
  /** Thread loops -> `let v = thread_id(a)`, guarded where narrower than the launch. */
  { name: "thread_guards", run: threadGuardsPass },
  /** Global stores equal across a thread axis made by thread 0 of it (in-place updates stay correct). */
  { name: "single_writer", run: singleWriterPass },
  /** Local buffers indexed by the thread index shrink to what one thread touches. */
  { name: "compact_local", run: compactLocalPass },
  /** One flat index per access, 1-D allocations, no blocks; shared-memory limit. */
  { name: "flatten", run: flattenPass },
  /** Vectorized loops checked and put in canonical form (or demoted). */
  { name: "vectorize", run: vectorizePass },
  /** Barriers between conflicting shared-memory accesses of different threads. */
  { name: "barriers", run: barriersPass },
  /** Statements whose only effects are single-writer stores, under their guard as a whole. */
  { name: "hoist_guards", run: hoistGuardsPass },
  /** Unrolled loops expanded. */
  { name: "unroll", run: unrollPass },
  /** Constant folding, ranges, dead code. */
  { name: "simplify", run: simplifyPass },
  /** CUDA: the wait for the previous grid, after the leading L2 prefetches (or first). */
  { name: "dependency_wait", run: dependencyWaitPass },
  /** The device IR contract, checked. */
  { name: "verify", run: (f) => (verifyDeviceIR(f), f) },
];

export const STAGE_NAMES: readonly string[] = PASSES.map((p) => p.name);

function checkStage(name: string): void {
  if (!STAGE_NAMES.includes(name))
    throw new LoweringError(
      "pipeline",
      `no stage named ${JSON.stringify(name)}; the stages are ${STAGE_NAMES.join(", ")}`,
    );
}

/** The function after every stage, in order (the first entry, "input", is the scheduled IR). */
export function lowerStages(f: PrimFunc, target: Target, until?: string): { name: string; func: PrimFunc }[] {
  if (until !== undefined) checkStage(until);
  const out = [{ name: "input", func: f }];
  let cur = f;
  for (const p of PASSES) {
    cur = p.run(cur, target);
    out.push({ name: p.name, func: cur });
    if (p.name === until) break;
  }
  return out;
}

export interface LowerOptions {
  /** Stages whose output to dump (their names, or "all"). */
  readonly dump?: readonly string[] | "all";
  /** Where dumps go; standard error by default. */
  readonly onDump?: (stage: string, text: string) => void;
}

/** Lowers scheduled loop IR to device IR for a target. */
export function lowerToDevice(f: PrimFunc, target: Target, opts: LowerOptions = {}): PrimFunc {
  const wanted = opts.dump === "all" ? STAGE_NAMES : (opts.dump ?? []);
  wanted.forEach(checkStage);
  const dump =
    opts.onDump ?? ((stage: string, text: string) => process.stderr.write(`// ---- after ${stage}\n${text}`));
  let cur = f;
  for (const p of PASSES) {
    cur = p.run(cur, target);
    if (wanted.includes(p.name)) dump(p.name, printFunc(cur));
  }
  return cur;
}
