/* Finds and opens libtlens_cuda.so (see cuda_module.h). */
#include "tlens/cuda_module.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tlens/core.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static const tl_cuda_module *loaded;

/* The directory of the running executable, or "" when /proc is unavailable. */
static void exe_dir(char *out, size_t cap) {
  ssize_t n = readlink("/proc/self/exe", out, cap - 1);
  out[n > 0 ? n : 0] = 0;
  char *slash = strrchr(out, '/');
  if (slash) *slash = 0;
  else out[0] = 0;
}

/* dlopen one candidate; on failure appends "path: reason" to why. */
static const tl_cuda_module *try_open(const char *path, char *why, size_t cap) {
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  const char *err = NULL;
  const tl_cuda_module *m = NULL;
  if (!h) {
    err = dlerror();
  } else {
    tl_cuda_module_get_fn get;
    *(void **)&get = dlsym(h, TL_CUDA_MODULE_ENTRY);
    m = get ? get() : NULL;
    if (!get) err = "no " TL_CUDA_MODULE_ENTRY " in it";
    else if (!m || m->abi != TL_CUDA_MODULE_ABI) err = "built for another version of tlens (ABI mismatch)", m = NULL;
    if (!m) dlclose(h);
  }
  if (!m) { /* dlerror's text already starts with the path */
    size_t len = strlen(why);
    if (h || !err) snprintf(why + len, cap - len, "%s%s: %s", len ? "; " : "", path, err ? err : "unknown error");
    else snprintf(why + len, cap - len, "%s%s", len ? "; " : "", err);
  }
  return m;
}

const tl_cuda_module *tl_cuda_module_load(void) {
  pthread_mutex_lock(&lock);
  const tl_cuda_module *m = loaded;
  if (!m) {
    char why[2048] = "";
    const char *env = getenv("TLENS_CUDA_MODULE");
    if (env && *env) {
      if (strcmp(env, "none") == 0) snprintf(why, sizeof why, "TLENS_CUDA_MODULE=none");
      else m = try_open(env, why, sizeof why);
    } else {
      char dir[PATH_MAX], path[PATH_MAX + 64];
      exe_dir(dir, sizeof dir);
      const char *rel[] = {"/libtlens_cuda.so", "/../lib/libtlens_cuda.so"};
      for (size_t i = 0; i < sizeof rel / sizeof rel[0] && !m && dir[0]; i++) {
        snprintf(path, sizeof path, "%s%s", dir, rel[i]);
        if (access(path, F_OK) == 0) m = try_open(path, why, sizeof why);
      }
      if (!m && !why[0])
        snprintf(why, sizeof why, "libtlens_cuda.so is not beside the executable (%s) or in %s/../lib; this build has "
                 "no CUDA backend (rebuild with the CUDA toolkit and -DTLENS_CUDA=ON) or set TLENS_CUDA_MODULE",
                 dir[0] ? dir : "?", dir[0] ? dir : "?");
    }
    if (!m) tl_fail("cuda: the CUDA backend module is unavailable: %s", why);
    loaded = m;
  }
  pthread_mutex_unlock(&lock);
  return m;
}
