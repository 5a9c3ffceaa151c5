/**
 * Hopper's warpgroup tensor-core product for the LLVM renderer (tensorize's wgmma_m64n128k16):
 * the instruction itself (inline PTX, a matrix descriptor for the B tile) and its asynchronous
 * execution. wgmma.mma_async runs in the background while the IR's semantics are those of a
 * product done when issued, so the renderer asks this pipeline, at each statement that could
 * observe a product still running, for the lines that commit or wait for it.
 */
import type { Buffer, Call, Expr, Load, Node, Stmt } from "../../lower/ir/nodes.ts";
import { isAsyncScope } from "../../lower/ir/build.ts";
import { printExpr } from "../../lower/ir/printer.ts";
import { someNode, walk } from "../../lower/ir/transform.ts";
import { bufferCopies } from "../../lower/schedule/cache_read_write.ts";
import { halfPairs, type WarpBuilder } from "./render-warp.ts";

/** The instruction's results: its 64 accumulator fields. */
export const WGMMA_RESULT = `{ ${Array(64).fill("float").join(", ")} }`;
const COMMIT = 'call void asm sideeffect "wgmma.commit_group.sync.aligned;", "~{memory}"()';
const wait = (n: number) => `call void asm sideeffect "wgmma.wait_group.sync.aligned ${n};", "~{memory}"()`;
const FENCE_PROXY = 'call void asm sideeffect "fence.proxy.async.shared::cta;", "~{memory}"()';
/** Groups counted after a product beyond this make no difference to a wait (and bound the loop analysis). */
const MAX_NEWER = 7;

/**
 * A committed product (each product is its own group) that may still run: `newer` groups at
 * least were committed after it on every path here (so wait_group(newer) retires it), and it was
 * issued before `crossed` block barriers at most.
 */
interface InFlight {
  readonly key: string;
  readonly registers: readonly Load[];
  readonly slack: number;
  readonly newer: number;
  readonly crossed: number;
}

/** Where asynchronous products stand at a point of the kernel (WgmmaPipeline.flow, merge). */
export type WgmmaFlow = readonly InFlight[];

const isProduct = (n: Node): n is Call => n.kind === "call" && n.name === "wgmma_m64n128k16";

/** A product's identity: its operands (the renderer issues one instruction for equal operands). */
const productKey = (args: readonly Expr[]): string =>
  args
    .slice(0, 73)
    .map((a) => printExpr(a))
    .join("|");

/** The A registers a product reads (the local loads under its first eight operands). */
function aRegisters(args: readonly Expr[]): Load[] {
  const out: Load[] = [];
  for (const a of args.slice(0, 8)) if (a.kind === "call" && a.args[0]?.kind === "load") out.push(a.args[0]);
  return out;
}

/** Products that may run at either of two points (an if's paths, a loop's entry and back edge). */
function mergeFlows(a: WgmmaFlow, b: WgmmaFlow): WgmmaFlow {
  const out = new Map<string, InFlight>(a.map((p) => [p.key, p]));
  for (const p of b) {
    const q = out.get(p.key);
    out.set(
      p.key,
      q ? { ...p, newer: Math.min(p.newer, q.newer), crossed: Math.max(p.crossed, q.crossed) } : p,
    );
  }
  return [...out.values()];
}

const sameFlow = (a: WgmmaFlow, b: WgmmaFlow): boolean =>
  a.length === b.length &&
  a.every((p) => b.some((q) => q.key === p.key && q.newer === p.newer && q.crossed === p.crossed));

/**
 * The products of one kernel: where they may run, and what must wait for them.
 *
 * wgmma.mma_async runs asynchronously, while the IR's semantics are those of a product done when
 * issued. Each product is committed as its own group, and waited for only before what could
 * observe it running, with wait_group(n) keeping the n newest groups running where they are not
 * observed: a rewrite of its A registers, a store to memory other than its tiles, a loop's exit,
 * the kernel's end, and a block barrier, after which other threads may overwrite its tile — unless
 * the tile has three copies or more along the loop (doubleBuffer's count): then the next write to
 * the copy it reads comes after copies - 1 barriers, and it may run past copies - 2 of them. A
 * K loop whose x tile has three copies so keeps the tensor cores fed across its stages.
 */
export class WgmmaPipeline {
  /** Shared buffers the products read through matrix descriptors (B tiles), with their copies. */
  private readonly tiles = new Map<Buffer, number>();
  /** Local buffers whose registers the products read as A. */
  private readonly registers = new Set<Buffer>();
  /** Committed products not yet waited for. */
  private inFlight: InFlight[] = [];
  /** Products issued since the last point where the renderer issues anew (a loop analysis' dry run). */
  private readonly dryIssued = new Set<string>();
  /** The state at the head of each loop being rendered (or run dry), innermost last. */
  private readonly heads: WgmmaFlow[] = [];

  constructor(body: Stmt) {
    const copies = new Map<string, number>();
    walk(body, (n) => {
      if (n.kind === "for") for (const [name, c] of bufferCopies(n.annotations)) copies.set(name, c);
    });
    walk(body, (n) => {
      if (!isProduct(n)) return;
      const tile = n.args[8];
      if (tile?.kind === "load") this.tiles.set(tile.buffer, copies.get(tile.buffer.name) ?? 1);
      for (const a of n.args.slice(0, 8))
        walk(a, (m) => {
          if (m.kind === "load" && m.buffer.scope === "local") this.registers.add(m.buffer);
        });
    });
  }

  /** Whether a shared buffer is a B tile: 128-byte swizzled by address bits, so 1024-byte aligned. */
  isTile(buffer: Buffer): boolean {
    return this.tiles.has(buffer);
  }

  /**
   * Before a store: a rewrite of an A register still being read waits for the products reading
   * it; a product's tile is written only past the barriers that retire the products reading that
   * copy (beforeBarrier); any other store to memory waits for all.
   */
  beforeStore(buffer: Buffer, indices: readonly Expr[]): string[] {
    if (this.registers.has(buffer))
      return this.waitFor((p) => p.registers.some((l) => l.buffer === buffer && mayMeet(l.indices, indices)));
    if (buffer.scope !== "local" && !this.tiles.has(buffer)) return this.waitFor(() => true);
    return [];
  }

  /**
   * Before a block barrier, after which other threads may overwrite the tiles: wait for the
   * products that may not run past it, and make threads' shared-memory writes (the generic proxy)
   * visible to the products' reads (the async proxy).
   */
  beforeBarrier(scope: string): string[] {
    const out = this.waitFor((p) => p.crossed >= p.slack);
    this.inFlight = this.inFlight.map((p) => ({ ...p, crossed: p.crossed + 1 }));
    if (scope === "shared" && this.tiles.size) out.push(FENCE_PROXY);
    return out;
  }

  /**
   * At a loop body's start: whether it issues products. If so, the products that may run at its
   * head are those before the loop and those its previous iteration left running, found by running
   * the body's waits and products dry until they settle.
   */
  enterLoopBody(body: Stmt): boolean {
    const products = this.tiles.size > 0 && someNode(body, isProduct);
    const entry = this.flow();
    let head = entry;
    // A loop without products matters too while products run: its barriers count once an
    // iteration, and it may run no iteration at all.
    if (products || entry.length)
      for (;;) {
        this.restore(head);
        // Each iteration starts a basic block of its own, where the renderer issues anew.
        this.dryIssued.clear();
        this.dryRun(body);
        // Joined with the head so far: the states only grow (newer down, crossed up, more
        // products; all bounded), so this ends.
        const next = mergeFlows(head, this.flow());
        if (sameFlow(next, head)) break;
        head = next;
      }
    this.restore(head);
    this.heads.push(head);
    return products;
  }

  /**
   * After a loop: it leaves from its head, whose state covers every number of iterations; if its
   * body issues products, they are done before anything after it reads them.
   */
  afterLoop(products: boolean): string[] {
    this.merge(this.heads.pop() ?? [], this.flow());
    return products ? this.waitFor(() => true) : [];
  }

  /** At the kernel's end. */
  end(): string[] {
    return this.waitFor(() => true);
  }

  /**
   * Where committed products stand where rendering stands, for control flow: an if's branches
   * start from the state before it and merge after it (flow, restore, merge).
   */
  flow(): WgmmaFlow {
    return [...this.inFlight];
  }
  restore(f: WgmmaFlow): void {
    this.inFlight = [...f];
  }
  /** After two paths join: a product may run if it may at the end of either. */
  merge(a: WgmmaFlow, b: WgmmaFlow): void {
    this.restore(mergeFlows(a, b));
  }

  /**
   * The line that waits for every product `retire` names (and those committed before it):
   * wait_group(n) for the fewest groups n committed after one of them.
   */
  private waitFor(retire: (p: InFlight) => boolean): string[] {
    const named = this.inFlight.filter(retire);
    if (!named.length) return [];
    const n = Math.min(...named.map((p) => p.newer));
    this.inFlight = this.inFlight.filter((p) => p.newer < n);
    return [wait(n)];
  }

  /** A product committed (a group of its own). */
  private committed(args: readonly Expr[]): void {
    const key = productKey(args);
    const slack = Math.max(0, (args[8]?.kind === "load" ? (this.tiles.get(args[8].buffer) ?? 1) : 1) - 2);
    const older = this.inFlight.find((p) => p.key === key);
    this.inFlight = this.inFlight
      .filter((p) => p.key !== key)
      .map((p) => ({ ...p, newer: Math.min(MAX_NEWER, p.newer + 1) }));
    // An earlier instance of the same product still running is kept in this one's place: waits
    // for it then wait for both (newer 0), and barriers count from the earlier (crossed).
    this.inFlight.push({ key, registers: aRegisters(args), slack, newer: 0, crossed: older?.crossed ?? 0 });
  }

  /**
   * The pipeline's changes as the renderer would make them along `s`, with no code: the products
   * and the statements that wait for them (store, barrier, if, loop). A product counts once per
   * run of the renderer's reuse (the same operands since the last barrier, store to memory or
   * branch); the renderer issues anew at least there, so the dry run counts no group it does not
   * commit.
   */
  private dryRun(s: Stmt): void {
    switch (s.kind) {
      case "seq":
        for (const b of s.body) this.dryRun(b);
        return;
      case "block":
      case "allocate":
        this.dryRun(s.body);
        return;
      case "let":
        this.dryExpr(s.value);
        this.dryRun(s.body);
        return;
      case "store":
        this.beforeStore(s.buffer, s.indices);
        if (s.buffer.scope !== "local") this.dryIssued.clear();
        this.dryExpr(s.value);
        for (const i of s.indices) this.dryExpr(i);
        return;
      case "barrier":
        if (s.scope === "dependents" || isAsyncScope(s.scope)) return;
        this.beforeBarrier(s.scope);
        this.dryIssued.clear();
        return;
      case "if": {
        this.dryExpr(s.cond);
        this.dryIssued.clear();
        const before = this.flow();
        this.dryRun(s.then);
        const afterThen = this.flow();
        this.restore(before);
        this.dryIssued.clear();
        if (s.else) this.dryRun(s.else);
        this.merge(afterThen, this.flow());
        this.dryIssued.clear();
        return;
      }
      case "for": {
        const products = this.enterLoopBody(s.body);
        this.dryRun(s.body);
        this.dryIssued.clear();
        this.afterLoop(products);
        return;
      }
      case "prefetch":
        return;
    }
  }

  private dryExpr(e: Expr): void {
    walk(e, (n) => {
      if (!isProduct(n)) return;
      const key = productKey(n.args);
      if (this.dryIssued.has(key)) return;
      this.dryIssued.add(key);
      this.committed(n.args);
    });
  }

  /**
   * Issues wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 (returning its 64 fields): A from
   * registers (args[0..7], this lane's eight halves as four f16x2), B through a matrix descriptor
   * of the tile whose origin args[8] loads (rows of 128 bytes, 128-byte swizzle, 1024-byte
   * aligned: the renderer aligns such shared buffers), accumulators args[9..72] tied to the results.
   */
  issue(b: WarpBuilder, args: readonly Expr[]): string {
    const target = b.fl.target;
    if (target.kind !== "nvptx" || target.arch !== "sm_90")
      throw new Error(
        `tkc llvm: wgmma_m64n128k16 (Hopper's warpgroup product) needs NVIDIA sm_90; ${target.arch} has none: use the mma.m16n8k16 kernel (q4GemmMma) there`,
      );
    const [x, y, z] = b.launch.block;
    const warps = y!.kind === "const" && z!.kind === "const" ? y!.value * z!.value : Number.NaN;
    if (x!.kind !== "const" || x!.value !== 32 || warps % 4 !== 0)
      throw new Error(
        `tkc llvm: wgmma_m64n128k16 needs threadIdx.x to be the lane (32 threads) and whole warpgroups (warps a multiple of 4); this kernel launches ${b.launch.block.map(printExpr).join(" x ")}`,
      );
    const origin = args[8]!;
    if (origin.kind !== "load" || origin.buffer.scope !== "shared" || origin.buffer.dtype !== "f16")
      throw new Error(
        `tkc llvm: wgmma_m64n128k16 reads B from f16 in shared memory; found ${printExpr(origin)}`,
      );
    const regs = halfPairs(
      b,
      args.slice(0, 8).map((a) => b.expr(a)),
    ).map((pair) => b.bitcast(pair, "<2 x half>", "i32"));
    const acc = args.slice(9, 73).map((a) => b.expr(a));
    const p = b.address(origin.buffer, origin.indices);
    const addr = b.tmp();
    b.emit(`${addr} = ptrtoint ptr addrspace(${p.space}) ${p.ptr} to i64`);
    const start = b.tmp();
    b.emit(`${start} = and i64 ${addr}, 262143`);
    const field14 = b.tmp();
    b.emit(`${field14} = lshr i64 ${start}, 4`);
    // Leading byte offset 1 (unused by a K-major swizzled operand), stride byte offset 1024 (8
    // rows of 128 bytes) >> 4, layout 1 = 128-byte swizzle in bits 62..63.
    const desc = b.tmp();
    b.emit(`${desc} = or i64 ${field14}, ${(1n << 16n) | (64n << 32n) | (1n << 62n)}`);
    // A's registers were written by ordinary instructions: fence them before the product reads
    // them (before each product, not only a group's first: LLVM may place a later product's A
    // computation between products; as fast in bench/results/gemm-wgmma-ab-h100.json).
    b.emit('call void asm sideeffect "wgmma.fence.sync.aligned;", "~{memory}"()');
    const d = Array.from({ length: 64 }, (_, i) => `$${i}`).join(", ");
    const asm =
      "{\\0A\\09.reg .pred p;\\0A\\09setp.ne.b32 p, $69, 0;\\0A\\09" +
      `wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 {${d}}, {$64, $65, $66, $67}, $68, p, 1, 1, 0;\\0A\\09}`;
    const constraints = [
      ...Array(64).fill("=f"),
      "r,r,r,r,l,r",
      ...Array.from({ length: 64 }, (_, i) => String(i)),
      "~{memory}",
    ].join(",");
    const out = b.tmp();
    b.emit(
      `${out} = call ${WGMMA_RESULT} asm sideeffect "${asm}", "${constraints}"(${[
        ...regs.map((r) => `i32 ${r}`),
        `i64 ${desc}`,
        "i32 1",
        ...acc.map((c) => `float ${c}`),
      ].join(", ")})`,
    );
    b.emit(COMMIT);
    this.committed(args);
    return out;
  }
}

/**
 * Whether two accesses of a local buffer may be the same register: local buffers are per thread,
 * so the same constant index is the same register; other indices are taken to meet.
 */
function mayMeet(a: readonly Expr[], b: readonly Expr[]): boolean {
  return !a.some((e, d) => {
    const o = b[d]!;
    return e.kind === "const" && o.kind === "const" && e.value !== o.value;
  });
}
