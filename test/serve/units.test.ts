// Unit tests of the server's building blocks: stop-string matching and the FIFO lock.
import { describe, expect, it } from "vitest";
import { plainChatDocument } from "../../llama/serve/model-engine.ts";
import { FifoLock } from "../../llama/serve/queue.ts";
import { StopMatcher } from "../../llama/serve/stop.ts";

describe("StopMatcher", () => {
  const feed = (stops: string[], deltas: string[]) => {
    const m = new StopMatcher(stops);
    let out = "";
    for (const d of deltas) {
      const r = m.push(d);
      out += r.text;
      if (r.stopped) return { out, stopped: true };
    }
    return { out: out + m.flush(), stopped: false };
  };

  it("finds stops inside one delta and across deltas", () => {
    expect(feed(["\n\n"], ["one\n\ntwo"])).toEqual({ out: "one", stopped: true });
    expect(feed(["END"], ["abc E", "N", "Dxyz"])).toEqual({ out: "abc ", stopped: true });
    expect(feed(["END"], ["abc E", "N", "d"])).toEqual({ out: "abc ENd", stopped: false });
  });

  it("cuts at the earliest of several stops and holds back only possible prefixes", () => {
    expect(feed(["bc", "ab"], ["xabc"])).toEqual({ out: "x", stopped: true });
    const m = new StopMatcher(["STOP"]);
    expect(m.push("hello ST")).toEqual({ text: "hello ", stopped: false });
    expect(m.push("ART")).toEqual({ text: "START", stopped: false });
  });

  it("refuses empty stop strings", () => {
    expect(() => new StopMatcher([""])).toThrow(/non-empty/);
  });
});

describe("FifoLock", () => {
  it("grants in arrival order and skips waiters that aborted", async () => {
    const lock = new FifoLock();
    const order: string[] = [];
    const first = await lock.acquire();
    const ac = new AbortController();
    const b = lock.acquire().then((rel) => (order.push("b"), rel));
    const gone = lock.acquire(ac.signal).then(
      () => order.push("gone"),
      () => "rejected",
    );
    const c = lock.acquire().then((rel) => (order.push("c"), rel));
    expect(lock.waiting).toBe(3);
    ac.abort();
    expect(await gone).toBe("rejected");
    expect(lock.waiting).toBe(2);
    first();
    first(); // a second release is a no-op, not a second grant
    (await b)();
    (await c)();
    expect(order).toEqual(["b", "c"]);
    expect(lock.locked).toBe(false);
  });
});

describe("plainChatDocument", () => {
  it("joins assistant continuations as is and starts user text as a new phrase", () => {
    const doc = plainChatDocument([
      { role: "system", content: "A story." },
      { role: "user", content: "Once upon a time" },
      { role: "assistant", content: ", there was a cat." },
      { role: "user", content: "The cat" },
      { role: "user", content: "" },
      { role: "user", content: " sat." },
    ]);
    expect(doc).toBe("A story. Once upon a time, there was a cat. The cat sat.");
  });
});
