/**
 * f32 math for the LLVM renderer: the flavour's native operations (approximate exp2/log2/rsqrt/sin/
 * cos on NVIDIA, the AMDGPU intrinsics) and the expansions built from them (exp, log, tanh, erf,
 * pow, sin/cos argument reduction); mathOf dispatches a call by dtype (half-precision math widens
 * to f32 and rounds back).
 */
import type { DType } from "../../dsl/dtypes.ts";
import type { Flavor } from "./flavor.ts";
import { castValue, type ArithBuilder } from "./render-arith.ts";
import { floatLiteral } from "./render-text.ts";
import { isFloatT, llvmType, ovl } from "./render-types.ts";

/** What the math needs from the renderer: fresh values, emitted lines and intrinsic calls. */
export interface MathBuilder {
  readonly fl: Flavor;
  tmp(hint?: string): string;
  emit(line: string): void;
  callIntrinsic(ret: string, name: string, args: string[], argTys: string[]): string;
}

function fop(m: MathBuilder, op: string, a: string, b: string): string {
  const t = m.tmp();
  m.emit(`${t} = ${op} float ${a}, ${b}`);
  return t;
}

/** f32 math from the flavour's native operations. */
export function mathF32(m: MathBuilder, name: string, v: string[]): string {
  const f = (n: string, args: string[]) => {
    const native = m.fl.mathIntrinsic(n);
    return m.callIntrinsic(
      "float",
      native ?? `llvm.${n}.f32`,
      args,
      args.map(() => "float"),
    );
  };
  const [a, b, c] = v as [string, string, string];
  switch (name) {
    case "exp":
      return f("exp2", [fop(m, "fmul", a, floatLiteral(Math.LOG2E, "f32"))]);
    case "exp2":
      return f("exp2", [a]);
    case "log":
      return fop(m, "fmul", f("log2", [a]), floatLiteral(Math.LN2, "f32"));
    case "log2":
      return f("log2", [a]);
    case "sqrt":
      return f("sqrt", [a]);
    case "rsqrt":
      return f("rsqrt", [a]);
    case "sin":
    case "cos":
      // Reduce to [-pi, pi] first (two-constant Cody-Waite): the approximations are accurate there only.
      return f(name, [reduceAngle(m, a)]);
    case "tanh": {
      // tanh(x) = sign(x) (1 - 2 / (exp(2|x|) + 1)); exact enough for f32 away from 0, x itself near 0.
      const ax = f("fabs", [a]);
      const e2 = f("exp2", [fop(m, "fmul", ax, floatLiteral(2 * Math.LOG2E, "f32"))]);
      const q = fop(m, "fdiv", floatLiteral(2, "f32"), fop(m, "fadd", e2, floatLiteral(1, "f32")));
      const oneMinus = fop(m, "fsub", floatLiteral(1, "f32"), q);
      const signed = m.callIntrinsic("float", "llvm.copysign.f32", [oneMinus, a], ["float", "float"]);
      const small = m.tmp();
      m.emit(`${small} = fcmp olt float ${ax}, ${floatLiteral(0.0004, "f32")}`);
      const r = m.tmp();
      m.emit(`${r} = select i1 ${small}, float ${a}, float ${signed}`);
      return r;
    }
    case "erf":
      return erf(m, a);
    case "pow":
      return f("exp2", [fop(m, "fmul", b, f("log2", [a]))]);
    case "fma":
      return m.callIntrinsic("float", "llvm.fma.f32", [a, b, c], ["float", "float", "float"]);
    case "abs":
      return m.callIntrinsic("float", "llvm.fabs.f32", [a], ["float"]);
    case "floor":
    case "ceil":
      return m.callIntrinsic("float", `llvm.${name}.f32`, [a], ["float"]);
    case "round":
      return m.callIntrinsic("float", "llvm.roundeven.f32", [a], ["float"]);
    default:
      throw new Error(`tkc llvm: no rendering for ${name}`);
  }
}

function reduceAngle(m: MathBuilder, x: string): string {
  const k = m.callIntrinsic(
    "float",
    "llvm.roundeven.f32",
    [fop(m, "fmul", x, floatLiteral(1 / (2 * Math.PI), "f32"))],
    ["float"],
  );
  const hi = Math.fround(2 * Math.PI);
  const lo = Math.fround(2 * Math.PI - hi);
  const r1 = m.callIntrinsic(
    "float",
    "llvm.fma.f32",
    [fop(m, "fsub", "-0.0", k), floatLiteral(hi, "f32"), x],
    ["float", "float", "float"],
  );
  return m.callIntrinsic(
    "float",
    "llvm.fma.f32",
    [fop(m, "fsub", "-0.0", k), floatLiteral(lo, "f32"), r1],
    ["float", "float", "float"],
  );
}

/** erf by Abramowitz-Stegun 7.1.26 (absolute error below 1.5e-7). */
function erf(m: MathBuilder, x: string): string {
  const c = (v: number) => floatLiteral(v, "f32");
  const ax = m.callIntrinsic("float", "llvm.fabs.f32", [x], ["float"]);
  const t = fop(m, "fdiv", c(1), fop(m, "fadd", c(1), fop(m, "fmul", c(0.3275911), ax)));
  let poly = c(1.061405429);
  for (const k of [-1.453152027, 1.421413741, -0.284496736, 0.254829592])
    poly = fop(m, "fadd", fop(m, "fmul", poly, t), c(k));
  poly = fop(m, "fmul", poly, t);
  const e = mathF32(m, "exp", [fop(m, "fmul", fop(m, "fsub", "-0.0", ax), ax)]);
  const y = fop(m, "fsub", c(1), fop(m, "fmul", poly, e));
  return m.callIntrinsic("float", "llvm.copysign.f32", [y, x], ["float", "float"]);
}

/**
 * Pairs of f16 in an i32 (pack_f16x2, unpack_f16x2, fma_f16x2): the i32 is bitcast to <2 x half>,
 * which NVIDIA GPUs hold in one 32-bit register (fma.rn.f16x2: one HFMA2 for both) and AMD GPUs in
 * one VGPR (v_pk_fma_f16).
 */
export function f16x2Op(m: MathBuilder, name: string, v: string[]): string {
  const op = (line: (t: string) => string) => {
    const t = m.tmp();
    m.emit(line(t));
    return t;
  };
  const pair = (x: string) => op((t) => `${t} = bitcast i32 ${x} to <2 x half>`);
  const bits = (x: string) => op((t) => `${t} = bitcast <2 x half> ${x} to i32`);
  switch (name) {
    case "pack_f16x2": {
      const lo = op((t) => `${t} = insertelement <2 x half> undef, half ${v[0]}, i32 0`);
      return bits(op((t) => `${t} = insertelement <2 x half> ${lo}, half ${v[1]}, i32 1`));
    }
    case "unpack_f16x2":
      return op((t) => `${t} = extractelement <2 x half> ${pair(v[0]!)}, i32 ${v[1]}`);
    case "fma_f16x2": {
      const ps = v.map(pair);
      const ty = "<2 x half>";
      return bits(m.callIntrinsic(ty, "llvm.fma.v2f16", ps, [ty, ty, ty]));
    }
    default:
      throw new Error(`tkc llvm: ${name} is not an f16x2 operation`);
  }
}

/**
 * The math call `name` on values of dtype d: an integer's abs; abs, floor, ceil, round and fma of
 * f16 or bf16 in their own type (exact there), the rest of their math widened to f32 and rounded
 * back; f32's by mathF32.
 */
export function mathOf(m: ArithBuilder, name: string, vals: string[], d: DType): string {
  if (!isFloatT(d)) {
    if (name === "abs")
      return m.callIntrinsic(
        llvmType(d),
        `llvm.abs.${llvmType(d)}`,
        [vals[0]!, "false"],
        [llvmType(d), "i1"],
      );
    throw new Error(`tkc llvm: ${name} on ${d}`);
  }
  if (d !== "f32" && !["abs", "floor", "ceil", "round", "fma"].includes(name)) {
    const wide = vals.map((v) => castValue(m, v, d, "f32"));
    return castValue(m, mathF32(m, name, wide), "f32", d);
  }
  if (d !== "f32") {
    const ty = llvmType(d);
    const intr = { abs: "fabs", floor: "floor", ceil: "ceil", round: "roundeven", fma: "fma" }[name]!;
    return m.callIntrinsic(
      ty,
      `llvm.${intr}.${ovl(d)}`,
      vals,
      vals.map(() => ty),
    );
  }
  return mathF32(m, name, vals);
}
