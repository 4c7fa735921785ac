/* Progress of long work (see tl_progress in tlens/core.h). A total of 0 or less
 * means not known yet: the report says how much so far, without a percentage. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tlens/core.h"

void tl_progress_begin(tl_progress *p, const char *what, int64_t total, const char *unit, bool enabled, bool bar) {
  memset(p, 0, sizeof *p);
  snprintf(p->what, sizeof p->what, "%s", what);
  snprintf(p->unit, sizeof p->unit, "%s", unit ? unit : "");
  p->total = total;
  p->enabled = enabled;
  p->tty = enabled && bar && isatty(2);
  p->t0 = p->last = tl_now();
}

void tl_fmt_duration(double s, char *buf, size_t cap) {
  if (!(s >= 0) || s > 1e7) {
    snprintf(buf, cap, "?");
    return;
  }
  long t = (long)(s + 0.5);
  if (t >= 3600) snprintf(buf, cap, "%ldh%02ldm", t / 3600, t / 60 % 60);
  else snprintf(buf, cap, "%ldm%02lds", t / 60, t % 60);
}

void tl_progress_update(tl_progress *p, int64_t done, double rate_units) {
  if (!p->enabled) return;
  double now = tl_now(), el = now - p->t0;
  double rate = el > 0 ? rate_units / el : 0;
  if (p->total <= 0) { /* the total is not known yet: how much so far, no percentage or ETA */
    char took[32];
    tl_fmt_duration(el, took, sizeof took);
    if (p->tty) {
      fprintf(stderr, "\r%s %lld %s | %.0f %s/s | %s   ", p->what, (long long)done, p->unit, rate, p->unit, took);
    } else if (now - p->last >= 30 || p->last == p->t0) {
      tl_info("%s %lld %s so far | %.0f %s/s | %s", p->what, (long long)done, p->unit, rate, p->unit, took);
      p->last = now;
    }
    return;
  }
  char eta[32];
  tl_fmt_duration(done > 0 && p->total > done ? el / (double)done * (double)(p->total - done) : 0, eta, sizeof eta);
  int pct = p->total > 0 ? (int)(100 * done / p->total) : 0;
  if (p->tty) {
    char bar[21];
    int fill = pct / 5;
    for (int i = 0; i < 20; i++) bar[i] = i < fill ? '#' : '.';
    bar[20] = 0;
    fprintf(stderr, "\r%s [%s] %lld/%lld | %.0f %s/s | ETA %s   ", p->what, bar, (long long)done, (long long)p->total,
            rate, p->unit, eta);
    if (done >= p->total) fputc('\n', stderr);
    return;
  }
  /* a log file: a plain line at every 10% and at least every 30 s */
  int decile = pct / 10;
  if (done >= p->total || decile > p->last_decile || now - p->last >= 30) {
    tl_info("%s %lld/%lld (%d%%) | %.0f %s/s | ETA %s", p->what, (long long)done, (long long)p->total, pct, rate,
            p->unit, eta);
    p->last = now;
    p->last_decile = decile;
  }
}

void tl_progress_abort(tl_progress *p) {
  if (p->enabled && p->tty) fputc('\n', stderr);
  p->enabled = false;
}
