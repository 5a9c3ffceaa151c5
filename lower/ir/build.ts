/** Constructors for IR nodes. Every node is made here, so ids and dtype rules live in one place. */
import { isFloat } from "../../dsl/dtypes.ts";
import type {
  Allocate,
  Atomic,
  Barrier,
  Binary,
  BinaryOp,
  Block,
  Buffer,
  Call,
  CallName,
  Cast,
  Const,
  DType,
  Expr,
  For,
  ForKind,
  IfThenElse,
  LetStmt,
  Load,
  Prefetch,
  Scope,
  Select,
  Seq,
  Stmt,
  Store,
  ThreadTag,
  Unary,
  UnaryOp,
  Var,
} from "./nodes.ts";

let nextId = 1;
export const freshId = (): number => nextId++;

export const variable = (name: string, dtype: DType = "i32"): Var => ({
  kind: "var",
  name,
  dtype,
  id: freshId(),
});

export function buffer(
  name: string,
  dtype: DType,
  shape: readonly Expr[],
  scope: Scope = "global",
  allocShape?: readonly Expr[],
): Buffer {
  return { kind: "buffer", name, dtype, shape, scope, id: freshId(), ...(allocShape ? { allocShape } : {}) };
}

export const constant = (value: number, dtype: DType = "i32"): Const => ({ kind: "const", dtype, value });
export const i32c = (value: number): Const => constant(value, "i32");

const COMPARE: ReadonlySet<BinaryOp> = new Set(["==", "!=", "<", "<=", ">", ">=", "&&", "||"]);
export const isCompare = (op: BinaryOp): boolean => COMPARE.has(op);

/** Calls every lane of a warp must run together (converged): shuffles, tensor-core products and their operand loads. */
const WARP_COLLECTIVE: ReadonlySet<string> = new Set([
  "shfl_xor",
  "mma_m16n8k16",
  "wgmma_m64n128k16",
  "ldmatrix",
]);
export const isWarpCollective = (name: string): boolean => WARP_COLLECTIVE.has(name);

export function binary(op: BinaryOp, a: Expr, b: Expr): Binary {
  return { kind: "binary", op, a, b, dtype: COMPARE.has(op) ? "bool" : a.dtype };
}
export const unary = (op: UnaryOp, a: Expr): Unary => ({
  kind: "unary",
  op,
  a,
  dtype: op === "not" ? "bool" : a.dtype,
});
export const cast = (dtype: DType, value: Expr): Expr =>
  value.dtype === dtype ? value : ({ kind: "cast", dtype, value } satisfies Cast);
export const load = (buf: Buffer, indices: readonly Expr[]): Load => ({
  kind: "load",
  buffer: buf,
  indices,
  dtype: buf.dtype,
});
export function call(name: CallName, args: readonly Expr[], dtype?: DType): Call {
  return { kind: "call", name, args, dtype: dtype ?? args[0]?.dtype ?? "i32" };
}
/**
 * A condition known when the kernel is compiled (of its constants) picks its branch here, so that
 * index expressions stay plain for the schedule's dependence test.
 */
export const select = (cond: Expr, t: Expr, f: Expr): Expr =>
  cond.kind === "const"
    ? cond.value !== 0
      ? t
      : f
    : ({ kind: "select", cond, t, f, dtype: t.dtype } satisfies Select);

export function forLoop(
  loopVar: Var,
  min: Expr,
  extent: Expr,
  body: Stmt,
  forKind: ForKind = "serial",
  thread?: ThreadTag,
  annotations: For["annotations"] = {},
): For {
  return { kind: "for", loopVar, min, extent, forKind, ...(thread ? { thread } : {}), body, annotations };
}
export const block = (name: string, body: Stmt): Block => ({ kind: "block", name, body });
export const store = (buf: Buffer, indices: readonly Expr[], value: Expr): Store => ({
  kind: "store",
  buffer: buf,
  indices,
  value,
});
export const allocate = (buf: Buffer, body: Stmt): Allocate => ({ kind: "allocate", buffer: buf, body });
export const ifThen = (cond: Expr, then: Stmt, otherwise?: Stmt): IfThenElse => ({
  kind: "if",
  cond,
  then,
  ...(otherwise ? { else: otherwise } : {}),
});
export const letStmt = (v: Var, value: Expr, body: Stmt): LetStmt => ({ kind: "let", v, value, body });
export const prefetch = (buf: Buffer, indices: readonly Expr[], count: Expr): Prefetch => ({
  kind: "prefetch",
  buffer: buf,
  indices,
  count,
});
export const atomicAdd = (
  buf: Buffer,
  indices: readonly Expr[],
  value: Expr,
  result?: Atomic["result"],
): Atomic => ({ kind: "atomic", op: "add", buffer: buf, indices, value, ...(result ? { result } : {}) });
export const barrier = (scope: Barrier["scope"] = "shared"): Barrier => ({ kind: "barrier", scope });
/** `copyAsync(buf[indices], value)`: value a load of a global buffer (nodes.ts Store.async). */
export const storeAsync = (buf: Buffer, indices: readonly Expr[], value: Expr): Store => ({
  ...store(buf, indices, value),
  async: true,
});
/** Closes this thread's asynchronous copies issued since the last commit into a group. */
export const commitAsync = (): Barrier => ({ kind: "barrier", scope: "async_commit" });
/** Waits until at most `pending` of this thread's latest committed groups of copies are in flight. */
export const waitAsync = (pending: number): Barrier => ({ kind: "barrier", scope: "async_wait", pending });
/** The scopes of a thread's commits and waits of its asynchronous copies, which order no other thread. */
export const isAsyncScope = (scope: Barrier["scope"]): scope is "async_commit" | "async_wait" =>
  scope === "async_commit" || scope === "async_wait";

/** A sequence, flattened, with empty sequences dropped; a single statement is returned as is. */
export function seq(stmts: readonly Stmt[]): Stmt {
  const flat: Stmt[] = [];
  for (const s of stmts) {
    if (s.kind === "seq") flat.push(...s.body);
    else flat.push(s);
  }
  if (flat.length === 1) return flat[0]!;
  return { kind: "seq", body: flat } satisfies Seq;
}
export const nop = (): Stmt => ({ kind: "seq", body: [] });
export const isNop = (s: Stmt): boolean => s.kind === "seq" && s.body.length === 0;

export const isConst = (e: Expr, value?: number): e is Const =>
  e.kind === "const" && (value === undefined || e.value === value);

/** Arithmetic helpers over i32 index expressions that fold constants as they build. */
export function add(a: Expr, b: Expr): Expr {
  if (isConst(a) && isConst(b) && !isFloat(a.dtype)) return constant(a.value + b.value, a.dtype);
  if (isConst(a, 0)) return b;
  if (isConst(b, 0)) return a;
  return binary("+", a, b);
}
export function sub(a: Expr, b: Expr): Expr {
  if (isConst(a) && isConst(b) && !isFloat(a.dtype)) return constant(a.value - b.value, a.dtype);
  if (isConst(b, 0)) return a;
  return binary("-", a, b);
}
export function mul(a: Expr, b: Expr): Expr {
  if (isConst(a) && isConst(b) && !isFloat(a.dtype)) return constant(Math.imul(a.value, b.value), a.dtype);
  if (isConst(a, 1)) return b;
  if (isConst(b, 1)) return a;
  if (isConst(a, 0) || isConst(b, 0)) return constant(0, a.dtype);
  return binary("*", a, b);
}
