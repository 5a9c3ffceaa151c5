/** The trace round trip every schedule test ends with: JSON out, replay on the original, same IR. */
import { expect } from "vitest";
import { funcDifference } from "../../lower/ir/equal.ts";
import { printFunc } from "../../lower/ir/printer.ts";
import { verifyFunc } from "../../lower/ir/verify.ts";
import { replay, traceFromJson, traceToJson, type Schedule } from "../../lower/schedule/schedule.ts";

export function expectTraceRoundTrip(s: Schedule): void {
  const replayed = replay(s.original, traceFromJson(traceToJson(s.trace)));
  expect(printFunc(replayed.func)).toBe(printFunc(s.func));
  expect(funcDifference(replayed.func, s.func, { names: true })).toBeUndefined();
  expect(replayed.trace).toEqual(s.trace);
}

/** Every scheduled function must still pass the verifier. */
export function expectValid(s: Schedule): void {
  expect(verifyFunc(s.func)).toEqual([]);
}
