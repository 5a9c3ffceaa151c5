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

/** A schedule that needs an instruction the target lacks (tensor cores, say): refused, not wrong. */
export class TargetUnsupportedError extends ScheduleError {
  constructor(primitive: string, message: string) {
    super(primitive, message);
    this.name = "TargetUnsupportedError";
  }
}
