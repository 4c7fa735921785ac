/* HDF5 checkpoints: collective writer (parallel HDF5 over MPI-IO), validating
 * reader, newest-valid search, rotation and compatibility checks.
 * See include/tlens/ckpt.h for the file layout and the contracts. */
#include "tlens/ckpt.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tlens/core.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "checkpoint checksums are defined on little-endian bytes; this host is big-endian"
#endif

/* Elements read per step while verifying checksums (bounded memory). */
#define VERIFY_CHUNK ((uint64_t)1 << 22)

/* ---- CRC-32 combination ----
 * CRC-32 is linear over GF(2): crc(A||B) = crc(A) * x^(8 len(B)) mod P  xor  crc(B)
 * (the pre/post inversions cancel out). Polynomials are held bit-reflected, as in
 * the CRC itself: bit 31 is x^0, bit 0 is x^31. */
#define CRC_POLY 0xedb88320u

static uint32_t gf2_mulmod(uint32_t a, uint32_t b) {
  uint32_t prod = 0;
  for (int k = 0; k < 32; k++) {          /* k-th coefficient of a is bit 31-k */
    if (a & (0x80000000u >> k)) prod ^= b;
    b = (b & 1) ? (b >> 1) ^ CRC_POLY : b >> 1; /* b *= x (mod P) */
  }
  return prod;
}

uint32_t tl_crc32_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b) {
  uint32_t shift = 0x80000000u; /* x^0 */
  uint32_t base = 0x00800000u;  /* x^8: one byte */
  for (uint64_t n = len_b; n; n >>= 1) {
    if (n & 1) shift = gf2_mulmod(shift, base);
    base = gf2_mulmod(base, base);
  }
  return gf2_mulmod(shift, crc_a) ^ crc_b;
}

/* ---- small helpers ---- */
static void h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

/* The API-level description on HDF5's error stack, for messages, with the system's
 * error text where a deeper entry carries one ("No space left on device"). */
typedef struct {
  char top[256], sys[128];
} h5_msg;
static herr_t h5_err_walk(unsigned n, const H5E_error2_t *e, void *p) {
  h5_msg *m = p;
  if (!e->desc) return 0;
  if (n == 0) snprintf(m->top, sizeof m->top, "%s", e->desc);
  const char *at = strstr(e->desc, "error message = '");
  if (at) {
    at += strlen("error message = '");
    const char *end = strchr(at, '\'');
    int len = end ? (int)(end - at) : (int)strlen(at);
    snprintf(m->sys, sizeof m->sys, "%.*s", len, at);
  }
  return 0;
}
/* HDF5's MPI-IO driver reports a failed write without the system's reason; the
 * two that matter to a user are told apart here from the file system and the
 * process limits. */
static const char *write_cause(const char *path) {
  char *dir = tl_strdup(path);
  char *slash = strrchr(dir, '/');
  if (slash) *slash = 0;
  struct statvfs fs;
  const char *why = "";
  struct rlimit lim;
  if (statvfs(slash ? dir : ".", &fs) == 0 && (uint64_t)fs.f_bavail * fs.f_frsize < ((uint64_t)1 << 20))
    why = "No space left on device";
  else if (getrlimit(RLIMIT_FSIZE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY)
    why = "File too large (the file size limit, ulimit -f)";
  free(dir);
  return why;
}

static const char *h5_err(void) {
  static char msg[400];
  h5_msg m = {"HDF5 error", ""};
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, h5_err_walk, &m);
  if (m.sys[0]) snprintf(msg, sizeof msg, "%s: %s", m.top, m.sys);
  else snprintf(msg, sizeof msg, "%s", m.top);
  return msg;
}

char *tl_ckpt_path(const char *dir, uint64_t step) {
  return tl_sprintf("%s/step_%08" PRIu64 ".h5", dir, step);
}

static const char *type_name(tl_ckpt_type t) {
  switch (t) {
    case TL_CKPT_F32: return "f32";
    case TL_CKPT_F64: return "f64";
    case TL_CKPT_U64: return "u64";
    case TL_CKPT_STR: return "string";
  }
  return "?";
}

static hid_t file_type(tl_ckpt_type t) {
  return t == TL_CKPT_F32 ? H5T_IEEE_F32LE : t == TL_CKPT_F64 ? H5T_IEEE_F64LE : H5T_STD_U64LE;
}
static hid_t mem_type(tl_ckpt_type t) {
  return t == TL_CKPT_F32 ? H5T_NATIVE_FLOAT : t == TL_CKPT_F64 ? H5T_NATIVE_DOUBLE : H5T_NATIVE_UINT64;
}
static size_t type_size(tl_ckpt_type t) { return t == TL_CKPT_F32 ? 4 : t == TL_CKPT_STR ? 1 : 8; }

/* Item names: path components of [A-Za-z0-9_.-], separated by single '/'. */
static int check_name(const char *name) {
  if (!name || !*name) return tl_fail("ckpt: empty item name");
  size_t n = strlen(name);
  if (name[0] == '/' || name[n - 1] == '/' || strstr(name, "//"))
    return tl_fail("ckpt: item name '%s' must be path components separated by single '/'", name);
  for (const char *p = name; *p; p++) {
    char c = *p;
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
              c == '-' || c == '/';
    if (!ok) return tl_fail("ckpt: item name '%s' has character '%c'; allowed: letters, digits, _ . - /", name, c);
  }
  return 0;
}

/* Selects the flat range [a, b) of a row-major array as a union of hyperslabs.
 * A contiguous range of a multi-dimensional array is at most: a partial leading
 * row, a block of whole rows and a partial trailing row, each split the same way
 * one dimension down. HDF5 visits a selection in row-major order, which is the
 * flat order, so the memory side can be a plain 1-D buffer. */
typedef struct {
  hid_t space;
  int nd;
  const hsize_t *dims;
  hsize_t start[TL_CKPT_MAX_DIMS], count[TL_CKPT_MAX_DIMS];
  int nboxes;
} flat_sel;

static int sel_box(flat_sel *s) {
  herr_t e = H5Sselect_hyperslab(s->space, s->nboxes++ ? H5S_SELECT_OR : H5S_SELECT_SET, s->start, NULL, s->count,
                                 NULL);
  return e < 0 ? tl_fail("ckpt: cannot select a hyperslab: %s", h5_err()) : 0;
}

static int sel_range(flat_sel *s, int k, hsize_t a, hsize_t b) {
  if (a >= b) return 0;
  hsize_t inner = 1; /* elements per index of dimension k */
  for (int j = k + 1; j < s->nd; j++) inner *= s->dims[j];
  hsize_t ra = a / inner, rb = b / inner;
  if (a % inner == 0 && b % inner == 0) { /* whole rows ra..rb-1 */
    s->start[k] = ra;
    s->count[k] = rb - ra;
    for (int j = k + 1; j < s->nd; j++) s->start[j] = 0, s->count[j] = s->dims[j];
    return sel_box(s);
  }
  s->count[k] = 1;
  if ((b - 1) / inner == ra) { /* inside one row */
    s->start[k] = ra;
    return sel_range(s, k + 1, a - ra * inner, b - ra * inner);
  }
  hsize_t full_from = ra;
  if (a % inner) { /* partial leading row */
    s->start[k] = ra;
    TL_TRY(sel_range(s, k + 1, a % inner, inner));
    full_from = ra + 1;
  }
  if (rb > full_from) {
    s->start[k] = full_from;
    s->count[k] = rb - full_from;
    for (int j = k + 1; j < s->nd; j++) s->start[j] = 0, s->count[j] = s->dims[j];
    TL_TRY(sel_box(s));
  }
  if (b % inner) { /* partial trailing row */
    s->start[k] = rb;
    s->count[k] = 1;
    TL_TRY(sel_range(s, k + 1, 0, b % inner));
  }
  return 0;
}

/* File selection for elements [off, off+n) of dataspace `space`; scalars have
 * the single element 0. */
static int select_flat(hid_t space, uint64_t off, uint64_t n) {
  int nd = H5Sget_simple_extent_ndims(space);
  if (n == 0) return H5Sselect_none(space) < 0 ? tl_fail("ckpt: H5Sselect_none failed") : 0;
  if (nd == 0) return H5Sselect_all(space) < 0 ? tl_fail("ckpt: H5Sselect_all failed") : 0;
  hsize_t dims[TL_CKPT_MAX_DIMS];
  H5Sget_simple_extent_dims(space, dims, NULL);
  flat_sel s = {.space = space, .nd = nd, .dims = dims};
  return sel_range(&s, 0, off, off + n);
}

/* ---- attributes ---- */
static int attr_write(hid_t obj, const char *name, hid_t ftype, hid_t mtype, const void *v) {
  hid_t sp = H5Screate(H5S_SCALAR);
  hid_t a = H5Aexists(obj, name) > 0 ? H5Aopen(obj, name, H5P_DEFAULT)
                                     : H5Acreate2(obj, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT);
  herr_t e = a < 0 ? -1 : H5Awrite(a, mtype, v);
  if (a >= 0) H5Aclose(a);
  H5Sclose(sp);
  return e < 0 ? tl_fail("ckpt: cannot write attribute '%s': %s", name, h5_err()) : 0;
}
static int attr_write_u64(hid_t obj, const char *name, uint64_t v) {
  return attr_write(obj, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, &v);
}
static int attr_write_str(hid_t obj, const char *name, const char *v) {
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, strlen(v));
  H5Tset_strpad(t, H5T_STR_NULLPAD);
  int rc = attr_write(obj, name, t, t, v);
  H5Tclose(t);
  return rc;
}
static int attr_read_u64(hid_t obj, const char *name, uint64_t *v) {
  if (H5Aexists(obj, name) <= 0) return tl_fail("attribute '%s' is missing", name);
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  hid_t sp = a < 0 ? -1 : H5Aget_space(a);
  hid_t t = a < 0 ? -1 : H5Aget_type(a);
  int ok = a >= 0 && H5Sget_simple_extent_npoints(sp) == 1 && H5Tget_class(t) == H5T_INTEGER &&
           H5Aread(a, H5T_NATIVE_UINT64, v) >= 0;
  if (t >= 0) H5Tclose(t);
  if (sp >= 0) H5Sclose(sp);
  if (a >= 0) H5Aclose(a);
  return ok ? 0 : tl_fail("attribute '%s' is not a readable integer", name);
}
static int attr_read_str(hid_t obj, const char *name, char *out, size_t cap) {
  if (H5Aexists(obj, name) <= 0) return tl_fail("attribute '%s' is missing", name);
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  hid_t t = a < 0 ? -1 : H5Aget_type(a);
  int ok = 0;
  if (t >= 0 && H5Tget_class(t) == H5T_STRING && !H5Tis_variable_str(t) && H5Tget_size(t) < cap) {
    memset(out, 0, cap);
    ok = H5Aread(a, t, out) >= 0;
  }
  if (t >= 0) H5Tclose(t);
  if (a >= 0) H5Aclose(a);
  return ok ? 0 : tl_fail("attribute '%s' is not a short string", name);
}

/* ==== writer ==== */
struct tl_ckpt_writer {
  tl_dist *d;
  char *dir, *tmp, *final;
  uint64_t step;
  hid_t file, dxpl, lcpl;
  bool failed;
  /* progress (rank 0): shown only once a write has taken `after` seconds */
  tl_progress prog;
  bool prog_on;
  double t0, after;
  int64_t bytes, expect; /* written so far; expected: the previous checkpoint's size, else 0 */
};

static int64_t previous_size(const char *dir);

/* How long a write may take before it shows progress: TLENS_CKPT_PROGRESS_AFTER
 * seconds (tests set 0), else 5. */
static double progress_after(void) {
  const char *v = getenv("TLENS_CKPT_PROGRESS_AFTER");
  char *end = NULL;
  double s = v ? strtod(v, &end) : 5;
  return v && (end == v || *end || !(s >= 0)) ? 5 : s;
}

/* Rank 0, after each item: `bytes` more are written. The first report comes when
 * the write has taken `after` seconds; a bar on a terminal, plain lines otherwise
 * (tl_progress). Sizes in kB. */
static void progress_add(tl_ckpt_writer *w, uint64_t bytes) {
  if (w->d->rank != 0) return;
  w->bytes += (int64_t)bytes;
  if (!w->prog_on) {
    if (tl_now() - w->t0 < w->after) return;
    char what[64];
    snprintf(what, sizeof what, "writing checkpoint %s", tl_basename(w->final));
    tl_progress_begin(&w->prog, what, 0, "kB", true, true);
    w->prog.t0 = w->prog.last = w->t0; /* the rate and ETA count from the start of the write */
    w->prog_on = true;
  }
  int64_t kb = w->bytes / 1000, total = w->expect / 1000;
  /* the previous file's size while it is ahead, else unknown (no percentage) until
   * the commit, whose line is the 100% */
  w->prog.total = total > kb ? total : 0;
  tl_progress_update(&w->prog, kb, (double)kb);
}

/* Every rank ends each writer call with the same verdict (an HDF5 or input error
 * on one rank must not leave the others waiting in the next collective). */
static int writer_agree(tl_ckpt_writer *w, int rc) {
  if (tl_dist_agree(w->d, rc) != 0) {
    w->failed = true;
    return -1;
  }
  return 0;
}

int tl_ckpt_begin(tl_ckpt_writer **out, tl_dist *d, const char *dir, uint64_t step) {
  *out = NULL;
  h5_quiet();
  tl_ckpt_writer *w = tl_calloc(1, sizeof *w);
  w->d = d;
  w->dir = tl_strdup(dir);
  w->step = step;
  w->final = tl_ckpt_path(dir, step);
  w->tmp = tl_sprintf("%s.tmp", w->final);
  w->file = w->dxpl = w->lcpl = H5I_INVALID_HID;
  w->t0 = tl_now();
  w->after = progress_after();
  int rc = 0;
  if (d->rank == 0) {
    w->expect = previous_size(dir);
    rc = tl_mkdirs(dir);
    if (rc) tl_fail_context("ckpt: cannot create checkpoint dir %s", dir);
  }
  if (tl_dist_agree(d, rc) != 0) goto fail;

  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  H5Pset_fapl_mpio(fapl, d->comm, MPI_INFO_NULL);
  /* v1.8+ object formats carry checksums on the file's metadata, so a damaged
   * header is reported as an error instead of being misread. */
  H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST);
  w->file = H5Fcreate(w->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
  H5Pclose(fapl);
  rc = w->file < 0 ? tl_fail("ckpt: cannot create %s: %s", w->tmp, h5_err()) : 0;
  if (tl_dist_agree(d, rc) != 0) goto fail;

  w->dxpl = H5Pcreate(H5P_DATASET_XFER);
  H5Pset_dxpl_mpio(w->dxpl, H5FD_MPIO_COLLECTIVE);
  w->lcpl = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(w->lcpl, 1);
  /* complete = 0 now, set to 1 last in tl_ckpt_commit */
  rc = attr_write_str(w->file, "magic", TL_CKPT_MAGIC);
  if (!rc) rc = attr_write_u64(w->file, "format_version", TL_CKPT_FORMAT_VERSION);
  if (!rc) rc = attr_write_u64(w->file, "step", step);
  if (!rc) rc = attr_write_u64(w->file, "world_size", (uint64_t)d->world);
  if (!rc) rc = attr_write_u64(w->file, "complete", 0);
  if (writer_agree(w, rc) != 0) goto fail;
  *out = w;
  return 0;
fail:
  tl_ckpt_abort(w);
  return -1;
}

/* Creates the dataset and writes [off, off+n) of it from buf on this rank (n may
 * be 0), collectively; then stores the whole array's crc as an attribute. */
static int write_dataset(tl_ckpt_writer *w, const char *name, hid_t ftype, hid_t mtype, int ndim,
                         const uint64_t *shape, uint64_t off, uint64_t n, const void *buf, uint32_t crc) {
  hsize_t dims[TL_CKPT_MAX_DIMS];
  uint64_t total = 1;
  for (int i = 0; i < ndim; i++) dims[i] = shape[i], total *= shape[i];
  hid_t fspace = ndim == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(ndim, dims, NULL);
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER); /* every element is written once */
  hid_t ds = H5Dcreate2(w->file, name, ftype, fspace, w->lcpl, dcpl, H5P_DEFAULT);
  H5Pclose(dcpl);
  int rc = 0;
  if (ds < 0) rc = tl_fail("ckpt: cannot create item '%s' in %s (duplicate name?): %s", name, w->tmp, h5_err());
  hsize_t mn = n;
  hid_t mspace = H5Screate_simple(1, &mn, NULL);
  if (!rc && n == 0) H5Sselect_none(mspace);
  if (!rc) rc = select_flat(fspace, off, n);
  /* an empty array has nothing to write (HDF5 refuses a zero-size transfer) */
  if (!rc && total > 0 && H5Dwrite(ds, mtype, mspace, fspace, w->dxpl, n ? buf : NULL) < 0)
    rc = tl_fail("ckpt: cannot write item '%s' to %s: %s%s%s", name, w->tmp, h5_err(), *write_cause(w->tmp) ? ": " : "",
                 write_cause(w->tmp));
  if (!rc) rc = attr_write(ds, "crc32", H5T_STD_U32LE, H5T_NATIVE_UINT32, &crc);
  H5Sclose(mspace);
  H5Sclose(fspace);
  if (ds >= 0) H5Dclose(ds);
  return rc;
}

static int check_shape(const char *name, int ndim, const uint64_t *shape, uint64_t *numel) {
  if (ndim < 0 || ndim > TL_CKPT_MAX_DIMS)
    return tl_fail("ckpt: item '%s' has %d dimensions; expected 0..%d", name, ndim, TL_CKPT_MAX_DIMS);
  uint64_t n = 1;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] && n > UINT64_MAX / 16 / shape[i]) return tl_fail("ckpt: item '%s' is too large", name);
    n *= shape[i];
  }
  *numel = n;
  return 0;
}

/* Replicated item: rank 0's bytes, its crc broadcast so all ranks write the same
 * attribute (HDF5 metadata must be identical on every rank). */
static int add_replicated(tl_ckpt_writer *w, const char *name, tl_ckpt_type t, int ndim, const uint64_t *shape,
                          const void *data) {
  if (w->failed) return tl_fail("ckpt: %s: an earlier item failed", w->tmp);
  uint64_t numel = 0;
  int rc = check_name(name);
  if (!rc) rc = check_shape(name, ndim, shape, &numel);
  if (!rc && w->d->rank == 0 && numel && !data) rc = tl_fail("ckpt: item '%s' has no data on rank 0", name);
  TL_TRY(writer_agree(w, rc));
  uint32_t crc = 0;
  if (w->d->rank == 0) crc = tl_crc32(0, data, numel * type_size(t));
  TL_TRY(writer_agree(w, tl_dist_bcast(w->d, &crc, sizeof crc, 0)));
  bool mine = w->d->rank == 0;
  rc = write_dataset(w, name, file_type(t), mem_type(t), ndim, shape, 0, mine ? numel : 0, data, crc);
  if (!rc) progress_add(w, numel * type_size(t));
  return writer_agree(w, rc);
}

int tl_ckpt_add_f32(tl_ckpt_writer *w, const char *name, int ndim, const uint64_t *shape, const float *data) {
  return add_replicated(w, name, TL_CKPT_F32, ndim, shape, data);
}
int tl_ckpt_add_f64(tl_ckpt_writer *w, const char *name, int ndim, const uint64_t *shape, const double *data) {
  return add_replicated(w, name, TL_CKPT_F64, ndim, shape, data);
}
int tl_ckpt_add_u64(tl_ckpt_writer *w, const char *name, int ndim, const uint64_t *shape, const uint64_t *data) {
  return add_replicated(w, name, TL_CKPT_U64, ndim, shape, data);
}

int tl_ckpt_add_str(tl_ckpt_writer *w, const char *name, const char *s) {
  if (w->failed) return tl_fail("ckpt: %s: an earlier item failed", w->tmp);
  int rc = check_name(name);
  if (!rc && w->d->rank == 0 && !s) rc = tl_fail("ckpt: string item '%s' is NULL on rank 0", name);
  TL_TRY(writer_agree(w, rc));
  /* Only rank 0's string counts; the others learn its length for the type. */
  uint64_t len = w->d->rank == 0 ? strlen(s) : 0;
  uint32_t crc = w->d->rank == 0 ? tl_crc32(0, s, len) : 0;
  uint64_t hdr[2] = {len, crc};
  TL_TRY(writer_agree(w, tl_dist_bcast(w->d, hdr, sizeof hdr, 0)));
  len = hdr[0];
  crc = (uint32_t)hdr[1];
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, len ? len : 1); /* HDF5 strings have at least one byte */
  H5Tset_strpad(t, H5T_STR_NULLPAD);
  const char *buf = w->d->rank == 0 ? (len ? s : "") : NULL;
  rc = write_dataset(w, name, t, t, 0, NULL, 0, w->d->rank == 0 ? 1 : 0, buf, crc);
  H5Tclose(t);
  if (!rc) progress_add(w, len);
  return writer_agree(w, rc);
}

int tl_ckpt_add_f32_sharded(tl_ckpt_writer *w, const char *name, int ndim, const uint64_t *shape,
                            uint64_t offset, uint64_t count, const float *local) {
  if (w->failed) return tl_fail("ckpt: %s: an earlier item failed", w->tmp);
  tl_dist *d = w->d;
  uint64_t numel = 0;
  int rc = check_name(name);
  if (!rc) rc = check_shape(name, ndim, shape, &numel);
  if (!rc && ndim == 0) rc = tl_fail("ckpt: sharded item '%s' needs at least one dimension", name);
  if (!rc && (offset > numel || count > numel - offset))
    rc = tl_fail("ckpt: sharded item '%s': rank %d range %" PRIu64 "+%" PRIu64 " exceeds %" PRIu64 " elements", name,
                 d->rank, offset, count, numel);
  if (!rc && count && !local) rc = tl_fail("ckpt: sharded item '%s' has no data on rank %d", name, d->rank);
  TL_TRY(writer_agree(w, rc));

  /* Every rank learns every range and slice crc, checks that the ranges tile the
   * array, and combines the crcs in array order: same verdict, same attribute. */
  uint64_t mine[3] = {offset, count, count ? tl_crc32(0, local, count * sizeof(float)) : 0};
  uint64_t *all = tl_malloc(sizeof(uint64_t) * 3 * d->world);
  rc = MPI_Allgather(mine, 3, MPI_UINT64_T, all, 3, MPI_UINT64_T, d->comm) == MPI_SUCCESS
           ? 0
           : tl_fail("ckpt: MPI_Allgather of shard ranges failed");
  uint32_t crc = 0;
  uint64_t pos = 0;
  while (!rc && pos < numel) { /* find the rank whose non-empty range starts at pos */
    int r = 0;
    while (r < d->world && !(all[3 * r] == pos && all[3 * r + 1] > 0)) r++;
    if (r == d->world) {
      rc = tl_fail("ckpt: sharded item '%s': no rank holds element %" PRIu64 " (ranges must tile the array)", name,
                   pos);
      break;
    }
    crc = tl_crc32_combine(crc, (uint32_t)all[3 * r + 2], all[3 * r + 1] * sizeof(float));
    pos += all[3 * r + 1];
  }
  uint64_t total = 0;
  for (int r = 0; r < d->world; r++) total += all[3 * r + 1];
  if (!rc && total != numel)
    rc = tl_fail("ckpt: sharded item '%s': ranges hold %" PRIu64 " elements in all, the array %" PRIu64
                 " (ranges overlap)", name, total, numel);
  free(all);
  TL_TRY(writer_agree(w, rc));
  rc = write_dataset(w, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, ndim, shape, offset, count, local, crc);
  if (!rc) progress_add(w, numel * sizeof(float)); /* the whole array: every rank wrote its part */
  return writer_agree(w, rc);
}

static void writer_free(tl_ckpt_writer *w) {
  if (w->dxpl >= 0) H5Pclose(w->dxpl);
  if (w->lcpl >= 0) H5Pclose(w->lcpl);
  free(w->dir);
  free(w->tmp);
  free(w->final);
  free(w);
}

void tl_ckpt_abort(tl_ckpt_writer *w) {
  if (!w) return;
  if (w->prog_on) tl_progress_abort(&w->prog);
  if (w->file >= 0) H5Fclose(w->file);
  w->file = H5I_INVALID_HID;
  MPI_Barrier(w->d->comm);
  if (w->d->rank == 0) unlink(w->tmp);
  writer_free(w);
}

/* step_<digits>.h5 exactly; anything else (*.tmp included) is not a checkpoint. */
static bool parse_ckpt_name(const char *name, uint64_t *step) {
  if (strncmp(name, "step_", 5) != 0) return false;
  const char *p = name + 5;
  uint64_t v = 0;
  int nd = 0;
  for (; *p >= '0' && *p <= '9'; p++, nd++) {
    if (v > (UINT64_MAX - 9) / 10) return false;
    v = v * 10 + (uint64_t)(*p - '0');
  }
  if (nd == 0 || strcmp(p, ".h5") != 0) return false;
  *step = v;
  return true;
}

typedef struct {
  uint64_t step;
  char *path;
} ckpt_file;

static int cmp_step_desc(const void *a, const void *b) {
  uint64_t x = ((const ckpt_file *)a)->step, y = ((const ckpt_file *)b)->step;
  return x < y ? 1 : x > y ? -1 : 0;
}

/* The checkpoints in dir, newest first. A missing dir is an empty list. */
static int list_ckpts(const char *dir, ckpt_file **out, int *n) {
  *out = NULL;
  *n = 0;
  DIR *dp = opendir(dir);
  if (!dp) return errno == ENOENT ? 0 : tl_fail("ckpt: cannot read directory %s: %s", dir, strerror(errno));
  int cap = 0;
  struct dirent *e;
  while ((e = readdir(dp))) {
    uint64_t step;
    if (!parse_ckpt_name(e->d_name, &step)) continue;
    if (*n == cap) *out = tl_realloc(*out, sizeof(ckpt_file) * (cap = cap ? 2 * cap : 16));
    (*out)[*n].step = step;
    (*out)[(*n)++].path = tl_path_join(dir, e->d_name);
  }
  closedir(dp);
  if (*n > 1) qsort(*out, *n, sizeof(ckpt_file), cmp_step_desc);
  return 0;
}

static void free_list(ckpt_file *f, int n) {
  for (int i = 0; i < n; i++) free(f[i].path);
  free(f);
}

/* The size of the newest checkpoint in dir: what this one will about be (the
 * same run writes the same items), for the percentage and the ETA. */
static int64_t previous_size(const char *dir) {
  ckpt_file *f = NULL;
  int n = 0;
  int64_t size = 0;
  struct stat st;
  if (list_ckpts(dir, &f, &n) == 0 && n > 0 && stat(f[0].path, &st) == 0) size = (int64_t)st.st_size;
  free_list(f, n);
  return size;
}

/* Keeps `keep` valid checkpoints up to and including the new one; deletes the
 * older ones and any other older file that is not a valid checkpoint, plus
 * leftover temporary files of older steps. Newer files are left alone. */
static void rotate(const char *dir, uint64_t new_step, int keep) {
  ckpt_file *f;
  int n;
  if (list_ckpts(dir, &f, &n) != 0) {
    tl_warn("%s", tl_errmsg());
    return;
  }
  int kept = 0;
  for (int i = 0; i < n; i++) {
    if (f[i].step > new_step) continue;
    tl_ckpt_reader *r = NULL;
    /* fully verified: a damaged file must not take the place of a good backup */
    bool complete = f[i].step == new_step || (kept < keep && tl_ckpt_open(&r, f[i].path, true) == 0);
    tl_ckpt_close(r);
    tl_clear_error();
    if (complete && kept < keep) {
      kept++;
      continue;
    }
    if (unlink(f[i].path) != 0) tl_warn("ckpt: cannot delete old checkpoint %s: %s", f[i].path, strerror(errno));
  }
  free_list(f, n);
  DIR *dp = opendir(dir);
  struct dirent *e;
  while (dp && (e = readdir(dp))) {
    size_t len = strlen(e->d_name);
    uint64_t step;
    if (len < 8 || strcmp(e->d_name + len - 4, ".tmp") != 0) continue;
    char *base = tl_strdup(e->d_name);
    base[len - 4] = 0;
    if (parse_ckpt_name(base, &step) && step < new_step) {
      char *p = tl_path_join(dir, e->d_name);
      unlink(p);
      free(p);
    }
    free(base);
  }
  if (dp) closedir(dp);
}

int tl_ckpt_commit(tl_ckpt_writer *w, int keep, char **path) {
  if (path) *path = NULL;
  if (w->failed) {
    uint64_t step = w->step;
    tl_ckpt_abort(w);
    return tl_fail_context("ckpt: checkpoint for step %" PRIu64 " not written", step); /* keeps the cause */
  }
  tl_dist *d = w->d;
  int rc = attr_write_u64(w->file, "complete", 1);
  if (H5Fclose(w->file) < 0 && !rc)
    rc = tl_fail("ckpt: closing %s failed: %s%s%s", w->tmp, h5_err(), *write_cause(w->tmp) ? ": " : "", write_cause(w->tmp));
  w->file = H5I_INVALID_HID;
  if (tl_dist_agree(d, rc) != 0) { /* every rank's part is on disk (or not) before rank 0 renames */
    tl_ckpt_abort(w);
    return -1;
  }
  if (d->rank == 0) {
    int fd = open(w->tmp, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) rc = tl_fail("ckpt: cannot fsync %s: %s", w->tmp, strerror(errno));
    if (fd >= 0) close(fd);
    if (!rc && rename(w->tmp, w->final) != 0)
      rc = tl_fail("ckpt: cannot rename %s to %s: %s", w->tmp, w->final, strerror(errno));
    if (!rc) tl_fsync_dir_of(w->final);
    if (!rc && keep > 0) rotate(w->dir, w->step, keep);
  }
  if (tl_dist_agree(d, rc) != 0) {
    tl_ckpt_abort(w);
    return -1;
  }
  if (w->prog_on) { /* the last line: the whole file, committed */
    int64_t kb = w->bytes >= 1000 ? w->bytes / 1000 : 1;
    w->prog.total = kb;
    tl_progress_update(&w->prog, kb, (double)kb);
  }
  if (path) *path = tl_strdup(w->final);
  writer_free(w);
  return 0;
}

/* ==== reader ==== */
struct tl_ckpt_reader {
  char *path;
  hid_t file;
  uint64_t step, world;
};

const char *tl_ckpt_file(const tl_ckpt_reader *r) { return r->path; }
uint64_t tl_ckpt_step(const tl_ckpt_reader *r) { return r->step; }
uint64_t tl_ckpt_world_size(const tl_ckpt_reader *r) { return r->world; }

void tl_ckpt_close(tl_ckpt_reader *r) {
  if (!r) return;
  if (r->file >= 0) H5Fclose(r->file);
  free(r->path);
  free(r);
}

static int dataset_type(hid_t ds, tl_ckpt_type *t) {
  hid_t ty = H5Dget_type(ds);
  if (ty < 0) return -1;
  H5T_class_t c = H5Tget_class(ty);
  size_t sz = H5Tget_size(ty);
  int rc = 0;
  if (c == H5T_FLOAT && sz == 4) *t = TL_CKPT_F32;
  else if (c == H5T_FLOAT && sz == 8) *t = TL_CKPT_F64;
  else if (c == H5T_INTEGER && sz == 8 && H5Tget_sign(ty) == H5T_SGN_NONE) *t = TL_CKPT_U64;
  else if (c == H5T_STRING && !H5Tis_variable_str(ty)) *t = TL_CKPT_STR;
  else rc = -1;
  H5Tclose(ty);
  return rc;
}

static int item_open(tl_ckpt_reader *r, const char *name, hid_t *ds) {
  *ds = H5I_INVALID_HID;
  h5_quiet();
  if (check_name(name) != 0) return -1;
  htri_t ex = H5Lexists(r->file, name, H5P_DEFAULT); /* < 0 when a parent is missing */
  if (ex <= 0 || (*ds = H5Dopen2(r->file, name, H5P_DEFAULT)) < 0)
    return tl_fail("%s: no item '%s'", r->path, name);
  return 0;
}

int tl_ckpt_info_of(tl_ckpt_reader *r, const char *name, tl_ckpt_info *info) {
  memset(info, 0, sizeof *info);
  hid_t ds;
  TL_TRY(item_open(r, name, &ds));
  int rc = 0;
  if (dataset_type(ds, &info->type) != 0) rc = tl_fail("%s: item '%s' has an unsupported type", r->path, name);
  hid_t sp = H5Dget_space(ds);
  int nd = H5Sget_simple_extent_ndims(sp);
  if (!rc && (nd < 0 || nd > TL_CKPT_MAX_DIMS)) rc = tl_fail("%s: item '%s' has %d dimensions", r->path, name, nd);
  if (!rc) {
    hsize_t dims[TL_CKPT_MAX_DIMS];
    H5Sget_simple_extent_dims(sp, dims, NULL);
    info->ndim = nd;
    info->numel = 1;
    for (int i = 0; i < nd && !rc; i++) {
      info->shape[i] = dims[i];
      /* a declared shape is not trusted: its product must not wrap */
      if (dims[i] && info->numel > UINT64_MAX / dims[i])
        rc = tl_fail("%s: item '%s' declares a shape whose element count overflows", r->path, name);
      else
        info->numel *= dims[i];
    }
    if (!rc && info->type == TL_CKPT_STR) {
      if (nd != 0) rc = tl_fail("%s: string item '%s' is not a scalar", r->path, name);
      hid_t ty = H5Dget_type(ds);
      info->numel = H5Tget_size(ty);
      H5Tclose(ty);
    }
    /* ... and the file must hold the bytes the shape declares (no fill values: every
     * item is written whole), so a tiny file cannot claim a huge array */
    size_t es = info->type == TL_CKPT_STR ? 1 : type_size(info->type);
    if (!rc && info->numel > UINT64_MAX / es)
      rc = tl_fail("%s: item '%s' declares %" PRIu64 " elements, too many to address", r->path, name, info->numel);
    if (!rc && info->numel > 0) {
      hsize_t stored = H5Dget_storage_size(ds);
      if ((uint64_t)stored < info->numel * es)
        rc = tl_fail("%s: item '%s' declares %" PRIu64 " elements (%" PRIu64 " bytes) but the file stores %" PRIu64
                     " bytes of it", r->path, name, info->numel, info->numel * es, (uint64_t)stored);
    }
  }
  H5Sclose(sp);
  H5Dclose(ds);
  return rc;
}

bool tl_ckpt_has(tl_ckpt_reader *r, const char *name) {
  tl_ckpt_info info;
  bool ok = tl_ckpt_info_of(r, name, &info) == 0;
  if (!ok) tl_clear_error();
  return ok;
}

static int read_range(tl_ckpt_reader *r, const char *name, tl_ckpt_type want, uint64_t off, uint64_t n,
                      void *out) {
  tl_ckpt_info info;
  TL_TRY(tl_ckpt_info_of(r, name, &info));
  if (info.type != want)
    return tl_fail("%s: item '%s' is %s, expected %s", r->path, name, type_name(info.type), type_name(want));
  if (off > info.numel || n > info.numel - off)
    return tl_fail("%s: item '%s' has %" PRIu64 " elements; cannot read %" PRIu64 "+%" PRIu64, r->path, name,
                   info.numel, off, n);
  if (n == 0) return 0;
  hid_t ds = H5Dopen2(r->file, name, H5P_DEFAULT);
  hid_t fs = H5Dget_space(ds);
  hsize_t mn = n;
  hid_t ms = H5Screate_simple(1, &mn, NULL);
  int rc = select_flat(fs, off, n);
  if (!rc && H5Dread(ds, mem_type(want), ms, fs, H5P_DEFAULT, out) < 0)
    rc = tl_fail("%s: cannot read item '%s': %s", r->path, name, h5_err());
  H5Sclose(ms);
  H5Sclose(fs);
  H5Dclose(ds);
  return rc;
}

int tl_ckpt_read_f32(tl_ckpt_reader *r, const char *name, uint64_t offset, uint64_t count, float *out) {
  return read_range(r, name, TL_CKPT_F32, offset, count, out);
}
int tl_ckpt_read_f64(tl_ckpt_reader *r, const char *name, uint64_t offset, uint64_t count, double *out) {
  return read_range(r, name, TL_CKPT_F64, offset, count, out);
}
int tl_ckpt_read_u64(tl_ckpt_reader *r, const char *name, uint64_t offset, uint64_t count, uint64_t *out) {
  return read_range(r, name, TL_CKPT_U64, offset, count, out);
}

int tl_ckpt_read_str(tl_ckpt_reader *r, const char *name, char **out) {
  *out = NULL;
  tl_ckpt_info info;
  TL_TRY(tl_ckpt_info_of(r, name, &info));
  if (info.type != TL_CKPT_STR) return tl_fail("%s: item '%s' is %s, expected string", r->path, name, type_name(info.type));
  hid_t ds = H5Dopen2(r->file, name, H5P_DEFAULT);
  hid_t ty = H5Dget_type(ds);
  char *s = tl_calloc(info.numel + 1, 1);
  int rc = H5Dread(ds, ty, H5S_ALL, H5S_ALL, H5P_DEFAULT, s) < 0
               ? tl_fail("%s: cannot read item '%s': %s", r->path, name, h5_err())
               : 0;
  H5Tclose(ty);
  H5Dclose(ds);
  if (rc) {
    free(s);
    return -1;
  }
  *out = s;
  return 0;
}

/* Checksum of one dataset, read in bounded pieces, against its crc32 attribute. */
static int verify_dataset(tl_ckpt_reader *r, const char *name) {
  tl_ckpt_info info;
  TL_TRY(tl_ckpt_info_of(r, name, &info));
  hid_t ds = H5Dopen2(r->file, name, H5P_DEFAULT);
  uint64_t want = 0;
  int rc = attr_read_u64(ds, "crc32", &want);
  H5Dclose(ds);
  if (rc) return tl_fail_context("%s: item '%s'", r->path, name);
  uint32_t crc = 0;
  if (info.type == TL_CKPT_STR) {
    char *s;
    TL_TRY(tl_ckpt_read_str(r, name, &s));
    crc = tl_crc32(0, s, strlen(s));
    free(s);
  } else {
    size_t es = type_size(info.type);
    uint64_t step = info.numel < VERIFY_CHUNK ? info.numel : VERIFY_CHUNK;
    void *buf = tl_malloc(step ? step * es : 1);
    for (uint64_t pos = 0; pos < info.numel && !rc; pos += step) {
      uint64_t n = info.numel - pos < step ? info.numel - pos : step;
      rc = read_range(r, name, info.type, pos, n, buf);
      if (!rc) crc = tl_crc32(crc, buf, n * es);
    }
    free(buf);
    if (rc) return -1;
  }
  if (crc != (uint32_t)want)
    return tl_fail("%s: item '%s' is corrupt (crc32 %08x, stored %08x)", r->path, name, crc, (uint32_t)want);
  return 0;
}

typedef struct {
  tl_ckpt_reader *r;
  int rc, count;
} verify_ctx;

/* Our writer nests items at most 3 deep ("lens/0/weight"). A damaged file can hold a
 * group that links to itself under ever new addresses, and H5Ovisit would then walk
 * deeper for ever: any object below this depth ends the walk as an error. */
#define VERIFY_MAX_DEPTH 8

static herr_t verify_visit(hid_t obj, const char *name, const H5O_info_t *oi, void *p) {
  verify_ctx *v = p;
  int depth = 1;
  for (const char *c = name; *c; c++) depth += *c == '/';
  if (depth > VERIFY_MAX_DEPTH) {
    v->rc = tl_fail("%s: an object is nested %d levels deep (a tlens checkpoint nests at most %d; "
                    "damaged group links?)",
                    v->r->path, depth, VERIFY_MAX_DEPTH);
    return 1;
  }
  if (oi->type != H5O_TYPE_DATASET) return 0;
  v->count++;
  if (verify_dataset(v->r, name) != 0) {
    v->rc = -1;
    return 1; /* stop at the first bad item */
  }
  return 0;
}

int tl_ckpt_open(tl_ckpt_reader **out, const char *path, bool verify) {
  *out = NULL;
  TL_TRY(tl_check_regular(path)); /* HDF5 would block on a pipe and read a device for ever */
  h5_quiet();
  tl_ckpt_reader *r = tl_calloc(1, sizeof *r);
  r->path = tl_strdup(path);
  r->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  int rc = 0;
  if (r->file < 0) {
    rc = tl_fail("%s: not a readable HDF5 file (truncated or damaged?): %s", path, h5_err());
    goto done;
  }
  char magic[64];
  uint64_t version = 0, complete = 0;
  if (attr_read_str(r->file, "magic", magic, sizeof magic) != 0 || strcmp(magic, TL_CKPT_MAGIC) != 0) {
    rc = tl_fail("%s: not a tlens checkpoint (root attribute magic is not \"%s\")", path, TL_CKPT_MAGIC);
    goto done;
  }
  if ((rc = attr_read_u64(r->file, "format_version", &version)) != 0) goto ctx;
  if (version != TL_CKPT_FORMAT_VERSION) {
    rc = tl_fail("%s: checkpoint format version %" PRIu64 ", this build reads version %d", path, version,
                 TL_CKPT_FORMAT_VERSION);
    goto done;
  }
  if ((rc = attr_read_u64(r->file, "complete", &complete)) != 0) goto ctx;
  if (complete != 1) {
    rc = tl_fail("%s: incomplete checkpoint (the writer did not finish)", path);
    goto done;
  }
  if ((rc = attr_read_u64(r->file, "step", &r->step)) != 0) goto ctx;
  if ((rc = attr_read_u64(r->file, "world_size", &r->world)) != 0) goto ctx;
  if (verify) {
    verify_ctx v = {.r = r};
    if (H5Ovisit(r->file, H5_INDEX_NAME, H5_ITER_INC, verify_visit, &v) < 0 || v.rc != 0) {
      if (v.rc == 0) tl_fail("%s: cannot list the items: %s", path, h5_err());
      rc = -1;
    }
  }
  goto done;
ctx:
  tl_fail_context("%s", path);
done:
  if (rc) {
    tl_ckpt_close(r);
    return -1;
  }
  *out = r;
  return 0;
}

/* ==== newest valid checkpoint ==== */
static int find_latest_local(const char *dir, char **path, uint64_t *step) {
  ckpt_file *f;
  int n;
  TL_TRY(list_ckpts(dir, &f, &n));
  int found = 0;
  for (int i = 0; i < n && !found; i++) {
    tl_ckpt_reader *r;
    if (tl_ckpt_open(&r, f[i].path, true) != 0) {
      tl_warn("ckpt: skipping %s", tl_errmsg());
      tl_clear_error();
      continue;
    }
    if (r->step != f[i].step)
      tl_warn("ckpt: %s holds step %" PRIu64 " (file name says %" PRIu64 "); using the stored step", f[i].path,
              r->step, f[i].step);
    *step = r->step;
    *path = tl_strdup(f[i].path);
    tl_ckpt_close(r);
    found = 1;
  }
  free_list(f, n);
  return found;
}

int tl_ckpt_find_latest(tl_dist *d, const char *dir, char **path, uint64_t *step) {
  *path = NULL;
  *step = 0;
  if (!d) return find_latest_local(dir, path, step);
  int found = 0;
  if (d->rank == 0) found = find_latest_local(dir, path, step);
  TL_TRY(tl_dist_agree(d, found < 0 ? -1 : 0));
  int64_t hdr[2] = {found, (int64_t)*step};
  TL_TRY(tl_dist_bcast(d, hdr, sizeof hdr, 0));
  if (!hdr[0]) return 0;
  *step = (uint64_t)hdr[1];
  if (d->rank != 0) *path = tl_strdup("");
  TL_TRY(tl_dist_bcast_str(d, path, 0));
  return 1;
}

/* ==== compatibility ==== */
static const cJSON *json_lookup(const cJSON *root, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
  if (v) return v;
  /* dotted path: "a.b.c" -> root["a"]["b"]["c"] */
  char *k = tl_strdup(key), *save = NULL;
  v = root;
  for (char *part = strtok_r(k, ".", &save); part && v; part = strtok_r(NULL, ".", &save))
    v = cJSON_IsObject(v) ? cJSON_GetObjectItemCaseSensitive(v, part) : NULL;
  free(k);
  return v == root ? NULL : v;
}

static int mismatch(bool force, const char *fmt, ...) TL_PRINTF(2, 3);
static int mismatch(bool force, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char line[1024];
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (force) {
    tl_warn("%s (continuing: forced)", line);
    return 0;
  }
  return tl_fail("%s; refusing to resume (--force overrides)", line);
}

int tl_ckpt_check_compat(tl_ckpt_reader *r, const tl_ckpt_expect *ident, int nident, const char *config_item,
                         const char *current_config_json, const char *const *keys, int nkeys, bool force) {
  for (int i = 0; i < nident; i++) {
    char *have = NULL;
    if (tl_ckpt_read_str(r, ident[i].item, &have) != 0) {
      if (mismatch(force, "%s: model identity item '%s' is missing", r->path, ident[i].item) != 0) return -1;
      continue;
    }
    int rc = 0;
    if (strcmp(have, ident[i].value) != 0)
      rc = mismatch(force, "%s: %s is '%s' in the checkpoint but '%s' in this run", r->path, ident[i].item, have,
                    ident[i].value);
    free(have);
    TL_TRY(rc);
  }
  if (nkeys == 0) return 0;
  char *stored = NULL;
  TL_TRY(tl_ckpt_read_str(r, config_item, &stored));
  cJSON *a = cJSON_Parse(stored), *b = cJSON_Parse(current_config_json);
  free(stored);
  int rc = 0;
  if (!a || !cJSON_IsObject(a)) rc = tl_fail("%s: item '%s' is not a JSON object", r->path, config_item);
  else if (!b || !cJSON_IsObject(b)) rc = tl_fail("ckpt: the current run's config is not a JSON object");
  for (int i = 0; i < nkeys && !rc; i++) {
    const cJSON *va = json_lookup(a, keys[i]), *vb = json_lookup(b, keys[i]);
    if (!va && !vb) continue;
    if (va && vb && cJSON_Compare(va, vb, true)) continue;
    char *sa = va ? cJSON_PrintUnformatted(va) : tl_strdup("(absent)");
    char *sb = vb ? cJSON_PrintUnformatted(vb) : tl_strdup("(absent)");
    rc = mismatch(force, "%s: config %s is %s in the checkpoint but %s in this run", r->path, keys[i], sa, sb);
    free(sa);
    free(sb);
  }
  cJSON_Delete(a);
  cJSON_Delete(b);
  return rc;
}
