/**
 * Trivial streaming kernels for the Vulkan GEMV benchmark (build-vulkan-bench.ts): what bandwidth a
 * plain compute shader reaches on the device, against which the q4f16_1 GEMVs are measured. Each is
 * y[i] = x[i] over one dimension; the schedules (in the builder) decide the threads and how many
 * elements each one moves.
 */
import { kernel, type f16, type u32, type Tensor, type Sym } from "../../dsl/index.ts";

/** y = x, f16 elements (2 bytes per thread per element). */
export const copyF16 = kernel(function copyF16(x: Tensor<f16, [Sym<"n">]>, y: Tensor<f16, [Sym<"n">]>) {
  for (let i = 0; i < y.shape[0]; i++) {
    y[i] = x[i];
  }
});

/** y = x, u32 elements (4 bytes per thread per element). */
export const copyU32 = kernel(function copyU32(x: Tensor<u32, [Sym<"n">]>, y: Tensor<u32, [Sym<"n">]>) {
  for (let i = 0; i < y.shape[0]; i++) {
    y[i] = x[i];
  }
});
