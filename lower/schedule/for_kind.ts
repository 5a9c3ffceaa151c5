// Primitive family: filled in by its owner; see registry.ts.
export {};
