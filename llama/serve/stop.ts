/**
 * Stop-sequence matching over a stream of text deltas (OpenAI's `stop` field).
 *
 * A stop string may arrive split across several tokens, so text that could still be the start of a
 * stop string is held back until the next delta settles it. The held-back text is released by
 * `flush()` when generation ends for another reason; text from a stop string onwards is never sent.
 */
export class StopMatcher {
  private held = "";
  private done = false;

  constructor(private readonly stops: readonly string[]) {
    for (const s of stops) if (s.length === 0) throw new Error("stop sequences must be non-empty strings");
  }

  /** Feeds one delta; returns the text that is safe to emit and whether a stop string was found. */
  push(delta: string): { text: string; stopped: boolean } {
    if (this.done) return { text: "", stopped: true };
    const buf = this.held + delta;
    let cut = -1;
    for (const s of this.stops) {
      const i = buf.indexOf(s);
      if (i >= 0 && (cut < 0 || i < cut)) cut = i;
    }
    if (cut >= 0) {
      this.done = true;
      this.held = "";
      return { text: buf.slice(0, cut), stopped: true };
    }
    const keep = this.partialSuffix(buf);
    this.held = buf.slice(buf.length - keep);
    return { text: buf.slice(0, buf.length - keep), stopped: false };
  }

  /** Releases text held back as a possible stop-string prefix (generation ended without a match). */
  flush(): string {
    const t = this.done ? "" : this.held;
    this.held = "";
    return t;
  }

  /** Length of the longest suffix of `buf` that is a proper prefix of some stop string. */
  private partialSuffix(buf: string): number {
    let best = 0;
    for (const s of this.stops) {
      for (let n = Math.min(s.length - 1, buf.length); n > best; n--) {
        if (buf.endsWith(s.slice(0, n))) {
          best = n;
          break;
        }
      }
    }
    return best;
  }
}
