/**
 * Expression lowering and the frontend's type rules.
 *
 * Literals are "weak": they take the dtype of the other operand (`x * 2` with x: f16 is an f16
 * multiply), and weak-with-weak folds on the host. Two typed operands must agree exactly: tkc never
 * converts silently, so a mismatch is an error that suggests the cast to write.
 */
import { ts } from "ts-morph";
import path from "node:path";
import { isFloat, isInt, DTYPES, type DType } from "../../dsl/dtypes.ts";
import { INTRINSIC_ARITY } from "../../dsl/intrinsics.ts";
import * as B from "../ir/build.ts";
import type { BinaryOp, Buffer, CallName, Expr, Var } from "../ir/nodes.ts";
import { errorAt, KernelError } from "./errors.ts";

const lineOf = (n: ts.Node): number => n.getSourceFile().getLineAndCharacterOfPosition(n.getStart()).line + 1;
import { constDeclarationOf, evalConst, resolveSymbol, type ConstValue } from "./consteval.ts";
import { declarationOf } from "./typeinfo.ts";
import { foldWeak, strong, weakNumber, type Typed } from "./weak.ts";

export type Binding =
  | { kind: "buffer"; buffer: Buffer }
  | { kind: "value"; value: Typed }
  | { kind: "mutable"; buffer: Buffer }
  | { kind: "loop"; v: Var };

const MATH_FLOAT: ReadonlySet<string> = new Set([
  "exp",
  "exp2",
  "log",
  "log2",
  "sqrt",
  "rsqrt",
  "tanh",
  "erf",
  "sin",
  "cos",
  "floor",
  "ceil",
  "round",
  "pow",
  "fma",
]);

const BINARY_TOKENS: Partial<Record<ts.SyntaxKind, string>> = {
  [ts.SyntaxKind.PlusToken]: "+",
  [ts.SyntaxKind.MinusToken]: "-",
  [ts.SyntaxKind.AsteriskToken]: "*",
  [ts.SyntaxKind.SlashToken]: "/",
  [ts.SyntaxKind.PercentToken]: "%",
  [ts.SyntaxKind.AsteriskAsteriskToken]: "**",
  [ts.SyntaxKind.AmpersandToken]: "&",
  [ts.SyntaxKind.BarToken]: "|",
  [ts.SyntaxKind.CaretToken]: "^",
  [ts.SyntaxKind.LessThanLessThanToken]: "<<",
  [ts.SyntaxKind.GreaterThanGreaterThanToken]: ">>",
  [ts.SyntaxKind.GreaterThanGreaterThanGreaterThanToken]: ">>>",
  [ts.SyntaxKind.EqualsEqualsEqualsToken]: "==",
  [ts.SyntaxKind.EqualsEqualsToken]: "==",
  [ts.SyntaxKind.ExclamationEqualsEqualsToken]: "!=",
  [ts.SyntaxKind.ExclamationEqualsToken]: "!=",
  [ts.SyntaxKind.LessThanToken]: "<",
  [ts.SyntaxKind.LessThanEqualsToken]: "<=",
  [ts.SyntaxKind.GreaterThanToken]: ">",
  [ts.SyntaxKind.GreaterThanEqualsToken]: ">=",
  [ts.SyntaxKind.AmpersandAmpersandToken]: "&&",
  [ts.SyntaxKind.BarBarToken]: "||",
};

export const COMPOUND_TOKENS: Partial<Record<ts.SyntaxKind, string>> = {
  [ts.SyntaxKind.PlusEqualsToken]: "+",
  [ts.SyntaxKind.MinusEqualsToken]: "-",
  [ts.SyntaxKind.AsteriskEqualsToken]: "*",
  [ts.SyntaxKind.SlashEqualsToken]: "/",
  [ts.SyntaxKind.PercentEqualsToken]: "%",
  [ts.SyntaxKind.AmpersandEqualsToken]: "&",
  [ts.SyntaxKind.BarEqualsToken]: "|",
  [ts.SyntaxKind.CaretEqualsToken]: "^",
  [ts.SyntaxKind.LessThanLessThanEqualsToken]: "<<",
  [ts.SyntaxKind.GreaterThanGreaterThanEqualsToken]: ">>",
  [ts.SyntaxKind.GreaterThanGreaterThanGreaterThanEqualsToken]: ">>>",
};

export function isIntrinsicDeclaration(decl: ts.Node | undefined): boolean {
  if (!decl) return false;
  const file = decl.getSourceFile().fileName.split(path.sep).join("/");
  return /\/dsl\/intrinsics\.(d\.)?[cm]?[tj]s$/.test(file);
}

export abstract class ExprLowerer {
  protected readonly scopes: Map<ts.Symbol, Binding>[] = [new Map()];

  constructor(
    protected readonly checker: ts.TypeChecker,
    protected readonly consts: Readonly<Record<string, number>>,
    protected readonly kernelNode: ts.Node,
  ) {}

  protected bind(sym: ts.Symbol, b: Binding): void {
    this.scopes[this.scopes.length - 1]!.set(sym, b);
  }

  protected lookup(sym: ts.Symbol): Binding | undefined {
    for (let i = this.scopes.length - 1; i >= 0; i--) {
      const b = this.scopes[i]!.get(sym);
      if (b) return b;
    }
    return undefined;
  }

  protected symbolOf(node: ts.Node): ts.Symbol | undefined {
    return resolveSymbol(this.checker, node);
  }

  /** Inlines a helper used as a value; implemented with the statement lowering. */
  protected abstract inlineHelperValue(call: ts.CallExpression, decl: ts.SignatureDeclaration): Typed;

  coerce(t: Typed, dtype: DType, node: ts.Node, what = "this value"): Expr {
    if (t.weak && t.e.kind === "const") {
      if (dtype === "bool")
        throw errorAt(node, `${what} is a number where a boolean is needed`, "write a comparison");
      if (isInt(dtype) && !Number.isInteger(t.e.value))
        throw errorAt(node, `${what} (${t.e.value}) is not an integer but ${dtype} is needed`);
      return B.constant(t.e.value, dtype);
    }
    if (t.e.dtype !== dtype)
      throw errorAt(
        node,
        `type mismatch: ${what} is ${t.e.dtype} but ${dtype} is needed`,
        dtype === "bool" ? "write a comparison such as x != 0" : `convert it explicitly: ${dtype}(...)`,
      );
    return t.e;
  }

  /** Gives two operands one dtype (weak literals adapt), or explains the mismatch. */
  unify(a: Typed, b: Typed, node: ts.Node, op: string): [Expr, Expr, DType] {
    if (a.weak && b.weak) {
      const d: DType = isFloat(a.e.dtype) || isFloat(b.e.dtype) ? "f32" : "i32";
      return [
        B.constant((a.e as { value: number }).value, d),
        B.constant((b.e as { value: number }).value, d),
        d,
      ];
    }
    if (a.weak) return [this.coerce(a, b.e.dtype, node), b.e, b.e.dtype];
    if (b.weak) return [a.e, this.coerce(b, a.e.dtype, node), a.e.dtype];
    if (a.e.dtype !== b.e.dtype)
      throw errorAt(
        node,
        `type mismatch: ${a.e.dtype} ${op} ${b.e.dtype}`,
        `both sides of ${op} must have one dtype; convert one side explicitly, for example ${a.e.dtype}(...)`,
      );
    return [a.e, b.e, a.e.dtype];
  }

  lowerExpr(node: ts.Expression): Typed {
    if (ts.isParenthesizedExpression(node)) return this.lowerExpr(node.expression);
    if (ts.isNumericLiteral(node)) return weakNumber(Number(node.text), /[.eE]/.test(node.text));
    if (node.kind === ts.SyntaxKind.TrueKeyword) return strong(B.constant(1, "bool"));
    if (node.kind === ts.SyntaxKind.FalseKeyword) return strong(B.constant(0, "bool"));
    if (ts.isIdentifier(node)) return this.lowerIdentifier(node);
    if (ts.isPrefixUnaryExpression(node)) return this.lowerPrefix(node);
    if (ts.isBinaryExpression(node)) return this.lowerBinaryExpression(node);
    if (ts.isConditionalExpression(node)) {
      const c = this.coerce(this.lowerExpr(node.condition), "bool", node.condition, "the condition");
      const [t, f] = this.unify(this.lowerExpr(node.whenTrue), this.lowerExpr(node.whenFalse), node, "?:");
      return strong(B.select(c, t, f));
    }
    if (ts.isCallExpression(node)) return this.lowerCall(node);
    if (ts.isElementAccessExpression(node)) return this.lowerElementAccess(node);
    if (ts.isPropertyAccessExpression(node)) return this.lowerConstant(node);
    if (ts.isAsExpression(node) || ts.isTypeAssertionExpression(node))
      throw errorAt(
        node,
        "`as` changes only the type checker's view, not the value",
        "convert with a cast such as f32(x)",
      );
    if (ts.isStringLiteral(node) || ts.isTemplateExpression(node) || ts.isNoSubstitutionTemplateLiteral(node))
      throw errorAt(node, "strings are not supported in kernels", "kernels compute on numbers only");
    if (ts.isObjectLiteralExpression(node) || ts.isArrayLiteralExpression(node))
      throw errorAt(
        node,
        "object and array values are not supported in kernels",
        "use scalars, or local(dtype, [n]) for a scratch array",
      );
    if (ts.isArrowFunction(node) || ts.isFunctionExpression(node))
      throw errorAt(
        node,
        "closures are not supported inside kernels",
        "declare a helper function at module level and call it",
      );
    if (ts.isNewExpression(node))
      throw errorAt(node, "`new` is not supported in kernels", "use local(dtype, [n]) for scratch memory");
    if (ts.isPostfixUnaryExpression(node))
      throw errorAt(
        node,
        "++ and -- are statements in kernels, not values",
        "write the increment as its own statement",
      );
    if (ts.isAwaitExpression(node)) throw errorAt(node, "await is not supported in kernels");
    throw errorAt(node, `unsupported expression (${ts.SyntaxKind[node.kind]}) in a kernel`);
  }

  private lowerIdentifier(node: ts.Identifier): Typed {
    if (node.text === "undefined") throw errorAt(node, "undefined is not a value in kernels");
    if (node.text === "NaN") return weakNumber(NaN, true);
    if (node.text === "Infinity") return weakNumber(Infinity, true);
    const sym = this.symbolOf(node);
    const b = sym && this.lookup(sym);
    if (b) {
      switch (b.kind) {
        case "value":
          return b.value;
        case "loop":
          return strong(b.v);
        case "mutable":
          return strong(B.load(b.buffer, [B.i32c(0)]));
        case "buffer":
          throw errorAt(
            node,
            `${node.text} is a tensor; a scalar is needed here`,
            `index it, for example ${node.text}[i]`,
          );
      }
    }
    return this.lowerConstant(node);
  }

  /** An identifier or property chain from outside the kernel: a compile-time constant. */
  protected lowerConstant(node: ts.Expression): Typed {
    if (ts.isIdentifier(node) && Object.prototype.hasOwnProperty.call(this.consts, node.text))
      return weakNumber(this.consts[node.text]!, false);
    if (ts.isIdentifier(node)) {
      const sym = this.symbolOf(node);
      const decl = declarationOf(sym);
      if (!sym || !decl) throw errorAt(node, `unknown name ${node.text}`);
      if (ts.isVariableDeclaration(decl) && !constDeclarationOf(sym))
        throw errorAt(
          node,
          `${node.text} is mutable state outside the kernel (a let or var); kernels may not close over it`,
          "make it a module-level const, or pass its value with kernel(fn, { consts: { ... } })",
        );
      if (ts.isParameter(decl))
        throw errorAt(
          node,
          `${node.text} is a variable of an enclosing function, unknown when the kernel is compiled`,
          `pass its value with kernel(fn, { consts: { ${node.text} } })`,
        );
      if (ts.isFunctionDeclaration(decl)) throw errorAt(node, `${node.text} is a function; call it`);
    }
    if (
      ts.isPropertyAccessExpression(node) &&
      ts.isIdentifier(node.expression) &&
      node.expression.text === "Math" &&
      typeof (Math as unknown as Record<string, unknown>)[node.name.text] === "function"
    )
      throw errorAt(
        node,
        `Math.${node.name.text} is a float64 host function`,
        `import { ${node.name.text} } from tkc's dsl`,
      );
    let v: ConstValue;
    try {
      v = evalConst(node, this.checker, this.consts);
    } catch (e) {
      // Point at the use in the kernel; the definition's problem goes into the message.
      if (
        !(e instanceof KernelError) ||
        (e.file === node.getSourceFile().fileName && e.line === lineOf(node))
      )
        throw e;
      throw errorAt(
        node,
        `${node.getText()} is not a compile-time constant: ${e.problem} (${path.basename(e.file)}:${e.line}:${e.column})`,
        "kernels may read module-level consts built from literals, or values passed with kernel(fn, { consts })",
      );
    }
    if (typeof v === "number") return weakNumber(v, !Number.isInteger(v));
    if (typeof v === "boolean") return strong(B.constant(v ? 1 : 0, "bool"));
    throw errorAt(node, "an object or array constant is not a scalar", "read one of its number fields");
  }

  private lowerPrefix(node: ts.PrefixUnaryExpression): Typed {
    if (node.operator === ts.SyntaxKind.PlusPlusToken || node.operator === ts.SyntaxKind.MinusMinusToken)
      throw errorAt(
        node,
        "++ and -- are statements in kernels, not values",
        "write the increment as its own statement",
      );
    const a = this.lowerExpr(node.operand);
    switch (node.operator) {
      case ts.SyntaxKind.MinusToken:
        if (a.weak && a.e.kind === "const") return { e: { ...a.e, value: -a.e.value }, weak: true };
        if (a.e.dtype === "bool" || a.e.dtype === "u32" || a.e.dtype === "u8")
          throw errorAt(node, `cannot negate a ${a.e.dtype}`, "convert to a signed or float dtype first");
        return strong(B.unary("neg", a.e));
      case ts.SyntaxKind.PlusToken:
        return a;
      case ts.SyntaxKind.ExclamationToken:
        return strong(B.unary("not", this.coerce(a, "bool", node.operand, "the operand of !")));
      case ts.SyntaxKind.TildeToken:
        if (a.weak && a.e.kind === "const") return weakNumber(~a.e.value, false);
        if (!isInt(a.e.dtype)) throw errorAt(node, `~ needs an integer, got ${a.e.dtype}`);
        return strong(B.unary("bitnot", a.e));
    }
    throw errorAt(node, "unsupported unary operator");
  }

  private lowerBinaryExpression(node: ts.BinaryExpression): Typed {
    const tok = node.operatorToken.kind;
    if (tok === ts.SyntaxKind.EqualsToken || COMPOUND_TOKENS[tok])
      throw errorAt(
        node,
        "assignments are statements in kernels, not values",
        "write the assignment as its own statement",
      );
    if (tok === ts.SyntaxKind.CommaToken)
      throw errorAt(node, "the comma operator is not supported in kernels");
    if (tok === ts.SyntaxKind.QuestionQuestionToken) throw errorAt(node, "?? is not supported in kernels");
    const op = BINARY_TOKENS[tok];
    if (!op) throw errorAt(node.operatorToken, `unsupported operator ${node.operatorToken.getText()}`);
    return this.binaryOp(op, this.lowerExpr(node.left), this.lowerExpr(node.right), node);
  }

  /** Applies a source-level binary operator with tkc's type rules. */
  binaryOp(op: string, a: Typed, b: Typed, node: ts.Node): Typed {
    if (a.weak && b.weak && a.e.kind === "const" && b.e.kind === "const") {
      const folded = foldWeak(op, a.e.value, b.e.value, isFloat(a.e.dtype) || isFloat(b.e.dtype));
      if (folded !== undefined) return folded;
    }
    if (op === "&&" || op === "||") {
      const x = this.coerce(a, "bool", node, `the left side of ${op}`);
      const y = this.coerce(b, "bool", node, `the right side of ${op}`);
      return strong(B.binary(op, x, y));
    }
    const [x, y, d] = this.unify(a, b, node, op);
    const kind = DTYPES[d].kind;
    if (d === "bool" && !["==", "!="].includes(op))
      throw errorAt(node, `${op} does not apply to booleans`, "use && and || for logic");
    switch (op) {
      case "/":
        if (kind !== "float")
          throw errorAt(
            node,
            `/ on integers (${d}) is ambiguous in TypeScript`,
            "write idiv(a, b) (truncates) or floordiv(a, b)",
          );
        return strong(B.binary("/", x, y));
      case "**":
        if (kind !== "float") throw errorAt(node, `** needs floats, got ${d}`, "convert to f32 first");
        return strong(B.call("pow", [x, y]));
      case "&":
      case "|":
      case "^":
      case "<<":
      case ">>":
      case ">>>":
        if (kind !== "int" && kind !== "uint")
          throw errorAt(node, `${op} needs integers, got ${d}`, "bit operations apply to i32, u32, i8, u8");
        if (op === ">>>") {
          if (kind !== "uint")
            throw errorAt(
              node,
              `>>> on the signed ${d}`,
              "convert to u32 first (>> on unsigned dtypes is a logical shift)",
            );
          return strong(B.binary(">>", x, y));
        }
        return strong(B.binary(op as BinaryOp, x, y));
      default:
        return strong(B.binary(op as BinaryOp, x, y));
    }
  }

  /** The name of the tkc intrinsic `call` calls, if its callee is one (dsl/intrinsics.ts). */
  protected intrinsicCalled(call: ts.CallExpression): string | undefined {
    const sym = this.symbolOf(call.expression);
    return sym && isIntrinsicDeclaration(declarationOf(sym)) ? sym.name : undefined;
  }

  private lowerCall(node: ts.CallExpression): Typed {
    const callee = node.expression;
    if (
      ts.isPropertyAccessExpression(callee) &&
      ts.isIdentifier(callee.expression) &&
      callee.expression.text === "Math"
    )
      throw errorAt(
        callee,
        `Math.${callee.name.text} is a float64 host function`,
        `import { ${callee.name.text} } from tkc's dsl and write ${callee.name.text}(...)`,
      );
    const sym = this.symbolOf(callee);
    const decl = declarationOf(sym);
    if (!sym || !decl) throw errorAt(callee, `unknown function ${callee.getText()}`);
    if (isIntrinsicDeclaration(decl) && sym.name in INTRINSIC_ARITY)
      return this.lowerIntrinsic(sym.name, node);
    if (ts.isFunctionDeclaration(decl) && decl.body) return this.inlineHelperValue(node, decl);
    if (
      ts.isVariableDeclaration(decl) &&
      decl.initializer &&
      (ts.isArrowFunction(decl.initializer) || ts.isFunctionExpression(decl.initializer))
    )
      return this.inlineHelperValue(node, decl.initializer);
    throw errorAt(
      callee,
      `${callee.getText()} cannot be called in a kernel`,
      "call tkc intrinsics or helper functions declared with `function` or `const f = (...) =>`",
    );
  }

  private lowerIntrinsic(name: string, node: ts.CallExpression): Typed {
    if (name === "prefetchL2" || name === "copyAsync" || name === "commitAsync" || name === "waitAsync")
      throw errorAt(node, `${name}(...) has no value`, `call it as a statement: ${name}(...);`);
    if (name === "atomicAdd")
      throw errorAt(
        node,
        "atomicAdd(...)'s old value can only be stored into a tensor element",
        "write it as a statement: old[0] = atomicAdd(t[i], v); or atomicAdd(t[i], v);",
      );
    const arity = INTRINSIC_ARITY[name]!;
    if (node.arguments.length !== arity)
      throw errorAt(
        node,
        `${name} takes ${arity} argument${arity === 1 ? "" : "s"}, got ${node.arguments.length}`,
      );
    if (name === "local" || name === "shared")
      throw errorAt(node, `${name}(...) allocates a tensor: use it only as const t = ${name}("f32", [n])`);
    const args = node.arguments.map((a) => this.lowerExpr(a));
    if (name in DTYPES && name !== "bool") {
      const a = args[0]!;
      if (a.weak && a.e.kind === "const") {
        if (isInt(name as DType) && !Number.isInteger(a.e.value)) return strong(B.cast(name as DType, a.e));
        return strong(B.constant(a.e.value, name as DType));
      }
      return strong(B.cast(name as DType, a.e));
    }
    if (name === "f32FromBits" || name === "bitsOfF32") {
      const a = args[0]!;
      const from = name === "f32FromBits" ? ["u32", "i32"] : ["f32"];
      const v = a.weak ? this.coerce(a, name === "f32FromBits" ? "u32" : "f32", node.arguments[0]!) : a.e;
      if (!from.includes(v.dtype))
        throw errorAt(
          node,
          `${name} takes ${from.join(" or ")}, got ${v.dtype}`,
          name === "f32FromBits" ? "convert with u32(...) first" : "convert with f32(...) first",
        );
      return strong(B.call("bitcast", [v], name === "f32FromBits" ? "f32" : "u32"));
    }
    if (name === "packF16x2") {
      const [lo, hi] = args.map((a, i) =>
        this.coerce(a, "f16", node.arguments[i]!, `argument ${i + 1} of packF16x2`),
      );
      return strong(B.call("pack_f16x2", [lo!, hi!], "u32"));
    }
    if (name === "unpackF16x2") {
      const v = this.coerce(args[0]!, "u32", node.arguments[0]!, "argument 1 of unpackF16x2");
      const el = this.coerce(args[1]!, "i32", node.arguments[1]!, "unpackF16x2's element (0 or 1)");
      if (el.kind === "const" && el.value !== 0 && el.value !== 1)
        throw errorAt(node.arguments[1]!, `unpackF16x2's element must be 0 or 1, not ${el.value}`);
      return strong(B.call("unpack_f16x2", [v, el], "f16"));
    }
    if (name === "fmaF16x2") {
      const xs = args.map((a, i) =>
        this.coerce(a, "u32", node.arguments[i]!, `argument ${i + 1} of fmaF16x2`),
      );
      return strong(B.call("fma_f16x2", xs, "u32"));
    }
    if (name === "select") {
      const c = this.coerce(args[0]!, "bool", node.arguments[0]!, "the condition");
      const [t, f] = this.unify(args[1]!, args[2]!, node, "select");
      return strong(B.select(c, t, f));
    }
    // Operands share one dtype; weak literals become f32 for float math, i32 otherwise.
    let dtype: DType | undefined = args.find((a) => !a.weak)?.e.dtype;
    dtype ??= MATH_FLOAT.has(name) || args.some((a) => isFloat(a.e.dtype)) ? "f32" : "i32";
    const xs = args.map((a, i) => this.coerce(a, dtype!, node.arguments[i]!, `argument ${i + 1} of ${name}`));
    if (MATH_FLOAT.has(name) && !isFloat(dtype))
      throw errorAt(
        node,
        `${name} needs a float (f32, f16 or bf16), got ${dtype}`,
        `convert first: ${name}(f32(x))`,
      );
    if ((name === "idiv" || name === "floordiv" || name === "floormod") && !isInt(dtype))
      throw errorAt(node, `${name} needs integers, got ${dtype}`, "for floats use / and floor");
    if (dtype === "bool") throw errorAt(node, `${name} does not apply to booleans`);
    switch (name) {
      case "min":
      case "max":
      case "floordiv":
      case "floormod":
        return strong(B.binary(name, xs[0]!, xs[1]!));
      case "idiv":
        return strong(B.binary("/", xs[0]!, xs[1]!));
      default:
        return strong(B.call(name as CallName, xs, dtype));
    }
  }

  /** x[i][j] as a load: the base and its full list of indices. */
  protected accessPath(node: ts.ElementAccessExpression): {
    buffer: Buffer;
    indices: Expr[];
    base: ts.Identifier;
  } {
    const idxNodes: ts.Expression[] = [];
    let cur: ts.Expression = node;
    while (ts.isElementAccessExpression(cur)) {
      idxNodes.unshift(cur.argumentExpression);
      cur = cur.expression;
    }
    if (!ts.isIdentifier(cur))
      throw errorAt(cur, "only tensors can be indexed", "index a tensor parameter or a local(...) array");
    const sym = this.symbolOf(cur);
    const b = sym && this.lookup(sym);
    if (!b || (b.kind !== "buffer" && b.kind !== "mutable") || b.kind === "mutable")
      throw errorAt(cur, `${cur.text} is not a tensor and cannot be indexed`);
    const buf = b.buffer;
    if (idxNodes.length !== buf.shape.length)
      throw errorAt(
        node,
        `${cur.text} has ${buf.shape.length} dimension${buf.shape.length === 1 ? "" : "s"} but ${idxNodes.length} ${idxNodes.length === 1 ? "index is" : "indices are"} given`,
        `index every dimension: ${cur.text}${buf.shape.map((_, i) => `[i${i}]`).join("")}`,
      );
    const indices = idxNodes.map((n) => {
      const t = this.lowerExpr(n);
      if (t.weak) return this.coerce(t, "i32", n, "the index");
      if (!isInt(t.e.dtype))
        throw errorAt(n, `an index must be an integer, got ${t.e.dtype}`, "convert with i32(...)");
      return t.e;
    });
    return { buffer: buf, indices, base: cur };
  }

  private lowerElementAccess(node: ts.ElementAccessExpression): Typed {
    // x.shape[d]
    if (ts.isPropertyAccessExpression(node.expression) && node.expression.name.text === "shape") {
      const base = node.expression.expression;
      const sym = ts.isIdentifier(base) ? this.symbolOf(base) : undefined;
      const b = sym && this.lookup(sym);
      if (!b || b.kind !== "buffer") throw errorAt(base, "`.shape` applies to tensors only");
      const d = evalConst(node.argumentExpression, this.checker, this.consts);
      if (typeof d !== "number" || !Number.isInteger(d) || d < 0 || d >= b.buffer.shape.length)
        throw errorAt(
          node.argumentExpression,
          `dimension ${String(d)} does not exist: ${base.getText()} has rank ${b.buffer.shape.length}`,
        );
      const dim = b.buffer.shape[d]!;
      return dim.kind === "const" ? weakNumber(dim.value, false) : strong(dim);
    }
    const { buffer, indices } = this.accessPath(node);
    return strong(B.load(buffer, indices));
  }
}
