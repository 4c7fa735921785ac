/* tlens trajectory: inputs, both lenses, the statistics, the outputs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/analysis_internal.h"
#include "tlens/safetensors.h"

void tl_traj_cfg_default(tl_traj_cfg *c) {
  memset(c, 0, sizeof *c);
  c->eos_id = -1;
  c->stride = 1;
  c->topk = 10;
  c->max_entries = 3;
}

void tl_traj_cfg_free(tl_traj_cfg *c) {
  char **s[] = {&c->model, &c->revision, &c->tokenizer,  &c->vocab,        &c->lens,          &c->text,
                &c->input_ids, &c->prompts,  &c->other_text,   &c->other_input_ids, &c->other_prompts,
                &c->targets, &c->anti_targets, &c->stats,      &c->slice,         &c->clip,
                &c->output,  &c->save_log_probs, &c->title, &c->ablate, &c->ablation, &c->swap_text,
                &c->swap_input_ids, &c->compare, &c->residual};
  for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) {
    free(*s[i]);
    *s[i] = NULL;
  }
}

/* Python slice syntax a:b[:c] over T positions; bounds outside [-T, T] or an empty
 * selection are errors (Python would clip them silently). */
static int parse_slice(const char *spec, int T, int **pos, int *npos) {
  long v[3] = {0, T, 1};
  int given[3] = {0, 0, 0}, part = 0;
  const char *s = spec;
  for (;;) {
    const char *e = strchr(s, ':');
    size_t n = e ? (size_t)(e - s) : strlen(s);
    if (part > 2) return tl_fail("--slice '%s': expected start:stop or start:stop:step", spec);
    if (n > 0) {
      char buf[32];
      if (n >= sizeof buf) return tl_fail("--slice '%s': bad number", spec);
      memcpy(buf, s, n);
      buf[n] = 0;
      if (tl_parse_long(buf, &v[part])) return tl_fail("--slice '%s': '%s' is not an integer", spec, buf);
      given[part] = 1;
    }
    part++;
    if (!e) break;
    s = e + 1;
  }
  if (part < 2) return tl_fail("--slice '%s': expected start:stop (Python slice syntax)", spec);
  if (v[2] < 1) return tl_fail("--slice '%s': the step must be at least 1", spec);
  for (int i = 0; i < 2; i++) {
    if (given[i] && (v[i] < -T || v[i] > T))
      return tl_fail("--slice '%s': %ld is out of range for %d tokens", spec, v[i], T);
    if (v[i] < 0) v[i] += T;
  }
  *pos = tl_malloc((size_t)T * sizeof(int));
  *npos = 0;
  for (long p = v[0]; p < v[1]; p += v[2]) (*pos)[(*npos)++] = (int)p;
  if (*npos == 0) {
    free(*pos);
    *pos = NULL;
    return tl_fail("--slice '%s' selects no positions of the %d tokens", spec, T);
  }
  return 0;
}

static int parse_clip(const char *spec, double *lo, double *hi) {
  const char *colon = strchr(spec, ':');
  char a[64];
  if (!colon || (size_t)(colon - spec) >= sizeof a) return tl_fail("--clip '%s': expected min:max", spec);
  memcpy(a, spec, (size_t)(colon - spec));
  a[colon - spec] = 0;
  if (tl_parse_double(a, lo) || tl_parse_double(colon + 1, hi)) return tl_fail("--clip '%s': expected two numbers min:max", spec);
  if (!(*lo < *hi)) return tl_fail("--clip '%s': min must be less than max", spec);
  return 0;
}

/* the statistics asked for, in order; by default all that the inputs allow */
static int parse_stats(const char *spec, bool targets, bool anti, bool other, tl_traj_stat *out, int *n) {
  *n = 0;
  if (!spec) {
    for (int s = 0; s < TL_TRAJ_NSTATS; s++) {
      const bool need_t = s == TL_TRAJ_CROSS_ENTROPY || s == TL_TRAJ_RANK;
      if ((need_t && !targets) || (s == TL_TRAJ_LOG_PROB_DIFF && !(targets && anti)) ||
          (tl_traj_stat_is_comparison(s) && !other))
        continue;
      out[(*n)++] = (tl_traj_stat)s;
    }
    return 0;
  }
  char *copy = tl_strdup(spec), *save = NULL;
  int rc = 0;
  for (char *s = strtok_r(copy, ",", &save); s && rc == 0; s = strtok_r(NULL, ",", &save)) {
    tl_traj_stat st;
    rc = tl_traj_stat_parse(s, &st);
    for (int i = 0; rc == 0 && i < *n; i++)
      if (out[i] == st) rc = tl_fail("--stats: '%s' is listed twice", s);
    if (rc == 0) out[(*n)++] = st;
  }
  free(copy);
  if (rc == 0 && *n == 0) rc = tl_fail("--stats: no statistic given");
  return rc;
}

/* one input of the command: exactly one of text, ids file, prompts file */
static int read_input(const tl_analysis_env *e, const char *which, const char *text, const char *ids_file,
                      const char *prompts, bool special, int32_t **ids, int *B, int *T) {
  int given = (text != NULL) + (ids_file != NULL) + (prompts != NULL);
  if (given != 1) return tl_fail("give exactly one of --%stext, --%sinput_ids or --%sprompts", which, which, which);
  *B = 1;
  if (text) {
    char what[32];
    snprintf(what, sizeof what, "--%stext", which);
    return tl_analysis_encode(e, what, text, special, ids, T);
  }
  if (ids_file) return tl_analysis_read_ids(ids_file, ids, B, T);
  return tl_analysis_read_prompts(e, prompts, special, ids, B, T);
}

/* a token list for every sequence: given (the same for each), or the next input
 * token with EOS last */
static int make_targets(const tl_analysis_env *e, const char *flag, const char *spec, const int32_t *ids, int B, int T,
                        int32_t **out) {
  *out = NULL;
  if (!spec) {
    if (e->eos < 0) return 0; /* none: statistics that need them say so */
    int32_t *t = tl_malloc((size_t)B * T * sizeof(int32_t));
    for (int b = 0; b < B; b++)
      for (int i = 0; i < T; i++) t[(size_t)b * T + i] = i + 1 < T ? ids[(size_t)b * T + i + 1] : e->eos;
    *out = t;
    return 0;
  }
  int32_t *list = NULL;
  int n = 0;
  TL_TRY(tl_analysis_parse_tokens(e, flag, spec, &list, &n));
  if (n != T) {
    free(list);
    return tl_fail("%s: %d tokens given for a sequence of %d", flag, n, T);
  }
  int32_t *t = tl_malloc((size_t)B * T * sizeof(int32_t));
  for (int b = 0; b < B; b++) memcpy(t + (size_t)b * T, list, (size_t)T * sizeof(int32_t));
  free(list);
  *out = t;
  return 0;
}

typedef struct {
  const tl_traj_cfg *c;
  tl_analysis_env env;
  int32_t *ids, *other, *targets, *anti;
  int B, T;
  int *pos, npos;
  tl_traj_stat stats[TL_TRAJ_NSTATS];
  int nstats;
  tl_traj_view_opts vo;
  tl_traj_set sets[2];
  int nsets;
  tl_st_writer *lp_writer;
  tl_ablation abl;
  bool ablated;
  int32_t *swap;
  tl_residual residual;
} run_state;

static int one_lens(run_state *s, const char *type, const tl_lens *lens) {
  const tl_traj_cfg *c = s->c;
  unsigned bits = 0;
  for (int i = 0; i < s->nstats; i++) bits |= 1u << s->stats[i];
  tl_traj_input in = {.B = s->B, .T = s->T, .ids = s->ids, .targets = s->targets, .anti_targets = s->anti,
                      .other_ids = s->other, .npos = s->npos, .pos = s->pos, .mask_input = c->mask_input,
                      .topk = (int)c->topk, .max_entries = (int)c->max_entries, .chunk = (int)c->chunk,
                      .stats = bits, .ablation = s->ablated ? &s->abl : NULL,
                      .residual = s->residual};
  const int R = s->env.mc.n_layers + 1, V = s->env.u.vocab;
  const size_t nlp = (size_t)s->B * R * s->npos * V;
  if (c->save_log_probs) {
    in.log_probs = tl_malloc(nlp * sizeof(float));
    if (s->other) in.other_log_probs = tl_malloc(nlp * sizeof(float));
  }
  tl_traj t;
  int rc = tl_traj_compute(s->env.m, &s->env.u, s->env.ws, lens, &in, &t);
  if (rc == 0 && c->save_log_probs) {
    int64_t shape[4] = {s->B, R, s->npos, V};
    char name[64];
    snprintf(name, sizeof name, "%s.log_probs", type);
    tl_st_writer_add(s->lp_writer, name, TL_F32, 4, shape, in.log_probs);
    if (in.other_log_probs) {
      snprintf(name, sizeof name, "%s.other_log_probs", type);
      tl_st_writer_add(s->lp_writer, name, TL_F32, 4, shape, in.other_log_probs);
    }
  }
  free(in.log_probs);
  free(in.other_log_probs);
  TL_TRY(rc);
  tl_traj_set *set = &s->sets[s->nsets++];
  set->lens_type = type;
  set->views = tl_calloc((size_t)s->nstats, sizeof(tl_traj_view));
  for (int i = 0; i < s->nstats && rc == 0; i++, set->n++)
    rc = tl_traj_view_make(&t, s->stats[i], &s->vo, s->env.has_voc ? &s->env.voc : NULL, s->ids, s->T, s->pos,
                           &set->views[i]);
  tl_traj_free(&t);
  return rc;
}

static int write_outputs(run_state *s) {
  const tl_traj_cfg *c = s->c;
  if (!c->output) {
    for (int i = 0; i < s->nsets; i++)
      for (int k = 0; k < s->sets[i].n; k++) {
        tl_traj_print_table(stdout, &s->sets[i].views[k], s->sets[i].lens_type);
        fputc('\n', stdout);
      }
    if (fflush(stdout) != 0) return tl_fail("stdout: write error");
    return 0;
  }
  TL_TRY(tl_mkdirs(c->output));
  char *path = tl_path_join(c->output, "trajectory.json");
  int rc = tl_traj_write_json(path, s->sets, s->nsets);
  free(path);
  int nsvg = 0;
  for (int i = 0; i < s->nsets && rc == 0; i++)
    for (int k = 0; k < s->sets[i].n && rc == 0; k++, nsvg++) {
      const tl_traj_view *v = &s->sets[i].views[k];
      char *name = tl_sprintf("%s_%s.svg", s->sets[i].lens_type, v->key);
      /* a sub-layer stream is named in the title: the rows are not the lens's own streams */
      char *title = c->title ? tl_strdup(c->title)
                    : s->residual != TL_RESID_PRE
                        ? tl_sprintf("%s lens: %s (%s)", s->sets[i].lens_type, v->name, tl_residual_key(s->residual))
                        : tl_sprintf("%s lens: %s", s->sets[i].lens_type, v->name);
      path = tl_path_join(c->output, name);
      rc = tl_traj_write_svg(path, v, title);
      free(path), free(name), free(title);
    }
  if (rc == 0) {
    char *title = c->title ? tl_strdup(c->title)
                  : s->residual != TL_RESID_PRE
                      ? tl_sprintf("Prediction trajectory: %s (%s)", tl_basename(c->model), tl_residual_key(s->residual))
                      : tl_sprintf("Prediction trajectory: %s", tl_basename(c->model));
    path = tl_path_join(c->output, "trajectory.html");
    rc = tl_traj_write_html(path, s->sets, s->nsets, title);
    free(path), free(title);
  }
  if (rc == 0) tl_info("wrote trajectory.json, trajectory.html and %d SVG heatmaps to %s", nsvg, c->output);
  return rc;
}

/* the ablation flags that need no model: each names what is missing or extra */
static int check_ablation_flags(const tl_traj_cfg *c, tl_ablation_kind *how) {
  const bool swap_src = c->swap_text || c->swap_input_ids;
  if (!c->ablate) {
    const char *extra = c->ablation ? "--ablation" : swap_src ? (c->swap_text ? "--swap_text" : "--swap_input_ids")
                        : c->compare ? "--compare" : NULL;
    if (extra) return tl_fail("%s needs --ablate (the sub-layers to ablate)", extra);
    return 0;
  }
  if (c->ablation) TL_TRY(tl_ablation_kind_parse(c->ablation, how));
  if (*how == TL_ABLATE_SWAP && !swap_src) return tl_fail("--ablation swap needs --swap_text or --swap_input_ids");
  if (*how != TL_ABLATE_SWAP && swap_src)
    return tl_fail("%s is the source of --ablation swap only", c->swap_text ? "--swap_text" : "--swap_input_ids");
  if (c->swap_text && c->swap_input_ids) return tl_fail("give one of --swap_text or --swap_input_ids");
  if (c->compare && strcmp(c->compare, "clean"))
    return tl_fail("--compare '%s': expected clean (the run without the ablation)", c->compare);
  if (c->compare && (c->other_text || c->other_input_ids || c->other_prompts))
    return tl_fail("--compare clean compares with the input itself: drop --other_text/--other_input_ids/--other_prompts");
  return 0;
}

/* the sites for this model, the swap source, and with --compare clean the clean
 * run of the input as the other trajectory */
static int setup_ablation(run_state *s, tl_ablation_kind how) {
  const tl_traj_cfg *c = s->c;
  TL_TRY(tl_ablation_parse(c->ablate, s->env.mc.n_layers, &s->abl));
  s->ablated = true;
  s->abl.how = how;
  if (how == TL_ABLATE_SWAP) {
    int B2 = 1, T2 = 0;
    if (c->swap_text) TL_TRY(tl_analysis_encode(&s->env, "--swap_text", c->swap_text, !c->no_special, &s->swap, &T2));
    else TL_TRY(tl_analysis_read_ids(c->swap_input_ids, &s->swap, &B2, &T2));
    if (B2 != s->B || T2 != s->T)
      return tl_fail("the swap input has %d x %d tokens, the input %d x %d: swap needs the same positions", B2, T2,
                     s->B, s->T);
    s->abl.swap_ids = s->swap, s->abl.swap_B = B2, s->abl.swap_T = T2;
  }
  if (c->compare) {
    const size_t n = (size_t)s->B * s->T * sizeof(int32_t);
    s->other = tl_malloc(n);
    memcpy(s->other, s->ids, n);
  }
  return 0;
}

static int run_body(run_state *s) {
  const tl_traj_cfg *c = s->c;
  /* cheap checks first: a bad flag fails before the model loads */
  if (c->stride < 1) return tl_fail("--stride %ld: must be at least 1", c->stride);
  if (c->topk < 1 || c->topk > TL_TRAJ_TOPK_MAX) return tl_fail("--topk %ld: must be in [1, %d]", c->topk, TL_TRAJ_TOPK_MAX);
  if (c->max_entries < 1) return tl_fail("--max_entries %ld: must be at least 1", c->max_entries);
  tl_traj_stat tmp[TL_TRAJ_NSTATS];
  int ntmp;
  if (c->stats) TL_TRY(parse_stats(c->stats, true, true, true, tmp, &ntmp));
  s->vo = (tl_traj_view_opts){.show_ranks = c->show_ranks, .delta = c->delta, .stride = (int)c->stride,
                              .min_prob = c->min_prob, .sp_space = c->sp_space};
  if (c->clip) {
    TL_TRY(parse_clip(c->clip, &s->vo.clip_min, &s->vo.clip_max));
    s->vo.clip = true;
  }
  tl_ablation_kind how = TL_ABLATE_ZERO;
  TL_TRY(check_ablation_flags(c, &how));
  if (c->residual) TL_TRY(tl_residual_parse(c->residual, &s->residual));
  tl_analysis_opts ao = {c->model, c->revision, c->tokenizer, c->vocab, c->lens, c->threads, c->eos_id};
  TL_TRY(tl_analysis_open(&s->env, &ao));
  TL_TRY(tl_residual_check(&s->env.mc, s->residual));
  TL_TRY(read_input(&s->env, "", c->text, c->input_ids, c->prompts, !c->no_special, &s->ids, &s->B, &s->T));
  if (c->other_text || c->other_input_ids || c->other_prompts) {
    int B2, T2;
    TL_TRY(read_input(&s->env, "other_", c->other_text, c->other_input_ids, c->other_prompts, !c->no_special,
                      &s->other, &B2, &T2));
    if (B2 != s->B || T2 != s->T)
      return tl_fail("the trajectories to compare have different shapes: %d x %d tokens and %d x %d", s->B, s->T, B2, T2);
  }
  if (c->ablate) TL_TRY(setup_ablation(s, how));
  TL_TRY(make_targets(&s->env, "--targets", c->targets, s->ids, s->B, s->T, &s->targets));
  if (c->anti_targets) TL_TRY(make_targets(&s->env, "--anti_targets", c->anti_targets, s->ids, s->B, s->T, &s->anti));
  TL_TRY(parse_stats(c->stats, s->targets != NULL, s->anti != NULL, s->other != NULL, s->stats, &s->nstats));
  for (int i = 0; i < s->nstats; i++) {
    const tl_traj_stat st = s->stats[i];
    if ((st == TL_TRAJ_CROSS_ENTROPY || st == TL_TRAJ_RANK || st == TL_TRAJ_LOG_PROB_DIFF) && !s->targets)
      return tl_fail("%s needs targets: give --targets, or --eos_id for the default ones", tl_traj_stat_key(st));
    if (st == TL_TRAJ_LOG_PROB_DIFF && !s->anti) return tl_fail("log_prob_diff needs --anti_targets");
    if (tl_traj_stat_is_comparison(st) && !s->other)
      return tl_fail("%s compares with another input: give --other_text, --other_input_ids or --other_prompts",
                     tl_traj_stat_key(st));
  }
  if (c->slice) TL_TRY(parse_slice(c->slice, s->T, &s->pos, &s->npos));
  else {
    s->pos = tl_malloc((size_t)s->T * sizeof(int));
    for (int i = 0; i < s->T; i++) s->pos[i] = i;
    s->npos = s->T;
  }
  if (c->save_log_probs) s->lp_writer = tl_st_writer_new();
  if (s->env.has_lens) TL_TRY(one_lens(s, "tuned", &s->env.lens));
  if (c->logit || !s->env.has_lens) TL_TRY(one_lens(s, "logit", NULL));
  if (s->lp_writer) {
    int64_t shape[2] = {s->B, s->T}, np = s->npos;
    tl_st_writer_add(s->lp_writer, "input_ids", TL_I32, 2, shape, s->ids);
    tl_st_writer_add(s->lp_writer, "positions", TL_I32, 1, &np, s->pos);
    TL_TRY(tl_st_writer_save(s->lp_writer, c->save_log_probs));
  }
  return write_outputs(s);
}

int tl_trajectory_run(const tl_traj_cfg *c) {
  run_state s;
  memset(&s, 0, sizeof s);
  s.c = c;
  int rc = run_body(&s);
  for (int i = 0; i < s.nsets; i++) {
    for (int k = 0; k < s.sets[i].n; k++) tl_traj_view_free(&s.sets[i].views[k]);
    free(s.sets[i].views);
  }
  if (s.lp_writer) tl_st_writer_free(s.lp_writer);
  free(s.ids), free(s.other), free(s.targets), free(s.anti), free(s.pos), free(s.swap);
  tl_ablation_free(&s.abl);
  tl_analysis_close(&s.env);
  return rc;
}
