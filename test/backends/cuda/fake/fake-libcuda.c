/* A stand-in for libcuda.so.1 for tests on machines without a GPU. "Device" memory is host
 * memory, and the kernels vadd, block_sum, reverse_tile (test/backends/llvm/fixtures) and accum
 * (bench/device) run on the CPU, reading their arguments through the kernelParams table
 * exactly as the driver would. Stream capture records launches (copying their parameters, as
 * the driver does) and graph launch replays them. Only what backends/cuda binds is provided.
 * FAKE_CUDA_INIT_ERROR=<code> makes cuInit fail with that code. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef int CUresult;
typedef uint64_t CUdeviceptr;

enum { OK = 0, INVALID_VALUE = 1, NO_DEVICE = 100, INVALID_PTX = 218, INVALID_HANDLE = 400, NOT_FOUND = 500 };

static const char *err_name(int c) {
  switch (c) {
  case OK: return "CUDA_SUCCESS";
  case INVALID_VALUE: return "CUDA_ERROR_INVALID_VALUE";
  case NO_DEVICE: return "CUDA_ERROR_NO_DEVICE";
  case INVALID_PTX: return "CUDA_ERROR_INVALID_PTX";
  case INVALID_HANDLE: return "CUDA_ERROR_INVALID_HANDLE";
  case NOT_FOUND: return "CUDA_ERROR_NOT_FOUND";
  default: return NULL;
  }
}
static const char *err_string(int c) {
  switch (c) {
  case OK: return "no error";
  case INVALID_VALUE: return "invalid argument";
  case NO_DEVICE: return "no CUDA-capable device is detected";
  case INVALID_PTX: return "a PTX JIT compilation failed";
  case INVALID_HANDLE: return "invalid resource handle";
  case NOT_FOUND: return "named symbol not found";
  default: return NULL;
  }
}
CUresult cuGetErrorName(CUresult c, const char **s) { *s = err_name(c); return *s ? OK : INVALID_VALUE; }
CUresult cuGetErrorString(CUresult c, const char **s) { *s = err_string(c); return *s ? OK : INVALID_VALUE; }

static int initialized;
CUresult cuInit(unsigned flags) {
  const char *e = getenv("FAKE_CUDA_INIT_ERROR");
  if (flags) return INVALID_VALUE;
  if (e) return atoi(e);
  initialized = 1;
  return OK;
}
CUresult cuDriverGetVersion(int *v) { *v = 13000; return OK; }
CUresult cuDeviceGetCount(int *n) { *n = initialized ? 1 : 0; return OK; }
CUresult cuDeviceGet(int *d, int ordinal) { if (ordinal != 0) return INVALID_VALUE; *d = 0; return OK; }
CUresult cuDeviceGetName(char *name, int len, int dev) { snprintf(name, len, "Fake H100 (CPU)"); return dev ? INVALID_VALUE : OK; }
CUresult cuDeviceTotalMem_v2(size_t *b, int dev) { *b = (size_t)80 << 30; return dev ? INVALID_VALUE : OK; }
CUresult cuDeviceGetAttribute(int *v, int a, int dev) {
  switch (a) {
  case 1: *v = 1024; break;      /* max threads per block */
  case 8: *v = 49152; break;     /* shared memory per block */
  case 10: *v = 32; break;       /* warp size */
  case 12: *v = 65536; break;    /* registers per block */
  case 16: *v = 132; break;      /* multiprocessors */
  case 36: *v = 2619000; break;  /* memory clock, kHz */
  case 37: *v = 5120; break;     /* bus width, bits */
  case 38: *v = 52428800; break; /* L2 */
  case 75: *v = 9; break;
  case 76: *v = 0; break;
  case 81: *v = 233472; break;
  case 97: *v = 232448; break;   /* opt-in shared memory per block */
  default: return INVALID_VALUE;
  }
  return dev ? INVALID_VALUE : OK;
}
static int ctx_token;
CUresult cuDevicePrimaryCtxRetain(void **ctx, int dev) { *ctx = &ctx_token; return dev ? INVALID_VALUE : OK; }
CUresult cuDevicePrimaryCtxRelease_v2(int dev) { return dev ? INVALID_VALUE : OK; }
CUresult cuCtxSetCurrent(void *ctx) { return ctx == &ctx_token ? OK : INVALID_HANDLE; }
CUresult cuCtxSynchronize(void) { return OK; }

/* Modules and functions: a function handle points at one of these. */
/* Each fake kernel takes `nptr` pointers then one 4-byte integer, like the fixtures. */
typedef struct { const char *name; int regs; int nptr; int max_dyn_smem; } Func;
static Func funcs[] = {{"vadd", 12, 3, 0}, {"block_sum", 13, 2, 0}, {"accum", 10, 3, 0},
                       {"reverse_tile", 14, 2, 0}, {"hfma_relu", 16, 5, 0}};
static int module_token;
CUresult cuModuleLoadDataEx(void **mod, const void *image, unsigned n, int *opts, void **vals) {
  char *info = NULL, *err = NULL;
  size_t info_n = 0, err_n = 0;
  for (unsigned i = 0; i < n; i++) {
    if (opts[i] == 3) info = vals[i];
    if (opts[i] == 4) info_n = (size_t)vals[i];
    if (opts[i] == 5) err = vals[i];
    if (opts[i] == 6) err_n = (size_t)vals[i];
  }
  if (strstr(image, "bogus")) {
    if (err && err_n) snprintf(err, err_n, "ptxas application ptx input, line 4; error   : Not a name of any known instruction: 'bogus'");
    return INVALID_PTX;
  }
  if (info && info_n) snprintf(info, info_n, "ptxas info    : Used 12 registers (fake JIT)");
  *mod = &module_token;
  return OK;
}
CUresult cuModuleUnload(void *mod) { return mod == &module_token ? OK : INVALID_HANDLE; }
CUresult cuModuleGetFunction(void **fn, void *mod, const char *name) {
  if (mod != &module_token) return INVALID_HANDLE;
  for (size_t i = 0; i < sizeof funcs / sizeof *funcs; i++)
    if (!strcmp(funcs[i].name, name)) { *fn = &funcs[i]; return OK; }
  return NOT_FOUND;
}
CUresult cuFuncGetAttribute(int *v, int a, void *fn) {
  Func *f = fn;
  switch (a) {
  case 0: *v = 1024; return OK;
  case 1: *v = !strcmp(f->name, "block_sum") ? 32 : 0; return OK;
  case 3: *v = 0; return OK;
  case 4: *v = f->regs; return OK;
  case 8: *v = f->max_dyn_smem; return OK;
  }
  return INVALID_VALUE;
}
CUresult cuFuncSetAttribute(void *fn, int a, int v) {
  if (a != 8 || v > 232448) return INVALID_VALUE;
  ((Func *)fn)->max_dyn_smem = v;
  return OK;
}

/* Memory. */
CUresult cuMemAlloc_v2(CUdeviceptr *p, size_t n) { void *m = calloc(1, n); if (!m) return 2; *p = (CUdeviceptr)m; return OK; }
CUresult cuMemFree_v2(CUdeviceptr p) { free((void *)p); return OK; }
CUresult cuMemcpyHtoD_v2(CUdeviceptr d, const void *s, size_t n) { memcpy((void *)d, s, n); return OK; }
CUresult cuMemcpyDtoH_v2(void *d, CUdeviceptr s, size_t n) { memcpy(d, (void *)s, n); return OK; }
CUresult cuMemcpyDtoD_v2(CUdeviceptr d, CUdeviceptr s, size_t n) { memmove((void *)d, (void *)s, n); return OK; }
CUresult cuMemsetD8_v2(CUdeviceptr d, unsigned char v, size_t n) { memset((void *)d, v, n); return OK; }

/* Streams, capture and graphs: a launch on a capturing stream is recorded, not run. */
typedef struct { Func *f; unsigned grid, block, smem; unsigned char params[64]; } Launch;
typedef struct { int capturing; Launch *rec; int n; } Stream;
typedef struct { Launch *rec; int n; } Graph;

CUresult cuStreamCreate(void **s, unsigned flags) { *s = calloc(1, sizeof(Stream)); (void)flags; return OK; }
CUresult cuStreamDestroy_v2(void *s) { free(s); return OK; }
CUresult cuStreamSynchronize(void *s) { (void)s; return OK; }
#define CAPTURING(s) ((s) && ((Stream *)(s))->capturing)
CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr d, const void *s, size_t n, void *st) { if (CAPTURING(st)) return 900; return cuMemcpyHtoD_v2(d, s, n); }
CUresult cuMemcpyDtoHAsync_v2(void *d, CUdeviceptr s, size_t n, void *st) { if (CAPTURING(st)) return 900; return cuMemcpyDtoH_v2(d, s, n); }
CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr d, CUdeviceptr s, size_t n, void *st) { (void)st; return cuMemcpyDtoD_v2(d, s, n); }
/* Page-locked host memory is plain host memory here; a count of live buffers for the tests. */
static int host_buffers;
int fake_host_buffers(void) { return host_buffers; }
CUresult cuMemAllocHost_v2(void **p, size_t n) { *p = calloc(1, n); if (!*p) return 2; host_buffers++; return OK; }
CUresult cuMemFreeHost(void *p) { free(p); host_buffers--; return OK; }
CUresult cuMemsetD8Async(CUdeviceptr d, unsigned char v, size_t n, void *st) { (void)st; return cuMemsetD8_v2(d, v, n); }

/* The kernels, reading a packed parameter block laid out as backends/gpu-common/args.ts does. */
static void run(const Launch *l) {
  const unsigned char *p = l->params;
  unsigned threads = l->grid * l->block;
  if (!strcmp(l->f->name, "vadd")) {
    float *a = *(float **)p, *b = *(float **)(p + 8), *c = *(float **)(p + 16);
    int n = *(int *)(p + 24);
    for (unsigned i = 0; i < threads && (int)i < n; i++) c[i] = a[i] + b[i];
  } else if (!strcmp(l->f->name, "block_sum")) {
    float *x = *(float **)p, *out = *(float **)(p + 8);
    int n = *(int *)(p + 16);
    for (unsigned g = 0; g < l->grid; g++) {
      float s = 0;
      for (int i = g * 256; i < (int)(g + 1) * 256 && i < n; i++) s += x[i];
      out[g] = s;
    }
  } else if (!strcmp(l->f->name, "accum")) { /* y[i] += x[i] * s[0] */
    float *y = *(float **)p, *x = *(float **)(p + 8), *s = *(float **)(p + 16);
    int n = *(int *)(p + 24);
    for (unsigned i = 0; i < threads && (int)i < n; i++) y[i] += x[i] * s[0];
  } else if (!strcmp(l->f->name, "hfma_relu")) { /* two halves per thread */
    _Float16 *a = *(_Float16 **)p, *b = *(_Float16 **)(p + 8), *c = *(_Float16 **)(p + 16);
    _Float16 *y = *(_Float16 **)(p + 24);
    float *s = *(float **)(p + 32);
    int n = *(int *)(p + 40);
    for (unsigned i = 0; i < 2 * threads && (int)i < n; i++) {
      double f = (double)a[i] * (double)b[i] + (double)c[i]; /* exact for these inputs */
      y[i] = (_Float16)(f > 0 ? f : 0);
      s[i] = (float)y[i];
    }
  } else if (!strcmp(l->f->name, "reverse_tile")) {
    float *x = *(float **)p, *y = *(float **)(p + 8);
    unsigned tile = *(unsigned *)(p + 16);
    if (l->smem < 4 * tile) return; /* the real kernel would read past its shared memory */
    for (unsigned g = 0; g < l->grid; g++)
      for (unsigned j = 0; j < tile; j++) y[g * tile + j] = x[g * tile + tile - 1 - j];
  }
}

CUresult cuLaunchKernel(void *fn, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                        unsigned smem, void *stream, void **params, void **extra) {
  Func *f = fn;
  if (!f || extra || !params || gy != 1 || gz != 1 || by != 1 || bz != 1) return INVALID_VALUE;
  if (smem > 49152 && smem > (unsigned)f->max_dyn_smem) return INVALID_VALUE;
  Launch l = {f, gx, bx, smem, {0}};
  /* Gather each field through its address, as the driver does: pointers are 8 bytes, i32 4. */
  for (int i = 0; i < f->nptr; i++) memcpy(l.params + 8 * i, params[i], 8);
  memcpy(l.params + 8 * f->nptr, params[f->nptr], 4);
  if (CAPTURING(stream)) {
    Stream *s = stream;
    s->rec = realloc(s->rec, sizeof(Launch) * (s->n + 1));
    s->rec[s->n++] = l;
    return OK;
  }
  run(&l);
  return OK;
}

CUresult cuStreamBeginCapture_v2(void *s, int mode) {
  if (!s || mode != 0) return INVALID_VALUE;
  ((Stream *)s)->capturing = 1;
  return OK;
}
CUresult cuStreamEndCapture(void *s, void **graph) {
  Stream *st = s;
  if (!st || !st->capturing) return INVALID_VALUE;
  Graph *g = malloc(sizeof(Graph));
  g->rec = st->rec; g->n = st->n;
  st->rec = NULL; st->n = 0; st->capturing = 0;
  *graph = g;
  return OK;
}
CUresult cuGraphInstantiateWithFlags(void **exec, void *graph, unsigned long long flags) {
  Graph *g = graph, *e = malloc(sizeof(Graph));
  if (flags) return INVALID_VALUE;
  e->n = g->n;
  e->rec = malloc(sizeof(Launch) * (g->n + 1));
  memcpy(e->rec, g->rec, sizeof(Launch) * g->n);
  *exec = e;
  return OK;
}
CUresult cuGraphLaunch(void *exec, void *s) {
  Graph *e = exec;
  (void)s;
  for (int i = 0; i < e->n; i++) run(&e->rec[i]);
  return OK;
}
CUresult cuGraphDestroy(void *g) { free(((Graph *)g)->rec); free(g); return OK; }
CUresult cuGraphExecDestroy(void *g) { return cuGraphDestroy(g); }

/* Events carry the host time at which they were recorded. */
CUresult cuEventCreate(void **e, unsigned flags) { *e = calloc(1, sizeof(double)); (void)flags; return OK; }
CUresult cuEventRecord(void *e, void *s) {
  struct timespec t;
  (void)s;
  clock_gettime(CLOCK_MONOTONIC, &t);
  *(double *)e = t.tv_sec * 1e3 + t.tv_nsec / 1e6;
  return OK;
}
CUresult cuEventSynchronize(void *e) { (void)e; return OK; }
CUresult cuEventElapsedTime_v2(float *ms, void *a, void *b) { *ms = (float)(*(double *)b - *(double *)a); return OK; }
CUresult cuEventDestroy_v2(void *e) { free(e); return OK; }
