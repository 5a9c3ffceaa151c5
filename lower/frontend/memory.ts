/**
 * The kernel statements that move or update memory beyond plain stores, lowered to their IR
 * statements with their errors: `prefetchL2` (an L2 hint), `atomicAdd` (an indivisible update,
 * its old value optionally kept), and the asynchronous copies `copyAsync`, `commitAsync` and
 * `waitAsync` (nodes.ts Store.async and the barriers "async_commit", "async_wait").
 */
import { ts } from "ts-morph";
import * as B from "../ir/build.ts";
import type { Expr, Stmt } from "../ir/nodes.ts";
import { evalConst } from "./consteval.ts";
import { errorAt } from "./errors.ts";
import { HelperInliner } from "./helpers.ts";

export abstract class MemoryStatementLowerer extends HelperInliner {
  /** The statement a memory intrinsic called as one makes, or undefined for other calls. */
  protected memoryStatement(name: string, call: ts.CallExpression): Stmt | undefined {
    if (name === "prefetchL2") return this.prefetch(call);
    if (name === "atomicAdd") return this.atomic(call);
    if (name === "copyAsync") return this.copyAsync(call);
    if (name === "waitAsync") return this.waitAsync(call);
    if (name !== "commitAsync") return undefined;
    if (call.arguments.length) throw errorAt(call, "commitAsync takes no arguments", "write commitAsync();");
    return B.commitAsync();
  }

  /** prefetchL2(t[i][j], count?): an element access of a parameter tensor, all its indices given. */
  private prefetch(call: ts.CallExpression): Stmt {
    const [arg, countArg] = call.arguments;
    if (call.arguments.length > 2 || !arg)
      throw errorAt(
        call,
        `prefetchL2 takes an element and optionally a count, got ${call.arguments.length} arguments`,
      );
    const count = countArg ? this.coerce(this.lowerExpr(countArg), "i32", countArg, "the count") : B.i32c(1);
    const v = this.lowerExpr(arg).e;
    if (v.kind !== "load" || v.buffer.scope !== "global" || v.indices.length !== v.buffer.shape.length)
      throw errorAt(
        arg,
        "prefetchL2 takes one element of a kernel's tensor parameter",
        "write the element access, for example prefetchL2(w[row][col])",
      );
    return B.prefetch(v.buffer, v.indices, count);
  }

  /** copyAsync(dst[i], src[j]): an element of a shared tensor, one of a parameter tensor, same dtype. */
  private copyAsync(call: ts.CallExpression): Stmt {
    const [dstArg, srcArg] = call.arguments;
    if (call.arguments.length !== 2 || !dstArg || !srcArg)
      throw errorAt(
        call,
        `copyAsync takes a destination and a source element, got ${call.arguments.length} arguments`,
      );
    const dst = this.elementOf(dstArg, "shared", [
      "copyAsync copies into one element of a shared tensor",
      'declare const tile = shared("u32", [...]) and write copyAsync(tile[i][j], w[row][col])',
    ]);
    const src = this.elementOf(srcArg, "global", [
      "copyAsync copies from one element of a kernel's tensor parameter",
      "write the element access, for example copyAsync(tile[i], w[row][col])",
    ]);
    if (src.buffer.dtype !== dst.buffer.dtype)
      throw errorAt(
        call,
        `copyAsync copies bits unchanged: ${dst.buffer.name} holds ${dst.buffer.dtype} but ${src.buffer.name} holds ${src.buffer.dtype}`,
        `declare ${dst.buffer.name} as ${src.buffer.dtype}`,
      );
    return B.storeAsync(dst.buffer, dst.indices, src);
  }

  /** e as a load of one element (every index given) of a buffer in `scope`, else the error. */
  private elementOf(
    e: ts.Expression,
    scope: "shared" | "global",
    [problem, hint]: readonly [string, string],
  ): Extract<Expr, { kind: "load" }> {
    const v = this.lowerExpr(e).e;
    if (v.kind !== "load" || v.buffer.scope !== scope || v.indices.length !== v.buffer.shape.length)
      throw errorAt(e, problem, hint);
    return v;
  }

  /** The value of an expression of compile-time constants (module consts, a variant's), or undefined. */
  private constantOrUndefined(e: ts.Expression): unknown {
    try {
      return evalConst(e, this.checker, this.consts);
    } catch {
      return undefined;
    }
  }

  /** waitAsync(n): n a compile-time constant. */
  private waitAsync(call: ts.CallExpression): Stmt {
    const [arg] = call.arguments;
    if (call.arguments.length !== 1 || !arg)
      throw errorAt(call, `waitAsync takes one count, got ${call.arguments.length} arguments`);
    const n = this.constantOrUndefined(arg);
    if (typeof n !== "number" || !Number.isInteger(n) || n < 0)
      throw errorAt(
        arg,
        "waitAsync's count must be a non-negative integer constant",
        "commit a group in every iteration (commitAsync(), empty where nothing was copied) and wait with stages - 1",
      );
    return B.waitAsync(n);
  }

  /**
   * atomicAdd(t[i][j], value), or result[k] = atomicAdd(...): an element of a tensor parameter or
   * a shared tensor, all its indices given; the old value into a tensor element.
   */
  protected atomic(call: ts.CallExpression, resultTarget?: ts.Expression): Stmt {
    const [arg, valueArg] = call.arguments;
    if (call.arguments.length !== 2 || !arg || !valueArg)
      throw errorAt(call, `atomicAdd takes an element and a value, got ${call.arguments.length} arguments`);
    const target = this.lowerExpr(arg).e;
    if (
      target.kind !== "load" ||
      target.buffer.scope === "local" ||
      target.indices.length !== target.buffer.shape.length
    )
      throw errorAt(
        arg,
        "atomicAdd updates one element of a kernel's tensor parameter or of a shared tensor",
        "write the element access, for example atomicAdd(count[h], 1)",
      );
    const dtype = target.buffer.dtype;
    if (dtype !== "i32" && dtype !== "u32" && dtype !== "f32")
      throw errorAt(
        arg,
        `atomicAdd adds to i32, u32 or f32 elements; ${target.buffer.name} holds ${dtype}`,
        "count in an i32 or u32 tensor, or sum in an f32 one",
      );
    const value = this.coerce(this.lowerExpr(valueArg), dtype, valueArg, "the added value");
    if (!resultTarget) return B.atomicAdd(target.buffer, target.indices, value);
    const where = skipParens(resultTarget);
    if (!ts.isElementAccessExpression(where))
      throw errorAt(
        resultTarget,
        "atomicAdd's old value goes into a tensor element",
        'declare const old = shared("i32", [1]) (or local) and write old[0] = atomicAdd(...)',
      );
    const { buffer, indices } = this.accessPath(where);
    const result = { buffer, indices };
    if (result.buffer.dtype !== dtype)
      throw errorAt(
        resultTarget,
        `${result.buffer.name} holds ${result.buffer.dtype} but atomicAdd on ${target.buffer.name} gives ${dtype}`,
        `declare ${result.buffer.name} as ${dtype}`,
      );
    return B.atomicAdd(target.buffer, target.indices, value, result);
  }
}

/** e without enclosing parentheses. */
export function skipParens(e: ts.Expression): ts.Expression {
  return ts.isParenthesizedExpression(e) ? skipParens(e.expression) : e;
}
