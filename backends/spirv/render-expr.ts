/**
 * Expressions of the loop IR / device IR as SPIR-V instructions (render.ts does statements and
 * the module). Values are SSA ids typed by module.ts REG_TYPE; arithmetic follows
 * backends/cpu/semantics.ts, the same way backends/llvm/render.ts does.
 */
import { DTYPES, type DType } from "../../dsl/dtypes.ts";
import type { Binary, Buffer, Expr, Var } from "../../lower/ir/nodes.ts";
import { hasLoad, substitute } from "../../lower/ir/transform.ts";
import * as B from "../../lower/ir/build.ts";
import { printExpr } from "../../lower/ir/printer.ts";
import { linearize } from "../../lower/schedule/analysis.ts";
import { REG_TYPE, literalFor, type ScalarName, type SpirvModule, type StorageClass } from "./module.ts";
import { convert, glsl, mathF32, roundToBf16 } from "./render-math.ts";

/** Where a buffer lives: a variable, and whether its elements sit in member 0 of a Block struct. */
export interface BufferRef {
  readonly id: string;
  readonly sc: StorageClass;
  /** Element type in memory (module.ts BUFFER_ELEM for storage buffers, REG_TYPE otherwise). */
  readonly elem: ScalarName;
  readonly inStruct: boolean;
  /** A one-element local: a plain scalar variable, no access chain. */
  readonly scalar: boolean;
}

export interface ExprContext {
  readonly m: SpirvModule;
  readonly vars: Map<Var, string>;
  /** Values computed on first use (push constants), in the prologue. */
  readonly lazyVars: Map<Var, () => string>;
  readonly buffers: Map<Buffer, BufferRef>;
  readonly subgroupSize?: number;
  /**
   * A read-only storage buffer's second view as an array of uvec4 (the same binding), for loads
   * merged 16 bytes at a time; undefined where the buffer has none (written, or a size that is not
   * a multiple of 16 bytes).
   */
  vectorView?(buf: Buffer): string | undefined;
  /** LocalInvocationId (threadIdx) or WorkgroupId (blockIdx) along an axis, as an int. */
  builtin(which: "LocalInvocationId" | "WorkgroupId", axis: number): string;
  /** Throws an error naming the kernel and the construct. */
  fail(what: string): never;
}

const isFloatT = (d: DType): boolean => DTYPES[d].kind === "float";
const isUnsigned = (d: DType): boolean => DTYPES[d].kind === "uint";

const FCMP: Record<string, string> = {
  "==": "OpFOrdEqual",
  "!=": "OpFUnordNotEqual",
  "<": "OpFOrdLessThan",
  "<=": "OpFOrdLessThanEqual",
  ">": "OpFOrdGreaterThan",
  ">=": "OpFOrdGreaterThanEqual",
};
const ICMP: Record<string, [string, string]> = {
  "==": ["OpIEqual", "OpIEqual"],
  "!=": ["OpINotEqual", "OpINotEqual"],
  "<": ["OpSLessThan", "OpULessThan"],
  "<=": ["OpSLessThanEqual", "OpULessThanEqual"],
  ">": ["OpSGreaterThan", "OpUGreaterThan"],
  ">=": ["OpSGreaterThanEqual", "OpUGreaterThanEqual"],
};

export class ExprEmitter {
  protected readonly m: SpirvModule;

  constructor(protected readonly cx: ExprContext) {
    this.m = cx.m;
  }

  /** The register type id of dtype d, declaring the capability its arithmetic needs. */
  ty(d: DType): string {
    const t = REG_TYPE[d];
    if (t === "half") this.m.need("Float16");
    if (t === "char" || t === "uchar") this.m.need("Int8");
    return this.m.scalar(t);
  }

  konst(value: number, d: DType): string {
    this.ty(d);
    if (d === "bool") return this.m.constant("bool", value ? "1" : "0");
    return this.m.constant(REG_TYPE[d], literalFor(value, d));
  }

  expr(e: Expr): string {
    switch (e.kind) {
      case "const":
        return this.konst(e.value, e.dtype);
      case "var": {
        let v = this.cx.vars.get(e);
        if (v === undefined) {
          const lazy = this.cx.lazyVars.get(e);
          if (!lazy) this.cx.fail(`variable ${e.name} used outside its definition`);
          v = this.m.inPrologue(lazy);
          this.cx.vars.set(e, v);
        }
        return v;
      }
      case "binary":
        return this.binary(e);
      case "unary": {
        const a = this.expr(e.a);
        const ty = this.ty(e.dtype);
        if (e.op === "not") return this.m.op(`OpLogicalNot ${ty} ${a}`);
        if (e.op === "bitnot") return this.m.op(`OpNot ${ty} ${a}`);
        return this.m.op(`${isFloatT(e.dtype) ? "OpFNegate" : "OpSNegate"} ${ty} ${a}`);
      }
      case "cast":
        return this.cast(this.expr(e.value), e.value.dtype, e.dtype);
      case "load":
        return this.load(e.buffer, e.indices, e.dtype);
      case "call":
        return this.call(e.name, e.args, e.dtype);
      case "select":
        return this.lazySelect(e.cond, e.t, e.f, e.dtype);
    }
  }

  /**
   * `c ? t : f`: OpSelect when neither side reads memory, else a structured if whose merge block
   * takes the chosen value through OpPhi, so a guarded out-of-bounds load never runs.
   */
  lazySelect(cond: Expr, t: Expr, f: Expr, d: DType): string {
    const c = this.expr(cond);
    const ty = this.ty(d);
    if (!hasLoad(t) && !hasLoad(f)) {
      const a = this.expr(t);
      const b = this.expr(f);
      return this.m.op(`OpSelect ${ty} ${c} ${a} ${b}`);
    }
    const m = this.m;
    const [lt, lf, le] = [m.id("sel_t"), m.id("sel_f"), m.id("sel_end")];
    m.emit(`OpSelectionMerge ${le} None`);
    m.emit(`OpBranchConditional ${c} ${lt} ${lf}`);
    m.startBlock(lt);
    const a = this.expr(t);
    const endT = m.label;
    m.emit(`OpBranch ${le}`);
    m.startBlock(lf);
    const b = this.expr(f);
    const endF = m.label;
    m.emit(`OpBranch ${le}`);
    m.startBlock(le);
    return m.op(`OpPhi ${ty} ${a} ${endT} ${b} ${endF}`);
  }

  /**
   * A float operation; bf16 results are rounded back to bf16. Without a NoContraction decoration
   * the driver may fuse a * b + c into one fma, as the LLVM backends' `contract` flag lets LLVM
   * do (and nvcc and hipcc do by default): it rounds once instead of twice, so results may differ
   * from the CPU backend's in the last bit (tests compare floats with a tolerance), and a GEMV's
   * multiply-adds take one instruction, not two. bf16 arithmetic, rounded after each operation,
   * keeps NoContraction so that its rounding stays the CPU's.
   */
  private farith(op: string, d: DType, a: string, b: string): string {
    const r = this.m.op(`${op} ${this.ty(d)} ${a} ${b}`);
    if (d === "bf16" && (op === "OpFMul" || op === "OpFAdd" || op === "OpFSub"))
      this.m.decorate(`OpDecorate ${r} NoContraction`);
    return d === "bf16" ? roundToBf16(this.m, r) : r;
  }

  private binary(e: Binary): string {
    const d = e.a.dtype;
    const F = { kind: "const", dtype: "bool", value: 0 } as const;
    const T = { kind: "const", dtype: "bool", value: 1 } as const;
    if (e.op === "&&") return this.lazySelect(e.a, e.b, F, "bool");
    if (e.op === "||") return this.lazySelect(e.a, T, e.b, "bool");
    let a = this.expr(e.a);
    let b = this.expr(e.b);
    const m = this.m;
    const ty = this.ty(d);
    const bool = m.scalar("bool");
    const int = (op: string) => m.op(`${op} ${ty} ${a} ${b}`);
    if (d === "bool") {
      const logical: Record<string, string> = {
        "==": "OpLogicalEqual",
        "!=": "OpLogicalNotEqual",
        "^": "OpLogicalNotEqual",
        "&": "OpLogicalAnd",
        "|": "OpLogicalOr",
      };
      if (logical[e.op]) return m.op(`${logical[e.op]} ${bool} ${a} ${b}`);
      if (!ICMP[e.op]) this.cx.fail(`operator ${e.op} on bool`);
      // Ordering of booleans (false < true): compare them as 0/1.
      a = this.cast(a, "bool", "u32");
      b = this.cast(b, "bool", "u32");
      return m.op(`${ICMP[e.op]![1]} ${bool} ${a} ${b}`);
    }
    if (isFloatT(d)) {
      switch (e.op) {
        case "+":
          return this.farith("OpFAdd", d, a, b);
        case "-":
          return this.farith("OpFSub", d, a, b);
        case "*":
          return this.farith("OpFMul", d, a, b);
        case "/":
          return this.farith("OpFDiv", d, a, b);
        case "%":
          return this.farith("OpFRem", d, a, b);
        case "min":
        case "max":
          // NMin/NMax return the other operand when one is NaN (semantics.ts fmin/fmax).
          return glsl(m, ty, e.op === "min" ? "NMin" : "NMax", [a, b]);
        case "floordiv":
        case "floormod": {
          const q = glsl(m, ty, "Floor", [this.farith("OpFDiv", d, a, b)]);
          if (e.op === "floordiv") return q;
          return this.farith("OpFSub", d, a, this.farith("OpFMul", d, q, b));
        }
        default:
          if (!FCMP[e.op]) this.cx.fail(`operator ${e.op} on ${d}`);
          return m.op(`${FCMP[e.op]} ${bool} ${a} ${b}`);
      }
    }
    const uns = isUnsigned(d);
    switch (e.op) {
      case "+":
        return int("OpIAdd");
      case "-":
        return int("OpISub");
      case "*":
        return int("OpIMul");
      case "/":
        return int(uns ? "OpUDiv" : "OpSDiv");
      case "%":
        return int(uns ? "OpUMod" : "OpSRem");
      case "&":
        return int("OpBitwiseAnd");
      case "|":
        return int("OpBitwiseOr");
      case "^":
        return int("OpBitwiseXor");
      case "<<":
        return int("OpShiftLeftLogical");
      case ">>":
        return int(uns ? "OpShiftRightLogical" : "OpShiftRightArithmetic");
      case "min":
      case "max": {
        // Compare and select: GLSL.std.450's SMin/UMin family does not take 8-bit operands.
        const lt = m.op(`${uns ? "OpULessThan" : "OpSLessThan"} ${bool} ${a} ${b}`);
        return e.op === "min"
          ? m.op(`OpSelect ${ty} ${lt} ${a} ${b}`)
          : m.op(`OpSelect ${ty} ${lt} ${b} ${a}`);
      }
      case "floordiv":
      case "floormod":
        return this.floorDivMod(e.op, a, b, d);
      default: {
        const cmp = ICMP[e.op];
        if (!cmp) this.cx.fail(`operator ${e.op} on ${d}`);
        return m.op(`${cmp[uns ? 1 : 0]} ${bool} ${a} ${b}`);
      }
    }
  }

  /** Truncating results, corrected when the remainder is non-zero and its sign differs from b's. */
  private floorDivMod(op: "floordiv" | "floormod", a: string, b: string, d: DType): string {
    const m = this.m;
    const ty = this.ty(d);
    if (isUnsigned(d)) return m.op(`${op === "floordiv" ? "OpUDiv" : "OpUMod"} ${ty} ${a} ${b}`);
    const bool = m.scalar("bool");
    const zero = this.konst(0, d);
    const q = m.op(`OpSDiv ${ty} ${a} ${b}`);
    const r = m.op(`OpSRem ${ty} ${a} ${b}`);
    const rnz = m.op(`OpINotEqual ${bool} ${r} ${zero}`);
    const sx = m.op(`OpSLessThan ${bool} ${m.op(`OpBitwiseXor ${ty} ${r} ${b}`)} ${zero}`);
    const adj = m.op(`OpLogicalAnd ${bool} ${rnz} ${sx}`);
    if (op === "floordiv") {
      const q1 = m.op(`OpISub ${ty} ${q} ${this.konst(1, d)}`);
      return m.op(`OpSelect ${ty} ${adj} ${q1} ${q}`);
    }
    const r1 = m.op(`OpIAdd ${ty} ${r} ${b}`);
    return m.op(`OpSelect ${ty} ${adj} ${r1} ${r}`);
  }

  cast(v: string, from: DType, to: DType): string {
    return from === to ? v : convert(this.m, v, from, to, this.ty(to));
  }

  /** Pairs of f16 in a u32 (lower/ir/nodes.ts): the u32 bitcast to a two-element half vector. */
  private f16x2(name: string, args: readonly Expr[]): string {
    const m = this.m;
    const half = this.ty("f16");
    const v2 = m.vector("half", 2);
    const uint = m.scalar("uint");
    if (name === "unpack_f16x2") {
      const pair = m.op(`OpBitcast ${v2} ${this.expr(args[0]!)}`);
      const e = args[1]!;
      if (e.kind === "const") return m.op(`OpCompositeExtract ${half} ${pair} ${e.value}`);
      return m.op(`OpVectorExtractDynamic ${half} ${pair} ${this.expr(e)}`);
    }
    const vals = args.map((a) => this.expr(a));
    if (name === "pack_f16x2")
      return m.op(`OpBitcast ${uint} ${m.op(`OpCompositeConstruct ${v2} ${vals.join(" ")}`)}`);
    const pairs = vals.map((v) => m.op(`OpBitcast ${v2} ${v}`));
    return m.op(`OpBitcast ${uint} ${glsl(m, v2, "Fma", pairs)}`);
  }

  private call(name: string, args: readonly Expr[], d: DType): string {
    const m = this.m;
    if (name === "thread_id" || name === "block_id") {
      const axis =
        args[0]?.kind === "const" ? args[0].value : this.cx.fail(`${name} with a non-constant axis`);
      return this.cx.builtin(name === "thread_id" ? "LocalInvocationId" : "WorkgroupId", axis);
    }
    if (name === "shfl_xor") return this.shuffleXor(args, d);
    if (name === "bitcast") return m.op(`OpBitcast ${this.ty(d)} ${this.expr(args[0]!)}`);
    if (name === "pack_f16x2" || name === "unpack_f16x2" || name === "fma_f16x2")
      return this.f16x2(name, args);
    const vals = args.map((a) => this.expr(a));
    const ty = this.ty(d);
    if (!isFloatT(d)) {
      if (name !== "abs") this.cx.fail(`${name} on ${d}`);
      if (isUnsigned(d) || d === "bool") return vals[0]!;
      const neg = m.op(`OpSLessThan ${m.scalar("bool")} ${vals[0]} ${this.konst(0, d)}`);
      return m.op(`OpSelect ${ty} ${neg} ${m.op(`OpSNegate ${ty} ${vals[0]}`)} ${vals[0]}`);
    }
    if (d === "f32") return mathF32(m, name, vals);
    if (d === "bf16") return roundToBf16(m, mathF32(m, name, vals));
    // f16: operations exact in half precision run natively; the others in f32, rounded back.
    const native: Record<string, string> = {
      abs: "FAbs",
      floor: "Floor",
      ceil: "Ceil",
      round: "RoundEven",
      fma: "Fma",
    };
    if (native[name]) return glsl(m, ty, native[name], vals);
    const wide = vals.map((v) => m.op(`OpFConvert ${m.scalar("float")} ${v}`));
    return m.op(`OpFConvert ${ty} ${mathF32(m, name, wide)}`);
  }

  /**
   * shfl_xor(value, mask, width): OpGroupNonUniformShuffleXor over the subgroup. A mask below the
   * width keeps lanes within their group of `width`; a width above the device's subgroup size would
   * read lanes of another subgroup, so it is refused when the size is known.
   */
  private shuffleXor(args: readonly Expr[], d: DType): string {
    const m = this.m;
    const width = args[2]?.kind === "const" ? args[2].value : undefined;
    const sg = this.cx.subgroupSize;
    if (sg !== undefined && width !== undefined && width > sg)
      this.cx.fail(
        `shfl_xor of width ${width} on a device whose subgroups have ${sg} invocations (lower the kernel with warpSize ${sg})`,
      );
    m.need("GroupNonUniform");
    m.need("GroupNonUniformShuffle");
    // 32-bit (or wider) values shuffle as they are; narrower ones widen first, as in the LLVM renderer.
    const wide: DType = d === "f16" ? "f32" : d === "i8" ? "i32" : d === "u8" ? "u32" : d;
    const v = this.cast(this.expr(args[0]!), d, wide);
    const mask = this.cast(this.expr(args[1]!), args[1]!.dtype, "u32");
    const out = m.op(`OpGroupNonUniformShuffleXor ${this.ty(wide)} ${m.uintConst(3)} ${v} ${mask}`);
    return this.cast(out, wide, d);
  }

  // ---- memory ----

  /** A pointer to buf[indices], flattening multi-dimensional indices row-major (allocShape first). */
  protected address(buf: Buffer, indices: readonly Expr[]): { ref: BufferRef; ptr: string } {
    const ref = this.cx.buffers.get(buf);
    if (!ref) this.cx.fail(`buffer ${buf.name} used outside its allocation`);
    if (ref.scalar) return { ref, ptr: ref.id };
    const flat = this.flatIndex(buf, indices);
    const ptrTy = this.m.pointer(ref.sc, this.m.scalar(ref.elem));
    const head = ref.inStruct ? `${this.m.uintConst(0)} ` : "";
    return { ref, ptr: this.m.op(`OpAccessChain ${ptrTy} ${ref.id} ${head}${flat}`) };
  }

  /** An index as an i32 register value (access chains take signed 32-bit indices here). */
  private index(e: Expr): string {
    const v = this.expr(e);
    return e.dtype === "i32" ? v : this.cast(v, e.dtype, "i32");
  }

  protected flatIndex(buf: Buffer, indices: readonly Expr[]): string {
    const dims = buf.allocShape ?? buf.shape;
    if (indices.length === 0) return this.konst(0, "i32");
    let acc = this.index(indices[0]!);
    const int = this.ty("i32");
    for (let k = 1; k < indices.length; k++) {
      const scaled = this.m.op(`OpIMul ${int} ${acc} ${this.index(dims[k]!)}`);
      acc = this.m.op(`OpIAdd ${int} ${scaled} ${this.index(indices[k]!)}`);
    }
    return acc;
  }

  /** 16-byte loads of read-only buffers, by block label and aligned base index. */
  private readonly vectors = new Map<string, string>();
  /** Integer lets' values, so that an index through `col = 4 * g + w` is seen as affine. */
  protected readonly letValues = new Map<Var, Expr>();

  /**
   * An element of a read-only buffer through a 16-byte load of the aligned vector that holds it,
   * reused by every later load of that vector in the same basic block (so it dominates them): the
   * elements an unrolled loop reads one by one take one load per 16 bytes, as LLVM's load/store
   * vectorizer gives the PTX path. Only where the flat index is provably base + c with base a
   * multiple of the vector's elements (every variable term's coefficient is); undefined otherwise.
   */
  private vectorLoad(buf: Buffer, indices: readonly Expr[], d: DType): string | undefined {
    const view = this.cx.vectorView?.(buf);
    const bytes = d === "f16" ? 2 : d === "u32" || d === "i32" || d === "f32" ? 4 : 0;
    if (!view || bytes === 0) return undefined;
    const per = 16 / bytes;
    const dims = buf.allocShape ?? buf.shape;
    // Flattened device IR indexes with one offset; loop IR row-major over constant dimensions.
    if (indices.length > 1 && (dims.length !== indices.length || dims.some((x) => x.kind !== "const")))
      return undefined;
    let flat: Expr = indices[0]!;
    for (let k = 1; k < indices.length; k++) flat = B.add(B.mul(flat, dims[k]!), indices[k]!);
    // Lets' values substituted (to a fixed depth: they nest only as deep as the source's).
    for (let depth = 0; depth < 8 && this.letValues.size; depth++) {
      const next = substitute(flat, this.letValues);
      if (next === flat) break;
      flat = next;
    }
    const lin = linearize(flat);
    if (lin.terms.some((t) => t.coef % per !== 0)) return undefined;
    const lane = ((lin.constant % per) + per) % per;
    const key = `${this.m.label} ${buf.id} ${lin.terms.map((t) => `${t.coef}*${printExpr(t.atom)}`).join("+")}+${lin.constant - lane}`;
    const m = this.m;
    let vec = this.vectors.get(key);
    if (vec === undefined) {
      const int = this.ty("i32");
      const at = m.op(`OpISub ${int} ${this.flatIndex(buf, indices)} ${this.konst(lane, "i32")}`);
      const vi = m.op(`OpShiftRightArithmetic ${int} ${at} ${this.konst(Math.log2(per), "i32")}`);
      const v4 = m.vector("uint", 4);
      const ptr = m.op(`OpAccessChain ${m.pointer("StorageBuffer", v4)} ${view} ${m.uintConst(0)} ${vi}`);
      vec = m.op(`OpLoad ${v4} ${ptr}`);
      this.vectors.set(key, vec);
    }
    const word = m.op(`OpCompositeExtract ${m.scalar("uint")} ${vec} ${bytes === 4 ? lane : lane >> 1}`);
    if (d === "u32") return word;
    if (d === "i32" || d === "f32") return m.op(`OpBitcast ${this.ty(d)} ${word}`);
    const pair = m.op(`OpBitcast ${m.vector("half", 2)} ${word}`);
    return m.op(`OpCompositeExtract ${this.ty("f16")} ${pair} ${lane & 1}`);
  }

  load(buf: Buffer, indices: readonly Expr[], d: DType): string {
    const merged = this.vectorLoad(buf, indices, d);
    if (merged !== undefined) return merged;
    const { ref, ptr } = this.address(buf, indices);
    const m = this.m;
    const raw = m.op(`OpLoad ${m.scalar(ref.elem)} ${ptr}`);
    if (ref.elem === REG_TYPE[d]) return raw;
    this.ty(d);
    const u = m.op(`OpUConvert ${m.scalar("uint")} ${raw}`);
    if (d === "bool") return m.op(`OpINotEqual ${m.scalar("bool")} ${u} ${m.uintConst(0)}`);
    // bf16: its bits are the high half of an f32.
    return m.op(`OpBitcast ${m.scalar("float")} ${m.op(`OpShiftLeftLogical %uint ${u} ${m.uintConst(16)}`)}`);
  }

  /** Converts a register value to buf's memory representation and stores it. */
  storeValue(buf: Buffer, indices: readonly Expr[], value: string): void {
    const { ref, ptr } = this.address(buf, indices);
    const m = this.m;
    let v = value;
    if (ref.elem !== REG_TYPE[buf.dtype]) {
      const u =
        buf.dtype === "bool"
          ? m.op(`OpSelect ${m.scalar("uint")} ${v} ${m.uintConst(1)} ${m.uintConst(0)}`)
          : m.op(
              `OpShiftRightLogical %uint ${m.op(`OpBitcast ${m.scalar("uint")} ${v}`)} ${m.uintConst(16)}`,
            );
      v = m.op(`OpUConvert ${m.scalar(ref.elem)} ${u}`);
    }
    m.emit(`OpStore ${ptr} ${v}`);
  }
}
