/**
 * Compile-time evaluation of module-level constants: a kernel may read `const DIM = 4096` or
 * `const CFG = { dim: 288 } as const` from its own module or an imported one. Only literal-built
 * values qualify; anything that would need the program to run is refused with a hint.
 */
import { ts } from "ts-morph";
import { errorAt } from "./errors.ts";
import { declarationOf } from "./typeinfo.ts";

export type ConstValue = number | boolean | readonly ConstValue[] | { readonly [k: string]: ConstValue };

const MATH: Readonly<Record<string, (...a: number[]) => number>> = {
  sqrt: Math.sqrt,
  floor: Math.floor,
  ceil: Math.ceil,
  round: Math.round,
  trunc: Math.trunc,
  log2: Math.log2,
  log: Math.log,
  exp: Math.exp,
  pow: Math.pow,
  min: Math.min,
  max: Math.max,
  abs: Math.abs,
};

export function resolveSymbol(checker: ts.TypeChecker, id: ts.Node): ts.Symbol | undefined {
  let sym = checker.getSymbolAtLocation(id);
  if (sym && sym.flags & ts.SymbolFlags.Alias) sym = checker.getAliasedSymbol(sym);
  return sym;
}

/** The `const` declaration a symbol names, if it is one whose initializer can be evaluated. */
export function constDeclarationOf(sym: ts.Symbol): ts.VariableDeclaration | undefined {
  const decl = declarationOf(sym);
  if (!decl || !ts.isVariableDeclaration(decl)) return undefined;
  const list = decl.parent;
  if (!ts.isVariableDeclarationList(list) || !(list.flags & ts.NodeFlags.Const)) return undefined;
  return decl;
}

/**
 * The value of a compile-time constant expression. `consts` (a kernel's kernel(fn, { consts })) name
 * values that take precedence over declarations of the same name, here and in the constants it
 * refers to, as they do in the kernel's body.
 */
export function evalConst(
  node: ts.Expression,
  checker: ts.TypeChecker,
  consts: Readonly<Record<string, number>> = {},
  depth = 0,
): ConstValue {
  if (depth > 64) throw errorAt(node, "constant definitions are nested too deeply (a cycle?)");
  const ev = (e: ts.Expression) => evalConst(e, checker, consts, depth + 1);
  if (ts.isParenthesizedExpression(node) || ts.isAsExpression(node) || ts.isSatisfiesExpression(node))
    return ev(node.expression);
  if (ts.isNumericLiteral(node)) return Number(node.text);
  if (node.kind === ts.SyntaxKind.TrueKeyword) return true;
  if (node.kind === ts.SyntaxKind.FalseKeyword) return false;
  if (ts.isPrefixUnaryExpression(node)) {
    const v = ev(node.operand);
    if (node.operator === ts.SyntaxKind.MinusToken && typeof v === "number") return -v;
    if (node.operator === ts.SyntaxKind.PlusToken && typeof v === "number") return v;
    if (node.operator === ts.SyntaxKind.ExclamationToken && typeof v === "boolean") return !v;
  }
  if (ts.isBinaryExpression(node)) {
    const a = ev(node.left);
    const b = ev(node.right);
    if (typeof a === "number" && typeof b === "number") {
      switch (node.operatorToken.kind) {
        case ts.SyntaxKind.PlusToken:
          return a + b;
        case ts.SyntaxKind.MinusToken:
          return a - b;
        case ts.SyntaxKind.AsteriskToken:
          return a * b;
        case ts.SyntaxKind.SlashToken:
          return a / b;
        case ts.SyntaxKind.PercentToken:
          return a % b;
        case ts.SyntaxKind.AsteriskAsteriskToken:
          return a ** b;
        case ts.SyntaxKind.LessThanLessThanToken:
          return a << b;
        case ts.SyntaxKind.GreaterThanGreaterThanToken:
          return a >> b;
        case ts.SyntaxKind.AmpersandToken:
          return a & b;
        case ts.SyntaxKind.BarToken:
          return a | b;
      }
    }
  }
  if (ts.isConditionalExpression(node)) {
    const c = ev(node.condition);
    if (typeof c === "boolean") return c ? ev(node.whenTrue) : ev(node.whenFalse);
  }
  if (ts.isArrayLiteralExpression(node)) return node.elements.map((e) => ev(e));
  if (ts.isObjectLiteralExpression(node)) {
    const out: Record<string, ConstValue> = {};
    for (const p of node.properties) {
      if (ts.isPropertyAssignment(p) && (ts.isIdentifier(p.name) || ts.isStringLiteral(p.name)))
        out[p.name.text] = ev(p.initializer);
      else throw errorAt(p, "only plain `key: value` properties can be evaluated at compile time");
    }
    return out;
  }
  if (ts.isPropertyAccessExpression(node)) {
    if (ts.isIdentifier(node.expression) && node.expression.text === "Math") {
      const v = (Math as unknown as Record<string, unknown>)[node.name.text];
      if (typeof v === "number") return v;
    }
    const obj = ev(node.expression);
    if (typeof obj === "object" && !Array.isArray(obj) && node.name.text in obj)
      return (obj as Record<string, ConstValue>)[node.name.text]!;
  }
  if (ts.isElementAccessExpression(node)) {
    const obj = ev(node.expression);
    const idx = ev(node.argumentExpression);
    if (Array.isArray(obj) && typeof idx === "number" && idx in obj) return obj[idx]!;
  }
  if (
    ts.isCallExpression(node) &&
    ts.isPropertyAccessExpression(node.expression) &&
    ts.isIdentifier(node.expression.expression) &&
    node.expression.expression.text === "Math" &&
    node.expression.name.text in MATH
  ) {
    const args = node.arguments.map((a) => ev(a));
    if (args.every((a) => typeof a === "number"))
      return MATH[node.expression.name.text]!(...(args as number[]));
  }
  if (ts.isIdentifier(node) && Object.prototype.hasOwnProperty.call(consts, node.text))
    return consts[node.text]!;
  if (ts.isIdentifier(node)) {
    const sym = resolveSymbol(checker, node);
    const decl = sym && constDeclarationOf(sym);
    if (decl?.initializer) return ev(decl.initializer);
    throw errorAt(
      node,
      `${node.text} is not a compile-time constant`,
      "kernels may read module-level `const`s built from literals, or values passed with kernel(fn, { consts })",
    );
  }
  throw errorAt(
    node,
    "this expression cannot be evaluated at compile time",
    "use number literals, arithmetic, Math functions and other constants",
  );
}
