/**
 * Helper functions a kernel calls, inlined at their call sites: a helper used as a value (consts,
 * then `return <value>`) becomes an expression, one called as a statement (loops and stores
 * included) becomes statements. Parameters bind to the arguments in a fresh scope: tensors by
 * reference, scalars by value (coerced to an annotated parameter type); recursion is refused.
 */
import { ts } from "ts-morph";
import type { Stmt } from "../ir/nodes.ts";
import { errorAt } from "./errors.ts";
import { ExprLowerer, isIntrinsicDeclaration, type Binding } from "./expr.ts";
import type { Typed } from "./weak.ts";
import { declarationOf, scalarDType } from "./typeinfo.ts";

export abstract class HelperInliner extends ExprLowerer {
  /** The helpers being inlined, innermost last. */
  protected readonly inlineStack: ts.Node[] = [];

  abstract lowerStatements(stmts: readonly ts.Statement[], from?: number): Stmt;

  private helperDecl(call: ts.CallExpression): ts.SignatureDeclaration & { body?: ts.ConciseBody } {
    const sym = this.symbolOf(call.expression);
    const decl = declarationOf(sym);
    if (decl && ts.isFunctionDeclaration(decl) && decl.body) return decl;
    if (
      decl &&
      ts.isVariableDeclaration(decl) &&
      decl.initializer &&
      (ts.isArrowFunction(decl.initializer) || ts.isFunctionExpression(decl.initializer))
    )
      return decl.initializer;
    if (decl && isIntrinsicDeclaration(decl)) throw errorAt(call, `the value of ${sym!.name}(...) is unused`);
    throw errorAt(
      call,
      `${call.expression.getText()} cannot be called in a kernel`,
      "call helper functions declared with `function` or `const f = (...) =>`",
    );
  }

  /** Binds a helper's parameters to the call's arguments in a fresh scope. */
  private enterHelper(call: ts.CallExpression, decl: ts.SignatureDeclaration): void {
    if (this.inlineStack.includes(decl))
      throw errorAt(call, "recursion is not supported in kernels", "write the computation as a loop");
    if (this.inlineStack.length > 32) throw errorAt(call, "helpers are nested too deeply");
    if (call.arguments.length !== decl.parameters.length)
      throw errorAt(
        call,
        `${call.expression.getText()} takes ${decl.parameters.length} arguments, got ${call.arguments.length}`,
      );
    const scope = new Map<ts.Symbol, Binding>();
    decl.parameters.forEach((p, i) => {
      const arg = call.arguments[i]!;
      if (!ts.isIdentifier(p.name)) throw errorAt(p, "destructured parameters are not supported in helpers");
      const psym = this.symbolOf(p.name)!;
      if (ts.isIdentifier(arg)) {
        const asym = this.symbolOf(arg);
        const b = asym && this.lookup(asym);
        if (b?.kind === "buffer") return void scope.set(psym, b);
      }
      let value = this.lowerExpr(arg);
      const ptype = p.type ? scalarDType(this.checker, this.checker.getTypeFromTypeNode(p.type)) : undefined;
      if (ptype) value = { e: this.coerce(value, ptype, arg, `argument ${i + 1}`), weak: false };
      scope.set(psym, { kind: "value", value });
    });
    this.scopes.push(scope);
    this.inlineStack.push(decl);
  }

  private leaveHelper(): void {
    this.scopes.pop();
    this.inlineStack.pop();
  }

  protected inlineHelperValue(
    call: ts.CallExpression,
    decl: ts.SignatureDeclaration & { body?: ts.ConciseBody },
  ): Typed {
    this.enterHelper(call, decl);
    try {
      const body = decl.body!;
      if (!ts.isBlock(body)) return this.lowerExpr(body);
      // A helper used as a value: const declarations, then return expr.
      const stmts = body.statements;
      const last = stmts[stmts.length - 1];
      if (!last || !ts.isReturnStatement(last) || !last.expression)
        throw errorAt(decl, "a helper used as a value must end with return <value>");
      for (const st of stmts.slice(0, -1)) {
        if (!ts.isVariableStatement(st) || !(st.declarationList.flags & ts.NodeFlags.Const))
          throw errorAt(
            st,
            "a helper used as a value may only declare consts before its return",
            "move loops and stores into a helper called as a statement",
          );
        for (const d of st.declarationList.declarations) {
          if (!ts.isIdentifier(d.name) || !d.initializer)
            throw errorAt(d, "declare one initialized name at a time");
          this.bind(this.symbolOf(d.name)!, { kind: "value", value: this.lowerExpr(d.initializer) });
        }
      }
      return this.lowerExpr(last.expression);
    } finally {
      this.leaveHelper();
    }
  }

  protected inlineHelperStatement(call: ts.CallExpression): Stmt {
    const decl = this.helperDecl(call);
    this.enterHelper(call, decl);
    try {
      const body = decl.body!;
      if (!ts.isBlock(body)) throw errorAt(call, "the value of this call is unused");
      const stmts = body.statements;
      const last = stmts[stmts.length - 1];
      if (last && ts.isReturnStatement(last)) {
        if (last.expression) throw errorAt(call, "the value of this call is unused");
        return this.lowerStatements(stmts.slice(0, -1));
      }
      return this.lowerStatements(stmts);
    } finally {
      this.leaveHelper();
    }
  }
}
