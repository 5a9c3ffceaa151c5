/**
 * The frontend: a kernel's typed TypeScript source to loop IR.
 *
 * `const` scalars become let-bindings, `let` scalars that are reassigned become one-element local
 * buffers, counted for loops become IR loops, each store becomes a named block (the unit schedules
 * address), and helper functions are inlined at their call sites (helpers.ts).
 */
import { ts } from "ts-morph";
import fs from "node:fs";
import path from "node:path";
import { funcFromJson, type FuncJson } from "../ir/serialize.ts";
import type { KernelDef } from "../../dsl/kernel.ts";
import { isDType, isInt, type DType } from "../../dsl/dtypes.ts";
import { INTRINSIC_ARITY } from "../../dsl/intrinsics.ts";
import * as B from "../ir/build.ts";
import type { Buffer, Expr, Param, PrimFunc, Stmt, Var } from "../ir/nodes.ts";
import { errorAt } from "./errors.ts";
import { evalConst } from "./consteval.ts";
import { COMPOUND_TOKENS } from "./expr.ts";
import type { Typed } from "./weak.ts";
import { MemoryStatementLowerer, skipParens } from "./memory.ts";
import { findKernelFunction, getProject } from "./project.ts";
import { scalarDType, tensorInfo } from "./typeinfo.ts";

type FnNode = ts.FunctionExpression | ts.ArrowFunction | ts.FunctionDeclaration;

class KernelLowerer extends MemoryStatementLowerer {
  private readonly blockNames = new Map<string, number>();
  private readonly symbols = new Map<string, Var>();
  private readonly usedNames = new Set<string>();

  /** Names of variables and buffers are unique in a function: schedules and traces refer to them. */
  private unique(base: string): string {
    let name = base;
    for (let n = 1; this.usedNames.has(name); n++) name = `${base}_${n}`;
    this.usedNames.add(name);
    return name;
  }

  lowerKernel(name: string, fn: FnNode): PrimFunc {
    if (!fn.body || !ts.isBlock(fn.body))
      throw errorAt(fn, "a kernel's body must be a block { ... }", "write function (...) { ... }");
    if (fn.asteriskToken) throw errorAt(fn, "generator functions cannot be kernels");
    if (fn.modifiers?.some((m) => m.kind === ts.SyntaxKind.AsyncKeyword))
      throw errorAt(fn, "async functions cannot be kernels");
    // Parameters keep their names (arguments are passed by name); other names avoid them.
    for (const p of fn.parameters) if (ts.isIdentifier(p.name)) this.usedNames.add(p.name.text);
    const params: Param[] = fn.parameters.map((p) => this.lowerParam(p));
    const body = this.lowerStatements(fn.body.statements);
    return { kind: "func", name, params, symbols: [...this.symbols.values()], body, attrs: {} };
  }

  private lowerParam(p: ts.ParameterDeclaration): Param {
    if (!ts.isIdentifier(p.name))
      throw errorAt(p, "destructured parameters are not supported", "name each parameter");
    if (p.dotDotDotToken) throw errorAt(p, "rest parameters are not supported in kernels");
    if (p.initializer)
      throw errorAt(p, "parameter defaults are not supported in kernels", "pass every argument");
    if (!p.type)
      throw errorAt(
        p,
        `parameter ${p.name.text} needs a type`,
        'write x: Tensor<f32, [Sym<"n">]> or eps: f32',
      );
    const type = this.checker.getTypeAtLocation(p);
    const sym = this.symbolOf(p.name)!;
    const info = tensorInfo(this.checker, type, p);
    if (typeof info === "string") throw errorAt(p.type, `parameter ${p.name.text}: ${info}`);
    if (info) {
      const shape = info.shape.map((d) => (d.kind === "static" ? B.i32c(d.value) : this.symbol(d.name)));
      const buffer = B.buffer(p.name.text, info.dtype, shape, "global");
      this.bind(sym, { kind: "buffer", buffer });
      return { kind: "buffer", buffer };
    }
    const dtype = scalarDType(this.checker, type);
    if (!dtype)
      throw errorAt(
        p.type,
        `parameter ${p.name.text} has type ${p.type.getText()}, which is no tkc dtype`,
        "use f32, f16, bf16, i32, u32, i8, u8 or a Tensor<...>",
      );
    const v = B.variable(p.name.text, dtype);
    this.bind(sym, { kind: "value", value: { e: v, weak: false } });
    return { kind: "scalar", v };
  }

  private symbol(name: string): Var {
    let v = this.symbols.get(name);
    // Sym names are the user's (specialize and argument checks use them), and so are loop names
    // (schedules address loops by them): a loop `n` over Sym<"n"> keeps its name too. Loops and
    // symbols are looked up apart, and the printer tells equal names apart.
    if (!v) this.symbols.set(name, (v = B.variable(name, "i32")));
    return v;
  }

  private blockName(base: string): string {
    const n = this.blockNames.get(base) ?? 0;
    this.blockNames.set(base, n + 1);
    return n === 0 ? base : `${base}_${n}`;
  }

  private storeBlock(buffer: Buffer, indices: readonly Expr[], value: Expr): Stmt {
    return B.block(this.blockName(buffer.name), B.store(buffer, indices, value));
  }

  /** Lowers a statement list; a declaration takes the rest of the list as its scope. */
  lowerStatements(stmts: readonly ts.Statement[], from = 0): Stmt {
    const out: Stmt[] = [];
    for (let i = from; i < stmts.length; i++) {
      const s = stmts[i]!;
      if (ts.isVariableStatement(s)) {
        out.push(
          this.lowerDeclarations(s, [...s.declarationList.declarations], () =>
            this.lowerStatements(stmts, i + 1),
          ),
        );
        return B.seq(out);
      }
      out.push(this.lowerStatement(s));
    }
    return B.seq(out);
  }

  private lowerDeclarations(
    s: ts.VariableStatement,
    decls: ts.VariableDeclaration[],
    rest: () => Stmt,
  ): Stmt {
    const [d, ...more] = decls;
    if (!d) return rest();
    const next = () => this.lowerDeclarations(s, more, rest);
    const isConst = (s.declarationList.flags & ts.NodeFlags.Const) !== 0;
    const isLet = (s.declarationList.flags & ts.NodeFlags.Let) !== 0;
    if (!isConst && !isLet) throw errorAt(s, "var is not supported in kernels", "use const or let");
    if (!ts.isIdentifier(d.name))
      throw errorAt(d, "destructuring is not supported in kernels", "declare one name at a time");
    if (!d.initializer)
      throw errorAt(
        d,
        `${d.name.text} must be initialized where it is declared`,
        `write let ${d.name.text} = f32(0)`,
      );
    const sym = this.symbolOf(d.name)!;
    const alloc = this.allocation(d.initializer);
    if (alloc) {
      if (!isConst) throw errorAt(d, "declare scratch tensors with const");
      const buffer = B.buffer(
        this.unique(d.name.text),
        alloc.dtype,
        alloc.shape.map((x) => B.i32c(x)),
        alloc.scope,
      );
      this.bind(sym, { kind: "buffer", buffer });
      return B.allocate(buffer, next());
    }
    let value = this.lowerExpr(d.initializer);
    const annotated = d.type ? this.annotatedDType(d) : undefined;
    if (annotated)
      value = {
        e: this.coerce(value, annotated, d.initializer, `the initializer of ${d.name.text}`),
        weak: false,
      };
    if (isLet && this.isReassigned(sym)) {
      const dtype = value.weak ? value.e.dtype : value.e.dtype;
      if (value.weak && !annotated)
        throw errorAt(
          d.initializer,
          `the dtype of ${d.name.text} is ambiguous`,
          `write let ${d.name.text} = ${isInt(dtype) ? "i32" : "f32"}(${d.initializer.getText()})`,
        );
      const buffer = B.buffer(this.unique(d.name.text), dtype, [B.i32c(1)], "local");
      this.bind(sym, { kind: "mutable", buffer });
      return B.allocate(buffer, B.seq([this.storeBlock(buffer, [B.i32c(0)], value.e), next()]));
    }
    if (value.weak || value.e.kind === "var" || value.e.kind === "const") {
      this.bind(sym, { kind: "value", value });
      return next();
    }
    const v = B.variable(this.unique(d.name.text), value.e.dtype);
    this.bind(sym, { kind: "value", value: { e: v, weak: false } });
    return B.letStmt(v, value.e, next());
  }

  private annotatedDType(d: ts.VariableDeclaration): DType {
    const dtype = scalarDType(this.checker, this.checker.getTypeFromTypeNode(d.type!));
    if (!dtype)
      throw errorAt(
        d.type!,
        `${d.type!.getText()} is no tkc dtype`,
        "annotate with f32, i32, ... or leave the type out",
      );
    return dtype;
  }

  private allocation(
    init: ts.Expression,
  ): { dtype: DType; shape: number[]; scope: "local" | "shared" } | undefined {
    if (!ts.isCallExpression(init)) return undefined;
    const scope = this.intrinsicCalled(init);
    if (scope !== "local" && scope !== "shared") return undefined;
    if (init.arguments.length !== INTRINSIC_ARITY[scope])
      throw errorAt(init, `${scope} takes a dtype and a shape`);
    const [dt, sh] = init.arguments as unknown as [ts.Expression, ts.Expression];
    if (!ts.isStringLiteral(dt) || !isDType(dt.text))
      throw errorAt(dt, 'the dtype must be a string literal such as "f32"');
    const shape = evalConst(sh, this.checker, this.consts);
    if (
      !Array.isArray(shape) ||
      shape.length === 0 ||
      !shape.every((x) => typeof x === "number" && Number.isInteger(x) && x > 0)
    )
      throw errorAt(
        sh,
        "the shape must be a non-empty array of positive integer constants",
        "write [4] or [16, 16]",
      );
    return { dtype: dt.text, shape: shape as number[], scope };
  }

  /** Whether a local variable is assigned after its declaration anywhere in the kernel. */
  private isReassigned(sym: ts.Symbol): boolean {
    let found = false;
    const visit = (n: ts.Node): void => {
      if (found) return;
      const target = assignedIdentifier(n);
      if (target && this.symbolOf(target) === sym) found = true;
      ts.forEachChild(n, visit);
    };
    visit(this.kernelNode);
    for (const n of this.inlineStack) visit(n);
    return found;
  }

  private lowerStatement(s: ts.Statement): Stmt {
    if (ts.isExpressionStatement(s)) return this.lowerExpressionStatement(s.expression);
    if (ts.isForStatement(s)) return this.lowerFor(s);
    if (ts.isIfStatement(s)) {
      const cond = this.coerce(this.lowerExpr(s.expression), "bool", s.expression, "the condition");
      // A condition on compile-time constants (a variant's consts) keeps only its branch: the other
      // is never lowered, so it neither allocates nor asks the passes to order its accesses.
      if (cond.kind === "const")
        return cond.value
          ? this.lowerStatement(s.thenStatement)
          : s.elseStatement
            ? this.lowerStatement(s.elseStatement)
            : B.nop();
      const then = this.lowerStatement(s.thenStatement);
      const otherwise = s.elseStatement ? this.lowerStatement(s.elseStatement) : undefined;
      return B.ifThen(cond, then, otherwise);
    }
    if (ts.isBlock(s)) return this.lowerStatements(s.statements);
    if (ts.isEmptyStatement(s)) return B.nop();
    if (ts.isWhileStatement(s) || ts.isDoStatement(s))
      throw errorAt(
        s,
        "while loops are not supported: a kernel's loops need trip counts known at launch",
        "write a counted loop: for (let i = 0; i < n; i++)",
      );
    if (ts.isForOfStatement(s) || ts.isForInStatement(s))
      throw errorAt(
        s,
        "for-of and for-in loops are not supported in kernels",
        "write a counted loop: for (let i = 0; i < n; i++)",
      );
    if (ts.isReturnStatement(s))
      throw errorAt(
        s,
        "return is not supported in a kernel",
        "wrap the rest of the work in if (...) { ... }",
      );
    if (ts.isBreakStatement(s) || ts.isContinueStatement(s))
      throw errorAt(
        s,
        `${ts.isBreakStatement(s) ? "break" : "continue"} is not supported in kernels`,
        "guard the loop body with if (...) { ... }",
      );
    if (ts.isThrowStatement(s) || ts.isTryStatement(s))
      throw errorAt(
        s,
        "exceptions are not supported in kernels",
        "kernels cannot fail; check inputs on the host before launching",
      );
    if (ts.isSwitchStatement(s)) throw errorAt(s, "switch is not supported in kernels", "use if/else");
    if (ts.isFunctionDeclaration(s) || ts.isClassDeclaration(s))
      throw errorAt(
        s,
        "declarations of functions or classes inside kernels are not supported",
        "declare helpers at module level",
      );
    if (ts.isLabeledStatement(s)) throw errorAt(s, "labels are not supported in kernels");
    throw errorAt(s, `unsupported statement (${ts.SyntaxKind[s.kind]}) in a kernel`);
  }

  private lowerExpressionStatement(e: ts.Expression): Stmt {
    if (ts.isParenthesizedExpression(e)) return this.lowerExpressionStatement(e.expression);
    if (ts.isBinaryExpression(e)) {
      const tok = e.operatorToken.kind;
      if (tok === ts.SyntaxKind.EqualsToken) {
        const rhs = skipParens(e.right);
        if (ts.isCallExpression(rhs) && this.intrinsicCalled(rhs) === "atomicAdd")
          return this.atomic(rhs, e.left);
        return this.assign(e.left, (old) => this.lowerExpr(e.right), e);
      }
      const op = COMPOUND_TOKENS[tok];
      if (op) return this.assign(e.left, (old) => this.binaryOp(op, old(), this.lowerExpr(e.right), e), e);
    }
    if (
      (ts.isPostfixUnaryExpression(e) || ts.isPrefixUnaryExpression(e)) &&
      (e.operator === ts.SyntaxKind.PlusPlusToken || e.operator === ts.SyntaxKind.MinusMinusToken)
    ) {
      const op = e.operator === ts.SyntaxKind.PlusPlusToken ? "+" : "-";
      return this.assign(e.operand, (old) => this.binaryOp(op, old(), { e: B.i32c(1), weak: true }, e), e);
    }
    if (ts.isCallExpression(e)) {
      const name = this.intrinsicCalled(e);
      return (
        (name !== undefined ? this.memoryStatement(name, e) : undefined) ?? this.inlineHelperStatement(e)
      );
    }
    throw errorAt(
      e,
      "this expression does nothing as a statement",
      "assign its value, for example y[i] = ...",
    );
  }

  /** target = compute(old): stores to tensors and mutable scalars, each in its own block. */
  private assign(target: ts.Expression, compute: (old: () => Typed) => Typed, node: ts.Node): Stmt {
    if (ts.isParenthesizedExpression(target)) return this.assign(target.expression, compute, node);
    if (ts.isIdentifier(target)) {
      const sym = this.symbolOf(target);
      const b = sym && this.lookup(sym);
      if (!b)
        throw errorAt(
          target,
          `${target.text} cannot be assigned in a kernel`,
          "declare a local variable with let",
        );
      if (b.kind === "mutable") {
        const cur = B.load(b.buffer, [B.i32c(0)]);
        const v = this.coerce(
          compute(() => ({ e: cur, weak: false })),
          b.buffer.dtype,
          node,
          "the assigned value",
        );
        return this.storeBlock(b.buffer, [B.i32c(0)], v);
      }
      if (b.kind === "loop")
        throw errorAt(
          target,
          `the loop variable ${target.text} cannot be assigned`,
          "use a separate let variable",
        );
      if (b.kind === "buffer")
        throw errorAt(
          target,
          `${target.text} is a tensor; assign its elements instead`,
          `${target.text}[i] = ...`,
        );
      throw errorAt(target, `${target.text} is constant`, `declare it with let to change it`);
    }
    if (ts.isElementAccessExpression(target)) {
      const { buffer, indices } = this.accessPath(target);
      const cur = B.load(buffer, indices);
      const v = this.coerce(
        compute(() => ({ e: cur, weak: false })),
        buffer.dtype,
        node,
        `the value stored into ${buffer.name}`,
      );
      return this.storeBlock(buffer, indices, v);
    }
    throw errorAt(target, "only tensor elements and let variables can be assigned");
  }

  private lowerFor(s: ts.ForStatement): Stmt {
    const init = s.initializer;
    const hint = "write for (let i = start; i < end; i++) or i += step with a constant step";
    if (
      !init ||
      !ts.isVariableDeclarationList(init) ||
      !(init.flags & ts.NodeFlags.Let) ||
      init.declarations.length !== 1
    )
      throw errorAt(s, "a kernel loop declares one let variable", hint);
    const d = init.declarations[0]!;
    if (!ts.isIdentifier(d.name) || !d.initializer)
      throw errorAt(d, "the loop variable needs a name and a start value", hint);
    const name = d.name.text;
    const sym = this.symbolOf(d.name)!;
    const start = this.indexExpr(d.initializer, "the loop start");
    const cond = s.condition;
    if (!cond || !ts.isBinaryExpression(cond) || !ts.isIdentifier(cond.left) || cond.left.text !== name)
      throw errorAt(cond ?? s, `the loop condition must compare ${name} with the end: ${name} < end`, hint);
    const ck = cond.operatorToken.kind;
    if (ck !== ts.SyntaxKind.LessThanToken && ck !== ts.SyntaxKind.LessThanEqualsToken)
      throw errorAt(cond, "loops count upward: the condition must be < or <=", hint);
    let end = this.indexExpr(cond.right, "the loop end");
    if (ck === ts.SyntaxKind.LessThanEqualsToken) end = B.add(end, B.i32c(1));
    const step = this.loopStep(s, name);
    // The loop variable may not change inside the body.
    const visit = (n: ts.Node): void => {
      const t = assignedIdentifier(n);
      if (t && this.symbolOf(t) === sym)
        throw errorAt(
          n,
          `the loop variable ${name} is changed in the loop body`,
          "loops must be counted; use a separate let variable",
        );
      ts.forEachChild(n, visit);
    };
    visit(s.statement);
    const extent = B.sub(end, start);
    if (step === 1) {
      const v = B.variable(this.unique(name), "i32");
      this.bind(sym, { kind: "loop", v });
      return B.forLoop(v, start, extent, this.lowerStatement(s.statement));
    }
    const it = B.variable(this.unique(`${name}_iter`), "i32");
    const v = B.variable(this.unique(name), "i32");
    this.bind(sym, { kind: "value", value: { e: v, weak: false } });
    const trips = B.binary("floordiv", B.add(extent, B.i32c(step - 1)), B.i32c(step));
    const body = B.letStmt(v, B.add(start, B.mul(it, B.i32c(step))), this.lowerStatement(s.statement));
    return B.forLoop(it, B.i32c(0), trips, body);
  }

  private loopStep(s: ts.ForStatement, name: string): number {
    const inc = s.incrementor;
    const hint = `write ${name}++ or ${name} += step with a positive constant step`;
    if (!inc) throw errorAt(s, "the loop needs an increment", hint);
    if (
      (ts.isPostfixUnaryExpression(inc) || ts.isPrefixUnaryExpression(inc)) &&
      ts.isIdentifier(inc.operand) &&
      inc.operand.text === name
    ) {
      if (inc.operator === ts.SyntaxKind.PlusPlusToken) return 1;
      throw errorAt(inc, "loops count upward", hint);
    }
    if (
      ts.isBinaryExpression(inc) &&
      inc.operatorToken.kind === ts.SyntaxKind.PlusEqualsToken &&
      ts.isIdentifier(inc.left) &&
      inc.left.text === name
    ) {
      const v = evalConst(inc.right, this.checker, this.consts);
      if (typeof v === "number" && Number.isInteger(v) && v > 0) return v;
      throw errorAt(inc.right, "the step must be a positive integer constant", hint);
    }
    throw errorAt(inc, "unsupported loop increment", hint);
  }

  private indexExpr(n: ts.Expression, what: string): Expr {
    const t = this.lowerExpr(n);
    if (t.weak) return this.coerce(t, "i32", n, what);
    if (t.e.dtype !== "i32")
      throw errorAt(n, `${what} must be an i32, got ${t.e.dtype}`, "convert with i32(...)");
    return t.e;
  }
}

/** The identifier an assignment, ++ or -- writes, if any. */
function assignedIdentifier(n: ts.Node): ts.Identifier | undefined {
  if (
    ts.isBinaryExpression(n) &&
    (n.operatorToken.kind === ts.SyntaxKind.EqualsToken || COMPOUND_TOKENS[n.operatorToken.kind])
  )
    return ts.isIdentifier(n.left) ? n.left : undefined;
  if (
    (ts.isPostfixUnaryExpression(n) || ts.isPrefixUnaryExpression(n)) &&
    (n.operator === ts.SyntaxKind.PlusPlusToken || n.operator === ts.SyntaxKind.MinusMinusToken)
  )
    return ts.isIdentifier(n.operand) ? n.operand : undefined;
  return undefined;
}

const cache = new WeakMap<KernelDef, PrimFunc>();

/** Lowers a kernel declared with kernel(...) to loop IR (cached per kernel). */
export function lowerKernel(def: KernelDef): PrimFunc {
  const hit = cache.get(def);
  if (hit) return hit;
  const shipped = shippedIR(def);
  if (shipped) {
    cache.set(def, shipped);
    return shipped;
  }
  const { sf, fn } = findKernelFunction(def);
  const checker = getProject().getTypeChecker().compilerObject;
  void sf;
  const f = new KernelLowerer(checker, def.consts, fn).lowerKernel(def.name, fn);
  cache.set(def, f);
  return f;
}

/**
 * Kernels in compiled JavaScript have no types left to read: their IR ships next to the module as
 * `<module>.tkc.json` (written by `tkc lower`), keyed by kernel name.
 */
function shippedIR(def: KernelDef): PrimFunc | undefined {
  if (!/\.[cm]?js$/.test(def.site.file)) return undefined;
  const file = `${def.site.file}.tkc.json`;
  if (!fs.existsSync(file)) {
    const ts = def.site.file.replace(/\.([cm]?)js$/, ".$1ts");
    if (fs.existsSync(ts)) return undefined; // the TypeScript source is there: lower it
    throw new Error(
      `tkc: kernel ${def.name} comes from compiled JavaScript (${def.site.file}) with neither its .ts source ` +
        `nor lowered IR (${path.basename(file)}). Run \`tkc lower <source.ts> --out ${path.basename(file)}\` when building the package, or ship the .ts sources.`,
    );
  }
  const table = JSON.parse(fs.readFileSync(file, "utf8")) as Record<string, FuncJson & { ordinal?: number }>;
  // By name; bundlers may rename functions (softmax -> softmax2), so fall back to call order.
  const json = table[def.name] ?? Object.values(table).find((t) => t.ordinal === def.ordinal);
  if (!json)
    throw new Error(`tkc: ${file} has no kernel named ${def.name} (it has ${Object.keys(table).join(", ")})`);
  return funcFromJson(json);
}
