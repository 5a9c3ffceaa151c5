/** A lowering pass that refuses says which pass, and why, with the numbers that decided it. */
export class LoweringError extends Error {
  constructor(
    readonly pass: string,
    message: string,
  ) {
    super(`tkc lower: ${pass}: ${message}`);
    this.name = "LoweringError";
  }
}
