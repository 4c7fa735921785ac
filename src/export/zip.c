/* Zip archives the way PyTorch uses them: every entry stored (no compression),
 * data 64-byte aligned, zip64 records when sizes or offsets pass 4 GiB.
 *
 * Reading trusts nothing: every offset and length read from the file is checked
 * against the file size before use, with 64-bit arithmetic that cannot wrap.
 * Writing streams entry data straight to the file and patches each CRC into its
 * local header afterwards, so a 20 GB lens is never held twice in memory. */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tlens/bytes.h"
#include "tlens/core.h"
#include "tlens/export.h"
#include "tlens/named.h"

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_EOCD 0x06054b50u
#define SIG_EOCD64 0x06064b50u
#define SIG_LOCATOR64 0x07064b50u
#define U32_MAX_FIELD 0xffffffffu
#define U16_MAX_FIELD 0xffffu


/* ================================ reading ================================ */

/* The zip64 extended-information extra field replaces, in this order, each of
 * usize, csize, offset that the fixed header set to 0xffffffff. */
static int read_zip64_extra(const unsigned char *ex, uint32_t exlen, uint64_t *usize, uint64_t *csize,
                            uint64_t *off, const char *label, const char *name) {
  int need_u = *usize == U32_MAX_FIELD, need_c = *csize == U32_MAX_FIELD, need_o = *off == U32_MAX_FIELD;
  if (!need_u && !need_c && !need_o) return 0;
  uint32_t p = 0;
  while (p + 4 <= exlen) {
    uint16_t id = tl_le16(ex + p), len = tl_le16(ex + p + 2);
    if (p + 4 + (uint32_t)len > exlen) break;
    if (id == 0x0001) {
      const unsigned char *f = ex + p + 4;
      uint32_t k = 0;
      if (need_u) { if (k + 8 > len) goto short_field; *usize = tl_le64(f + k); k += 8; }
      if (need_c) { if (k + 8 > len) goto short_field; *csize = tl_le64(f + k); k += 8; }
      if (need_o) { if (k + 8 > len) goto short_field; *off = tl_le64(f + k); k += 8; }
      return 0;
    }
    p += 4 + len;
  }
  return tl_fail("%s: zip entry '%s': sizes say zip64 but there is no zip64 extra field", label, name);
short_field:
  return tl_fail("%s: zip entry '%s': zip64 extra field too short", label, name);
}

static int cmp_entry_name(const void *a, const void *b) {
  return strcmp((*(const tl_zip_entry *const *)a)->name, (*(const tl_zip_entry *const *)b)->name);
}

int tl_zip_parse(tl_zip *z, const void *data, uint64_t size, const char *label) {
  memset(z, 0, sizeof *z);
  const unsigned char *d = data;
  z->data = d;
  z->size = size;
  if (size < 4 || tl_le32(d) != SIG_LOCAL) {
    if (size >= 2 && d[0] == 0x80 && d[1] <= 5)
      return tl_fail("%s: not a zip archive (looks like the legacy torch.save format, which is not supported)", label);
    return tl_fail("%s: not a zip archive (expected the PyTorch zip format, magic 'PK\\x03\\x04')", label);
  }
  if (size < 22) return tl_fail("%s: truncated zip archive (%llu bytes)", label, (unsigned long long)size);

  /* End of central directory: the last 22+comment bytes; the comment length must
   * reach exactly the end of the file. */
  uint64_t eocd = UINT64_MAX;
  uint64_t lo = size > 22 + 65535 ? size - 22 - 65535 : 0;
  for (uint64_t p = size - 22 + 1; p-- > lo;) {
    if (tl_le32(d + p) == SIG_EOCD && p + 22 + tl_le16(d + p + 20) == size) {
      eocd = p;
      break;
    }
  }
  if (eocd == UINT64_MAX) return tl_fail("%s: truncated or corrupt zip archive (no end of central directory record)", label);
  const unsigned char *e = d + eocd;
  uint64_t n_entries = tl_le16(e + 10), cd_size = tl_le32(e + 12), cd_off = tl_le32(e + 16);
  if (tl_le16(e + 4) != 0 && tl_le16(e + 4) != U16_MAX_FIELD) return tl_fail("%s: multi-disk zip archives are not supported", label);
  uint64_t cd_limit = eocd; /* the central directory ends before this */

  if (eocd >= 20 && tl_le32(d + eocd - 20) == SIG_LOCATOR64) {
    const unsigned char *loc = d + eocd - 20;
    uint64_t off64 = tl_le64(loc + 8);
    if (tl_le32(loc + 16) > 1) return tl_fail("%s: multi-disk zip archives are not supported", label);
    if (off64 > eocd - 20 || eocd - 20 - off64 < 56)
      return tl_fail("%s: corrupt zip archive (zip64 end record offset %llu out of range)", label, (unsigned long long)off64);
    const unsigned char *e64 = d + off64;
    if (tl_le32(e64) != SIG_EOCD64) return tl_fail("%s: corrupt zip archive (bad zip64 end record signature)", label);
    if (tl_le32(e64 + 16) != 0 || tl_le32(e64 + 20) != 0) return tl_fail("%s: multi-disk zip archives are not supported", label);
    n_entries = tl_le64(e64 + 32);
    if (tl_le64(e64 + 24) != n_entries) return tl_fail("%s: multi-disk zip archives are not supported", label);
    cd_size = tl_le64(e64 + 40);
    cd_off = tl_le64(e64 + 48);
    cd_limit = off64;
    z->zip64 = 1;
  } else if (tl_le16(e + 8) != n_entries) {
    return tl_fail("%s: multi-disk zip archives are not supported", label);
  }
  if (cd_off > cd_limit || cd_size > cd_limit - cd_off)
    return tl_fail("%s: truncated or corrupt zip archive (central directory at %llu+%llu beyond %llu)", label,
                   (unsigned long long)cd_off, (unsigned long long)cd_size, (unsigned long long)cd_limit);
  if (n_entries > cd_size / 46) return tl_fail("%s: corrupt zip archive (%llu entries cannot fit a %llu-byte central directory)", label, (unsigned long long)n_entries, (unsigned long long)cd_size);

  z->e = tl_calloc(n_entries ? n_entries : 1, sizeof *z->e);
  uint64_t p = cd_off, cd_end = cd_off + cd_size;
  for (uint64_t i = 0; i < n_entries; i++) {
    if (cd_end - p < 46 || tl_le32(d + p) != SIG_CENTRAL) {
      tl_fail("%s: corrupt zip archive (central directory entry %llu)", label, (unsigned long long)i);
      goto fail;
    }
    const unsigned char *c = d + p;
    uint16_t flags = tl_le16(c + 8), method = tl_le16(c + 10);
    uint32_t nlen = tl_le16(c + 28), elen = tl_le16(c + 30), clen = tl_le16(c + 32);
    uint64_t csize = tl_le32(c + 20), usize = tl_le32(c + 24), off = tl_le32(c + 42);
    if (cd_end - p - 46 < (uint64_t)nlen + elen + clen) {
      tl_fail("%s: corrupt zip archive (central directory entry %llu overruns the directory)", label, (unsigned long long)i);
      goto fail;
    }
    char *name = tl_malloc(nlen + 1);
    memcpy(name, c + 46, nlen);
    name[nlen] = 0;
    tl_zip_entry *en = &z->e[z->n++];
    en->name = name;
    if (memchr(c + 46, 0, nlen) || nlen == 0) {
      tl_fail("%s: zip entry %llu has an empty or invalid name", label, (unsigned long long)i);
      goto fail;
    }
    if (flags & 1) {
      tl_fail("%s: zip entry '%s' is encrypted", label, name);
      goto fail;
    }
    if (method != 0) {
      tl_fail("%s: zip entry '%s' is compressed (method %u); expected stored entries as torch.save writes", label, name, method);
      goto fail;
    }
    if (read_zip64_extra(c + 46 + nlen, elen, &usize, &csize, &off, label, name)) goto fail;
    if (csize != usize) {
      tl_fail("%s: zip entry '%s': stored entry with compressed size %llu != size %llu", label, name,
              (unsigned long long)csize, (unsigned long long)usize);
      goto fail;
    }
    /* the local header and data must lie before the central directory */
    if (off > cd_off || cd_off - off < 30 || tl_le32(d + off) != SIG_LOCAL) {
      tl_fail("%s: zip entry '%s': bad local header offset %llu", label, name, (unsigned long long)off);
      goto fail;
    }
    const unsigned char *l = d + off;
    uint64_t lnlen = tl_le16(l + 26), lelen = tl_le16(l + 28);
    uint64_t data_off = off + 30 + lnlen + lelen;
    if (data_off > cd_off || usize > cd_off - data_off) {
      tl_fail("%s: truncated or corrupt zip archive (entry '%s' data beyond the archive)", label, name);
      goto fail;
    }
    if (lnlen != nlen || memcmp(l + 30, name, nlen) != 0 || tl_le16(l + 8) != 0) {
      tl_fail("%s: zip entry '%s': local header does not match the central directory", label, name);
      goto fail;
    }
    en->header_offset = off;
    en->data_offset = data_off;
    en->size = usize;
    en->crc = tl_le32(c + 16);
    p += 46 + (uint64_t)nlen + elen + clen;
  }
  /* duplicate names would make lookups ambiguous */
  if (z->n > 1) {
    const tl_zip_entry **v = tl_malloc((size_t)z->n * sizeof *v);
    for (int i = 0; i < z->n; i++) v[i] = &z->e[i];
    qsort(v, (size_t)z->n, sizeof *v, cmp_entry_name);
    for (int i = 1; i < z->n; i++)
      if (!strcmp(v[i]->name, v[i - 1]->name)) {
        tl_fail("%s: zip entry '%s' appears twice", label, v[i]->name);
        free(v);
        goto fail;
      }
    free(v);
  }
  return 0;
fail:
  tl_zip_free(z);
  return -1;
}

_Static_assert(offsetof(tl_zip_entry, name) == 0, "tl_named_* need the name first");

void tl_zip_free(tl_zip *z) {
  tl_named_free(z->e, z->n, sizeof *z->e);
  memset(z, 0, sizeof *z);
}

const tl_zip_entry *tl_zip_find(const tl_zip *z, const char *name) {
  return tl_named_find(z->e, z->n, sizeof *z->e, name);
}

int tl_zip_check_crc(const tl_zip *z, const tl_zip_entry *e, const char *label) {
  uint32_t crc = 0;
  const unsigned char *p = z->data + e->data_offset;
  /* in 1 GiB steps: tl_crc32 takes size_t, and this keeps progress uniform */
  for (uint64_t done = 0; done < e->size;) {
    uint64_t n = e->size - done < (1u << 30) ? e->size - done : (1u << 30);
    crc = tl_crc32(crc, p + done, (size_t)n);
    done += n;
  }
  if (crc != e->crc)
    return tl_fail("%s: zip entry '%s' is corrupt (CRC32 %08x, expected %08x)", label, e->name, crc, e->crc);
  return 0;
}

/* ================================ writing ================================ */

typedef struct {
  char *name;
  uint64_t header_offset, size;
  uint32_t crc;
} wentry;

struct tl_zipw {
  int fd;           /* -1: memory */
  char *path, *tmp; /* file mode */
  tl_buf mem;
  uint64_t pos;
  int flags, failed;
  int n, cap;
  wentry *e;
  /* the entry being written */
  int open;
  uint64_t cur_size, cur_written, cur_header;
  uint32_t cur_crc;
};


static int zw_write(tl_zipw *w, const void *data, size_t n) {
  if (w->failed) return -1;
  if (w->fd < 0) {
    tl_buf_append(&w->mem, data, n);
  } else {
    const char *p = data;
    size_t left = n;
    while (left > 0) {
      ssize_t k = write(w->fd, p, left);
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) {
        w->failed = 1;
        return tl_fail("%s: write failed: %s", w->path, k < 0 ? strerror(errno) : "no progress");
      }
      p += k;
      left -= (size_t)k;
    }
  }
  w->pos += n;
  return 0;
}

static int zw_patch(tl_zipw *w, uint64_t off, const void *data, size_t n) {
  if (w->failed) return -1;
  if (w->fd < 0) {
    memcpy(w->mem.data + off, data, n);
    return 0;
  }
  ssize_t k = pwrite(w->fd, data, n, (off_t)off);
  if (k != (ssize_t)n) {
    w->failed = 1;
    return tl_fail("%s: write failed: %s", w->path, k < 0 ? strerror(errno) : "short write");
  }
  return 0;
}

static tl_zipw *zw_new(int flags) {
  tl_zipw *w = tl_calloc(1, sizeof *w);
  w->fd = -1;
  w->flags = flags;
  return w;
}

tl_zipw *tl_zipw_open(const char *path, int flags) {
  tl_zipw *w = zw_new(flags);
  w->path = tl_strdup(path);
  w->tmp = tl_sprintf("%s.tmp.%ld", path, (long)getpid());
  w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (w->fd < 0) {
    tl_fail("%s: cannot create: %s", w->tmp, strerror(errno));
    free(w->path);
    free(w->tmp);
    free(w);
    return NULL;
  }
  return w;
}

tl_zipw *tl_zipw_open_mem(int flags) { return zw_new(flags); }

int tl_zipw_begin(tl_zipw *w, const char *name, uint64_t size) {
  if (w->failed) return -1;
  size_t nlen = strlen(name);
  if (w->open || nlen == 0 || nlen > 0xffff) {
    w->failed = 1;
    return tl_fail("zip writer: bad entry '%s'", name);
  }
  int z64 = (w->flags & TL_ZIPW_FORCE_ZIP64) || size >= U32_MAX_FIELD;
  /* Pad the extra field so the data starts on a 64-byte boundary (torch aligns
   * storages so they can be memory-mapped). The padding field ("FB", as torch
   * names it) needs at least its 4-byte header. */
  uint64_t start = w->pos + 30 + nlen + (z64 ? 20 : 0);
  uint32_t pad = (uint32_t)((64 - start % 64) % 64);
  if (pad != 0 && pad < 4) pad += 64;
  unsigned char h[30 + 20 + 68];
  memset(h, 0, sizeof h);
  tl_put_le32(h, SIG_LOCAL);
  tl_put_le16(h + 4, z64 ? 45 : 20); /* version needed: 4.5 for zip64 */
  tl_put_le16(h + 6, 0);             /* flags */
  tl_put_le16(h + 8, 0);             /* stored */
  tl_put_le16(h + 10, 0);            /* time 00:00:00 */
  tl_put_le16(h + 12, 0x21);         /* date 1980-01-01 */
  tl_put_le32(h + 14, 0);            /* crc, patched by tl_zipw_end */
  tl_put_le32(h + 18, z64 ? U32_MAX_FIELD : (uint32_t)size);
  tl_put_le32(h + 22, z64 ? U32_MAX_FIELD : (uint32_t)size);
  tl_put_le16(h + 26, (uint16_t)nlen);
  tl_put_le16(h + 28, (uint16_t)((z64 ? 20 : 0) + pad));
  size_t hl = 30;
  unsigned char ex[20 + 68];
  size_t el = 0;
  if (z64) {
    tl_put_le16(ex, 0x0001);
    tl_put_le16(ex + 2, 16);
    tl_put_le64(ex + 4, size);
    tl_put_le64(ex + 12, size);
    el = 20;
  }
  if (pad) {
    tl_put_le16(ex + el, 0x4246); /* "FB" */
    tl_put_le16(ex + el + 2, (uint16_t)(pad - 4));
    memset(ex + el + 4, 'Z', pad - 4);
    el += pad;
  }
  w->cur_header = w->pos;
  if (zw_write(w, h, hl) || zw_write(w, name, nlen) || zw_write(w, ex, el)) return -1;
  if (w->n == w->cap) {
    w->cap = w->cap ? 2 * w->cap : 16;
    w->e = tl_realloc(w->e, (size_t)w->cap * sizeof *w->e);
  }
  w->e[w->n].name = tl_strdup(name);
  w->e[w->n].header_offset = w->cur_header;
  w->e[w->n].size = size;
  w->open = 1;
  w->cur_size = size;
  w->cur_written = 0;
  w->cur_crc = 0;
  return 0;
}

int tl_zipw_data(tl_zipw *w, const void *data, size_t n) {
  if (w->failed) return -1;
  if (!w->open || n > w->cur_size - w->cur_written) {
    w->failed = 1;
    return tl_fail("zip writer: more data than announced for '%s'", w->open ? w->e[w->n].name : "?");
  }
  w->cur_crc = tl_crc32(w->cur_crc, data, n);
  w->cur_written += n;
  return zw_write(w, data, n);
}

int tl_zipw_end(tl_zipw *w) {
  if (w->failed) return -1;
  if (!w->open || w->cur_written != w->cur_size) {
    w->failed = 1;
    return tl_fail("zip writer: entry '%s' got %llu of %llu bytes", w->open ? w->e[w->n].name : "?",
                   (unsigned long long)w->cur_written, (unsigned long long)w->cur_size);
  }
  unsigned char c[4];
  tl_put_le32(c, w->cur_crc);
  if (zw_patch(w, w->cur_header + 14, c, 4)) return -1;
  w->e[w->n].crc = w->cur_crc;
  w->n++;
  w->open = 0;
  return 0;
}

int tl_zipw_add(tl_zipw *w, const char *name, const void *data, size_t n) {
  if (tl_zipw_begin(w, name, n) || tl_zipw_data(w, data, n) || tl_zipw_end(w)) return -1;
  return 0;
}

static void zw_free(tl_zipw *w) {
  for (int i = 0; i < w->n + (w->open ? 1 : 0); i++) free(w->e[i].name);
  free(w->e);
  free(w->path);
  free(w->tmp);
  tl_buf_free(&w->mem);
  free(w);
}

void tl_zipw_abort(tl_zipw *w) {
  if (!w) return;
  if (w->fd >= 0) {
    close(w->fd);
    unlink(w->tmp);
  }
  zw_free(w);
}

int tl_zipw_finish(tl_zipw *w, unsigned char **mem, size_t *mem_len) {
  if (w->open && !w->failed) {
    w->failed = 1;
    tl_fail("zip writer: entry '%s' was not ended", w->e[w->n].name);
  }
  int force = w->flags & TL_ZIPW_FORCE_ZIP64;
  uint64_t cd_off = w->pos;
  int any64 = force || w->n > 0xfffe;
  for (int i = 0; i < w->n && !w->failed; i++) {
    const wentry *e = &w->e[i];
    int big_size = force || e->size >= U32_MAX_FIELD, big_off = force || e->header_offset >= U32_MAX_FIELD;
    size_t nlen = strlen(e->name);
    unsigned char h[46], ex[4 + 24];
    size_t el = 0;
    if (big_size || big_off) {
      any64 = 1;
      tl_put_le16(ex, 0x0001);
      el = 4;
      if (big_size) { tl_put_le64(ex + el, e->size); el += 8; tl_put_le64(ex + el, e->size); el += 8; }
      if (big_off) { tl_put_le64(ex + el, e->header_offset); el += 8; }
      tl_put_le16(ex + 2, (uint16_t)(el - 4));
    }
    memset(h, 0, sizeof h);
    tl_put_le32(h, SIG_CENTRAL);
    tl_put_le16(h + 4, el ? 45 : 20); /* made by: MS-DOS attributes, spec version */
    tl_put_le16(h + 6, el ? 45 : 20);
    tl_put_le16(h + 12, 0);
    tl_put_le16(h + 14, 0x21);
    tl_put_le32(h + 16, e->crc);
    tl_put_le32(h + 20, big_size ? U32_MAX_FIELD : (uint32_t)e->size);
    tl_put_le32(h + 24, big_size ? U32_MAX_FIELD : (uint32_t)e->size);
    tl_put_le16(h + 28, (uint16_t)nlen);
    tl_put_le16(h + 30, (uint16_t)el);
    tl_put_le32(h + 42, big_off ? U32_MAX_FIELD : (uint32_t)e->header_offset);
    if (zw_write(w, h, 46) || zw_write(w, e->name, nlen) || zw_write(w, ex, el)) break;
  }
  uint64_t cd_size = w->pos - cd_off;
  if (cd_off >= U32_MAX_FIELD || cd_size >= U32_MAX_FIELD) any64 = 1;
  if (!w->failed && any64) {
    unsigned char r[56 + 20];
    uint64_t off64 = w->pos;
    memset(r, 0, sizeof r);
    tl_put_le32(r, SIG_EOCD64);
    tl_put_le64(r + 4, 44); /* size of the rest of this record */
    tl_put_le16(r + 12, 45);
    tl_put_le16(r + 14, 45);
    tl_put_le64(r + 24, (uint64_t)w->n);
    tl_put_le64(r + 32, (uint64_t)w->n);
    tl_put_le64(r + 40, cd_size);
    tl_put_le64(r + 48, cd_off);
    tl_put_le32(r + 56, SIG_LOCATOR64);
    tl_put_le64(r + 64, off64);
    tl_put_le32(r + 72, 1); /* total number of disks */
    zw_write(w, r, sizeof r);
  }
  if (!w->failed) {
    unsigned char r[22];
    memset(r, 0, sizeof r);
    tl_put_le32(r, SIG_EOCD);
    uint16_t n16 = w->n >= 0xffff ? U16_MAX_FIELD : (uint16_t)w->n;
    tl_put_le16(r + 8, n16);
    tl_put_le16(r + 10, n16);
    tl_put_le32(r + 12, cd_size >= U32_MAX_FIELD ? U32_MAX_FIELD : (uint32_t)cd_size);
    tl_put_le32(r + 16, cd_off >= U32_MAX_FIELD ? U32_MAX_FIELD : (uint32_t)cd_off);
    zw_write(w, r, sizeof r);
  }
  if (w->failed) {
    tl_zipw_abort(w);
    return -1;
  }
  if (w->fd < 0) {
    if (mem) {
      *mem = w->mem.data;
      *mem_len = w->mem.len;
      w->mem.data = NULL;
      w->mem.len = w->mem.cap = 0;
    }
    zw_free(w);
    return 0;
  }
  /* durable before visible: data on disk, then the rename, then the directory */
  if (fsync(w->fd) != 0) {
    tl_fail("%s: fsync failed: %s", w->tmp, strerror(errno));
    tl_zipw_abort(w);
    return -1;
  }
  if (close(w->fd) != 0) {
    w->fd = -1;
    tl_fail("%s: close failed: %s", w->tmp, strerror(errno));
    unlink(w->tmp);
    zw_free(w);
    return -1;
  }
  w->fd = -1;
  if (rename(w->tmp, w->path) != 0) {
    tl_fail("%s: cannot rename to %s: %s", w->tmp, w->path, strerror(errno));
    unlink(w->tmp);
    zw_free(w);
    return -1;
  }
  int rc = tl_fsync_dir_of(w->path);
  zw_free(w);
  return rc;
}
