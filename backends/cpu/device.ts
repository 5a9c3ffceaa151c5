/**
 * Runs device IR (lower/passes/DEVICE_IR.md) on the CPU the way a GPU would: every block of the
 * grid, every thread of a block, shared memory once per block, local memory per thread, barriers
 * and warp shuffles honoured.
 *
 * Each thread's body is rendered as a JavaScript generator function: a barrier is a `yield`, a
 * `shfl_xor` a `yield` inside the expression that receives the partner lane's value. A small
 * scheduler runs every thread of a block up to its next synchronisation point, exchanges shuffle
 * values among the lanes of each warp, releases a barrier once all threads of the block wait at
 * it, and reports a barrier or shuffle that not every thread (lane) reaches. Shared memory starts
 * filled with NaN (floats) or 0x5a bytes (integers), so a read that a missing barrier lets run
 * early shows up in the results instead of reading a plausible zero.
 *
 * It runs functions from any stage after the `launch` pass: loops still bound to threads read
 * the thread index (and skip the threads past their extent), multi-index accesses still work.
 */
import type { Buffer, Expr, PrimFunc, Stmt } from "../../lower/ir/nodes.ts";
import { add, buffer, constant, load, mul, store, variable } from "../../lower/ir/build.ts";
import { atomicAccesses, replaceBuffers, walk } from "../../lower/ir/transform.ts";
import { JsRenderer, storageCtor } from "./render.ts";
import { bindArgs, type KernelArgs } from "./runtime.ts";
import { runtime } from "./semantics.ts";

const AXIS: Record<string, number> = { x: 0, y: 1, z: 2 };

class DeviceJsRenderer extends JsRenderer {
  override expr(e: Expr): string {
    if (e.kind === "call") {
      const axis = () => {
        const a = e.args[0];
        if (!a || a.kind !== "const") throw new Error(`tkc cpu device: ${e.name} needs a constant axis`);
        return a.value;
      };
      if (e.name === "thread_id") return `tid[${axis()}]`;
      if (e.name === "block_id") return `bid[${axis()}]`;
      if (e.name === "shfl_xor") {
        const [v, mask, width] = e.args.map((a) => this.expr(a));
        return `(yield [${v}, ${mask}, ${width}])`;
      }
      if (e.name === "mma_m16n8k16")
        return `(yield { mma: [${e.args.map((a) => this.expr(a)).join(", ")}] })`;
      if (e.name === "wgmma_m64n128k16") {
        // The B tile stays in shared memory: the lane names its buffer and the origin's flat index.
        const origin = e.args[8]!;
        if (origin.kind !== "load") throw new Error("tkc cpu device: wgmma needs a load naming B's tile");
        const ops = [...e.args.slice(0, 8), ...e.args.slice(9)].map((a) => this.expr(a));
        return `(yield { wgmma: [${ops.join(", ")}], b: ${this.name(origin.buffer)}, at: ${this.index(origin.buffer, origin.indices)} })`;
      }
      if (e.name === "ldmatrix") {
        // The lane hands over the eight halves of the row it names; the scheduler deals them out.
        const [row, count, reg] = e.args as [Expr, Expr, Expr];
        if (row.kind !== "load") throw new Error("tkc cpu device: ldmatrix needs a load naming the row");
        const halves = Array.from({ length: 8 }, (_, i) =>
          this.expr(
            load(row.buffer, [...row.indices.slice(0, -1), add(row.indices.at(-1)!, constant(i, "i32"))]),
          ),
        );
        return `(yield { ldmatrix: [${halves.join(", ")}], count: ${this.expr(count)}, reg: ${this.expr(reg)} })`;
      }
    }
    return super.expr(e);
  }

  override stmt(s: Stmt, ind: string): string[] {
    // Blocks run one kernel at a time: nothing to wait for across grids.
    if (s.kind === "barrier" && (s.scope === "grid" || s.scope === "dependents")) return [];
    // A thread's asynchronous copies land at its waitAsync, not before: a kernel that reads them
    // earlier reads what was there (shared memory starts filled with NaN or 0x5a5a5a5a), as it may
    // on a GPU. The source and the destination's address are taken when the copy is issued.
    if (s.kind === "barrier" && s.scope === "async_commit")
      return [`${ind}asyncGroups.push(asyncOpen.splice(0));`];
    if (s.kind === "barrier" && s.scope === "async_wait")
      return [
        `${ind}while (asyncGroups.length > ${s.pending ?? 0}) for (const land of asyncGroups.shift()) land();`,
      ];
    if (s.kind === "store" && s.async) {
      const value = variable("copied", s.value.dtype);
      const at = s.indices.map((_, k) => variable(`copied_at${k}`));
      return [
        `${ind}{`,
        `${ind}  const ${this.name(value)} = ${this.expr(s.value)};`,
        ...s.indices.map((i, k) => `${ind}  const ${this.name(at[k]!)} = ${this.expr(i)};`),
        `${ind}  asyncOpen.push(() => {`,
        ...this.stmt(store(s.buffer, at, value), ind + "    "),
        `${ind}  });`,
        `${ind}}`,
      ];
    }
    if (s.kind === "barrier") return [`${ind}yield ${s.scope === "shared" ? "null" : '"warp"'};`];
    // Shared buffers are declared once per block (see blockScope).
    if (s.kind === "allocate" && s.buffer.scope === "shared") return this.stmt(s.body, ind);
    if (s.kind === "for" && s.forKind === "thread" && s.thread) {
      const [kind, dim] = s.thread.split(".") as [string, string];
      const id = `${kind === "blockIdx" ? "bid" : "tid"}[${AXIS[dim]}]`;
      const v = this.name(s.loopVar);
      return [
        `${ind}{ // ${s.thread}`,
        `${ind}  const ${v} = ${this.expr(s.min)} + ${id};`,
        `${ind}  if (${id} < ${this.expr(s.extent)}) {`,
        ...this.stmt(s.body, ind + "    "),
        `${ind}  }`,
        `${ind}}`,
      ];
    }
    return super.stmt(s, ind);
  }
}

/** Buffers accessed through one flat index while declared with another rank get a 1-D alias. */
function flatAliases(body: Stmt): Map<Buffer, Buffer> {
  const out = new Map<Buffer, Buffer>();
  walk(body, (n) => {
    for (const a of n.kind === "load" || n.kind === "store"
      ? [n]
      : n.kind === "atomic"
        ? atomicAccesses(n)
        : [])
      if (a.indices.length === 1 && a.buffer.shape.length !== 1 && !out.has(a.buffer)) {
        const b = a.buffer;
        const size = (b.allocShape ?? b.shape).reduce<Expr>((a, d) => mul(a, d), constant(1, "i32"));
        out.set(b, buffer(b.name, b.dtype, [size], b.scope));
      }
  });
  return out;
}

const SHARED_FILL: Record<string, string> = {
  f32: "NaN",
  i64: "NaN",
  f16: "0x7e00",
  bf16: "0x7fc0",
};

/** The JavaScript source of a device function: `(args, rt) => { grid, block, warpSize, makeBlock }`. */
export function renderDeviceJs(f: PrimFunc): string {
  const aliases = flatAliases(f.body);
  const body = aliases.size ? replaceBuffers(f.body, aliases) : f.body;
  const r = new DeviceJsRenderer();
  const lines = [`// tkc cpu device kernel ${f.name}`];
  for (const sym of f.symbols)
    lines.push(`const ${r.name(sym)} = args.symbols[${JSON.stringify(sym.name)}];`);
  for (const p of f.params) {
    if (p.kind === "scalar") {
      lines.push(`const ${r.name(p.v)} = args.scalars[${JSON.stringify(p.v.name)}];`);
      continue;
    }
    const b = aliases.get(p.buffer) ?? p.buffer;
    lines.push(`const ${r.name(b)} = args.buffers[${JSON.stringify(p.buffer.name)}];`, r.indexHelper(b));
  }
  const launch = f.launch;
  const grid = launch ? launch.grid.map((g) => r.expr(g)) : ["1", "1", "1"];
  lines.push(`const grid = [${grid.join(", ")}];`);
  lines.push(`const block = [${(launch?.block ?? [1, 1, 1]).join(", ")}];`);
  const shared: Buffer[] = [];
  walk(body, (n) => {
    if (n.kind === "allocate" && n.buffer.scope === "shared") shared.push(n.buffer);
  });
  const thread = r.stmt(body, "      ");
  const blockScope = shared.flatMap((b) => {
    const size = (b.allocShape ?? b.shape).map((d) => r.expr(d)).join(" * ");
    const fill = SHARED_FILL[b.dtype] ?? "0x5a5a5a5a";
    return [
      `    const ${r.name(b)} = new ${storageCtor(b.dtype)}(${size}).fill(${fill});`,
      `    ${r.indexHelper(b)}`,
    ];
  });
  lines.push(
    `return { grid, block, warpSize: ${launch?.warpSize ?? 1}, makeBlock(bid) {`,
    ...blockScope,
    `    return function* (tid) {`,
    // This thread's copies issued since its last commit, and its committed groups in flight.
    `      const asyncOpen = [], asyncGroups = [];`,
    ...thread,
    `    };`,
    `} };`,
  );
  return lines.filter((l) => l.trim() !== "").join("\n");
}

/** Where a thread waits: a block barrier, a warp barrier, a shuffle, a tensor-core product or an ldmatrix. */
type Ldmatrix = { readonly ldmatrix: readonly number[]; readonly count: number; readonly reg: number };
/** A lane's wgmma operands (a0..a7, c0..c63, field) and the shared buffer and flat index of B's tile. */
type Wgmma = { readonly wgmma: readonly number[]; readonly b: ArrayLike<number>; readonly at: number };
type SyncPoint =
  null | "warp" | readonly [number, number, number] | { readonly mma: readonly number[] } | Ldmatrix | Wgmma;
type Thread = Generator<SyncPoint, void, number | undefined>;

/** Runs the threads of one block to completion, honouring barriers and warp shuffles. */
export function runBlock(
  makeThread: (tid: number[]) => Thread,
  block: readonly number[],
  warpSize: number,
): void {
  const [X, Y, Z] = block as [number, number, number];
  const n = X * Y * Z;
  const threads: Thread[] = [];
  const at: IteratorResult<SyncPoint, void>[] = [];
  for (let z = 0; z < Z; z++)
    for (let y = 0; y < Y; y++)
      for (let x = 0; x < X; x++) {
        const t = makeThread([x, y, z]);
        threads.push(t);
        at.push(t.next());
      }
  const W = Math.max(1, warpSize);
  for (;;) {
    // Warp-level synchronisation: shuffles and warp barriers, until every lane waits for the block.
    for (let progress = true; progress;) {
      progress = false;
      for (let w0 = 0; w0 < n; w0 += W) {
        const lanes = Array.from({ length: Math.min(W, n - w0) }, (_, k) => w0 + k);
        const waiting = lanes.filter((i) => !at[i]!.done && at[i]!.value !== null);
        if (!waiting.length) continue;
        if (waiting.length !== lanes.length)
          throw new Error(
            `tkc cpu device: warp ${w0 / W}: ${waiting.length} of ${lanes.length} lanes reached a shuffle or warp barrier, the others did not`,
          );
        const points = lanes.map((i) => at[i]!.value as Exclude<SyncPoint, null>);
        if (points.every((p) => p === "warp")) lanes.forEach((i) => (at[i] = threads[i]!.next()));
        else if (points.every((p) => typeof p === "object" && "mma" in p)) {
          const values = mmaM16n8k16(
            points.map((p) => (p as { mma: readonly number[] }).mma),
            w0 / W,
          );
          lanes.forEach((i, k) => (at[i] = threads[i]!.next(values[k])));
        } else if (points.every((p) => typeof p === "object" && "wgmma" in p)) {
          const values = wgmmaWarp(points as Wgmma[], w0 / W);
          lanes.forEach((i, k) => (at[i] = threads[i]!.next(values[k])));
        } else if (points.every((p) => typeof p === "object" && "ldmatrix" in p)) {
          const values = ldmatrixM8n8(points as Ldmatrix[], w0 / W);
          lanes.forEach((i, k) => (at[i] = threads[i]!.next(values[k])));
        } else if (points.every((p) => Array.isArray(p) && p[1] === (points[0] as readonly number[])[1])) {
          const values = points.map((p, k) => {
            const partner = (k ^ (p as readonly number[])[1]!) + 0;
            return partner < lanes.length
              ? (points[partner] as readonly number[])[0]!
              : (p as readonly number[])[0]!;
          });
          lanes.forEach((i, k) => (at[i] = threads[i]!.next(values[k])));
        } else
          throw new Error(
            `tkc cpu device: warp ${w0 / W}: lanes disagree on the shuffle (masks or kinds differ)`,
          );
        progress = true;
      }
    }
    const finished = at.filter((s) => s.done).length;
    if (finished === n) return;
    if (finished > 0)
      throw new Error(
        `tkc cpu device: a barrier was reached by ${n - finished} of ${n} threads of the block; the others had finished`,
      );
    for (let i = 0; i < n; i++) at[i] = threads[i]!.next();
  }
}

/**
 * One warp's ldmatrix.m8n8.x{count}.b16: lane 8j + i handed over row i of matrix j (eight f16
 * values); lane l receives row l >> 2, elements 2 (l & 3) and + 1 of matrix `reg`, packed.
 */
function ldmatrixM8n8(lanes: readonly Ldmatrix[], warp: number): number[] {
  const { count, reg } = lanes[0]!;
  if (lanes.length !== 32 || lanes.some((l) => l.count !== count || l.reg !== reg) || reg >= count)
    throw new Error(
      `tkc cpu device: warp ${warp}: ldmatrix needs 32 lanes asking for the same register of the same x${count} load`,
    );
  return lanes.map((_, lane) => {
    const row = lanes[8 * reg + (lane >> 2)]!.ldmatrix;
    return runtime.packF16x2(row[2 * (lane & 3)]!, row[2 * (lane & 3) + 1]!);
  });
}

/**
 * One warp's mma.m16n8k16 (row.col, f16 operands, f32 accumulators) from its 32 lanes' operands,
 * each (a0..a7, b0..b3, c0..c3, field) in the register layout of lower/schedule/tensorize.ts: the
 * field each lane asked for. Sums run in f32 in increasing k (the hardware's order and rounding
 * inside one instruction are unspecified; the GPU checks compare with a tolerance).
 */
function mmaM16n8k16(lanes: readonly (readonly number[])[], warp: number): number[] {
  if (lanes.length !== 32)
    throw new Error(
      `tkc cpu device: warp ${warp}: mma_m16n8k16 needs 32 lanes, the warp has ${lanes.length}`,
    );
  const field = lanes[0]![16];
  if (lanes.some((l) => l[16] !== field))
    throw new Error(`tkc cpu device: warp ${warp}: lanes ask for different fields of one mma_m16n8k16`);
  const A = Array.from({ length: 16 }, () => new Array<number>(16).fill(0));
  const Bm = Array.from({ length: 16 }, () => new Array<number>(8).fill(0));
  const C = Array.from({ length: 16 }, () => new Array<number>(8).fill(0));
  lanes.forEach((v, lane) => {
    const g = lane >> 2;
    const t = lane & 3;
    for (let j = 0; j < 2; j++) {
      A[g]![2 * t + j] = v[j]!;
      A[g + 8]![2 * t + j] = v[2 + j]!;
      A[g]![2 * t + 8 + j] = v[4 + j]!;
      A[g + 8]![2 * t + 8 + j] = v[6 + j]!;
      Bm[2 * t + j]![g] = v[8 + j]!;
      Bm[2 * t + 8 + j]![g] = v[10 + j]!;
      C[g]![2 * t + j] = v[12 + j]!;
      C[g + 8]![2 * t + j] = v[14 + j]!;
    }
  });
  return lanes.map((_, lane) => {
    const row = (lane >> 2) + 8 * (field! >> 1);
    const col = 2 * (lane & 3) + (field! & 1);
    let acc = C[row]![col]!;
    for (let k = 0; k < 16; k++) acc = Math.fround(acc + A[row]![k]! * Bm[k]![col]!);
    return acc;
  });
}

/**
 * One warp's share of a warpgroup's wgmma.mma_async m64n128k16 (f16 operands, f32 accumulators):
 * its 16 rows of D from its lanes' A fragments (mma.m16n8k16's A layout) and the B tile in shared
 * memory, rows of 64 halves 128-byte swizzled from the tile's origin (lower/schedule/tensorize.ts).
 * The rows of D are independent of the other warps, so each warp computes its own when its lanes
 * arrive; B is read then, as the instruction reads it before the wait that follows it. Each lane
 * gets the field it asked for, summed in f32 in increasing k.
 */
function wgmmaWarp(lanes: readonly Wgmma[], warp: number): number[] {
  const first = lanes[0]!;
  const field = first.wgmma[8 + 64]!;
  if (lanes.length !== 32 || lanes.some((l) => l.wgmma[72] !== field || l.at !== first.at || l.b !== first.b))
    throw new Error(
      `tkc cpu device: warp ${warp}: wgmma_m64n128k16 needs 32 lanes asking for the same field of one product`,
    );
  const col0 = first.at & 63;
  const rowBase = first.at - col0;
  if ((rowBase / 64) % 8 !== 0 || col0 % 16 !== 0)
    throw new Error(
      `tkc cpu device: warp ${warp}: wgmma_m64n128k16's B tile must start on a row that is a multiple of 8 (1024 bytes) and a column that is a multiple of 16 (element ${first.at})`,
    );
  const A = Array.from({ length: 16 }, () => new Array<number>(16).fill(0));
  lanes.forEach((v, lane) => {
    const g = lane >> 2;
    const t = lane & 3;
    for (let j = 0; j < 2; j++) {
      A[g]![2 * t + j] = v.wgmma[j]!;
      A[g + 8]![2 * t + j] = v.wgmma[2 + j]!;
      A[g]![2 * t + 8 + j] = v.wgmma[4 + j]!;
      A[g + 8]![2 * t + 8 + j] = v.wgmma[6 + j]!;
    }
  });
  const nt = field! >> 2;
  const r = field! & 3;
  return lanes.map((v, lane) => {
    const row = (lane >> 2) + 8 * (r >> 1);
    const n = 8 * nt + 2 * (lane & 3) + (r & 1);
    let acc = v.wgmma[8 + field!]!;
    for (let k = 0; k < 16; k++) {
      const c = col0 + k;
      const b = runtime.F16[first.b[rowBase + n * 64 + ((((c >> 3) ^ (n & 7)) << 3) | (c & 7))]!]!;
      acc = Math.fround(acc + A[row]![k]! * b);
    }
    return acc;
  });
}

interface DeviceModule {
  grid: number[];
  block: number[];
  warpSize: number;
  makeBlock(bid: number[]): (tid: number[]) => Thread;
}

export interface CpuDeviceKernel {
  (args: KernelArgs): void;
  readonly func: PrimFunc;
  readonly source: string;
}

/** Compiles device IR for the CPU emulation; call it with named NDArrays and scalars, as cpuKernel. */
export function cpuDeviceKernel(f: PrimFunc): CpuDeviceKernel {
  const source = renderDeviceJs(f);
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  const load = new Function("args", "rt", source) as (args: unknown, rt: typeof runtime) => DeviceModule;
  const run = (args: KernelArgs): void => {
    const m = load(bindArgs(f, args), runtime);
    const [gx, gy, gz] = m.grid as [number, number, number];
    for (let z = 0; z < gz; z++)
      for (let y = 0; y < gy; y++)
        for (let x = 0; x < gx; x++) runBlock(m.makeBlock([x, y, z]), m.block, m.warpSize);
  };
  return Object.assign(run, { func: f, source });
}
