/**
 * A FIFO lock: the server holds one model and runs one generation at a time, so requests wait
 * here in arrival order. A waiter whose client goes away (its signal aborts) leaves the queue
 * without ever taking the lock, so a disconnected client never delays the ones behind it.
 */
export class FifoLock {
  private busy = false;
  private readonly waiters: Array<{ grant: () => void }> = [];

  /** Requests waiting behind the current holder. */
  get waiting(): number {
    return this.waiters.length;
  }

  get locked(): boolean {
    return this.busy;
  }

  /** Resolves with a release function once it is this caller's turn; rejects if `signal` aborts first. */
  acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(abortError(signal));
    if (!this.busy) {
      this.busy = true;
      return Promise.resolve(this.releaser());
    }
    return new Promise((resolve, reject) => {
      const waiter = {
        grant: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve(this.releaser());
        },
      };
      const onAbort = () => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(abortError(signal!));
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return; // releasing twice must not hand the lock to two waiters
      released = true;
      const next = this.waiters.shift();
      if (next) next.grant();
      else this.busy = false;
    };
  }
}

function abortError(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error("aborted while waiting in the queue");
}
