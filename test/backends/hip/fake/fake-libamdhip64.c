/* A stand-in for libamdhip64.so: the fake libcuda with HIP's names on top, so the HIP bindings'
 * symbol names and prototypes are exercised on a machine without ROCm. Where HIP's signature
 * differs from CUDA's (hipGetErrorName returns the string; hipGraphInstantiate takes an error
 * node and log; hipMalloc hands out a void *), the shim adapts. */
#include "../../cuda/fake/fake-libcuda.c"

const char *hipGetErrorName(int c) { const char *s = err_name(c); return s ? s : "hipErrorUnknown"; }
int hipInit(unsigned f) { return cuInit(f); }
int hipGetDeviceCount(int *n) { return cuDeviceGetCount(n); }
int hipSetDevice(int d) { return d == 0 ? 0 : 101; }
int hipDeviceGetName(char *n, int len, int d) { snprintf(n, len, "Fake MI300X (CPU)"); return d ? 101 : 0; }
int hipDeviceTotalMem(size_t *b, int d) { return cuDeviceTotalMem_v2(b, d); }
int hipDeviceGetAttribute(int *v, int a, int d) {
  switch (a) {
  case 63: *v = 304; return 0; /* multiprocessors (CUs) */
  case 87: *v = 64; return 0;  /* warp size */
  case 74: *v = 65536; return 0;
  case 75: *v = 65536; return 0;
  case 56: *v = 1024; return 0;
  }
  (void)d;
  return 1;
}
int hipModuleLoadData(void **m, const void *image) { return cuModuleLoadDataEx(m, image, 0, NULL, NULL); }
int hipModuleUnload(void *m) { return cuModuleUnload(m); }
int hipModuleGetFunction(void **f, void *m, const char *n) { return cuModuleGetFunction(f, m, n); }
int hipFuncGetAttribute(int *v, int a, void *f) { return cuFuncGetAttribute(v, a, f); }
int hipMalloc(void **p, size_t n) { return cuMemAlloc_v2((CUdeviceptr *)p, n); }
int hipFree(void *p) { return cuMemFree_v2((CUdeviceptr)p); }
int hipMemcpyHtoD(void *d, const void *s, size_t n) { return cuMemcpyHtoD_v2((CUdeviceptr)d, s, n); }
int hipMemcpyDtoH(void *d, void *s, size_t n) { return cuMemcpyDtoH_v2(d, (CUdeviceptr)s, n); }
int hipMemcpyDtoD(void *d, void *s, size_t n) { return cuMemcpyDtoD_v2((CUdeviceptr)d, (CUdeviceptr)s, n); }
int hipMemcpyHtoDAsync(void *d, const void *s, size_t n, void *st) { return cuMemcpyHtoDAsync_v2((CUdeviceptr)d, s, n, st); }
int hipMemcpyDtoHAsync(void *d, void *s, size_t n, void *st) { return cuMemcpyDtoHAsync_v2(d, (CUdeviceptr)s, n, st); }
int hipHostMalloc(void **p, size_t n, unsigned flags) { (void)flags; return cuMemAllocHost_v2(p, n); }
int hipHostFree(void *p) { return cuMemFreeHost(p); }
int hipMemcpyDtoDAsync(void *d, void *s, size_t n, void *st) { return cuMemcpyDtoDAsync_v2((CUdeviceptr)d, (CUdeviceptr)s, n, st); }
int hipMemsetD8(void *d, unsigned char v, size_t n) { return cuMemsetD8_v2((CUdeviceptr)d, v, n); }
int hipMemsetD8Async(void *d, unsigned char v, size_t n, void *st) { return cuMemsetD8Async((CUdeviceptr)d, v, n, st); }
int hipModuleLaunchKernel(void *f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                          unsigned smem, void *st, void **params, void **extra) {
  return cuLaunchKernel(f, gx, gy, gz, bx, by, bz, smem, st, params, extra);
}
int hipStreamCreateWithFlags(void **s, unsigned f) { return cuStreamCreate(s, f); }
int hipStreamDestroy(void *s) { return cuStreamDestroy_v2(s); }
int hipStreamSynchronize(void *s) { return cuStreamSynchronize(s); }
int hipEventCreateWithFlags(void **e, unsigned f) { return cuEventCreate(e, f); }
int hipEventRecord(void *e, void *s) { return cuEventRecord(e, s); }
int hipEventSynchronize(void *e) { return cuEventSynchronize(e); }
int hipEventElapsedTime(float *ms, void *a, void *b) { return cuEventElapsedTime_v2(ms, a, b); }
int hipEventDestroy(void *e) { return cuEventDestroy_v2(e); }
int hipStreamBeginCapture(void *s, int mode) { return cuStreamBeginCapture_v2(s, mode); }
int hipStreamEndCapture(void *s, void **g) { return cuStreamEndCapture(s, g); }
int hipGraphInstantiate(void **e, void *g, void *node, char *log, size_t n) {
  (void)node; (void)log; (void)n;
  return cuGraphInstantiateWithFlags(e, g, 0);
}
int hipGraphLaunch(void *e, void *s) { return cuGraphLaunch(e, s); }
int hipGraphExecDestroy(void *e) { return cuGraphExecDestroy(e); }
int hipGraphDestroy(void *g) { return cuGraphDestroy(g); }
int hipDeviceSynchronize(void) { return 0; }
