/**
 * Hopper's warpgroup tensor-core product for the LLVM renderer (tensorize's wgmma_m64n128k16):
 * the instruction itself (inline PTX, a matrix descriptor for the B tile) and its asynchronous
 * execution. wgmma.mma_async runs in the background while the IR's semantics are those of a
 * product done when issued, so the renderer asks this pipeline, at each statement that could
 * observe a product still running, for the lines that commit or wait for it.
 */
import type { Buffer, Call, Expr, Load, Node, Stmt } from "../../lower/ir/nodes.ts";
import { printExpr } from "../../lower/ir/printer.ts";
import { someNode, walk } from "../../lower/ir/transform.ts";
import { halfPairs, type WarpBuilder } from "./render-warp.ts";

/** The instruction's results: its 64 accumulator fields. */
export const WGMMA_RESULT = `{ ${Array(64).fill("float").join(", ")} }`;
const COMMIT = 'call void asm sideeffect "wgmma.commit_group.sync.aligned;", "~{memory}"()';
const WAIT = 'call void asm sideeffect "wgmma.wait_group.sync.aligned 0;", "~{memory}"()';
const FENCE_PROXY = 'call void asm sideeffect "fence.proxy.async.shared::cta;", "~{memory}"()';

/** Where asynchronous products stand at a point of the kernel (WgmmaPipeline.flow, merge). */
export interface WgmmaFlow {
  readonly inFlight: boolean;
  readonly aRegisters: readonly Load[];
  readonly unknownRegisters: boolean;
}

const isProduct = (n: Node): n is Call => n.kind === "call" && n.name === "wgmma_m64n128k16";

/** The products of one kernel: where they may run, and what must wait for them. */
export class WgmmaPipeline {
  /** Shared buffers the products read through matrix descriptors (B tiles). */
  private readonly tiles = new Set<Buffer>();
  /** Local buffers whose registers the products read as A. */
  private readonly registers = new Set<Buffer>();
  /** wgmma products issued and not yet committed (a group being formed). */
  private pending = false;
  /** Committed groups not yet waited for. */
  private inFlight = false;
  /** The A registers (local loads) products issued and not waited for read. */
  private aRegisters: Load[] = [];
  /** Whether products of unknown A registers may run (a loop's previous iteration's). */
  private unknownRegisters = false;

  constructor(body: Stmt) {
    walk(body, (n) => {
      if (!isProduct(n)) return;
      if (n.args[8]?.kind === "load") this.tiles.add(n.args[8].buffer);
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
   * Before a store: a rewrite of an A register still being read waits; a product's tile is written
   * only past a barrier (which waits) or into the other half of a double buffer than the products
   * in flight read, so it just closes the group; any other store to memory waits.
   */
  beforeStore(buffer: Buffer, indices: readonly Expr[]): string[] {
    const out = this.registers.has(buffer) && this.mayRewriteA(buffer, indices) ? this.waitAll() : [];
    if (buffer.scope !== "local") out.push(...(this.tiles.has(buffer) ? this.closeGroup() : this.waitAll()));
    return out;
  }

  /**
   * Before a barrier, after which other threads may overwrite the tiles: wait, and make threads'
   * shared-memory writes (the generic proxy) visible to the products' reads (the async proxy).
   */
  beforeBarrier(scope: string): string[] {
    const out = this.waitAll();
    if (scope === "shared" && this.tiles.size) out.push(FENCE_PROXY);
    return out;
  }

  /** Before a branch: the group formed in the basic block ends. */
  beforeBranch(): string[] {
    return this.closeGroup();
  }

  /** At a loop body's start: whether it issues products (the previous iteration's may then run). */
  enterLoopBody(body: Stmt): boolean {
    const products = this.tiles.size > 0 && someNode(body, isProduct);
    if (products) this.enterLoop();
    return products;
  }

  /** After a loop whose body issues products: they are done before anything after it reads them. */
  afterLoop(products: boolean): string[] {
    if (!products) return [];
    this.enterLoop();
    return this.waitAll();
  }

  /** At the kernel's end. */
  end(): string[] {
    return this.waitAll();
  }

  /**
   * The line that commits the open group of wgmma products, if one is open. wgmma.mma_async runs
   * asynchronously, while the IR's semantics are those of a product done when issued: consecutive
   * products in a basic block (a K stage's chain on the same accumulators) are one group,
   * committed where the block ends, and waited for (waitAll) only before what could observe it
   * running: a barrier (after which other threads may overwrite its tile), a store to its A
   * registers or to memory other than its tiles, a loop's exit, the kernel's end. Until then the
   * products overlap what follows them, such as the next stage's copies and loads
   * (bench/results/gemm-wgmma-ab-h100.json: 2-21% faster than waiting at the end of each stage).
   */
  private closeGroup(): string[] {
    if (!this.pending) return [];
    this.pending = false;
    this.inFlight = true;
    return [COMMIT];
  }

  /**
   * Where committed products stand where rendering stands, for control flow: an if's branches
   * start from the state before it and merge after it (flow, restore, merge).
   */
  flow(): WgmmaFlow {
    return {
      inFlight: this.inFlight,
      aRegisters: [...this.aRegisters],
      unknownRegisters: this.unknownRegisters,
    };
  }
  restore(f: WgmmaFlow): void {
    this.inFlight = f.inFlight;
    this.aRegisters = [...f.aRegisters];
    this.unknownRegisters = f.unknownRegisters;
  }
  /** After two paths join: products may run if they may at the end of either, reading either's registers. */
  merge(a: WgmmaFlow, b: WgmmaFlow): void {
    this.inFlight = a.inFlight || b.inFlight;
    this.aRegisters = [...(a.inFlight ? a.aRegisters : []), ...(b.inFlight ? b.aRegisters : [])];
    this.unknownRegisters = (a.inFlight && a.unknownRegisters) || (b.inFlight && b.unknownRegisters);
  }

  /** At a loop's head: the previous iteration's products, whatever registers they read, may run. */
  private enterLoop(): void {
    this.inFlight = true;
    this.unknownRegisters = true;
  }

  /**
   * Whether a store to buffer[indices] may rewrite an A register of a product not yet waited for
   * (local buffers are per thread: the same constant index is the same register; other indices
   * are taken to meet).
   */
  private mayRewriteA(buffer: Buffer, indices: readonly Expr[]): boolean {
    if (!this.pending && !this.inFlight) return false;
    if (this.unknownRegisters) return true;
    return this.aRegisters.some(
      (l) =>
        l.buffer === buffer &&
        !l.indices.some((e, d) => {
          const o = indices[d]!;
          return e.kind === "const" && o.kind === "const" && e.value !== o.value;
        }),
    );
  }

  /** The lines that wait for every product issued: before a barrier, a store that is not a product's tile, a loop's exit. */
  private waitAll(): string[] {
    const out = this.closeGroup();
    if (this.inFlight) out.push(WAIT);
    this.inFlight = false;
    this.aRegisters = [];
    this.unknownRegisters = false;
    return out;
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
    this.pending = true;
    for (const a of args.slice(0, 8))
      if (a.kind === "call" && a.args[0]?.kind === "load") this.aRegisters.push(a.args[0]);
    return out;
  }
}
