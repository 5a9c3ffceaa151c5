/**
 * Binary operators, integer division, comparisons and conversions for the LLVM renderer: tkc's floor division and
 * modulo (the truncating results corrected where the signs differ), the predicates of fcmp/icmp,
 * integer constants as LLVM writes them, and casts between every pair of dtypes (float to integer
 * saturating with NaN to zero, half and bfloat through float).
 */
import type { DType } from "../../dsl/dtypes.ts";
import type { MathBuilder } from "./render-math.ts";
import { floatBits, intBits, isFloatT, isUnsigned, llvmType, ovl } from "./render-types.ts";

/** What the arithmetic needs from the renderer beyond MathBuilder. */
export interface ArithBuilder extends MathBuilder {
  /** The last tmp() went unused: the next one takes its number (keeps value names dense). */
  releaseTmp(): void;
}

/**
 * `a op y` for operands of dtype d (the result's for arithmetic, i1 for comparisons); `fastMath`
 * the flags float add/sub/mul carry (the renderer's `contract`).
 */
export function binaryValue(
  b: ArithBuilder,
  op: string,
  a: string,
  y: string,
  d: DType,
  fastMath: string,
): string {
  const ty = llvmType(d);
  const fl = isFloatT(d);
  const uns = isUnsigned(d);
  const t = b.tmp();
  const simple = (inst: string) => {
    b.emit(`${t} = ${inst} ${ty} ${a}, ${y}`);
    return t;
  };
  switch (op) {
    case "+":
      return simple(fl ? `fadd${fastMath}` : "add");
    case "-":
      return simple(fl ? `fsub${fastMath}` : "sub");
    case "*":
      return simple(fl ? `fmul${fastMath}` : "mul");
    case "/":
      return simple(fl ? "fdiv" : uns ? "udiv" : "sdiv");
    case "%":
      return simple(fl ? "frem" : uns ? "urem" : "srem");
    case "&":
      return simple("and");
    case "|":
      return simple("or");
    case "^":
      return simple("xor");
    case "<<":
      return simple("shl");
    case ">>":
      return simple(uns ? "lshr" : "ashr");
    case "min":
    case "max": {
      const name = fl ? `llvm.${op}num.${ovl(d)}` : `llvm.${uns ? "u" : "s"}${op}.${ty}`;
      b.releaseTmp(); // the tmp above is unused; let the call take a fresh one
      return b.callIntrinsic(ty, name, [a, y], [ty, ty]);
    }
    case "floordiv":
    case "floormod":
      b.releaseTmp();
      return floorDivMod(b, op, a, y, d);
    default: {
      const pred = comparePredicate(op, fl, uns);
      if (!pred) throw new Error(`tkc llvm: unsupported operator ${op}`);
      b.emit(`${t} = ${fl ? "fcmp" : "icmp"} ${pred} ${ty} ${a}, ${y}`);
      return t;
    }
  }
}

export function floorDivMod(
  b: ArithBuilder,
  op: "floordiv" | "floormod",
  a: string,
  y: string,
  d: DType,
): string {
  const ty = llvmType(d);
  if (isUnsigned(d)) {
    const t = b.tmp();
    b.emit(`${t} = ${op === "floordiv" ? "udiv" : "urem"} ${ty} ${a}, ${y}`);
    return t;
  }
  // Truncating results, corrected when the remainder is non-zero and the signs differ.
  const q = b.tmp();
  const r = b.tmp();
  const rnz = b.tmp();
  const sx = b.tmp();
  const adj = b.tmp();
  const out = b.tmp();
  b.emit(`${q} = sdiv ${ty} ${a}, ${y}`);
  b.emit(`${r} = srem ${ty} ${a}, ${y}`);
  b.emit(`${rnz} = icmp ne ${ty} ${r}, 0`);
  const xr = b.tmp();
  b.emit(`${xr} = xor ${ty} ${r}, ${y}`);
  b.emit(`${sx} = icmp slt ${ty} ${xr}, 0`);
  b.emit(`${adj} = and i1 ${rnz}, ${sx}`);
  if (op === "floordiv") {
    const q1 = b.tmp();
    b.emit(`${q1} = sub ${ty} ${q}, 1`);
    b.emit(`${out} = select i1 ${adj}, ${ty} ${q1}, ${ty} ${q}`);
  } else {
    const r1 = b.tmp();
    b.emit(`${r1} = add ${ty} ${r}, ${y}`);
    b.emit(`${out} = select i1 ${adj}, ${ty} ${r1}, ${ty} ${r}`);
  }
  return out;
}

export function castValue(b: ArithBuilder, v: string, from: DType, to: DType): string {
  if (from === to) return v;
  const ft = llvmType(from);
  const tt = llvmType(to);
  const t = b.tmp();
  if (to === "bool") {
    if (isFloatT(from)) b.emit(`${t} = fcmp une ${ft} ${v}, 0.0`);
    else b.emit(`${t} = icmp ne ${ft} ${v}, 0`);
    return t;
  }
  if (isFloatT(to)) {
    if (from === "bool" || isUnsigned(from)) b.emit(`${t} = uitofp ${ft} ${v} to ${tt}`);
    else if (!isFloatT(from)) b.emit(`${t} = sitofp ${ft} ${v} to ${tt}`);
    else if ((from === "f16" || from === "bf16") && (to === "f16" || to === "bf16")) {
      // half <-> bfloat goes through float.
      b.releaseTmp();
      return castValue(b, castValue(b, v, from, "f32"), "f32", to);
    } else if (floatBits(from) < floatBits(to)) b.emit(`${t} = fpext ${ft} ${v} to ${tt}`);
    else b.emit(`${t} = fptrunc ${ft} ${v} to ${tt}`);
    return t;
  }
  if (isFloatT(from)) {
    // Saturating, NaN to zero: tkc's float-to-int rule.
    b.releaseTmp();
    const name = `llvm.fpto${isUnsigned(to) ? "u" : "s"}i.sat.${tt}.${ovl(from)}`;
    return b.callIntrinsic(tt, name, [v], [ft]);
  }
  const fb = intBits(from);
  const tb = intBits(to);
  if (fb === tb) {
    b.releaseTmp();
    return v;
  }
  if (fb > tb) b.emit(`${t} = trunc ${ft} ${v} to ${tt}`);
  else b.emit(`${t} = ${isUnsigned(from) ? "zext" : "sext"} ${ft} ${v} to ${tt}`);
  return t;
}

const FCMP: Record<string, string> = {
  "==": "oeq",
  "!=": "une",
  "<": "olt",
  "<=": "ole",
  ">": "ogt",
  ">=": "oge",
};
const SCMP: Record<string, string> = {
  "==": "eq",
  "!=": "ne",
  "<": "slt",
  "<=": "sle",
  ">": "sgt",
  ">=": "sge",
};
const UCMP: Record<string, string> = {
  "==": "eq",
  "!=": "ne",
  "<": "ult",
  "<=": "ule",
  ">": "ugt",
  ">=": "uge",
};

/** fcmp (ordered; != unordered) or icmp (signed or unsigned) predicate of a comparison operator. */
export function comparePredicate(op: string, float: boolean, unsigned: boolean): string | undefined {
  return (float ? FCMP : unsigned ? UCMP : SCMP)[op];
}

/** An integer constant of dtype d as LLVM writes it (i32 and i8 constants signed). */
export function wrapInt(v: number, d: DType): number {
  switch (d) {
    case "i32":
      return v | 0;
    case "u32":
      return v | 0; // LLVM i32 constants are written signed
    case "i8":
    case "u8":
      return (v << 24) >> 24;
    default:
      return Math.trunc(v);
  }
}
