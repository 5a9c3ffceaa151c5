/**
 * Lookups every primitive shares: loops and blocks are addressed by name (loop variable names and
 * block names are unique in a function), so a schedule is plain data that replays.
 */
import type { Block, For, PrimFunc, Stmt } from "../ir/nodes.ts";
import { ScheduleError } from "./errors.ts";

/** The statements from the function body down to a node (inclusive). */
export type Path = readonly Stmt[];

function search(s: Stmt, pred: (s: Stmt) => boolean, path: Stmt[]): Stmt[] | undefined {
  path.push(s);
  if (pred(s)) return path;
  const kids: Stmt[] =
    s.kind === "seq"
      ? [...s.body]
      : s.kind === "if"
        ? [s.then, ...(s.else ? [s.else] : [])]
        : "body" in s
          ? [s.body as Stmt]
          : [];
  for (const k of kids) {
    const found = search(k, pred, path);
    if (found) return found;
  }
  path.pop();
  return undefined;
}

export function findPath(f: PrimFunc, pred: (s: Stmt) => boolean): Stmt[] | undefined {
  return search(f.body, pred, []);
}

export function loopPath(f: PrimFunc, name: string, primitive: string): { loop: For; path: Path } {
  const path = findPath(f, (s) => s.kind === "for" && s.loopVar.name === name);
  if (!path) throw new ScheduleError(primitive, `no loop named ${name} in ${f.name}`);
  return { loop: path[path.length - 1] as For, path };
}

export function blockPath(f: PrimFunc, name: string, primitive: string): { block: Block; path: Path } {
  const path = findPath(f, (s) => s.kind === "block" && s.name === name);
  if (!path) throw new ScheduleError(primitive, `no block named ${JSON.stringify(name)} in ${f.name}`);
  return { block: path[path.length - 1] as Block, path };
}

/** The loops enclosing a block, outermost first. */
export function loopsOf(f: PrimFunc, block: string, primitive = "getLoops"): For[] {
  return blockPath(f, block, primitive).path.filter((s): s is For => s.kind === "for");
}

/** Replaces one statement (found by identity) in the function body. */
export function replaceStmt(f: PrimFunc, target: Stmt, replacement: Stmt): PrimFunc {
  const rec = (s: Stmt): Stmt => {
    if (s === target) return replacement;
    switch (s.kind) {
      case "seq": {
        const body = s.body.map(rec);
        return body.every((b, i) => b === s.body[i]) ? s : { ...s, body };
      }
      case "if": {
        const then = rec(s.then);
        const otherwise = s.else ? rec(s.else) : undefined;
        return then === s.then && otherwise === s.else
          ? s
          : { ...s, then, ...(otherwise ? { else: otherwise } : {}) };
      }
      case "for":
      case "block":
      case "allocate":
      case "let": {
        const body = rec(s.body);
        return body === s.body ? s : { ...s, body };
      }
      default:
        return s;
    }
  };
  const body = rec(f.body);
  return body === f.body ? f : { ...f, body };
}

/** Names in use by variables and buffers of a function, for making fresh unique names. */
export function namesIn(f: PrimFunc): Set<string> {
  const names = new Set<string>();
  for (const p of f.params) names.add(p.kind === "buffer" ? p.buffer.name : p.v.name);
  for (const s of f.symbols) names.add(s.name);
  const visit = (s: Stmt): void => {
    if (s.kind === "for") names.add(s.loopVar.name);
    if (s.kind === "let") names.add(s.v.name);
    if (s.kind === "allocate") names.add(s.buffer.name);
    if (s.kind === "block") names.add(s.name);
    const kids: Stmt[] =
      s.kind === "seq"
        ? [...s.body]
        : s.kind === "if"
          ? [s.then, ...(s.else ? [s.else] : [])]
          : "body" in s
            ? [s.body as Stmt]
            : [];
    kids.forEach(visit);
  };
  visit(f.body);
  return names;
}

export function freshName(f: PrimFunc, base: string): string {
  const used = namesIn(f);
  let name = base;
  for (let n = 1; used.has(name); n++) name = `${base}_${n}`;
  return name;
}
