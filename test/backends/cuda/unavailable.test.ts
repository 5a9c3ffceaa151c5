// Without libcuda (this development machine has none) the runtime fails with one clear sentence.
// Its own test file: the loaded library is cached per process, and vitest isolates files.
import { describe, expect, it } from "vitest";
import { createCudaRuntime } from "../../../backends/cuda/runtime.ts";
import { CudaUnavailableError } from "../../../backends/cuda/errors.ts";

describe("CUDA unavailable", () => {
  it("names the missing library and what provides it", () => {
    process.env.TKC_LIBCUDA = "/nonexistent/libcuda.so.1";
    let err: unknown;
    try {
      createCudaRuntime();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CudaUnavailableError);
    const msg = (err as Error).message;
    expect(msg).toMatch(
      /^libcuda\.so\.1 \(the NVIDIA driver's CUDA library\) could not be loaded \(.*\/nonexistent\/libcuda\.so\.1.*\); /,
    );
    expect(msg).toContain("needs a machine with an NVIDIA GPU and its driver installed");
    expect(msg.split("\n")).toHaveLength(1);
  });

  it("importing the backend does not touch the driver", async () => {
    const mod = await import("../../../backends/cuda/index.ts");
    expect(typeof mod.createCudaRuntime).toBe("function");
  });
});
