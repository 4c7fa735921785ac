/* Corpus reader: one JSON object per line, from .jsonl or .jsonl.zst.
 *
 * The file is streamed: raw bytes (or zstd-decompressed bytes, via ZSTD_decompressStream)
 * are appended to a buffer, lines are cut at '\n', and each non-blank line is parsed with
 * cJSON. Nothing is ever decompressed to disk and memory stays bounded by the longest
 * line plus one read block. Every error names the file and the 1-based line number. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "data/data_internal.h"
#include "tlens/core.h"
#include "tlens/data.h"

#define READ_BLOCK (1u << 20)

struct tl_corpus {
  char *path, *column;
  FILE *f;
  int zst;
  ZSTD_DCtx *dctx;
  unsigned char *in;    /* compressed input block (zst only) */
  ZSTD_inBuffer inb;
  size_t zret;          /* last ZSTD_decompressStream return: 0 = frame complete */
  uint64_t src_bytes;   /* bytes read from the file */
  int src_eof;          /* the file is exhausted */
  int data_eof;         /* no more decoded bytes will come */
  char *buf;            /* decoded bytes; [pos, len) not yet consumed */
  size_t pos, len, cap, scan;
  int64_t line;         /* line number of the last line returned */
  int64_t ndocs;
  cJSON *doc;           /* the current document (owns the text) */
};

static int ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && strcmp(s + a - b, suffix) == 0;
}

int tl_corpus_open(tl_corpus **out, const char *path, const char *column) {
  *out = NULL;
  if (!ends_with(path, ".jsonl") && !ends_with(path, ".jsonl.zst"))
    return tl_fail("%s: expected a .jsonl or .jsonl.zst corpus", path);
  FILE *f = tl_fopen_regular(path, NULL);
  if (!f) return -1;
  tl_corpus *c = tl_calloc(1, sizeof *c);
  c->path = tl_strdup(path);
  c->column = tl_strdup(column ? column : "text");
  c->f = f;
  c->zst = ends_with(path, ".zst");
  if (c->zst) {
    c->dctx = ZSTD_createDCtx();
    if (!c->dctx) {
      tl_corpus_close(c);
      return tl_fail("%s: cannot create a zstd decoder", path);
    }
    c->in = tl_malloc(ZSTD_DStreamInSize());
  }
  c->cap = READ_BLOCK + ZSTD_DStreamOutSize();
  c->buf = tl_malloc(c->cap + 1);
  *out = c;
  return 0;
}

void tl_corpus_close(tl_corpus *c) {
  if (!c) return;
  if (c->f) fclose(c->f);
  if (c->dctx) ZSTD_freeDCtx(c->dctx);
  cJSON_Delete(c->doc);
  free(c->in);
  free(c->buf);
  free(c->path);
  free(c->column);
  free(c);
}

/* Makes room for `need` more bytes after c->len, first dropping the consumed prefix. */
static void make_room(tl_corpus *c, size_t need) {
  if (c->pos > 0) {
    memmove(c->buf, c->buf + c->pos, c->len - c->pos);
    c->len -= c->pos;
    c->scan -= c->pos;
    c->pos = 0;
  }
  if (c->cap - c->len < need) {
    while (c->cap - c->len < need) c->cap *= 2;
    c->buf = tl_realloc(c->buf, c->cap + 1);
  }
}

/* Appends more decoded bytes. Returns 1 if some were added, 0 at the end, -1 on error. */
static int fill(tl_corpus *c) {
  if (c->data_eof) return 0;
  if (!c->zst) {
    make_room(c, READ_BLOCK);
    size_t n = fread(c->buf + c->len, 1, READ_BLOCK, c->f);
    if (n == 0) {
      if (ferror(c->f)) return tl_fail("%s: read error after line %lld", c->path, (long long)c->line);
      c->data_eof = 1;
      return 0;
    }
    c->len += n;
    c->src_bytes += n;
    return 1;
  }
  size_t out_room = ZSTD_DStreamOutSize();
  make_room(c, out_room);
  for (;;) {
    if (c->inb.pos == c->inb.size && !c->src_eof) {
      size_t n = fread(c->in, 1, ZSTD_DStreamInSize(), c->f);
      if (n == 0) {
        if (ferror(c->f)) return tl_fail("%s: read error after line %lld", c->path, (long long)c->line);
        c->src_eof = 1;
      } else {
        c->inb.src = c->in;
        c->inb.size = n;
        c->inb.pos = 0;
        c->src_bytes += n;
      }
    }
    if (c->src_eof && c->src_bytes == 0) { /* an empty file: no frame at all */
      c->data_eof = 1;
      return 0;
    }
    /* Called even with no new input: the decoder may still hold output to flush. */
    ZSTD_outBuffer ob = {c->buf + c->len, out_room, 0};
    size_t in_before = c->inb.pos;
    size_t r = ZSTD_decompressStream(c->dctx, &ob, &c->inb);
    if (ZSTD_isError(r))
      return tl_fail("%s: corrupt zstd data near line %lld: %s", c->path, (long long)c->line + 1,
                     ZSTD_getErrorName(r));
    /* Remember the status of the last call that did something: 0 there means the frame
     * ended cleanly (an idle call afterwards would report the size of a next header). */
    if (ob.pos > 0 || c->inb.pos != in_before) c->zret = r;
    c->len += ob.pos;
    if (ob.pos > 0) return 1;
    if (c->src_eof && c->inb.pos == c->inb.size) {
      if (c->zret != 0)
        return tl_fail("%s: truncated zstd stream (frame incomplete) near line %lld", c->path,
                       (long long)c->line + 1);
      c->data_eof = 1;
      return 0;
    }
  }
}

/* Next raw line (without '\n'), NUL-terminated in place. Returns 1, 0 at the end, -1. */
static int next_line(tl_corpus *c, char **line, size_t *len) {
  for (;;) {
    char *nl = c->scan < c->len ? memchr(c->buf + c->scan, '\n', c->len - c->scan) : NULL;
    if (nl) {
      *line = c->buf + c->pos;
      *len = (size_t)(nl - *line);
      *nl = '\0';
      c->pos = c->scan = (size_t)(nl - c->buf) + 1;
      c->line++;
      return 1;
    }
    c->scan = c->len;
    int r = fill(c);
    if (r < 0) return -1;
    if (r == 0) {
      if (c->pos == c->len) return 0;
      *line = c->buf + c->pos; /* last line without a trailing newline */
      *len = c->len - c->pos;
      c->buf[c->len] = '\0';
      c->pos = c->scan = c->len;
      c->line++;
      return 1;
    }
  }
}

/* Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF.
 * Returns the byte offset of the first bad sequence, or -1 when valid. */
int64_t tl_utf8_invalid_at(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0;
  while (i < n) {
    unsigned c = p[i];
    if (c < 0x80) { i++; continue; }
    size_t k;
    unsigned cp, min;
    if (c >= 0xC2 && c <= 0xDF) { k = 1; cp = c & 0x1F; min = 0x80; }
    else if (c >= 0xE0 && c <= 0xEF) { k = 2; cp = c & 0x0F; min = 0x800; }
    else if (c >= 0xF0 && c <= 0xF4) { k = 3; cp = c & 0x07; min = 0x10000; }
    else return (int64_t)i;
    if (n - i <= k) return (int64_t)i;
    for (size_t j = 1; j <= k; j++) {
      if ((p[i + j] & 0xC0) != 0x80) return (int64_t)i;
      cp = (cp << 6) | (p[i + j] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return (int64_t)i;
    i += k + 1;
  }
  return -1;
}

/* cJSON turns the escape \u0000 into a NUL that silently ends its C string; such a
 * document would be cut short, so we refuse it. Scans the raw JSON line's escapes. */
static int has_escaped_nul(const char *s, size_t n) {
  for (size_t i = 0; i + 1 < n; i++) {
    if (s[i] != '\\') continue;
    if (s[i + 1] == 'u' && i + 5 < n && s[i + 2] == '0' && s[i + 3] == '0' && s[i + 4] == '0' &&
        s[i + 5] == '0')
      return 1;
    i++; /* skip the escaped character (handles "\\\\") */
  }
  return 0;
}

static int is_blank(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return 0;
  return 1;
}

/* A line that decoded but is not a valid document. In a .zst file that may be the
 * first visible sign of corrupt compressed data, so the rest of the stream is decoded
 * (and discarded): if zstd then reports corruption, that is the error we give. */
static int bad_line(tl_corpus *c, int rc) {
  if (!c->zst) return rc;
  char *msg = tl_strdup(tl_errmsg());
  int r;
  while ((r = fill(c)) > 0) c->pos = c->len = c->scan = 0;
  if (r == 0) tl_fail("%s", msg);
  free(msg);
  return -1;
}

int tl_corpus_next(tl_corpus *c, const char **text, size_t *len, int64_t *line) {
  cJSON_Delete(c->doc);
  c->doc = NULL;
  for (;;) {
    char *s;
    size_t n;
    int r = next_line(c, &s, &n);
    if (r < 0) return -1;
    if (r == 0) {
      if (c->ndocs == 0) return tl_fail("%s: empty corpus: no document (one JSON object per line)", c->path);
      return 0;
    }
    if (is_blank(s, n)) continue;
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(s, n, &end, 0);
    if (j && end && !is_blank(end, n - (size_t)(end - s))) {
      cJSON_Delete(j);
      j = NULL;
    }
    if (!j) return bad_line(c, tl_fail("%s:%lld: not a JSON value on this line", c->path, (long long)c->line));
    c->doc = j;
    if (!cJSON_IsObject(j))
      return bad_line(c, tl_fail("%s:%lld: expected a JSON object with a \"%s\" string", c->path, (long long)c->line, c->column));
    cJSON *t = cJSON_GetObjectItemCaseSensitive(j, c->column);
    if (!t) return bad_line(c, tl_fail("%s:%lld: no \"%s\" member", c->path, (long long)c->line, c->column));
    if (!cJSON_IsString(t) || !t->valuestring)
      return bad_line(c, tl_fail("%s:%lld: member \"%s\" is not a string", c->path, (long long)c->line, c->column));
    if (has_escaped_nul(s, n))
      return bad_line(c, tl_fail("%s:%lld: text contains U+0000 (\\u0000), which is not supported", c->path,
                     (long long)c->line));
    size_t tl = strlen(t->valuestring);
    int64_t bad = tl_utf8_invalid_at(t->valuestring, tl);
    if (bad >= 0)
      return bad_line(c, tl_fail("%s:%lld: member \"%s\" is not valid UTF-8 (byte %lld of the text)", c->path,
                     (long long)c->line, c->column, (long long)bad));
    c->ndocs++;
    *text = t->valuestring;
    *len = tl;
    if (line) *line = c->line;
    return 1;
  }
}
