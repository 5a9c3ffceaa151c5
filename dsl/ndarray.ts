/**
 * Host tensors: a dtype, a shape and a typed array in row-major order. f16 and bf16 are stored as
 * their bit patterns in a Uint16Array; i64 as exact integers in a Float64Array (to 2^53).
 */
import { bf16Bits, bf16FromBits, f16Bits, f16FromBits, type DType } from "./dtypes.ts";

export type Storage =
  Float32Array | Float64Array | Uint16Array | Int32Array | Uint32Array | Int8Array | Uint8Array;

export interface NDArray {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly data: Storage;
}

export function storageFor(dtype: DType, n: number): Storage {
  switch (dtype) {
    case "f32":
      return new Float32Array(n);
    case "f16":
    case "bf16":
      return new Uint16Array(n);
    case "i64":
      return new Float64Array(n);
    case "i32":
      return new Int32Array(n);
    case "u32":
      return new Uint32Array(n);
    case "i8":
      return new Int8Array(n);
    case "u8":
    case "bool":
      return new Uint8Array(n);
  }
}

export const sizeOf = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

function checkShape(shape: readonly number[]): void {
  for (const d of shape)
    if (!Number.isInteger(d) || d < 0)
      throw new Error(`tkc: shape [${shape.join(", ")}] has a bad dimension ${d}`);
}

/** An NDArray of zeros. */
export function zeros(dtype: DType, shape: readonly number[]): NDArray {
  checkShape(shape);
  return { dtype, shape: [...shape], data: storageFor(dtype, sizeOf(shape)) };
}

/** An NDArray from numbers (rounded/wrapped to the dtype) or from ready storage of the right type. */
export function ndarray(dtype: DType, shape: readonly number[], values?: ArrayLike<number>): NDArray {
  const a = zeros(dtype, shape);
  if (values) {
    if (values.length !== a.data.length)
      throw new Error(
        `tkc: ${values.length} values given for shape [${shape.join(", ")}] (${a.data.length} elements)`,
      );
    setValues(a, values);
  }
  return a;
}

/** Wraps existing storage without copying (f16/bf16 storage holds bit patterns). */
export function fromStorage(dtype: DType, shape: readonly number[], data: Storage): NDArray {
  checkShape(shape);
  const expected = storageFor(dtype, 0).constructor;
  if (data.constructor !== expected)
    throw new Error(`tkc: ${dtype} data must be a ${expected.name}, got ${data.constructor.name}`);
  if (data.length !== sizeOf(shape))
    throw new Error(`tkc: ${data.length} elements do not fill shape [${shape.join(", ")}]`);
  return { dtype, shape: [...shape], data };
}

export function setValues(a: NDArray, values: ArrayLike<number>): void {
  const d = a.data;
  if (a.dtype === "f16") for (let i = 0; i < values.length; i++) d[i] = f16Bits(values[i]!);
  else if (a.dtype === "bf16") for (let i = 0; i < values.length; i++) d[i] = bf16Bits(values[i]!);
  else if (a.dtype === "bool") for (let i = 0; i < values.length; i++) d[i] = values[i] ? 1 : 0;
  else for (let i = 0; i < values.length; i++) d[i] = values[i]!;
}

/** The values as JavaScript numbers (f16/bf16 decoded). */
export function toNumbers(a: NDArray): Float64Array {
  const out = new Float64Array(a.data.length);
  const d = a.data;
  if (a.dtype === "f16") for (let i = 0; i < d.length; i++) out[i] = f16FromBits(d[i]!);
  else if (a.dtype === "bf16") for (let i = 0; i < d.length; i++) out[i] = bf16FromBits(d[i]!);
  else for (let i = 0; i < d.length; i++) out[i] = d[i]!;
  return out;
}

export function clone(a: NDArray): NDArray {
  return { dtype: a.dtype, shape: [...a.shape], data: a.data.slice() as Storage };
}
