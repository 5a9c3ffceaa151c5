#!/usr/bin/env node
// The `tkc` launcher. tkc's sources are TypeScript run as-is (kernels are found by reading their
// .ts source), so instead of shipping compiled JavaScript we register tsx's ESM loader in this
// process and import cli/main.ts. In-process (rather than spawning `tsx`) keeps startup to one Node
// and lets signals and exit codes behave as for any Node program.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { register } from "tsx/esm/api";

const tsconfig = fileURLToPath(new URL("../tsconfig.json", import.meta.url));
// Pin tsx to this package's tsconfig so `tkc` behaves the same from any working directory.
register(existsSync(tsconfig) ? { tsconfig } : {});

// `tkc generate | head -1` closes our stdout early: that ends the program quietly, not with a trace.
for (const stream of [process.stdout, process.stderr])
  stream.on("error", (e) => {
    if (e.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw e;
  });

const { main } = await import(new URL("../cli/main.ts", import.meta.url).href);
process.exitCode = await main(process.argv.slice(2));
