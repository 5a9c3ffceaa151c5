/** A schedule primitive that refuses says which primitive, on what, and why. */
export class ScheduleError extends Error {
  constructor(
    readonly primitive: string,
    message: string,
  ) {
    super(`tkc schedule: ${primitive}: ${message}`);
    this.name = "ScheduleError";
  }
}
