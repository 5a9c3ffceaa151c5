/**
 * A progress display for long conversions: a bar redrawn in place on a terminal, plain lines when
 * stderr is a file or pipe (CI logs, `2> log`), where carriage-return redraws would make a mess.
 */
import type { ConvertProgress } from "./convert.ts";

export interface ProgressSink {
  readonly isTTY?: boolean;
  readonly columns?: number;
  write(s: string): unknown;
}

const mb = (b: number): string => `${(b / 1e6).toFixed(1)} MB`;

/**
 * Returns an onProgress callback for convertModel. On a TTY it redraws one line
 * `label [#####.....] 12/30 40% 12.3 MB tensor` and ends it with a newline at the last tensor;
 * otherwise it prints one line per `every` tensors (and the last).
 */
export function progressBar(
  label: string,
  sink: ProgressSink = process.stderr,
  opts: { every?: number } = {},
): (p: ConvertProgress) => void {
  const every = Math.max(1, opts.every ?? 1);
  return (p) => {
    const pct = p.total > 0 ? Math.floor((100 * p.done) / p.total) : 100;
    const last = p.done >= p.total;
    if (sink.isTTY) {
      const width = 30;
      const filled = p.total > 0 ? Math.round((width * p.done) / p.total) : width;
      let line = `${label} [${"#".repeat(filled)}${".".repeat(width - filled)}] ${p.done}/${p.total} ${pct}% ${mb(p.bytes)} ${p.tensor}`;
      const cols = sink.columns ?? 100;
      if (line.length > cols - 1) line = line.slice(0, cols - 1);
      // \x1b[K clears what a longer previous line left behind.
      sink.write(`\r${line}\x1b[K${last ? "\n" : ""}`);
    } else if (last || p.done % every === 0) {
      sink.write(`${label}: ${p.done}/${p.total} (${pct}%) ${mb(p.bytes)} ${p.tensor}\n`);
    }
  };
}
