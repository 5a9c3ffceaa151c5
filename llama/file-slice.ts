/**
 * A byte range inside a file, read piecewise with positioned reads.
 *
 * Checkpoints can be larger than memory allows to read in one go (Llama-2-7B in fp32 is 27 GB) and
 * some live inside container files (the bundled model sits inside an emscripten .data package), so
 * loaders take a slice and read one tensor at a time at an offset instead of reading whole files.
 */
import * as fs from "node:fs";
import * as os from "node:os";

export interface FileSlice {
  readonly path: string;
  /** Byte offset of the slice inside the file. */
  readonly offset: number;
  /** Length of the slice in bytes. */
  readonly length: number;
  /** How error messages name the slice, e.g. "llama2.data:/model.bin"; defaults to the path. */
  readonly label?: string;
}

/** Turns a plain path into a slice covering the whole file (its size taken now). */
export function toSlice(src: string | FileSlice): FileSlice {
  if (typeof src !== "string") return src;
  let size: number;
  try {
    size = fs.statSync(src).size;
  } catch (e) {
    throw new Error(`cannot open ${src}: ${(e as Error).message}`);
  }
  return { path: src, offset: 0, length: size };
}

export const sliceName = (s: FileSlice): string =>
  s.label ?? (s.offset === 0 ? s.path : `${s.path} (bytes ${s.offset}..${s.offset + s.length})`);

/** An open slice: positioned reads relative to the slice start, bounds-checked. Call close(). */
export class SliceReader {
  private readonly fd: number;
  readonly name: string;

  constructor(readonly slice: FileSlice) {
    this.name = sliceName(slice);
    try {
      this.fd = fs.openSync(slice.path, "r");
    } catch (e) {
      throw new Error(`cannot open ${this.name}: ${(e as Error).message}`);
    }
  }

  get length(): number {
    return this.slice.length;
  }

  /** Fills `dst` from `pos` (relative to the slice); throws naming the file when the slice is too short. */
  readInto(dst: Uint8Array, pos: number, what: string): void {
    if (pos < 0 || pos + dst.byteLength > this.slice.length)
      throw new Error(
        `${this.name}: ${what} needs bytes ${pos}..${pos + dst.byteLength} but the file has ${this.slice.length} bytes`,
      );
    // readSync may return fewer bytes than asked (and caps one call near 2 GiB): loop.
    const CHUNK = 1 << 30;
    let done = 0;
    while (done < dst.byteLength) {
      const want = Math.min(CHUNK, dst.byteLength - done);
      let got: number;
      try {
        got = fs.readSync(this.fd, dst, done, want, this.slice.offset + pos + done);
      } catch (e) {
        throw new Error(`${this.name}: cannot read ${what}: ${(e as Error).message}`);
      }
      if (got <= 0)
        throw new Error(`${this.name}: unexpected end of file reading ${what} at byte ${pos + done}`);
      done += got;
    }
  }

  bytes(pos: number, length: number, what: string): Uint8Array {
    const out = new Uint8Array(length);
    this.readInto(out, pos, what);
    return out;
  }

  /** Reads `count` little-endian float32 values starting at `pos`. */
  float32(pos: number, count: number, what: string): Float32Array {
    assertLittleEndian();
    const out = new Float32Array(count);
    this.readInto(new Uint8Array(out.buffer), pos, what);
    return out;
  }

  int32(pos: number, count: number, what: string): Int32Array {
    assertLittleEndian();
    const out = new Int32Array(count);
    this.readInto(new Uint8Array(out.buffer), pos, what);
    return out;
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}

/** Opens a slice, runs `fn`, closes the file descriptor whatever happens. */
export function withSlice<T>(src: string | FileSlice, fn: (r: SliceReader) => T): T {
  const r = new SliceReader(toSlice(src));
  try {
    return fn(r);
  } finally {
    r.close();
  }
}

/** Reads a whole slice into memory (only for small files such as tokenizers). */
export function readSlice(src: string | FileSlice): Uint8Array {
  return withSlice(src, (r) => r.bytes(0, r.length, "the file"));
}

function assertLittleEndian(): void {
  // Typed-array views over file bytes assume the file's byte order (little-endian) is the host's.
  if (os.endianness() !== "LE") throw new Error("tkc's checkpoint readers need a little-endian host");
}
