/** Reads dtypes and shapes from the TypeScript types of kernel parameters and annotations. */
import { ts } from "ts-morph";
import { isDType, type DType } from "../../dsl/dtypes.ts";

/** The declaration a symbol stands for: its value declaration, else its first. */
export const declarationOf = (sym: ts.Symbol | undefined): ts.Declaration | undefined =>
  sym?.valueDeclaration ?? sym?.declarations?.[0];

function brandOf(checker: ts.TypeChecker, type: ts.Type, brand: string): string | undefined {
  for (const prop of checker.getPropertiesOfType(type)) {
    if (!String(prop.escapedName).includes(brand)) continue;
    const decl = declarationOf(prop);
    const t = decl ? checker.getTypeOfSymbolAtLocation(prop, decl) : checker.getTypeOfSymbol(prop);
    const parts = t.isUnion() ? t.types : [t];
    for (const part of parts) if (part.isStringLiteral()) return part.value;
  }
  return undefined;
}

/** The dtype of a scalar type (f32, i32, an alias of one), "bool" for boolean, or undefined. */
export function scalarDType(checker: ts.TypeChecker, type: ts.Type): DType | undefined {
  if (type.flags & ts.TypeFlags.BooleanLike) return "bool";
  const b = brandOf(checker, type, "dtypeBrand");
  return b && isDType(b) ? b : undefined;
}

export type DimInfo = { kind: "static"; value: number } | { kind: "sym"; name: string };

export interface TensorInfo {
  dtype: DType;
  shape: DimInfo[];
}

/** Element dtype and shape of a Tensor<E, S> type, or undefined when the type is no tensor. */
export function tensorInfo(
  checker: ts.TypeChecker,
  type: ts.Type,
  node: ts.Node,
): TensorInfo | string | undefined {
  const elem = type.getProperty("__element");
  const shape = type.getProperty("__shape");
  if (!elem || !shape) return undefined;
  const elemType = checker.getNonNullableType(checker.getTypeOfSymbolAtLocation(elem, node));
  const dtype = scalarDType(checker, elemType);
  if (!dtype)
    return `the element type ${checker.typeToString(elemType)} is not a dtype (f32, f16, bf16, i32, u32, i8, u8)`;
  const shapeType = checker.getNonNullableType(checker.getTypeOfSymbolAtLocation(shape, node));
  if (!checker.isTupleType(shapeType)) return `the shape must be a tuple type such as [Sym<"n">, 4096]`;
  const dims: DimInfo[] = [];
  for (const d of checker.getTypeArguments(shapeType as ts.TypeReference)) {
    if (d.isNumberLiteral()) {
      if (!Number.isInteger(d.value) || d.value <= 0)
        return `dimension ${d.value} must be a positive integer`;
      dims.push({ kind: "static", value: d.value });
      continue;
    }
    const sym = brandOf(checker, d, "symBrand");
    if (sym) {
      dims.push({ kind: "sym", name: sym });
      continue;
    }
    return `dimension ${checker.typeToString(d)} is neither a number literal nor Sym<"name">`;
  }
  return { dtype, shape: dims };
}
