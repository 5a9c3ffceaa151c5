/**
 * Warp-level operations for the LLVM renderer: butterfly shuffles (NVIDIA's shfl.sync, AMD's
 * ds_bpermute), tensor-core products (NVIDIA's mma.sync m16n8k16, and Hopper's wgmma issued
 * through render-wgmma.ts) and their operand loads from shared memory (ldmatrix). All need every lane of the
 * warp; the lowering passes keep them out of divergent code (lower/passes/barriers.ts).
 */
import type { DType } from "../../dsl/dtypes.ts";
import { DTYPES } from "../../dsl/dtypes.ts";
import { sameExpr } from "../../lower/ir/equal.ts";
import type { LaunchDims } from "../../lower/ir/launch.ts";
import type { Buffer, Expr } from "../../lower/ir/nodes.ts";
import { printExpr } from "../../lower/ir/printer.ts";
import type { MathBuilder } from "./render-math.ts";
import { WGMMA_RESULT, type WgmmaPipeline } from "./render-wgmma.ts";

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

/** Halves 2i and 2i + 1 of `halves` as <2 x half> values: the tensor-core instructions' 32-bit operand registers. */
export function halfPairs(b: WarpBuilder, halves: readonly string[]): string[] {
  const pairs: string[] = [];
  for (let i = 0; i < halves.length; i += 2) {
    const lo = b.tmp();
    b.emit(`${lo} = insertelement <2 x half> undef, half ${halves[i]}, i32 0`);
    const pair = b.tmp();
    b.emit(`${pair} = insertelement <2 x half> ${lo}, half ${halves[i + 1]}, i32 1`);
    pairs.push(pair);
  }
  return pairs;
}

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

/**
 * Tensor-core instructions, each issued once for the fields (or registers) the IR asks of it.
 * mma_m16n8k16 fields as mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32: the f16 operands go in
 * pairs (<2 x half>, the instruction's 32-bit registers). The four fields of one product are four
 * calls with the same operands (lower/schedule/tensorize.ts); the instruction is issued once and
 * its result reused while the operands cannot have changed: in the same basic block, with no
 * store to shared or global memory and no barrier in between (the renderer calls forget()).
 * wgmma_m64n128k16's 64 fields likewise (its asynchronous execution: render-wgmma.ts).
 */

export class MmaIssuer {
  private issued: { label: string; key: readonly Expr[]; result: string }[] = [];
  forget(): void {
    this.issued = [];
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
   * Field args[73] of a warpgroup's wgmma product (tensorize's wgmma_m64n128k16): the instruction
   * `pipeline` issues (render-wgmma.ts), once per block for the 64 fields of one product.
   */
  wgmma(b: WarpBuilder, args: readonly Expr[], pipeline: WgmmaPipeline): string {
    const result = this.once(b, args.slice(0, 73), () => pipeline.issue(b, args));
    const t = b.tmp();
    b.emit(`${t} = extractvalue ${WGMMA_RESULT} ${result}, ${(args[73] as { value: number }).value}`);
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
      const pairs = halfPairs(b, vals.slice(0, 12));
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
