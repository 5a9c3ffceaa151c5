/**
 * The types a kernel author writes. Scalars are numbers branded with their dtype, so `tsc` rejects
 * storing an f32 into an f16 tensor; arithmetic yields plain `number`, which any scalar accepts, and
 * the frontend then checks dtypes exactly (and names file:line:col when they disagree).
 *
 * Tensors are typed by element type and shape; indexing past the rank is a type error.
 */
import type { DType } from "./dtypes.ts";

declare const dtypeBrand: unique symbol;
declare const symBrand: unique symbol;

/** A scalar of dtype D. The brand is optional so that plain numbers (literals, arithmetic) fit. */
export type Scalar<D extends DType> = number & { readonly [dtypeBrand]?: D };

export type bool = boolean;

/** A symbolic dimension, named by N: every tensor dimension written Sym<"n"> has the same extent. */
export type Sym<N extends string> = number & { readonly [symBrand]?: N };

export type Dim = number;
export type Shape = readonly Dim[];

type Row<E, S extends Shape> = S extends readonly [Dim]
  ? { [i: number]: E }
  : S extends readonly [Dim, ...infer Rest extends Shape]
    ? { readonly [i: number]: Row<E, Rest> }
    : never;

/**
 * A tensor argument of a kernel: element type E (one of the scalar types) and shape S, a tuple of
 * numeric literals and Sym<"name">. `x[i][j]` loads or stores an element; `x.shape[d]` is the
 * extent of dimension d (a constant or the symbolic variable).
 */
export type Tensor<E extends Scalar<DType>, S extends Shape> = Row<E, S> & {
  readonly shape: { readonly [K in keyof S]: Scalar<"i32"> };
  /** Phantom fields: the frontend reads the element type and shape from them. */
  readonly __element?: E;
  readonly __shape?: S;
};
