/**
 * Warp-level operations for the LLVM renderer: butterfly shuffles (NVIDIA's shfl.sync, AMD's
 * ds_bpermute), tensor-core products (NVIDIA's mma.sync m16n8k16) and their operand loads from
 * shared memory (ldmatrix). All need every lane of the
 * warp; the lowering passes keep them out of divergent code (lower/passes/barriers.ts).
 */
import type { DType } from "../../dsl/dtypes.ts";
import { DTYPES } from "../../dsl/dtypes.ts";
import { sameExpr } from "../../lower/ir/equal.ts";
import type { LaunchDims } from "../../lower/ir/launch.ts";
import type { Buffer, Expr, Load } from "../../lower/ir/nodes.ts";
import { printExpr } from "../../lower/ir/printer.ts";
import type { MathBuilder } from "./render-math.ts";

/** What warp operations need from the renderer, beyond fresh values and emitted lines. */
export interface WarpBuilder extends MathBuilder {
  readonly launch: LaunchDims;
  /** The basic block being emitted. */
  readonly label: string;
  expr(e: Expr): string;
  /** A pointer to buffer[indices]. */
  address(buf: Buffer, indices: readonly Expr[]): { readonly ptr: string; readonly space: number };
  cast(v: string, from: DType, to: DType): string;
  bitcast(v: string, from: string, to: string): string;
}

const isFloat = (d: DType): boolean => DTYPES[d].kind === "float";

/** shfl_xor(value, mask, width): the value of lane ^ mask. 32-bit values shuffle as they are; narrower ones widen first. */
export function shuffleXor(b: WarpBuilder, args: readonly Expr[], d: DType): string {
  const v = b.expr(args[0]!);
  const mask = b.expr(args[1]!);
  const width = (args[2] as { value: number } | undefined)?.value ?? b.fl.waveSize;
  const wide: DType = isFloat(d) ? "f32" : "i32";
  const w = b.cast(v, d, wide);
  const bits = isFloat(d) ? b.bitcast(w, "float", "i32") : w;
  let out: string;
  if (b.fl.target.kind === "nvptx") {
    const c = ((32 - width) << 8) | 31;
    out = b.callIntrinsic(
      "i32",
      "llvm.nvvm.shfl.sync.bfly.i32",
      ["-1", bits, mask, String(c)],
      ["i32", "i32", "i32", "i32"],
    );
  } else {
    const lane = b.callIntrinsic("i32", "llvm.amdgcn.mbcnt.lo", ["-1", "0"], ["i32", "i32"]);
    const laneFull =
      b.fl.waveSize === 64
        ? b.callIntrinsic("i32", "llvm.amdgcn.mbcnt.hi", ["-1", lane], ["i32", "i32"])
        : lane;
    const src = b.tmp();
    b.emit(`${src} = xor i32 ${laneFull}, ${mask}`);
    const addr = b.tmp();
    b.emit(`${addr} = shl i32 ${src}, 2`);
    out = b.callIntrinsic("i32", "llvm.amdgcn.ds.bpermute", [addr, bits], ["i32", "i32"]);
  }
  const back = isFloat(d) ? b.bitcast(out, "i32", "float") : out;
  return b.cast(back, wide, d);
}

const COMMIT = 'call void asm sideeffect "wgmma.commit_group.sync.aligned;", "~{memory}"()';
const WAIT = 'call void asm sideeffect "wgmma.wait_group.sync.aligned 0;", "~{memory}"()';

/** Where asynchronous products stand at a point of the kernel (MmaIssuer.flow, merge). */
export interface WgmmaFlow {
  readonly inFlight: boolean;
  readonly aRegisters: readonly Load[];
  readonly unknownRegisters: boolean;
}

/**
 * Tensor-core instructions, each issued once for the fields (or registers) the IR asks of it.
 * mma_m16n8k16 fields as mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32: the f16 operands go in
 * pairs (<2 x half>, the instruction's 32-bit registers). The four fields of one product are four
 * calls with the same operands (lower/schedule/tensorize.ts); the instruction is issued once and
 * its result reused while the operands cannot have changed: in the same basic block, with no
 * store to shared or global memory and no barrier in between (the renderer calls forget()).
 * wgmma_m64n128k16's 64 fields likewise, plus the bookkeeping of its asynchronous execution.
 */

export class MmaIssuer {
  private issued: { label: string; key: readonly Expr[]; result: string }[] = [];
  /** wgmma products issued and not yet committed (a group being formed). */
  private pendingWgmma = false;
  /** Committed groups not yet waited for. */
  private inFlight = false;
  /** The A registers (local loads) products issued and not waited for read. */
  private aRegisters: Load[] = [];
  /** Whether products of unknown A registers may run (a loop's previous iteration's). */
  private unknownRegisters = false;

  forget(): void {
    this.issued = [];
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
  closeGroup(): string[] {
    if (!this.pendingWgmma) return [];
    this.pendingWgmma = false;
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
  enterLoop(): void {
    this.inFlight = true;
    this.unknownRegisters = true;
  }

  /**
   * Whether a store to buffer[indices] may rewrite an A register of a product not yet waited for
   * (local buffers are per thread: the same constant index is the same register; other indices
   * are taken to meet).
   */
  mayRewriteA(buffer: Buffer, indices: readonly Expr[]): boolean {
    if (!this.pendingWgmma && !this.inFlight) return false;
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
  waitAll(): string[] {
    const out = this.closeGroup();
    if (this.inFlight) out.push(WAIT);
    this.inFlight = false;
    this.aRegisters = [];
    this.unknownRegisters = false;
    return out;
  }

  /** The result of the instruction `issue` emits for `key` (its operands), issued once per block. */
  private once(b: WarpBuilder, key: readonly Expr[], issue: () => string): string {
    let done = this.issued.find(
      (m) =>
        m.label === b.label && m.key.length === key.length && m.key.every((a, i) => sameExpr(a, key[i]!)),
    );
    if (!done) {
      done = { label: b.label, key, result: issue() };
      this.issued.push(done);
    }
    return done.result;
  }

  /**
   * Register args[2] of ldmatrix.sync.aligned.m8n8.x{args[1]}.b16 from the row args[0] names (a
   * load of f16 in shared memory): one instruction for the registers of a load, as for products.
   */
  ldmatrix(b: WarpBuilder, args: readonly Expr[]): string {
    const [row, countE, regE] = args as [Expr, Expr, Expr];
    const count = (countE as { value: number }).value;
    const reg = (regE as { value: number }).value;
    if (b.fl.target.kind !== "nvptx")
      throw new Error(
        `tkc llvm: ldmatrix (a tensor-core operand load) needs NVIDIA sm_80 or later; ${b.fl.target.arch} has none`,
      );
    if (row.kind !== "load" || row.buffer.scope !== "shared" || row.buffer.dtype !== "f16")
      throw new Error(`tkc llvm: ldmatrix reads rows of f16 in shared memory; found ${printExpr(row)}`);
    // Rows start on 16 bytes: the flatten pass checked the tile's row length. Every register of
    // one load (row and count) comes from the same instruction.
    const ret = count === 1 ? "i32" : `{ ${Array(count).fill("i32").join(", ")} }`;
    const result = this.once(b, [row, countE], () => {
      const p = b.address(row.buffer, row.indices);
      return b.callIntrinsic(
        ret,
        `llvm.nvvm.ldmatrix.sync.aligned.m8n8.x${count}.b16.p3`,
        [p.ptr],
        [`ptr addrspace(${p.space})`],
      );
    });
    if (count === 1) return result;
    const t = b.tmp();
    b.emit(`${t} = extractvalue ${ret} ${result}, ${reg}`);
    return t;
  }

  /**
   * Field args[73] of a warpgroup's wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16: A from
   * registers (args[0..7], this lane's eight halves as four f16x2), B through a matrix descriptor
   * of the tile whose origin args[8] loads (rows of 128 bytes, 128-byte swizzle, 1024-byte
   * aligned: the renderer aligns such shared buffers), accumulators args[9..72] tied to the results.
   */
  wgmma(b: WarpBuilder, args: readonly Expr[]): string {
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
    const key = args.slice(0, 73);
    const field = (args[73] as { value: number }).value;
    const ret = `{ ${Array(64).fill("float").join(", ")} }`;
    const result = this.once(b, key, () => {
      const halves = args.slice(0, 8).map((a) => b.expr(a));
      const regs: string[] = [];
      for (let i = 0; i < 8; i += 2) {
        const lo = b.tmp();
        b.emit(`${lo} = insertelement <2 x half> undef, half ${halves[i]}, i32 0`);
        const pair = b.tmp();
        b.emit(`${pair} = insertelement <2 x half> ${lo}, half ${halves[i + 1]}, i32 1`);
        regs.push(b.bitcast(pair, "<2 x half>", "i32"));
      }
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
        `${out} = call ${ret} asm sideeffect "${asm}", "${constraints}"(${[
          ...regs.map((r) => `i32 ${r}`),
          `i64 ${desc}`,
          "i32 1",
          ...acc.map((c) => `float ${c}`),
        ].join(", ")})`,
      );
      this.pendingWgmma = true;
      for (const a of args.slice(0, 8))
        if (a.kind === "call" && a.args[0]?.kind === "load") this.aRegisters.push(a.args[0]);
      return out;
    });
    const t = b.tmp();
    b.emit(`${t} = extractvalue ${ret} ${result}, ${field}`);
    return t;
  }

  /** Field args[16] of the product of args[0..15] (a0..a7, b0..b3 f16; c0..c3 f32). */
  field(b: WarpBuilder, args: readonly Expr[]): string {
    const target = b.fl.target;
    if (target.kind !== "nvptx")
      throw new Error(
        `tkc llvm: mma_m16n8k16 (a tensor-core product) needs NVIDIA sm_80 or later; ${target.arch} has none: schedule the kernel without tensorize for this target`,
      );
    const x = b.launch.block[0];
    if (x.kind !== "const" || x.value !== 32)
      throw new Error(
        `tkc llvm: mma_m16n8k16 needs threadIdx.x to be the lane of a warp (32 threads along x); this kernel launches ${printExpr(x)}`,
      );
    const operands = args.slice(0, 16);
    const field = (args[16] as { value: number }).value;
    const result = this.once(b, operands, () => {
      const vals = operands.map((a) => b.expr(a));
      const pairs: string[] = [];
      for (let i = 0; i < 12; i += 2) {
        const lo = b.tmp();
        b.emit(`${lo} = insertelement <2 x half> undef, half ${vals[i]}, i32 0`);
        const pair = b.tmp();
        b.emit(`${pair} = insertelement <2 x half> ${lo}, half ${vals[i + 1]}, i32 1`);
        pairs.push(pair);
      }
      return b.callIntrinsic(
        "{ float, float, float, float }",
        "llvm.nvvm.mma.m16n8k16.row.col.f32.f32",
        [...pairs, ...vals.slice(12)],
        [...pairs.map(() => "<2 x half>"), "float", "float", "float", "float"],
      );
    });
    const t = b.tmp();
    b.emit(`${t} = extractvalue { float, float, float, float } ${result}, ${field}`);
    return t;
  }
}
