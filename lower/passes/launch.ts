/**
 * Pass `launch` (bound inference): the loops bound to blockIdx/threadIdx become the launch grid
 * and the thread block, recorded in `func.launch`.
 *
 * Rules, checked here so later passes can rely on them:
 * - a loop bound to a thread axis has a tag; blockIdx loops enclose threadIdx loops, never the
 *   other way round;
 * - threadIdx extents are constants; the block is as wide, along each axis, as the widest loop
 *   bound to it (narrower loops get a guard in `thread_guards`);
 * - blockIdx extents may be symbolic (`floordiv(n + 255, 256)`); all loops bound to one blockIdx
 *   axis then need the same extent, since a guard would need the larger one, which is unknown;
 * - loops bound to the same axis and nested inside one another (cooperative fetching, TVM style)
 *   have the same extent: the inner loop's variable is the same thread index;
 * - the threads per block stay within the target's limit.
 */
import type {
  DependentsLaunch,
  Expr,
  For,
  LaunchConfig,
  PrimFunc,
  Stmt,
  ThreadTag,
  Var,
} from "../ir/nodes.ts";
import { constant } from "../ir/build.ts";
import { sameExpr } from "../ir/equal.ts";
import { printExpr } from "../ir/printer.ts";
import { collectVars, someNode, substitute, walk } from "../ir/transform.ts";
import { LoweringError } from "./errors.ts";
import type { Target } from "./target.ts";

export const AXIS_OF: Readonly<Record<ThreadTag, 0 | 1 | 2>> = {
  "blockIdx.x": 0,
  "blockIdx.y": 1,
  "blockIdx.z": 2,
  "threadIdx.x": 0,
  "threadIdx.y": 1,
  "threadIdx.z": 2,
};
export const isBlockTag = (t: ThreadTag): boolean => t.startsWith("blockIdx");
const TAGS = Object.keys(AXIS_OF) as ThreadTag[];
const P = "launch";

interface Binding {
  readonly loop: For;
  readonly tag: ThreadTag;
}

const describe = (b: Binding): string => `loop ${b.loop.loopVar.name} (extent ${printExpr(b.loop.extent)})`;

/**
 * Every loop bound to a thread axis, with the bound loops enclosing it, checked for nesting. A
 * blockIdx loop's extent is read with the `let`s around it substituted (a kernel may name its
 * block count: `const blocks = idiv(n + 63, 64)`), since the host computes the grid from the
 * arguments alone.
 */
function collectBindings(body: Stmt): Binding[] {
  const out: Binding[] = [];
  const visit = (s: Stmt, around: readonly Binding[], lets: ReadonlyMap<Var, Expr>): void => {
    let inner = around;
    if (s.kind === "let") lets = new Map([...lets, [s.v, substitute(s.value, lets)]]);
    if (s.kind === "for" && s.forKind === "thread") {
      if (!s.thread)
        throw new LoweringError(P, `loop ${s.loopVar.name} is bound to threads but names no axis`);
      const loop = isBlockTag(s.thread) && lets.size ? { ...s, extent: substitute(s.extent, lets) } : s;
      const b: Binding = { loop, tag: s.thread };
      if (isBlockTag(b.tag)) {
        const t = around.find((a) => !isBlockTag(a.tag));
        if (t)
          throw new LoweringError(
            P,
            `${describe(b)} is bound to ${b.tag} inside ${describe(t)} bound to ${t.tag}; thread-block loops must enclose thread loops`,
          );
      }
      const same = around.find((a) => a.tag === b.tag);
      if (same && !sameExpr(same.loop.extent, s.extent))
        throw new LoweringError(
          P,
          `${b.tag} is bound by ${describe(same)} and, inside it, by ${describe(b)}: nested loops bound to one axis share its index, so they need the same extent`,
        );
      out.push(b);
      inner = [...around, b];
    }
    if (s.kind === "for" && s.forKind === "vectorized") {
      // A thread loop inside a vector loop has no meaning; the vectorize primitive refuses it too.
      const t = findThreadLoop(s.body);
      if (t)
        throw new LoweringError(
          P,
          `loop ${t.loopVar.name} bound to ${t.thread} is inside vectorized loop ${s.loopVar.name}`,
        );
    }
    for (const k of children(s)) visit(k, inner, lets);
  };
  visit(body, [], new Map());
  return out;
}

function findThreadLoop(s: Stmt): For | undefined {
  if (s.kind === "for" && s.forKind === "thread") return s;
  for (const k of children(s)) {
    const t = findThreadLoop(k);
    if (t) return t;
  }
  return undefined;
}

export function children(s: Stmt): Stmt[] {
  switch (s.kind) {
    case "seq":
      return [...s.body];
    case "if":
      return s.else ? [s.then, s.else] : [s.then];
    case "for":
    case "block":
    case "allocate":
    case "let":
      return [s.body];
    default:
      return [];
  }
}

/** The launch extent of one axis: the widest constant extent, or the one symbolic extent. */
function axisExtent(tag: ThreadTag, bs: readonly Binding[]): Expr {
  const consts = bs.filter((b) => b.loop.extent.kind === "const");
  const symbolic = bs.filter((b) => b.loop.extent.kind !== "const");
  if (!isBlockTag(tag) && symbolic.length)
    throw new LoweringError(
      P,
      `${describe(symbolic[0]!)} is bound to ${tag} with a symbolic extent; thread extents must be constants (split the loop with a constant factor and bind the inner one)`,
    );
  if (symbolic.length) {
    const other = bs.find((b) => !sameExpr(b.loop.extent, symbolic[0]!.loop.extent));
    if (other)
      throw new LoweringError(
        P,
        `${tag} is bound with two different extents: ${describe(symbolic[0]!)} and ${describe(other)}; a launch has one grid size per axis`,
      );
    return symbolic[0]!.loop.extent;
  }
  const widest = Math.max(...consts.map((b) => (b.loop.extent.kind === "const" ? b.loop.extent.value : 0)));
  return constant(widest, "i32");
}

/** A grid extent, which the host evaluates from the scalar arguments and the shapes' symbols alone. */
function gridExtent(f: PrimFunc, tag: ThreadTag, e: Expr): Expr {
  const known = new Set<Var>(f.symbols);
  for (const p of f.params) if (p.kind === "scalar") known.add(p.v);
  let loaded: string | undefined;
  walk(e, (n) => {
    if (n.kind === "load") loaded ??= n.buffer.name;
    return true;
  });
  const other = loaded ?? [...collectVars(e)].find((v) => !known.has(v))?.name;
  if (other !== undefined)
    throw new LoweringError(
      P,
      `${tag}'s extent ${printExpr(e)} depends on ${other}, which is ${loaded !== undefined ? "read from memory" : "computed inside the kernel"}; the grid may depend only on scalar parameters and shape symbols (bind a loop whose extent is written with them)`,
    );
  return e;
}

/**
 * The blockIdx-loop annotation or function attribute asking for that many blocks per
 * multiprocessor (LaunchConfig.minBlocksPerSM).
 */
export const MIN_BLOCKS_PER_SM = "min_blocks_per_sm";
/**
 * The blockIdx-loop annotation or function attribute ("start", "epilogue" or "exit") that lets the
 * next kernel launch once this one's blocks start, reach their first global store, or exit
 * (LaunchConfig.dependentsLaunch).
 */
export const DEPENDENTS_LAUNCH = "dependents_launch";
export const DEPENDENTS_LAUNCH_POINTS: readonly DependentsLaunch[] = ["start", "epilogue", "exit"];

/**
 * The blockIdx-loop annotation naming (comma-separated) buffer parameters that no kernel writes
 * while this one may run (weights): the launch pass checks the kernel does not write them either
 * and keeps the names as the function's attribute of that key, which lower/passes/dependency_wait.ts
 * reads (their loads may precede the wait for the previous kernel).
 */
export const INVARIANT_BUFFERS = "invariant_buffers";

/** The names a function's INVARIANT_BUFFERS attribute lists. */
export function invariantBufferNames(f: PrimFunc): string[] {
  const v = f.attrs[INVARIANT_BUFFERS];
  return typeof v === "string" ? v.split(",").filter(Boolean) : [];
}

/** f with `names` added to its INVARIANT_BUFFERS attribute. */
export function withInvariantBuffers(f: PrimFunc, names: readonly string[]): PrimFunc {
  const all = [...new Set([...invariantBufferNames(f), ...names])];
  return all.length ? { ...f, attrs: { ...f.attrs, [INVARIANT_BUFFERS]: all.join(",") } } : f;
}

export function launchPass(f: PrimFunc, target: Target): PrimFunc {
  const bindings = collectBindings(f.body);
  // Lowering again from a later stage: the threads are already explicit, keep their launch.
  if (!bindings.length && f.launch) return f;
  const grid: Expr[] = [constant(1, "i32"), constant(1, "i32"), constant(1, "i32")];
  const block = [1, 1, 1] as [number, number, number];
  for (const tag of TAGS) {
    const bs = bindings.filter((b) => b.tag === tag);
    if (!bs.length) continue;
    const e = axisExtent(tag, bs);
    if (isBlockTag(tag)) grid[AXIS_OF[tag]] = gridExtent(f, tag, e);
    else block[AXIS_OF[tag]] = (e as { value: number }).value;
  }
  const threads = block[0] * block[1] * block[2];
  if (threads > target.maxThreadsPerBlock)
    throw new LoweringError(
      P,
      `${threads} threads per block (threadIdx.x ${block[0]} × threadIdx.y ${block[1]} × threadIdx.z ${block[2]}) exceed ${target.name}'s limit of ${target.maxThreadsPerBlock}`,
    );
  if (block.some((b) => b < 1)) throw new LoweringError(P, `a thread axis has extent ${Math.min(...block)}`);
  const minBlocks = [
    f.attrs[MIN_BLOCKS_PER_SM],
    ...bindings.filter((b) => isBlockTag(b.tag)).map((b) => b.loop.annotations[MIN_BLOCKS_PER_SM]),
  ].filter((v): v is number => typeof v === "number");
  for (const v of minBlocks)
    if (!Number.isInteger(v) || v < 1 || v > 32)
      throw new LoweringError(P, `${MIN_BLOCKS_PER_SM} must be an integer from 1 to 32, not ${v}`);
  const dependents = [
    f.attrs[DEPENDENTS_LAUNCH],
    ...bindings.filter((b) => isBlockTag(b.tag)).map((b) => b.loop.annotations[DEPENDENTS_LAUNCH]),
  ].filter((v) => v !== undefined);
  for (const v of dependents)
    if (!DEPENDENTS_LAUNCH_POINTS.includes(v as DependentsLaunch))
      throw new LoweringError(
        P,
        `${DEPENDENTS_LAUNCH} takes ${DEPENDENTS_LAUNCH_POINTS.map((x) => `"${x}"`).join(", ")}, not ${String(v)}`,
      );
  if (new Set(dependents).size > 1)
    throw new LoweringError(
      P,
      `${DEPENDENTS_LAUNCH} is given both ${[...new Set(dependents)].join(" and ")}`,
    );
  const invariant = invariantBuffers(f, bindings);
  const launch: LaunchConfig = {
    grid: grid as unknown as [Expr, Expr, Expr],
    block,
    warpSize: target.warpSize,
    sharedBytes: 0,
    ...(minBlocks.length ? { minBlocksPerSM: Math.max(...minBlocks) } : {}),
    ...(dependents.length ? { dependentsLaunch: dependents[0] as DependentsLaunch } : {}),
  };
  return withInvariantBuffers({ ...f, launch }, invariant);
}

/**
 * The INVARIANT_BUFFERS names, the function's attribute (set before scheduling, e.g. for scalars
 * kept in memory: llama/device/prepare.ts) and the block loops' annotations together: buffer
 * parameters the kernel reads and never writes.
 */
function invariantBuffers(f: PrimFunc, bindings: ReturnType<typeof collectBindings>): string[] {
  const annotated = bindings
    .filter((b) => isBlockTag(b.tag))
    .map((b) => b.loop.annotations[INVARIANT_BUFFERS])
    .filter((v) => v !== undefined)
    .flatMap((v) => {
      if (typeof v !== "string")
        throw new LoweringError(P, `${INVARIANT_BUFFERS} must name buffer parameters, comma-separated`);
      return v.split(",").map((n) => n.trim());
    });
  const names = [...invariantBufferNames(f), ...annotated].filter(Boolean);
  for (const n of names) {
    if (!f.params.some((p) => p.kind === "buffer" && p.buffer.name === n))
      throw new LoweringError(
        P,
        `${INVARIANT_BUFFERS}: ${f.name} has no buffer parameter ${JSON.stringify(n)}`,
      );
    if (
      someNode(
        f.body,
        (x) =>
          (x.kind === "store" || x.kind === "atomic") && x.buffer.name === n && x.buffer.scope === "global",
      )
    )
      throw new LoweringError(
        P,
        `${INVARIANT_BUFFERS}: ${f.name} writes ${n}, so its loads cannot come before the wait for the previous kernel; leave ${n} out`,
      );
  }
  return [...new Set(names)];
}

/** The launch a pass needs, or a clear error when `launch` has not run. */
export function requireLaunch(f: PrimFunc, pass: string): LaunchConfig {
  if (!f.launch)
    throw new LoweringError(pass, `${f.name} has no launch configuration; run the launch pass first`);
  return f.launch;
}
