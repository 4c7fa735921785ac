/* params.pt: torch.save() of a state dict of tensors, read and written without
 * PyTorch.
 *
 * The file is a zip archive (zip.c) holding, under one folder <archive>/:
 *   data.pkl    a pickle (protocol 2) that rebuilds an OrderedDict of tensors
 *   data/<key>  one raw little-endian storage per tensor
 *   version     "3\n";  byteorder  "little" (newer torch versions)
 *
 * Each tensor in data.pkl is
 *   torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad,
 *                                   OrderedDict()[, metadata])
 * where `storage` comes from a persistent id ('storage', torch.FloatStorage, key,
 * location, numel) that names data/<key>.
 *
 * Reading runs a deliberately small pickle machine: it knows the opcodes that
 * torch.save emits for such a dict, and the only "callables" it accepts are the
 * handful of names above, which it interprets itself. Nothing is imported or
 * executed, every read is bounds-checked, and any other opcode or global is an
 * error naming the opcode and its offset in data.pkl.
 *
 * A model's pytorch_model.bin (or a shard of one) is the same kind of file and
 * goes through the same machine (TL_PT_CHECKPOINT), which then also accepts the
 * integer and bool storage classes of a model's buffers. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "tlens/bytes.h"
#include "tlens/core.h"
#include "tlens/export.h"
#include "tlens/named.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "params.pt storages are little-endian; this code assumes a little-endian host"
#endif

/* data.pkl of a state dict is a few hundred bytes per tensor; anything this large
 * is not one and would only let a hostile file make us allocate without bound. */
#define MAX_PICKLE_BYTES ((size_t)64 << 20)

/* ================================ the pickle machine ================================ */

typedef enum { O_NONE, O_BOOL, O_INT, O_FLOAT, O_STR, O_TUPLE, O_LIST, O_DICT, O_GLOBAL, O_STORAGE, O_TENSOR } okind;
static const char *kind_name[] = {"None", "bool", "int", "float", "str", "tuple", "list", "dict", "global", "storage", "tensor"};

/* the globals we accept; everything else is rejected by name */
/* the globals we accept; everything else is rejected by name. The storage classes
 * come last: from G_FLOAT_STORAGE on, each names the dtype of its storages. The
 * integer and bool ones hold a model's buffers (attention masks, position ids) and
 * are accepted only in model checkpoints (TL_PT_CHECKPOINT), never in params.pt. */
typedef enum {
  G_ORDERED_DICT, G_REBUILD_TENSOR_V2, G_REBUILD_PARAMETER,
  G_FLOAT_STORAGE, G_HALF_STORAGE, G_BF16_STORAGE, G_DOUBLE_STORAGE,
  G_LONG_STORAGE, G_INT_STORAGE, G_SHORT_STORAGE, G_CHAR_STORAGE, G_BYTE_STORAGE, G_BOOL_STORAGE,
} gid;
#define G_FIRST_INT_STORAGE G_LONG_STORAGE
static const struct {
  const char *module, *name;
  tl_dtype dtype; /* storage classes only */
} allowed_globals[] = {
    [G_ORDERED_DICT] = {"collections", "OrderedDict", TL_F32},
    [G_REBUILD_TENSOR_V2] = {"torch._utils", "_rebuild_tensor_v2", TL_F32},
    [G_REBUILD_PARAMETER] = {"torch._utils", "_rebuild_parameter", TL_F32},
    [G_FLOAT_STORAGE] = {"torch", "FloatStorage", TL_F32},
    [G_HALF_STORAGE] = {"torch", "HalfStorage", TL_F16},
    [G_BF16_STORAGE] = {"torch", "BFloat16Storage", TL_BF16},
    [G_DOUBLE_STORAGE] = {"torch", "DoubleStorage", TL_F64},
    [G_LONG_STORAGE] = {"torch", "LongStorage", TL_I64},
    [G_INT_STORAGE] = {"torch", "IntStorage", TL_I32},
    [G_SHORT_STORAGE] = {"torch", "ShortStorage", TL_I16},
    [G_CHAR_STORAGE] = {"torch", "CharStorage", TL_I8},
    [G_BYTE_STORAGE] = {"torch", "ByteStorage", TL_U8},
    [G_BOOL_STORAGE] = {"torch", "BoolStorage", TL_BOOL},
};
#define N_GLOBALS ((int)(sizeof allowed_globals / sizeof allowed_globals[0]))

typedef struct {
  okind kind;
  int64_t i;     /* int, bool, global id, storage/tensor index */
  double f;
  const char *s; /* str: points into data.pkl */
  uint32_t slen;
  int *items;    /* tuple/list elements; dict keys and values interleaved */
  int n, cap;
} obj;

typedef struct {
  tl_dtype dtype;
  int64_t numel;
  const tl_zip_entry *entry;
} storage;

typedef struct {
  int storage;
  int64_t offset, numel;
  int ndim;
  int64_t shape[TL_MAX_DIMS];
} tensor;

typedef struct {
  const char *label;
  const unsigned char *p; /* data.pkl */
  size_t len, pos, op_pos;
  obj *o;
  int no, co;
  int *stack;
  int ns, cs;
  int *marks;
  int nm, cm;
  int *memo;
  int nmemo, cmemo;
  storage *st;
  int nst, cst;
  tensor *t;
  int nt, ct;
  /* for storages: the zip and its folder */
  const tl_zip *zip;
  const char *archive;
  unsigned char *crc_checked; /* per zip entry */
  int flags;                  /* TL_PT_CHECKPOINT */
  int mapped;                 /* data.pkl and the storages are a mapping of the file */
} vm;

static int vm_err(vm *m, const char *fmt, const char *a, const char *b) {
  char what[1024];
  snprintf(what, sizeof what, fmt, a ? a : "", b ? b : "");
  return tl_fail("%s: data.pkl offset %zu: %s", m->label, m->op_pos, what);
}

#define GROW(arr, n, cap)                                              \
  do {                                                                 \
    if ((n) == (cap)) {                                                \
      (cap) = (cap) ? 2 * (cap) : 64;                                  \
      (arr) = tl_realloc((arr), (size_t)(cap) * sizeof *(arr));        \
    }                                                                  \
  } while (0)

static int new_obj(vm *m, okind k) {
  GROW(m->o, m->no, m->co);
  obj *o = &m->o[m->no];
  memset(o, 0, sizeof *o);
  o->kind = k;
  return m->no++;
}
static void push(vm *m, int id) {
  GROW(m->stack, m->ns, m->cs);
  m->stack[m->ns++] = id;
}
/* pops above the innermost mark are checked by the caller via m->ns > floor */
static int stack_floor(const vm *m) { return m->nm ? m->marks[m->nm - 1] : 0; }
static int pop(vm *m, int *id) {
  if (m->ns <= stack_floor(m)) return vm_err(m, "stack underflow", NULL, NULL);
  *id = m->stack[--m->ns];
  return 0;
}
static void add_item(obj *o, int id) {
  GROW(o->items, o->n, o->cap);
  o->items[o->n++] = id;
}

static int need(vm *m, size_t n) {
  if (m->len - m->pos < n) return vm_err(m, "truncated pickle", NULL, NULL);
  return 0;
}

static int push_str(vm *m, size_t n) {
  if (need(m, n)) return -1;
  int id = new_obj(m, O_STR);
  m->o[id].s = (const char *)m->p + m->pos;
  m->o[id].slen = (uint32_t)n;
  m->pos += n;
  push(m, id);
  return 0;
}

static int str_is(const obj *o, const char *s) { return o->kind == O_STR && o->slen == strlen(s) && !memcmp(o->s, s, o->slen); }

static int resolve_global(vm *m, const char *mod, size_t mlen, const char *name, size_t nlen) {
  const int n = m->flags & TL_PT_CHECKPOINT ? N_GLOBALS : G_FIRST_INT_STORAGE;
  for (int g = 0; g < n; g++)
    if (strlen(allowed_globals[g].module) == mlen && !memcmp(allowed_globals[g].module, mod, mlen) &&
        strlen(allowed_globals[g].name) == nlen && !memcmp(allowed_globals[g].name, name, nlen)) {
      int id = new_obj(m, O_GLOBAL);
      m->o[id].i = g;
      push(m, id);
      return 0;
    }
  char a[96], b[96];
  snprintf(a, sizeof a, "%.*s", (int)(mlen < 80 ? mlen : 80), mod);
  snprintf(b, sizeof b, "%.*s", (int)(nlen < 80 ? nlen : 80), name);
  for (char *c = a; *c; c++) if ((unsigned char)*c < 32) *c = '?';
  for (char *c = b; *c; c++) if ((unsigned char)*c < 32) *c = '?';
  return vm_err(m, "global '%s.%s' is not allowed (only tensors and OrderedDict can be loaded)", a, b);
}

/* items between the innermost mark and the top, then drop the mark */
static int pop_mark(vm *m, int *first) {
  if (m->nm == 0) return vm_err(m, "MARK expected", NULL, NULL);
  *first = m->marks[--m->nm];
  return 0;
}

static int get_int(const vm *m, int id, int64_t *v) {
  if (m->o[id].kind != O_INT) return -1;
  *v = m->o[id].i;
  return 0;
}

/* ('storage', <storage class>, key, location, numel) -> a storage object */
static int persistent_load(vm *m, int pid) {
  const obj *t = &m->o[pid];
  if (t->kind != O_TUPLE || t->n != 5 || !str_is(&m->o[t->items[0]], "storage"))
    return vm_err(m, "persistent id is not ('storage', type, key, location, numel)", NULL, NULL);
  const obj *cls = &m->o[t->items[1]], *key = &m->o[t->items[2]], *loc = &m->o[t->items[3]];
  int64_t numel;
  if (cls->kind != O_GLOBAL || cls->i < G_FLOAT_STORAGE || key->kind != O_STR || loc->kind != O_STR ||
      get_int(m, t->items[4], &numel) || numel < 0)
    return vm_err(m, "persistent id is not ('storage', type, key, location, numel)", NULL, NULL);
  tl_dtype dt = allowed_globals[cls->i].dtype;
  if (key->slen == 0 || key->slen > 64 || memchr(key->s, 0, key->slen) || memchr(key->s, '/', key->slen))
    return vm_err(m, "bad storage key", NULL, NULL);
  char name[512];
  snprintf(name, sizeof name, "%s/data/%.*s", m->archive, (int)key->slen, key->s);
  const tl_zip_entry *e = tl_zip_find(m->zip, name);
  if (!e) return vm_err(m, "storage '%s' is missing from the archive", name, NULL);
  size_t es = tl_dtype_size(dt);
  if (e->size % es != 0 || (uint64_t)numel != e->size / es) {
    char sz[64];
    snprintf(sz, sizeof sz, "%lld elements of %s", (long long)numel, tl_dtype_name(dt));
    return vm_err(m, "storage '%s' size does not match %s", name, sz);
  }
  int idx = (int)(e - m->zip->e);
  if (!m->crc_checked[idx]) {
    if (tl_zip_check_crc(m->zip, e, m->label)) return -1;
    m->crc_checked[idx] = 1;
    /* a model checkpoint is mapped from its file: the pages the check read are
     * dropped again, so that opening a checkpoint of many GB does not make it all
     * resident before the loader converts it tensor by tensor */
    if (m->mapped) tl_mmap_release(m->zip->data + e->data_offset, (size_t)e->size);
  }
  GROW(m->st, m->nst, m->cst);
  m->st[m->nst] = (storage){dt, numel, e};
  int id = new_obj(m, O_STORAGE);
  m->o[id].i = m->nst++;
  push(m, id);
  return 0;
}

/* _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata]) */
static int rebuild_tensor(vm *m, const obj *args) {
  if (args->n != 6 && args->n != 7) return vm_err(m, "_rebuild_tensor_v2 expects 6 or 7 arguments", NULL, NULL);
  const obj *so = &m->o[args->items[0]], *size = &m->o[args->items[2]], *stride = &m->o[args->items[3]];
  int64_t offset;
  if (so->kind != O_STORAGE) return vm_err(m, "_rebuild_tensor_v2: first argument is not a storage", NULL, NULL);
  if (get_int(m, args->items[1], &offset) || offset < 0) return vm_err(m, "_rebuild_tensor_v2: bad storage offset", NULL, NULL);
  if (size->kind != O_TUPLE || stride->kind != O_TUPLE || size->n != stride->n || size->n > TL_MAX_DIMS)
    return vm_err(m, "_rebuild_tensor_v2: size and stride must be tuples of the same length (at most 8)", NULL, NULL);
  const storage *s = &m->st[so->i];
  tensor t = {.storage = (int)so->i, .offset = offset, .ndim = size->n};
  int64_t numel = 1, expect = 1;
  for (int k = 0; k < size->n; k++) {
    if (get_int(m, size->items[k], &t.shape[k]) || t.shape[k] < 0 || t.shape[k] > ((int64_t)1 << 40))
      return vm_err(m, "_rebuild_tensor_v2: bad size", NULL, NULL);
  }
  for (int k = 0; k < size->n; k++) {
    if (t.shape[k] == 0) numel = 0;
    else if (numel > 0 && numel > INT64_MAX / t.shape[k]) return vm_err(m, "_rebuild_tensor_v2: size overflows", NULL, NULL);
    else numel *= t.shape[k];
  }
  /* contiguous: row-major strides (dimensions of size 1 may carry any stride) */
  for (int k = size->n - 1; k >= 0; k--) {
    int64_t st;
    if (get_int(m, stride->items[k], &st)) return vm_err(m, "_rebuild_tensor_v2: bad stride", NULL, NULL);
    if (numel > 0 && t.shape[k] != 1 && st != expect)
      return vm_err(m, "_rebuild_tensor_v2: non-contiguous tensor (strides do not match a row-major layout)", NULL, NULL);
    if (t.shape[k] > 0 && expect <= INT64_MAX / t.shape[k]) expect *= t.shape[k];
  }
  if (offset > s->numel || numel > s->numel - offset)
    return vm_err(m, "_rebuild_tensor_v2: tensor extends past the end of its storage", NULL, NULL);
  t.numel = numel;
  GROW(m->t, m->nt, m->ct);
  m->t[m->nt] = t;
  int id = new_obj(m, O_TENSOR);
  m->o[id].i = m->nt++;
  push(m, id);
  return 0;
}

static int do_reduce(vm *m) {
  int aid = 0, fid = 0;
  if (pop(m, &aid) || pop(m, &fid)) return -1;
  const obj *f = &m->o[fid], *a = &m->o[aid];
  if (a->kind != O_TUPLE) return vm_err(m, "REDUCE arguments are not a tuple", NULL, NULL);
  if (f->kind != O_GLOBAL) return vm_err(m, "REDUCE of a %s, expected an allowed global", kind_name[f->kind], NULL);
  switch ((gid)f->i) {
  case G_ORDERED_DICT:
    if (a->n != 0) return vm_err(m, "OrderedDict() with arguments is not supported", NULL, NULL);
    push(m, new_obj(m, O_DICT));
    return 0;
  case G_REBUILD_TENSOR_V2:
    return rebuild_tensor(m, a);
  case G_REBUILD_PARAMETER: /* (tensor, requires_grad, hooks): the tensor itself */
    if (a->n != 3 || m->o[a->items[0]].kind != O_TENSOR) return vm_err(m, "_rebuild_parameter expects (tensor, bool, hooks)", NULL, NULL);
    push(m, a->items[0]);
    return 0;
  default:
    return vm_err(m, "storage classes cannot be called", NULL, NULL);
  }
}

/* Runs data.pkl; on success *result is the unpickled object. */
static int run(vm *m, int *result) {
  for (;;) {
    m->op_pos = m->pos;
    if (m->pos >= m->len) return vm_err(m, "truncated pickle (no STOP)", NULL, NULL);
    unsigned char op = m->p[m->pos++];
    int a = 0, b = 0, first = 0;
    switch (op) {
    case 0x80: /* PROTO */
      if (need(m, 1)) return -1;
      if (m->p[m->pos] < 2 || m->p[m->pos] > 5) return vm_err(m, "unsupported pickle protocol", NULL, NULL);
      m->pos++;
      break;
    case 0x95: /* FRAME (protocol 4): an 8-byte length we can ignore */
      if (need(m, 8)) return -1;
      m->pos += 8;
      break;
    case 'c': { /* GLOBAL "module\nname\n" */
      const char *s = (const char *)m->p + m->pos;
      const char *nl1 = memchr(s, '\n', m->len - m->pos);
      if (!nl1) return vm_err(m, "truncated GLOBAL", NULL, NULL);
      const char *s2 = nl1 + 1;
      const char *nl2 = memchr(s2, '\n', m->len - (size_t)(s2 - (const char *)m->p));
      if (!nl2) return vm_err(m, "truncated GLOBAL", NULL, NULL);
      m->pos = (size_t)(nl2 + 1 - (const char *)m->p);
      if (resolve_global(m, s, (size_t)(nl1 - s), s2, (size_t)(nl2 - s2))) return -1;
      break;
    }
    case 0x93: /* STACK_GLOBAL */
      if (pop(m, &b) || pop(m, &a)) return -1;
      if (m->o[a].kind != O_STR || m->o[b].kind != O_STR) return vm_err(m, "STACK_GLOBAL of non-strings", NULL, NULL);
      if (resolve_global(m, m->o[a].s, m->o[a].slen, m->o[b].s, m->o[b].slen)) return -1;
      break;
    case 'q': case 'r': case 0x94: { /* BINPUT, LONG_BINPUT, MEMOIZE */
      uint32_t idx;
      if (op == 'q') { if (need(m, 1)) return -1; idx = m->p[m->pos++]; }
      else if (op == 'r') { if (need(m, 4)) return -1; idx = tl_le32(m->p + m->pos); m->pos += 4; }
      else idx = (uint32_t)m->nmemo;
      if (m->ns <= stack_floor(m)) return vm_err(m, "memo store from an empty stack", NULL, NULL);
      /* picklers number memo entries 0, 1, 2, ...: accept overwrites and the next
       * index only, so a hostile index cannot make us allocate gigabytes */
      if (idx > (uint32_t)m->nmemo) return vm_err(m, "memo index out of sequence", NULL, NULL);
      if (idx == (uint32_t)m->nmemo) { GROW(m->memo, m->nmemo, m->cmemo); m->nmemo++; }
      m->memo[idx] = m->stack[m->ns - 1];
      break;
    }
    case 'h': case 'j': { /* BINGET, LONG_BINGET */
      uint32_t idx;
      if (op == 'h') { if (need(m, 1)) return -1; idx = m->p[m->pos++]; }
      else { if (need(m, 4)) return -1; idx = tl_le32(m->p + m->pos); m->pos += 4; }
      if (idx >= (uint32_t)m->nmemo) return vm_err(m, "memo index not defined", NULL, NULL);
      push(m, m->memo[idx]);
      break;
    }
    case '(': /* MARK */
      GROW(m->marks, m->nm, m->cm);
      m->marks[m->nm++] = m->ns;
      break;
    case ')': push(m, new_obj(m, O_TUPLE)); break;
    case ']': push(m, new_obj(m, O_LIST)); break;
    case '}': push(m, new_obj(m, O_DICT)); break;
    case 'N': push(m, new_obj(m, O_NONE)); break;
    case 0x88: case 0x89: { /* NEWTRUE, NEWFALSE */
      int id = new_obj(m, O_BOOL);
      m->o[id].i = op == 0x88;
      push(m, id);
      break;
    }
    case 't': case 'l': { /* TUPLE, LIST: from the mark */
      if (pop_mark(m, &first)) return -1;
      int id = new_obj(m, op == 't' ? O_TUPLE : O_LIST);
      for (int k = first; k < m->ns; k++) add_item(&m->o[id], m->stack[k]);
      m->ns = first;
      push(m, id);
      break;
    }
    case 0x85: case 0x86: case 0x87: { /* TUPLE1..3 */
      int k = op - 0x84, items[3];
      for (int j = k - 1; j >= 0; j--)
        if (pop(m, &items[j])) return -1;
      int id = new_obj(m, O_TUPLE);
      for (int j = 0; j < k; j++) add_item(&m->o[id], items[j]);
      push(m, id);
      break;
    }
    case 'd': { /* DICT from the mark */
      if (pop_mark(m, &first)) return -1;
      if ((m->ns - first) % 2) return vm_err(m, "DICT with an odd number of items", NULL, NULL);
      int id = new_obj(m, O_DICT);
      for (int k = first; k < m->ns; k++) add_item(&m->o[id], m->stack[k]);
      m->ns = first;
      push(m, id);
      break;
    }
    case 'a': /* APPEND */
      if (pop(m, &a)) return -1;
      if (m->ns <= stack_floor(m) || m->o[m->stack[m->ns - 1]].kind != O_LIST) return vm_err(m, "APPEND to a non-list", NULL, NULL);
      add_item(&m->o[m->stack[m->ns - 1]], a);
      break;
    case 'e': /* APPENDS */
      if (pop_mark(m, &first)) return -1;
      if (first < 1 || first <= stack_floor(m) || m->o[m->stack[first - 1]].kind != O_LIST) return vm_err(m, "APPENDS to a non-list", NULL, NULL);
      for (int k = first; k < m->ns; k++) add_item(&m->o[m->stack[first - 1]], m->stack[k]);
      m->ns = first;
      break;
    case 's': /* SETITEM */
      if (pop(m, &b) || pop(m, &a)) return -1;
      if (m->ns <= stack_floor(m) || m->o[m->stack[m->ns - 1]].kind != O_DICT) return vm_err(m, "SETITEM on a non-dict", NULL, NULL);
      add_item(&m->o[m->stack[m->ns - 1]], a);
      add_item(&m->o[m->stack[m->ns - 1]], b);
      break;
    case 'u': /* SETITEMS */
      if (pop_mark(m, &first)) return -1;
      if ((m->ns - first) % 2) return vm_err(m, "SETITEMS with an odd number of items", NULL, NULL);
      if (first < 1 || first <= stack_floor(m) || m->o[m->stack[first - 1]].kind != O_DICT) return vm_err(m, "SETITEMS on a non-dict", NULL, NULL);
      for (int k = first; k < m->ns; k++) add_item(&m->o[m->stack[first - 1]], m->stack[k]);
      m->ns = first;
      break;
    case 'K': case 'M': case 'J': { /* BININT1, BININT2, BININT */
      size_t n = op == 'K' ? 1 : op == 'M' ? 2 : 4;
      if (need(m, n)) return -1;
      const unsigned char *q = m->p + m->pos;
      int id = new_obj(m, O_INT);
      m->o[id].i = op == 'K' ? q[0] : op == 'M' ? tl_le16(q) : (int64_t)(int32_t)tl_le32(q);
      m->pos += n;
      push(m, id);
      break;
    }
    case 0x8a: { /* LONG1: n-byte two's complement, n <= 8 here */
      if (need(m, 1)) return -1;
      size_t n = m->p[m->pos++];
      if (n > 8) return vm_err(m, "integer too large", NULL, NULL);
      if (need(m, n)) return -1;
      uint64_t u = 0;
      for (size_t k = 0; k < n; k++) u |= (uint64_t)m->p[m->pos + k] << (8 * k);
      if (n > 0 && n < 8 && (m->p[m->pos + n - 1] & 0x80)) u |= ~(uint64_t)0 << (8 * n); /* sign-extend */
      m->pos += n;
      int id = new_obj(m, O_INT);
      m->o[id].i = (int64_t)u;
      push(m, id);
      break;
    }
    case 'G': { /* BINFLOAT: big-endian double */
      if (need(m, 8)) return -1;
      uint64_t u = 0;
      for (int k = 0; k < 8; k++) u = u << 8 | m->p[m->pos + k];
      m->pos += 8;
      int id = new_obj(m, O_FLOAT);
      memcpy(&m->o[id].f, &u, 8);
      push(m, id);
      break;
    }
    case 'X': case 'T': /* BINUNICODE, BINSTRING: 4-byte length */
      if (need(m, 4)) return -1;
      {
        uint32_t n = tl_le32(m->p + m->pos);
        m->pos += 4;
        if (push_str(m, n)) return -1;
      }
      break;
    case 0x8c: case 'U': /* SHORT_BINUNICODE, SHORT_BINSTRING: 1-byte length */
      if (need(m, 1)) return -1;
      {
        size_t n = m->p[m->pos++];
        if (push_str(m, n)) return -1;
      }
      break;
    case 'Q': /* BINPERSID */
      if (pop(m, &a)) return -1;
      if (persistent_load(m, a)) return -1;
      break;
    case 'R': /* REDUCE */
      if (do_reduce(m)) return -1;
      break;
    case 'b': /* BUILD: only the OrderedDict attributes torch attaches (_metadata) */
      if (pop(m, &b)) return -1;
      if (m->ns <= stack_floor(m) || m->o[m->stack[m->ns - 1]].kind != O_DICT || (m->o[b].kind != O_DICT && m->o[b].kind != O_NONE))
        return vm_err(m, "BUILD is only supported on dicts", NULL, NULL);
      break;
    case '0': /* POP */
      if (pop(m, &a)) return -1;
      break;
    case '1': /* POP_MARK */
      if (pop_mark(m, &first)) return -1;
      m->ns = first;
      break;
    case '2': /* DUP */
      if (m->ns <= stack_floor(m)) return vm_err(m, "DUP of an empty stack", NULL, NULL);
      push(m, m->stack[m->ns - 1]);
      break;
    case '.': /* STOP */
      if (pop(m, result)) return -1;
      return 0;
    default: {
      char hex[8];
      snprintf(hex, sizeof hex, "0x%02x", op);
      return vm_err(m, "unsupported pickle opcode %s (not something torch.save writes for tensors)", hex, NULL);
    }
    }
  }
}

static void vm_free(vm *m) {
  for (int i = 0; i < m->no; i++) free(m->o[i].items);
  free(m->o);
  free(m->stack);
  free(m->marks);
  free(m->memo);
  free(m->st);
  free(m->t);
  free(m->crc_checked);
}

/* ================================ params.pt (read) ================================ */

static int pt_parse(tl_pt_file *f, const void *data, size_t size, int flags, int mapped) {
  const char *label = f->label;
  /* torch.save before 1.6 wrote pickles back to back (a magic number, then the
   * object, then the storages), not a zip: say so rather than "not a zip" */
  const unsigned char *b = data;
  if ((flags & TL_PT_CHECKPOINT) && size >= 2 && b[0] == 0x80 && b[1] >= 2 && b[1] <= 5)
    return tl_fail("%s: the legacy torch.save format (torch < 1.6, not a zip archive) is not supported; re-save it "
                   "with torch >= 1.6 (torch.save(torch.load(path), path)) or as safetensors", label);
  if (tl_zip_parse(&f->zip, data, size, label)) return -1;
  /* all entries live in one folder; data.pkl names it */
  const tl_zip_entry *pkl = NULL;
  for (int i = 0; i < f->zip.n; i++) {
    const char *nm = f->zip.e[i].name, *slash = strchr(nm, '/');
    if (slash && !strcmp(slash, "/data.pkl")) {
      if (pkl) return tl_fail("%s: more than one data.pkl in the archive", label);
      pkl = &f->zip.e[i];
    }
  }
  if (!pkl) return tl_fail("%s: no <archive>/data.pkl entry: not a torch.save file", label);
  size_t alen = (size_t)(strchr(pkl->name, '/') - pkl->name);
  char *archive = tl_malloc(alen + 1);
  memcpy(archive, pkl->name, alen);
  archive[alen] = 0;
  char *bo_name = tl_sprintf("%s/byteorder", archive);
  const tl_zip_entry *bo = tl_zip_find(&f->zip, bo_name);
  free(bo_name);
  if (bo && !(bo->size == 6 && !memcmp(f->zip.data + bo->data_offset, "little", 6))) {
    free(archive);
    return tl_fail("%s: byteorder is not 'little' (big-endian files are not supported)", label);
  }
  if (pkl->size > MAX_PICKLE_BYTES) {
    free(archive);
    return tl_fail("%s: data.pkl is %llu bytes; a state dict of tensors is far smaller", label, (unsigned long long)pkl->size);
  }
  if (tl_zip_check_crc(&f->zip, pkl, label)) {
    free(archive);
    return -1;
  }

  vm m = {0};
  m.label = label;
  m.p = f->zip.data + pkl->data_offset;
  m.len = (size_t)pkl->size;
  m.zip = &f->zip;
  m.archive = archive;
  m.crc_checked = tl_calloc((size_t)f->zip.n + 1, 1);
  m.flags = flags;
  m.mapped = mapped && (flags & TL_PT_CHECKPOINT);
  int root, rc = run(&m, &root);
  if (rc == 0) {
    const obj *d = &m.o[root];
    if (d->kind != O_DICT) {
      rc = tl_fail("%s: data.pkl holds a %s, expected a state dict (OrderedDict of tensors)", label, kind_name[d->kind]);
    } else {
      f->n = d->n / 2;
      f->t = tl_calloc((size_t)(f->n ? f->n : 1), sizeof *f->t);
      for (int k = 0; k < f->n && rc == 0; k++) {
        const obj *key = &m.o[d->items[2 * k]], *val = &m.o[d->items[2 * k + 1]];
        if (key->kind != O_STR || key->slen == 0 || key->slen > 1024 || memchr(key->s, 0, key->slen)) {
          rc = tl_fail("%s: state dict entry %d has a %s key, expected a tensor name", label, k, kind_name[key->kind]);
          break;
        }
        char *name = tl_malloc(key->slen + 1);
        memcpy(name, key->s, key->slen);
        name[key->slen] = 0;
        f->t[k].name = name;
        for (int j = 0; j < k; j++)
          if (!strcmp(f->t[j].name, name)) rc = tl_fail("%s: state dict key '%s' appears twice", label, name);
        if (rc) break;
        if (val->kind != O_TENSOR) {
          rc = tl_fail("%s: state dict entry '%s' is a %s, expected a tensor", label, name, kind_name[val->kind]);
          break;
        }
        const tensor *t = &m.t[val->i];
        const storage *s = &m.st[t->storage];
        tl_pt_tensor *o = &f->t[k];
        o->dtype = s->dtype;
        o->ndim = t->ndim;
        memcpy(o->shape, t->shape, sizeof o->shape);
        o->numel = t->numel;
        o->bytes = f->zip.data + s->entry->data_offset + (uint64_t)t->offset * tl_dtype_size(s->dtype);
      }
    }
  }
  vm_free(&m);
  free(archive);
  return rc;
}

int tl_pt_open_mem_flags(tl_pt_file *f, const void *data, size_t size, const char *label, int flags) {
  memset(f, 0, sizeof *f);
  f->label = tl_strdup(label);
  if (pt_parse(f, data, size, flags, 0)) {
    tl_pt_close(f);
    return -1;
  }
  return 0;
}

int tl_pt_open_mem(tl_pt_file *f, const void *data, size_t size, const char *label) {
  return tl_pt_open_mem_flags(f, data, size, label, 0);
}

int tl_pt_open_flags(tl_pt_file *f, const char *path, int flags) {
  memset(f, 0, sizeof *f);
  f->label = tl_strdup(path);
  if (tl_mmap_open(&f->map, path)) {
    free(f->label);
    memset(f, 0, sizeof *f);
    return -1;
  }
  if (pt_parse(f, f->map.data, f->map.size, flags, 1)) {
    tl_pt_close(f);
    return -1;
  }
  return 0;
}

int tl_pt_open(tl_pt_file *f, const char *path) { return tl_pt_open_flags(f, path, 0); }

_Static_assert(offsetof(tl_pt_tensor, name) == 0, "tl_named_* need the name first");

void tl_pt_close(tl_pt_file *f) {
  tl_named_free(f->t, f->n, sizeof *f->t);
  tl_zip_free(&f->zip);
  if (f->map.data) tl_mmap_close(&f->map);
  free(f->label);
  memset(f, 0, sizeof *f);
}

const tl_pt_tensor *tl_pt_find(const tl_pt_file *f, const char *name) {
  return tl_named_find(f->t, f->n, sizeof *f->t, name);
}

/* Storages may sit at any byte offset: tl_to_f32 reads at any alignment. */
void tl_pt_to_f32(const tl_pt_tensor *t, float *dst) { tl_to_f32(dst, t->bytes, t->dtype, (size_t)t->numel); }

/* ================================ params.pt (write) ================================ */

static void put_u8(tl_buf *b, int v) {
  unsigned char c = (unsigned char)v;
  tl_buf_append(b, &c, 1);
}
static void put_le(tl_buf *b, uint64_t v, int n) { /* the low n bytes of v */
  unsigned char le[8];
  tl_put_le64(le, v);
  tl_buf_append(b, le, (size_t)n);
}
static void put_int(tl_buf *b, int64_t v) {
  if (v >= 0 && v < 256) { put_u8(b, 'K'); put_le(b, (uint64_t)v, 1); }
  else if (v >= 0 && v < 65536) { put_u8(b, 'M'); put_le(b, (uint64_t)v, 2); }
  else if (v >= INT32_MIN && v <= INT32_MAX) { put_u8(b, 'J'); put_le(b, (uint64_t)v, 4); }
  else { put_u8(b, 0x8a); put_u8(b, 8); put_le(b, (uint64_t)v, 8); }
}
static void put_str(tl_buf *b, const char *s) {
  put_u8(b, 'X');
  put_le(b, strlen(s), 4);
  tl_buf_append(b, s, strlen(s));
}
static void put_global(tl_buf *b, const char *module, const char *name) {
  tl_buf_printf(b, "c%s\n%s\n", module, name);
}
static void put_int_tuple(tl_buf *b, int n, const int64_t *v) {
  if (n > 3) put_u8(b, '(');
  for (int k = 0; k < n; k++) put_int(b, v[k]);
  put_u8(b, n == 0 ? ')' : n == 1 ? 0x85 : n == 2 ? 0x86 : n == 3 ? 0x87 : 't');
}

/* The pickle of the state dict, shaped like torch.save's own (globals memoised in
 * slots 0..2 and fetched with BINGET afterwards). */
static void build_pickle(tl_buf *b, const tl_pt_entry *t, int n, tl_dtype dtype) {
  const char *storage_class = dtype == TL_F16 ? "HalfStorage" : dtype == TL_BF16 ? "BFloat16Storage" : "FloatStorage";
  put_u8(b, 0x80);
  put_u8(b, 2);
  put_global(b, "collections", "OrderedDict");
  put_u8(b, 'q'); put_u8(b, 0);
  put_u8(b, ')');
  put_u8(b, 'R');
  if (n > 0) put_u8(b, '(');
  for (int i = 0; i < n; i++) {
    put_str(b, t[i].name);
    if (i == 0) { put_global(b, "torch._utils", "_rebuild_tensor_v2"); put_u8(b, 'q'); put_u8(b, 1); }
    else { put_u8(b, 'h'); put_u8(b, 1); }
    put_u8(b, '(');
    /* persistent id ('storage', <class>, key, 'cpu', numel) */
    put_u8(b, '(');
    put_str(b, "storage");
    if (i == 0) { put_global(b, "torch", storage_class); put_u8(b, 'q'); put_u8(b, 2); }
    else { put_u8(b, 'h'); put_u8(b, 2); }
    char key[24];
    snprintf(key, sizeof key, "%d", i);
    put_str(b, key);
    put_str(b, "cpu");
    int64_t numel = tl_numel(t[i].ndim, t[i].shape);
    put_int(b, numel);
    put_u8(b, 't');
    put_u8(b, 'Q');
    put_int(b, 0); /* storage offset */
    put_int_tuple(b, t[i].ndim, t[i].shape);
    int64_t stride[TL_MAX_DIMS], s = 1;
    for (int k = t[i].ndim - 1; k >= 0; k--) {
      stride[k] = s;
      s *= t[i].shape[k];
    }
    put_int_tuple(b, t[i].ndim, stride);
    put_u8(b, 0x89); /* requires_grad False */
    put_u8(b, 'h'); put_u8(b, 0); /* backward hooks: OrderedDict() */
    put_u8(b, ')');
    put_u8(b, 'R');
    put_u8(b, 't');
    put_u8(b, 'R');
  }
  if (n > 0) put_u8(b, 'u');
  put_u8(b, '.');
}

int tl_pt_write(tl_zipw *w, const char *archive, const tl_pt_entry *t, int n, tl_dtype dtype) {
  if (dtype != TL_F32 && dtype != TL_F16 && dtype != TL_BF16)
    return tl_fail("params.pt writer: cannot store %s tensors (expected F32, F16 or BF16)", tl_dtype_name(dtype));
  for (int i = 0; i < n; i++) {
    if (t[i].ndim < 0 || t[i].ndim > TL_MAX_DIMS) return tl_fail("params.pt writer: tensor '%s' has %d dimensions", t[i].name, t[i].ndim);
    for (int k = 0; k < t[i].ndim; k++)
      if (t[i].shape[k] < 0) return tl_fail("params.pt writer: tensor '%s' has a negative dimension", t[i].name);
  }
  tl_buf pk = {0};
  build_pickle(&pk, t, n, dtype);
  char name[512];
  snprintf(name, sizeof name, "%s/data.pkl", archive);
  int rc = tl_zipw_add(w, name, pk.data, pk.len);
  tl_buf_free(&pk);
  snprintf(name, sizeof name, "%s/byteorder", archive);
  if (rc || tl_zipw_add(w, name, "little", 6)) return -1;

  size_t es = tl_dtype_size(dtype);
  enum { CHUNK = 1 << 16 };
  uint16_t *half = dtype == TL_F32 ? NULL : tl_malloc(CHUNK * sizeof *half);
  for (int i = 0; i < n && rc == 0; i++) {
    int64_t numel = tl_numel(t[i].ndim, t[i].shape);
    snprintf(name, sizeof name, "%s/data/%d", archive, i);
    rc = tl_zipw_begin(w, name, (uint64_t)numel * es);
    for (int64_t j = 0; j < numel && rc == 0; j += CHUNK) {
      size_t m = (size_t)(numel - j < CHUNK ? numel - j : CHUNK);
      if (dtype == TL_F32) {
        rc = tl_zipw_data(w, t[i].data + j, m * 4);
      } else {
        tl_from_f32(half, dtype, t[i].data + j, m);
        rc = tl_zipw_data(w, half, m * 2);
      }
    }
    if (rc == 0) rc = tl_zipw_end(w);
  }
  free(half);
  snprintf(name, sizeof name, "%s/version", archive);
  if (rc || tl_zipw_add(w, name, "3\n", 2)) return -1;
  return 0;
}

int tl_pt_save(const char *path, const tl_pt_entry *t, int n, tl_dtype dtype, int zip_flags) {
  tl_zipw *w = tl_zipw_open(path, zip_flags);
  if (!w) return -1;
  /* torch 1.x names the folder after the file ("params" for params.pt) */
  char archive[64];
  const char *base = tl_basename(path);
  size_t len = strcspn(base, ".");
  int ok = len > 0 && len < sizeof archive;
  for (size_t k = 0; ok && k < len; k++)
    ok = (base[k] >= 'a' && base[k] <= 'z') || (base[k] >= 'A' && base[k] <= 'Z') || (base[k] >= '0' && base[k] <= '9') || base[k] == '_' || base[k] == '-';
  if (ok) {
    memcpy(archive, base, len);
    archive[len] = 0;
  } else {
    strcpy(archive, "archive");
  }
  if (tl_pt_write(w, archive, t, n, dtype)) {
    tl_zipw_abort(w);
    return -1;
  }
  return tl_zipw_finish(w, NULL, NULL);
}
