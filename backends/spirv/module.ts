/**
 * A SPIR-V module under construction, as assembly text: capabilities, decorations, the
 * types/constants/globals section (deduplicated, in dependency order) and one function's blocks.
 * render.ts and render-expr.ts fill it in; `text()` lays the sections out in the order the
 * SPIR-V spec's "logical layout of a module" requires.
 *
 * Ids are readable names (`%float`, `%int_128`, `%t12`, `%loop3`): the assembler numbers them, and
 * the text is what golden tests compare, so it should read well.
 */
import type { DType } from "../../dsl/dtypes.ts";
import { bf16Bits, bf16FromBits, f16Bits, f16FromBits } from "../../dsl/dtypes.ts";

/** SPIR-V scalar type names this backend declares (the id is `%` + the name). */
export type ScalarName =
  "float" | "half" | "long" | "ulong" | "int" | "uint" | "ushort" | "char" | "uchar" | "bool";

const SCALAR_DECL: Record<ScalarName, string> = {
  float: "OpTypeFloat 32",
  half: "OpTypeFloat 16",
  long: "OpTypeInt 64 1",
  ulong: "OpTypeInt 64 0",
  int: "OpTypeInt 32 1",
  uint: "OpTypeInt 32 0",
  ushort: "OpTypeInt 16 0",
  char: "OpTypeInt 8 1",
  uchar: "OpTypeInt 8 0",
  bool: "OpTypeBool",
};

/**
 * The type a value of dtype `d` has in registers. bf16 has no SPIR-V type: its values live in f32
 * registers, rounded to bf16 after every operation, so they are always exactly bf16 values.
 */
export const REG_TYPE: Record<DType, ScalarName> = {
  f32: "float",
  bf16: "float",
  f16: "half",
  i64: "long",
  i32: "int",
  u32: "uint",
  i8: "char",
  u8: "uchar",
  bool: "bool",
};

/**
 * The element type of a storage buffer of dtype `d`: bf16 as its 16-bit pattern (ushort), bool as
 * one byte (as NDArray stores it), everything else as in registers.
 */
export const BUFFER_ELEM: Record<DType, ScalarName> = { ...REG_TYPE, bf16: "ushort", bool: "uchar" };

export const BYTES: Record<ScalarName, number> = {
  float: 4,
  half: 2,
  long: 8,
  ulong: 8,
  int: 4,
  uint: 4,
  ushort: 2,
  char: 1,
  uchar: 1,
  bool: 1,
};

export type StorageClass = "StorageBuffer" | "PushConstant" | "Workgroup" | "Function" | "Input";

/** A literal of a float or int constant as the assembler reads it (exact: see floatLiteral). */
export function literalFor(value: number, d: DType): string {
  const t = REG_TYPE[d];
  if (t === "float" || t === "half") return floatLiteral(value, d);
  let v = Math.trunc(value);
  if (d === "i32") v = value | 0;
  else if (d === "u32") v = value >>> 0;
  else if (d === "i8") v = (value << 24) >> 24;
  else if (d === "u8") v = value & 255;
  return String(v);
}

/**
 * Float literals: the value rounded to the dtype, printed as JavaScript's shortest decimal (the
 * assembler rounds it back to exactly that value, since it is representable); infinities and NaN
 * as the hex forms spirv-as and spirv-dis use.
 */
function floatLiteral(value: number, d: DType): string {
  const half = d === "f16";
  const v = half
    ? f16FromBits(f16Bits(value))
    : d === "bf16"
      ? bf16FromBits(bf16Bits(value))
      : Math.fround(value);
  const e = half ? 16 : 128;
  if (Number.isNaN(v)) return `0x1.8p+${e}`;
  if (v === Infinity) return `0x1p+${e}`;
  if (v === -Infinity) return `-0x1p+${e}`;
  return Object.is(v, -0) ? "-0" : String(v);
}

const RESERVED =
  /^(_.*|(float|half|long|ulong|int|uint|ushort|char|uchar|bool)(_.*)?|void|v3uint|fn_void|glsl|main|entry|pc|lid|wgid|Push|Buf_.*|true|false)$/;

const sanitize = (s: string): string => s.replace(/-/g, "n").replace(/[^A-Za-z0-9_]/g, "_");

export class SpirvModule {
  private readonly caps = new Set<string>(["Shader"]);
  private readonly decorations: string[] = [];
  private readonly globals: string[] = [];
  private readonly declared = new Map<string, string>();
  private readonly usedNames = new Set<string>();
  /** Module-scope variables the entry point uses (SPIR-V >= 1.4 lists all of them). */
  readonly interfaceVars: string[] = [];
  /** OpVariable Function lines: they must open the function's first block. */
  readonly fnVars: string[] = [];
  /** Instructions run once at the start of the first block (builtin and push-constant loads). */
  readonly prologue: string[] = [];
  readonly body: string[] = [];
  /** Where emit/op append: the body, or the prologue inside inPrologue(). */
  private out: string[] = this.body;
  private n = 0;
  /** The label of the block instructions are being appended to (OpPhi needs the parents). */
  label = "%entry";
  glsl = false;

  need(cap: string): void {
    this.caps.add(cap);
  }

  /** A fresh id: `%t12`, or `%<hint>12`. */
  id(hint = "t"): string {
    return `%${hint}${this.n++}`;
  }

  /**
   * A unique id close to a user's `name` (buffers, loop variables). Names that could clash with
   * the backend's own ids are suffixed: temporaries and labels (`%t12`, `%loop3`: letters then
   * digits), types and constants (`%float`, `%int_0`, `%_ptr_...`) and fixed globals.
   */
  named(name: string): string {
    let base = sanitize(name);
    if (/^[A-Za-z_]*\d+$/.test(base) || RESERVED.test(base)) base = `${base}_v`;
    let id = `%${base}`;
    for (let k = 1; this.usedNames.has(id); k++) id = `%${base}_${k}`;
    this.usedNames.add(id);
    return id;
  }

  emit(line: string): void {
    this.out.push(line);
  }

  /** `%r = Op... ` with a fresh result id. */
  op(text: string, hint?: string): string {
    const r = this.id(hint);
    this.out.push(`${r} = ${text}`);
    return r;
  }

  /**
   * Runs `f` with its instructions going to the prologue: values computed there (builtins,
   * push constants) dominate every block, so they can be loaded lazily on first use anywhere.
   * `f` must not branch.
   */
  inPrologue<T>(f: () => T): T {
    const saved = this.out;
    this.out = this.prologue;
    try {
      return f();
    } finally {
      this.out = saved;
    }
  }

  startBlock(label: string): void {
    this.body.push(`${label} = OpLabel`);
    this.label = label;
  }

  decorate(line: string): void {
    this.decorations.push(line);
  }

  /** Declares `%name = decl` once in the types/constants/globals section; returns `%name`. */
  global(name: string, decl: string): string {
    const id = `%${name}`;
    const prev = this.declared.get(id);
    if (prev === undefined) {
      this.declared.set(id, decl);
      this.globals.push(`${id} = ${decl}`);
    } else if (prev !== decl) throw new Error(`tkc spirv: internal: ${id} declared twice differently`);
    return id;
  }

  scalar(t: ScalarName): string {
    if (t === "long" || t === "ulong") this.need("Int64");
    return this.global(t, SCALAR_DECL[t]);
  }

  void(): string {
    return this.global("void", "OpTypeVoid");
  }

  vec3uint(): string {
    return this.global("v3uint", `OpTypeVector ${this.scalar("uint")} 3`);
  }

  /** A vector of n scalars of type t. */
  vector(t: ScalarName, n: number): string {
    return this.global(`v${n}${t}`, `OpTypeVector ${this.scalar(t)} ${n}`);
  }

  /** The Block struct of a runtime array of uvec4 (16-byte elements): a buffer's vector view. */
  vectorBufferStruct(): string {
    const v = this.vector("uint", 4);
    if (!this.declared.has("%_runtimearr_v4uint")) {
      const arr = this.global("_runtimearr_v4uint", `OpTypeRuntimeArray ${v}`);
      this.decorate(`OpDecorate ${arr} ArrayStride 16`);
      const st = this.global("Buf_v4uint", `OpTypeStruct ${arr}`);
      this.decorate(`OpDecorate ${st} Block`);
      this.decorate(`OpMemberDecorate ${st} 0 Offset 0`);
    }
    return "%Buf_v4uint";
  }

  pointer(sc: StorageClass, pointee: string): string {
    return this.global(`_ptr_${sc}_${pointee.slice(1)}`, `OpTypePointer ${sc} ${pointee}`);
  }

  array(elem: string, count: number): string {
    return this.global(`_arr_${elem.slice(1)}_${count}`, `OpTypeArray ${elem} ${this.uintConst(count)}`);
  }

  /** A runtime array with its mandatory ArrayStride, wrapped in a Block struct (the buffer type). */
  bufferStruct(elem: ScalarName): string {
    const e = this.scalar(elem);
    const arrName = `_runtimearr_${elem}`;
    if (!this.declared.has(`%${arrName}`)) {
      const arr = this.global(arrName, `OpTypeRuntimeArray ${e}`);
      this.decorate(`OpDecorate ${arr} ArrayStride ${BYTES[elem]}`);
      const st = this.global(`Buf_${elem}`, `OpTypeStruct ${arr}`);
      this.decorate(`OpDecorate ${st} Block`);
      this.decorate(`OpMemberDecorate ${st} 0 Offset 0`);
    }
    return `%Buf_${elem}`;
  }

  uintConst(v: number): string {
    return this.global(`uint_${v >>> 0}`, `OpConstant ${this.scalar("uint")} ${v >>> 0}`);
  }

  /** A constant of a register type (value already in the dtype's range; see literalFor). */
  constant(t: ScalarName, literal: string): string {
    const ty = this.scalar(t);
    if (t === "bool")
      return this.global(
        literal === "0" ? "false" : "true",
        literal === "0" ? "OpConstantFalse %bool" : "OpConstantTrue %bool",
      );
    return this.global(`${t}_${sanitize(literal)}`, `OpConstant ${ty} ${literal}`);
  }

  /** A module-scope variable, listed in the entry point's interface; `internal` names are kept. */
  variable(name: string, ptrType: string, sc: StorageClass, internal = false): string {
    const id = internal ? `%${name}` : this.named(name);
    this.globals.push(`${id} = OpVariable ${ptrType} ${sc}`);
    this.declared.set(id, "variable");
    this.interfaceVars.push(id);
    return id;
  }

  glslExt(): string {
    this.glsl = true;
    return "%glsl";
  }

  text(opts: { localSize: readonly number[]; header: readonly string[] }): string {
    const fnType = this.global("fn_void", `OpTypeFunction ${this.void()}`);
    const lines = [
      ...opts.header.map((h) => `; ${h}`),
      ...[...this.caps].map((c) => `OpCapability ${c}`),
      ...(this.glsl ? ['%glsl = OpExtInstImport "GLSL.std.450"'] : []),
      "OpMemoryModel Logical GLSL450",
      `OpEntryPoint GLCompute %main "main" ${this.interfaceVars.join(" ")}`.trimEnd(),
      `OpExecutionMode %main LocalSize ${opts.localSize.join(" ")}`,
      ...this.decorations,
      ...this.globals,
      `%main = OpFunction ${this.void()} None ${fnType}`,
      "%entry = OpLabel",
      ...this.fnVars,
      ...this.prologue,
      ...this.body,
      "OpReturn",
      "OpFunctionEnd",
    ];
    // Aligned as spirv-dis prints: result ids right-aligned before the "=".
    const fmt = (l: string): string => {
      if (l.startsWith(";")) return l;
      const m = /^(%\S+) = (.*)$/.exec(l);
      return m ? `${m[1]!.padStart(14)} = ${m[2]}` : `${" ".repeat(17)}${l}`;
    };
    return lines.map(fmt).join("\n") + "\n";
  }
}
