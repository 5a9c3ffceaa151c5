/** Helpers to run tkc: in-process through main() (fast) or as a child process through bin/tkc.mjs. */
import { spawn } from "node:child_process";
import { Readable, Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { main } from "../../cli/main.ts";

export const BIN = fileURLToPath(new URL("../../bin/tkc.mjs", import.meta.url));
export const ROOT = fileURLToPath(new URL("../..", import.meta.url));

export interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function sink(): Writable & { text: string } {
  const w = new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      w.text += chunk.toString();
      cb();
    },
  }) as Writable & { text: string };
  w.text = "";
  return w;
}

/** Runs main() in this process with captured streams; stdin is `input` (not a TTY). */
export async function runInProcess(args: string[], input = ""): Promise<Result> {
  const stdout = sink();
  const stderr = sink();
  const code = await main(args, { stdin: Readable.from([input]), stdout, stderr });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

/** Runs `node bin/tkc.mjs ...args` from the repository root, feeding `input` to stdin; killed after `timeoutMs`. */
export function runBin(args: string[], input = "", timeoutMs = 60_000): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(input);
  });
}
