/**
 * One ts-morph Project for every kernel (the first file costs most of a second; later ones tens of
 * milliseconds), and the search for a kernel's function in its source file.
 */
import { Project, ts, type SourceFile } from "ts-morph";
import fs from "node:fs";
import type { KernelDef } from "../../dsl/kernel.ts";

let project: Project | undefined;
const loaded = new Map<string, number>(); // file -> mtime when loaded

export function getProject(): Project {
  project ??= new Project({
    compilerOptions: {
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      strict: true,
      allowImportingTsExtensions: true,
      noEmit: true,
      skipLibCheck: true,
    },
  });
  return project;
}

export function sourceFileFor(file: string): SourceFile {
  const p = getProject();
  if (!fs.existsSync(file))
    throw new Error(
      `tkc: the source of a kernel is not readable at ${file}. Kernels are compiled from their TypeScript ` +
        `source: ship the .ts files, or lower the kernels ahead of time (tkc lower) and load the serialized IR.`,
    );
  const mtime = fs.statSync(file).mtimeMs;
  let sf = p.getSourceFile(file);
  if (sf && loaded.get(file) !== mtime) {
    sf.refreshFromFileSystemSync();
  }
  if (!sf) {
    sf = p.addSourceFileAtPath(file);
    p.resolveSourceFileDependencies();
  }
  loaded.set(file, mtime);
  return sf;
}

export type KernelFunctionNode = ts.FunctionExpression | ts.ArrowFunction | ts.FunctionDeclaration;

/** Finds the function passed to the kernel() call at the def's call site. */
export function findKernelFunction(def: KernelDef): { sf: SourceFile; fn: KernelFunctionNode } {
  const sf = sourceFileFor(def.site.file);
  const tsf = sf.compilerNode;
  const candidates: { fn: KernelFunctionNode; line: number }[] = [];
  const visit = (n: ts.Node): void => {
    if (ts.isCallExpression(n) && n.arguments.length > 0) {
      const callee = n.expression;
      const name = ts.isIdentifier(callee)
        ? callee.text
        : ts.isPropertyAccessExpression(callee)
          ? callee.name.text
          : "";
      const arg = n.arguments[0]!;
      if (name === "kernel" && (ts.isFunctionExpression(arg) || ts.isArrowFunction(arg))) {
        const line = tsf.getLineAndCharacterOfPosition(n.getStart(tsf)).line + 1;
        candidates.push({ fn: arg, line });
      }
    }
    ts.forEachChild(n, visit);
  };
  visit(tsf);
  // Prefer the call on the recorded line (source-mapped stacks), then a function of the same name.
  const onLine = candidates.filter((c) => c.line === def.site.line);
  if (onLine.length === 1) return { sf, fn: onLine[0]!.fn };
  const named = candidates.filter((c) => c.fn.name?.text === def.fn.name && def.fn.name !== "");
  if (named.length === 1) return { sf, fn: named[0]!.fn };
  if (candidates.length === 0)
    throw new Error(`tkc: no kernel(function ...) call found in ${def.site.file} for kernel ${def.name}`);
  const nearest = [...candidates].sort(
    (a, b) => Math.abs(a.line - def.site.line) - Math.abs(b.line - def.site.line),
  )[0]!;
  return { sf, fn: nearest.fn };
}
