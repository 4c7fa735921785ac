/* TensorBoard event files: what `tlens train --tensorboard DIR` and `--wandb NAME`
 * write, read by TensorBoard and by `wandb sync --sync-tensorboard`.
 *
 * A file DIR/events.out.tfevents.<unix time>.<host> is a sequence of TFRecords:
 *   uint64 length (little-endian), uint32 masked CRC-32C of those 8 bytes,
 *   the data, uint32 masked CRC-32C of the data
 * (masked: ((crc >> 15) | (crc << 17)) + 0xa282ead8). Each record's data is a
 * tensorflow.Event protobuf, encoded here by hand:
 *   Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
 *   Summary { repeated Value value = 1; }
 *   Value   { string tag = 1; float simple_value = 2; }
 * The first record holds file_version "brain.Event:2"; then one Event per scalar. */
#ifndef TLENS_TFEVENTS_H
#define TLENS_TFEVENTS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* CRC-32C (Castagnoli, reflected 0x82f63b78), continuing from crc (0 to start). */
uint32_t tl_crc32c(uint32_t crc, const void *data, size_t n);
/* The TFRecord mask of a CRC. */
uint32_t tl_tfrecord_mask(uint32_t crc);

typedef struct {
  FILE *f;
  char *path;
} tl_tfevents;

/* Creates DIR (mkdir -p) and a new event file in it (another name when one of
 * that second and host exists), and writes its file_version record. */
int tl_tfevents_open(tl_tfevents *w, const char *dir);
/* Opens an event file written before, to append to it. */
int tl_tfevents_reopen(tl_tfevents *w, const char *path);
/* One Event holding one scalar summary (simple_value, a float). */
int tl_tfevents_scalar(tl_tfevents *w, double wall_time, int64_t step, const char *tag, double value);
/* Flushes and closes; -1 when a write failed. */
int tl_tfevents_close(tl_tfevents *w);

/* Where a training run's events go: DIR for --tensorboard DIR, else for --wandb
 * NAME <output>/tensorboard/NAME ('/' in the name written as '_', "." and ".."
 * as "_." and "_.."). NULL when neither flag is given; malloc'd. */
char *tl_tfevents_dir(const char *output, const char *tensorboard, const char *wandb);

/* One training step's scalars, as in metrics.jsonl. */
typedef struct {
  int64_t step;
  int layers;
  const double *loss_nats; /* [layers] */
  double nats_to_bpb;      /* NaN when bytes are unknown */
  double lr, grad_norm, tokens_per_s, step_s;
} tl_tfevents_train;
/* Appends a step to this process's event file in dir (made at its first step):
 *   loss/<stream>     per layer, the reference's names ("input", "0.ffn", ...) and
 *                     units: bits per byte, or nats per token when bytes are unknown
 *   loss/mean         their mean over layers
 *   loss_nats/<stream>, loss_nats/mean   in nats per token, when loss/ is in bits
 *   lr, grad_norm, tokens_per_s, step_s
 * A failure is a warning, once, and the run goes on without events (as it does
 * without metrics.jsonl). */
void tl_tfevents_train_step(const char *dir, const tl_tfevents_train *s);

#endif
