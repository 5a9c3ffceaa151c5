// A small reader of SPIR-V words: what a runtime must know about a module before it builds a
// pipeline (entry points, workgroup size, descriptor bindings, push constants, capabilities), so it
// can refuse a mismatched module with a clear message instead of a driver crash.

export interface SpirvEntryPoint {
  name: string;
  /** SPIR-V ExecutionModel: 5 is GLCompute. */
  model: number;
  id: number;
  /** From OpExecutionMode LocalSize, if the module states it with literals. */
  localSize?: [number, number, number];
}

export interface SpirvReflection {
  version: { major: number; minor: number };
  capabilities: string[];
  extensions: string[];
  entryPoints: SpirvEntryPoint[];
  /** (set, binding) pairs of decorated variables, sorted. */
  bindings: { set: number; binding: number }[];
  /** Whether some variable lives in the PushConstant storage class. */
  hasPushConstants: boolean;
}

const MAGIC = 0x07230203;
const OP = { Extension: 10, EntryPoint: 15, ExecutionMode: 16, Capability: 17, Variable: 59, Decorate: 71 };
const DECORATION_BINDING = 33;
const DECORATION_DESCRIPTOR_SET = 34;
const EXECUTION_MODE_LOCAL_SIZE = 17;
const STORAGE_CLASS_PUSH_CONSTANT = 9;

/** Capability numbers from the SPIR-V spec, for the ones a compute kernel uses. */
export const CAPABILITY_NAMES: Record<number, string> = {
  1: "Shader",
  9: "Float16",
  10: "Float64",
  11: "Int64",
  12: "Int64Atomics",
  22: "Int16",
  39: "Int8",
  61: "GroupNonUniform",
  62: "GroupNonUniformVote",
  63: "GroupNonUniformArithmetic",
  64: "GroupNonUniformBallot",
  65: "GroupNonUniformShuffle",
  66: "GroupNonUniformShuffleRelative",
  67: "GroupNonUniformClustered",
  68: "GroupNonUniformQuad",
  4433: "StorageBuffer16BitAccess",
  4434: "UniformAndStorageBuffer16BitAccess",
  4435: "StoragePushConstant16",
  4448: "StorageBuffer8BitAccess",
  4449: "UniformAndStorageBuffer8BitAccess",
  4450: "StoragePushConstant8",
  5345: "VulkanMemoryModel",
};

// A literal string: UTF-8 bytes packed little-endian into words, NUL-terminated.
function readString(words: Uint32Array, start: number, end: number): { text: string; next: number } {
  const bytes: number[] = [];
  for (let i = start; i < end; i++) {
    const w = words[i]!;
    for (let b = 0; b < 4; b++) {
      const c = (w >>> (8 * b)) & 0xff;
      if (c === 0) return { text: Buffer.from(bytes).toString("utf8"), next: i + 1 };
      bytes.push(c);
    }
  }
  throw new Error("SPIR-V: unterminated literal string");
}

/** Reads the facts above from a module; throws on a malformed header or instruction stream. */
export function reflect(words: Uint32Array): SpirvReflection {
  if (words.length < 5 || words[0] !== MAGIC) {
    throw new Error(
      `not a SPIR-V module: ${words.length < 5 ? `${words.length} words` : `magic 0x${words[0]!.toString(16)}`}`,
    );
  }
  const r: SpirvReflection = {
    version: { major: (words[1]! >>> 16) & 0xff, minor: (words[1]! >>> 8) & 0xff },
    capabilities: [],
    extensions: [],
    entryPoints: [],
    bindings: [],
    hasPushConstants: false,
  };
  const sets = new Map<number, number>();
  const bindings = new Map<number, number>();
  const localSizes = new Map<number, [number, number, number]>();
  for (let i = 5; i < words.length;) {
    const count = words[i]! >>> 16;
    const op = words[i]! & 0xffff;
    if (count === 0 || i + count > words.length) throw new Error(`SPIR-V: bad instruction at word ${i}`);
    const end = i + count;
    if (op === OP.Capability) r.capabilities.push(CAPABILITY_NAMES[words[i + 1]!] ?? `#${words[i + 1]}`);
    else if (op === OP.Extension) r.extensions.push(readString(words, i + 1, end).text);
    else if (op === OP.EntryPoint) {
      const name = readString(words, i + 3, end).text;
      r.entryPoints.push({ model: words[i + 1]!, id: words[i + 2]!, name });
    } else if (op === OP.ExecutionMode && words[i + 2] === EXECUTION_MODE_LOCAL_SIZE) {
      localSizes.set(words[i + 1]!, [words[i + 3]!, words[i + 4]!, words[i + 5]!]);
    } else if (op === OP.Decorate && words[i + 2] === DECORATION_BINDING)
      bindings.set(words[i + 1]!, words[i + 3]!);
    else if (op === OP.Decorate && words[i + 2] === DECORATION_DESCRIPTOR_SET)
      sets.set(words[i + 1]!, words[i + 3]!);
    else if (op === OP.Variable && words[i + 3] === STORAGE_CLASS_PUSH_CONSTANT) r.hasPushConstants = true;
    i = end;
  }
  for (const e of r.entryPoints) {
    const ls = localSizes.get(e.id);
    if (ls) e.localSize = ls;
  }
  for (const [id, binding] of bindings) r.bindings.push({ set: sets.get(id) ?? 0, binding });
  r.bindings.sort((a, b) => a.set - b.set || a.binding - b.binding);
  return r;
}
