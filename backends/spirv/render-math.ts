/**
 * Float math in SPIR-V: GLSL.std.450 instructions where Vulkan's precision is good enough, and
 * expansions where it is not or where tkc's semantics (backends/cpu/semantics.ts) differ from
 * GLSL's: saturating float-to-int conversion with NaN -> 0, bf16 rounding, erf, a tanh that
 * cannot overflow, and sin/cos with the argument reduced first. Mirrors backends/llvm/render.ts.
 *
 * Every function takes and returns f32 register values (`%float` ids) unless it says otherwise.
 */
import { DTYPES, type DType } from "../../dsl/dtypes.ts";
import { literalFor, REG_TYPE, type ScalarName, type SpirvModule } from "./module.ts";

const fc = (m: SpirvModule, v: number): string => m.constant("float", String(Math.fround(v)));
const uc = (m: SpirvModule, v: number): string => m.uintConst(v);

/** `OpExtInst <ty> GLSL.std.450 <inst> args`. */
export function glsl(m: SpirvModule, ty: string, inst: string, args: readonly string[]): string {
  return m.op(`OpExtInst ${ty} ${m.glslExt()} ${inst} ${args.join(" ")}`);
}

const fop = (m: SpirvModule, op: string, a: string, b: string): string => m.op(`${op} %float ${a} ${b}`);

/** f32 math by tkc call name. */
export function mathF32(m: SpirvModule, name: string, v: readonly string[]): string {
  const f = (inst: string, args: readonly string[]) => glsl(m, m.scalar("float"), inst, args);
  const [a, b, c] = v as [string, string, string];
  switch (name) {
    case "exp":
      return f("Exp", [a]);
    case "exp2":
      return f("Exp2", [a]);
    case "log":
      return f("Log", [a]);
    case "log2":
      return f("Log2", [a]);
    case "sqrt":
      return f("Sqrt", [a]);
    case "rsqrt":
      return f("InverseSqrt", [a]);
    case "sin":
      // Vulkan bounds the error of Sin/Cos only on [-pi, pi]: reduce the argument first.
      return f("Sin", [reduceAngle(m, a)]);
    case "cos":
      return f("Cos", [reduceAngle(m, a)]);
    case "tanh":
      return tanh(m, a);
    case "erf":
      return erf(m, a);
    case "pow":
      return f("Pow", [a, b]);
    case "fma":
      return f("Fma", [a, b, c]);
    case "abs":
      return f("FAbs", [a]);
    case "floor":
      return f("Floor", [a]);
    case "ceil":
      return f("Ceil", [a]);
    case "round":
      return f("RoundEven", [a]);
    default:
      throw new Error(`tkc spirv: no rendering for the call ${name}`);
  }
}

/** x - 2 pi k with k = roundeven(x / 2 pi), by a two-constant Cody-Waite reduction. */
function reduceAngle(m: SpirvModule, x: string): string {
  const k = glsl(m, "%float", "RoundEven", [fop(m, "OpFMul", x, fc(m, 1 / (2 * Math.PI)))]);
  const hi = Math.fround(2 * Math.PI);
  const lo = Math.fround(2 * Math.PI - hi);
  const nk = m.op(`OpFNegate %float ${k}`);
  const r1 = glsl(m, "%float", "Fma", [nk, fc(m, hi), x]);
  return glsl(m, "%float", "Fma", [nk, fc(m, lo), r1]);
}

/**
 * tanh(x) = sign(x) (1 - 2 / (exp(2|x|) + 1)), and x itself near 0: GLSL's Tanh may be computed
 * as a quotient of exponentials that overflows to inf/inf for large |x|.
 */
function tanh(m: SpirvModule, x: string): string {
  const ax = glsl(m, "%float", "FAbs", [x]);
  const e2 = glsl(m, "%float", "Exp2", [fop(m, "OpFMul", ax, fc(m, 2 * Math.LOG2E))]);
  const q = fop(m, "OpFDiv", fc(m, 2), fop(m, "OpFAdd", e2, fc(m, 1)));
  const mag = fop(m, "OpFSub", fc(m, 1), q);
  const signed = fop(m, "OpFMul", mag, glsl(m, "%float", "FSign", [x]));
  const small = m.op(`OpFOrdLessThan ${m.scalar("bool")} ${ax} ${fc(m, 0.0004)}`);
  return m.op(`OpSelect %float ${small} ${x} ${signed}`);
}

/** erf by Abramowitz-Stegun 7.1.26 (absolute error below 1.5e-7), as the LLVM renderer. */
function erf(m: SpirvModule, x: string): string {
  const ax = glsl(m, "%float", "FAbs", [x]);
  const t = fop(m, "OpFDiv", fc(m, 1), fop(m, "OpFAdd", fc(m, 1), fop(m, "OpFMul", fc(m, 0.3275911), ax)));
  let poly = fc(m, 1.061405429);
  for (const k of [-1.453152027, 1.421413741, -0.284496736, 0.254829592])
    poly = fop(m, "OpFAdd", fop(m, "OpFMul", poly, t), fc(m, k));
  poly = fop(m, "OpFMul", poly, t);
  const e = glsl(m, "%float", "Exp", [fop(m, "OpFMul", m.op(`OpFNegate %float ${ax}`), ax)]);
  const y = fop(m, "OpFSub", fc(m, 1), fop(m, "OpFMul", poly, e));
  // copysign(y, x): y >= 0, so take x's sign bit.
  const yb = m.op(`OpBitcast %uint ${y}`);
  const sb = m.op(`OpBitwiseAnd %uint ${m.op(`OpBitcast %uint ${x}`)} ${uc(m, 0x80000000)}`);
  return m.op(`OpBitcast %float ${m.op(`OpBitwiseOr %uint ${yb} ${sb}`)}`);
}

/**
 * Rounds an f32 value to the nearest bf16 (ties to even), returned as an f32 holding exactly that
 * value: bf16 values live in f32 registers (module.ts REG_TYPE). NaN stays a (quiet) NaN.
 */
export function roundToBf16(m: SpirvModule, x: string): string {
  m.scalar("uint");
  const bits = m.op(`OpBitcast %uint ${x}`);
  const lsb = m.op(
    `OpBitwiseAnd %uint ${m.op(`OpShiftRightLogical %uint ${bits} ${uc(m, 16)}`)} ${uc(m, 1)}`,
  );
  const biased = m.op(`OpIAdd %uint ${m.op(`OpIAdd %uint ${bits} ${uc(m, 0x7fff)}`)} ${lsb}`);
  const rounded = m.op(`OpBitwiseAnd %uint ${biased} ${uc(m, 0xffff0000)}`);
  const quiet = m.op(
    `OpBitwiseOr %uint ${m.op(`OpBitwiseAnd %uint ${bits} ${uc(m, 0xffff0000)}`)} ${uc(m, 0x400000)}`,
  );
  const nan = m.op(`OpIsNan ${m.scalar("bool")} ${x}`);
  return m.op(`OpBitcast %float ${m.op(`OpSelect %uint ${nan} ${quiet} ${rounded}`)}`);
}

/** The integer range a float converts into (semantics.ts INT_RANGE: i64 is exact to 2^53). */
const INT_RANGE: Partial<Record<DType, [number, number]>> = {
  i32: [-2147483648, 2147483647],
  u32: [0, 4294967295],
  i8: [-128, 127],
  u8: [0, 255],
  i64: [-(2 ** 53), 2 ** 53],
};

/** The largest f32 not above x (x >= 0 here). */
function f32Below(x: number): number {
  const f = Math.fround(x);
  if (f <= x) return f;
  const buf = new Float32Array([f]);
  new Uint32Array(buf.buffer)[0]! -= 1;
  return buf[0]!;
}

/**
 * Float to integer as tkc defines it: truncate toward zero, saturate to the type's range, NaN
 * gives 0 (GLSL's conversions are undefined out of range). `x` is an f32 register value.
 */
export function floatToInt(m: SpirvModule, x: string, to: DType, toType: string): string {
  const [lo, hi] = INT_RANGE[to]!;
  const hiF = f32Below(hi);
  const clamped = glsl(m, "%float", "FClamp", [x, fc(m, lo), fc(m, hiF)]);
  const signed = to === "i32" || to === "i8" || to === "i64";
  let r = m.op(`${signed ? "OpConvertFToS" : "OpConvertFToU"} ${toType} ${clamped}`);
  const bool = m.scalar("bool");
  const konst = (v: number) => m.constant(REG_TYPE[to], String(v));
  if (hiF !== hi) {
    // The type's maximum is not an f32 (2^31 - 1): anything above the largest f32 below it saturates.
    const above = m.op(`OpFOrdGreaterThan ${bool} ${x} ${fc(m, hiF)}`);
    r = m.op(`OpSelect ${toType} ${above} ${konst(hi)} ${r}`);
  }
  const nan = m.op(`OpIsNan ${bool} ${x}`);
  return m.op(`OpSelect ${toType} ${nan} ${konst(0)} ${r}`);
}

const isFloatT = (d: DType): boolean => DTYPES[d].kind === "float";
const isUnsigned = (d: DType): boolean => DTYPES[d].kind === "uint";
const UNSIGNED_OF: Record<number, ScalarName> = { 8: "uchar", 32: "uint", 64: "ulong" };
const konst = (m: SpirvModule, v: number, d: DType): string =>
  m.constant(REG_TYPE[d], d === "bool" ? (v ? "1" : "0") : literalFor(v, d));

/** Converts register value `v` from one dtype to another (`tt`: the target's register type id). */
export function convert(m: SpirvModule, v: string, from: DType, to: DType, tt: string): string {
  if (to === "bool") {
    // Non-zero is true; NaN is non-zero (unordered compare), as in JavaScript's `x !== 0`.
    const op = isFloatT(from) ? "OpFUnordNotEqual" : "OpINotEqual";
    return m.op(`${op} ${tt} ${v} ${konst(m, 0, from)}`);
  }
  if (from === "bool") return m.op(`OpSelect ${tt} ${v} ${konst(m, 1, to)} ${konst(m, 0, to)}`);
  if (isFloatT(to)) {
    if (isFloatT(from)) {
      // bf16 values are f32 registers: to f32 nothing changes; into bf16 they are rounded.
      if (from === "bf16" && to === "f32") return v;
      if (to === "bf16") return roundToBf16(m, from === "f16" ? m.op(`OpFConvert %float ${v}`) : v);
      return m.op(`OpFConvert ${tt} ${v}`);
    }
    const op = isUnsigned(from) ? "OpConvertUToF" : "OpConvertSToF";
    // Integer to bf16 goes through f32 (rounded twice, which can differ only beyond 2^24).
    if (to === "bf16") return roundToBf16(m, m.op(`${op} ${m.scalar("float")} ${v}`));
    return m.op(`${op} ${tt} ${v}`);
  }
  if (isFloatT(from)) {
    const x = from === "f16" ? m.op(`OpFConvert ${m.scalar("float")} ${v}`) : v;
    return floatToInt(m, x, to, tt);
  }
  const fb = DTYPES[from].bits;
  const tb = DTYPES[to].bits;
  if (fb === tb) return REG_TYPE[from] === REG_TYPE[to] ? v : m.op(`OpBitcast ${tt} ${v}`);
  // OpUConvert's result type must be unsigned; OpSConvert's may be either.
  if (fb > tb) return m.op(`${isUnsigned(to) ? "OpUConvert" : "OpSConvert"} ${tt} ${v}`);
  if (!isUnsigned(from)) return m.op(`OpSConvert ${tt} ${v}`);
  const wide = m.op(`OpUConvert ${m.scalar(UNSIGNED_OF[tb]!)} ${v}`);
  return isUnsigned(to) ? wide : m.op(`OpBitcast ${tt} ${wide}`);
}
