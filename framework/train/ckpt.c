/* train/ckpt: run state and optimizer moments in trainer_state.safetensors, and the directory
 * swap that makes a checkpoint appear whole or not at all (see ckpt.h). */
#include "train/ckpt.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "io/file.h"
#include "io/safetensors.h"

static const char *fmt_i64(char *buf, size_t n, int64_t v) {
    snprintf(buf, n, "%" PRId64, v);
    return buf;
}

/* trainer_state.safetensors: AdamW moments per group and the run state in the metadata. */
xa_status xa_ckpt_save_state(const char *path, const xa_optim *opt, const xa_train_state *ts,
                             const char *identity) {
    size_t n = 2 * opt->n_groups;
    xa_st_entry *e = calloc(n ? n : 1, sizeof *e);
    char (*names)[160] = calloc(n ? n : 1, sizeof *names);
    if (!e || !names) {
        free(e);
        free(names);
        return xa_error_set(XA_STATUS_NOMEM, path, NULL, NULL, "out of memory");
    }
    for (size_t g = 0; g < opt->n_groups; g++)
        for (int k = 0; k < 2; k++) {
            xa_st_entry *x = &e[2 * g + (size_t)k];
            snprintf(names[2 * g + (size_t)k], sizeof names[0], "%s.%s", k ? "v" : "m", opt->groups[g].name);
            x->name = names[2 * g + (size_t)k];
            x->dtype = XA_DTYPE_F32;
            x->n_dims = 1;
            x->shape[0] = (int64_t)opt->groups[g].n;
            x->f32 = k ? opt->groups[g].v : opt->groups[g].m;
        }
    char v[9][40];
    snprintf(v[5], sizeof v[5], "%" PRIu64, ts->rng.state);
    snprintf(v[6], sizeof v[6], "%" PRIu64, ts->rng.inc);
    snprintf(v[7], sizeof v[7], "%.17g", ts->best);
    xa_st_kv meta[] = {
        {"step", fmt_i64(v[0], sizeof v[0], ts->step)},
        {"epoch", fmt_i64(v[1], sizeof v[1], ts->epoch)},
        {"pos", fmt_i64(v[2], sizeof v[2], ts->pos)},
        {"adam_step", fmt_i64(v[3], sizeof v[3], opt->n_groups ? opt->groups[0].step : 0)},
        {"best_step", fmt_i64(v[4], sizeof v[4], ts->best_step)},
        {"rng_state", v[5]},
        {"rng_inc", v[6]},
        {"best", v[7]},
        {"bad_evals", fmt_i64(v[8], sizeof v[8], ts->bad_evals)},
        {"identity", identity},
    };
    xa_status st = xa_st_write(path, e, n, meta, sizeof meta / sizeof *meta);
    free(e);
    free(names);
    return st;
}

static xa_status meta_i64(const xa_st_file *f, const char *key, int64_t *out) {
    const char *v = xa_st_metadata_get(f, key);
    char *end = NULL;
    if (v) {
        errno = 0;
        long long x = strtoll(v, &end, 10);
        if (!errno && end != v && *end == '\0') {
            *out = x;
            return XA_STATUS_OK;
        }
    }
    return xa_error_set(XA_STATUS_FORMAT, xa_st_path(f), "an integer",
                        "the checkpoint is damaged: delete it to start over", "metadata '%s' is %s",
                        key, v ? v : "missing");
}

/* The item of ids (space-separated key=value) whose key is that of item[0..k), or NULL; *len
 * receives its length. */
static const char *find_item(const char *ids, const char *item, size_t k, size_t *len) {
    const char *eq = memchr(item, '=', k);
    size_t key = eq ? (size_t)(eq - item) + 1 : k;
    for (const char *q = ids; *q;) {
        while (*q == ' ') q++;
        size_t qk = strcspn(q, " ");
        if (!qk) break;
        if (qk >= key && !strncmp(q, item, key)) {
            *len = qk;
            return q;
        }
        q += qk;
    }
    return NULL;
}

/* "key=a (this run: key=b)" for every item of have that differs in want (", "-separated). */
static void identity_diff(char *out, size_t n, const char *have, const char *want) {
    size_t len = 0;
    out[0] = '\0';
    for (const char *p = have; *p && len < n;) {
        while (*p == ' ') p++;
        size_t k = strcspn(p, " "), mk = 0;
        if (!k) break;
        const char *m = find_item(want, p, k, &mk);
        if (!m || mk != k || strncmp(m, p, k))
            len += (size_t)snprintf(out + len, n - len, "%s%.*s (this run: %.*s)", len ? ", " : "", (int)k, p,
                                    m ? (int)mk : 4, m ? m : "none");
        p += k;
    }
    if (!len) snprintf(out, n, "'%s' (this run: '%s')", have, want);
}

xa_status xa_ckpt_load_state(const char *path, xa_optim *opt, xa_train_state *ts,
                             const char *identity) {
    xa_st_file *f = NULL;
    xa_status st = xa_st_open(&f, path);
    if (st) return st;
    const char *id = xa_st_metadata_get(f, "identity");
    if (!id || strcmp(id, identity)) {
        char diff[1024];
        identity_diff(diff, sizeof diff, id ? id : "", identity);
        st = xa_error_set(XA_STATUS_CONFIG, path, identity,
                          strstr(diff, "data=") ? "the training data changed since the checkpoint: restore it, "
                                                  "or start over (--force, or delete the checkpoint)"
                                                : "resume with the settings the run started with, or start over "
                                                  "(--force, or delete the checkpoint)",
                          "the checkpoint was made with other settings or data: %s", diff);
        xa_st_close(f); /* after the message: id points into f */
        return st;
    }
    int64_t adam_step = 0;
    st = meta_i64(f, "step", &ts->step);
    if (!st) st = meta_i64(f, "epoch", &ts->epoch);
    if (!st) st = meta_i64(f, "pos", &ts->pos);
    if (!st) st = meta_i64(f, "adam_step", &adam_step);
    if (!st) st = meta_i64(f, "best_step", &ts->best_step);
    if (!st) st = meta_i64(f, "bad_evals", &ts->bad_evals);
    const char *s1 = xa_st_metadata_get(f, "rng_state"), *s2 = xa_st_metadata_get(f, "rng_inc"),
               *sb = xa_st_metadata_get(f, "best");
    if (!st && (!s1 || !s2 || !sb))
        st = xa_error_set(XA_STATUS_FORMAT, path, "rng_state, rng_inc and best", NULL, "run state missing");
    if (!st) {
        ts->rng.state = strtoull(s1, NULL, 10);
        ts->rng.inc = strtoull(s2, NULL, 10);
        ts->best = strtod(sb, NULL);
    }
    for (size_t g = 0; g < opt->n_groups && !st; g++) {
        char name[200];
        int64_t shape[1] = {(int64_t)opt->groups[g].n};
        snprintf(name, sizeof name, "m.%s", opt->groups[g].name);
        st = xa_st_read_f32(f, name, shape, 1, opt->groups[g].m);
        snprintf(name, sizeof name, "v.%s", opt->groups[g].name);
        if (!st) st = xa_st_read_f32(f, name, shape, 1, opt->groups[g].v);
        opt->groups[g].step = adam_step;
    }
    xa_st_close(f);
    return st;
}

/* The test hook of ckpt.h: sleep XA_TEST_CKPT_SLEEP_MS milliseconds (0 or unset: no sleep). */
static void test_sleep(void) {
    const char *v = getenv("XA_TEST_CKPT_SLEEP_MS");
    long ms = v ? strtol(v, NULL, 10) : 0;
    if (ms <= 0) return;
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

/* Swap TMP in for FIN: the old directory stays complete until the new one is in place. */
xa_status xa_ckpt_swap_dir_keep(const char *tmp, const char *fin, const char *keep) {
    char old[XA_PATH_MAX];
    if (snprintf(old, sizeof old, "%s.old", fin) >= (int)sizeof old)
        return xa_error_set(XA_STATUS_USAGE, fin, NULL, NULL, "path too long");
    xa_status st = xa_file_remove_tree(old);
    if (st) return st;
    test_sleep();
    if (xa_file_is_dir(fin) && rename(fin, old) != 0)
        return xa_error_set(XA_STATUS_IO, fin, NULL, NULL, "cannot move the old directory aside: %s",
                            strerror(errno));
    test_sleep();
    if (rename(tmp, fin) != 0)
        return xa_error_set(XA_STATUS_IO, tmp, NULL, NULL, "cannot move the new directory into place: %s",
                            strerror(errno));
    if (keep && xa_file_is_dir(old)) {
        if ((st = xa_file_remove_tree(keep))) return st;
        if (rename(old, keep) != 0)
            return xa_error_set(XA_STATUS_IO, old, NULL, NULL, "cannot keep the previous checkpoint as %s: %s", keep,
                                strerror(errno));
        return XA_STATUS_OK;
    }
    return xa_file_remove_tree(old);
}

xa_status xa_ckpt_swap_dir(const char *tmp, const char *fin) { return xa_ckpt_swap_dir_keep(tmp, fin, NULL); }

xa_status xa_ckpt_commit(const char *tmp, const char *fin, const xa_optim *opt, const xa_train_state *ts,
                         const char *identity, const char *metrics_path, const char *keep) {
    char p[XA_PATH_MAX];
    xa_status st = xa_path_join(p, sizeof p, tmp, "trainer_state.safetensors");
    if (!st) st = xa_ckpt_save_state(p, opt, ts, identity);
    if (!st) st = xa_ckpt_swap_dir_keep(tmp, fin, keep);
    if (!st && metrics_path) st = xa_metrics_commit(metrics_path);
    return st;
}

xa_status xa_ckpt_recover(const char *dir) {
    char old[XA_PATH_MAX], tmp[XA_PATH_MAX];
    if (snprintf(old, sizeof old, "%s.old", dir) >= (int)sizeof old ||
        snprintf(tmp, sizeof tmp, "%s.tmp", dir) >= (int)sizeof tmp)
        return xa_error_set(XA_STATUS_USAGE, dir, NULL, NULL, "path too long");
    xa_status st = xa_file_remove_tree(tmp);
    if (st) return st;
    if (!xa_file_is_dir(old)) return XA_STATUS_OK;
    if (xa_file_is_dir(dir)) return xa_file_remove_tree(old); /* the swap ended before its cleanup */
    /* interrupted between the two renames: the old checkpoint is the last complete one */
    if (rename(old, dir) != 0)
        return xa_error_set(XA_STATUS_IO, old, NULL, NULL, "cannot restore the checkpoint: %s", strerror(errno));
    XA_LOG_INFO("%s: restored from %s (a checkpoint swap was interrupted)", dir, old);
    return XA_STATUS_OK;
}

uint64_t xa_ckpt_hash(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* The "step" of a metrics row, or -1 when it has none. */
static int64_t row_step(const char *line, size_t len) {
    static const char key[] = "\"step\":";
    for (size_t i = 0; i + sizeof key - 1 <= len; i++) {
        if (memcmp(line + i, key, sizeof key - 1)) continue;
        const char *v = line + i + sizeof key - 1;
        while (*v == ' ') v++;
        char *end = NULL;
        long long s = strtoll(v, &end, 10);
        return end != v ? (int64_t)s : -1;
    }
    return -1;
}

/* Drop the rows of path after step `keep_to` (and an incomplete last line); rewritten atomically
 * only when something goes. */
static xa_status metrics_truncate(const char *path, int64_t keep_to) {
    char *text = NULL;
    size_t len = 0;
    xa_status st = xa_file_read(&text, &len, path, 0);
    if (st == XA_STATUS_NOT_FOUND) {
        xa_error_clear();
        return XA_STATUS_OK;
    }
    if (st) return st;
    size_t out = 0;
    int64_t dropped = 0;
    for (size_t at = 0; at < len;) {
        const char *nl = memchr(text + at, '\n', len - at);
        size_t n = nl ? (size_t)(nl - (text + at)) + 1 : len - at;
        if (!nl || row_step(text + at, n) > keep_to) {
            dropped++;
        } else {
            memmove(text + out, text + at, n);
            out += n;
        }
        at += n;
    }
    if (dropped) {
        st = xa_file_write_atomic(path, text, out);
        if (!st) XA_LOG_INFO("%s: %lld row(s) after step %lld dropped (written before the run stopped; written again)",
                             path, (long long)dropped, (long long)keep_to);
    }
    free(text);
    return st;
}

static double mtime_of(const char *path) {
    struct stat sb;
    if (stat(path, &sb) != 0) return -1;
    return (double)sb.st_mtim.tv_sec + 1e-9 * (double)sb.st_mtim.tv_nsec;
}

xa_status xa_metrics_open(FILE **f, const char *path, int64_t resume_step, const char *ckpt_state) {
    char tmp[XA_PATH_MAX];
    *f = NULL;
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return xa_error_set(XA_STATUS_USAGE, path, NULL, NULL, "path too long");
    if (resume_step > 0) {
        const double t_tmp = mtime_of(tmp);
        if (t_tmp >= 0) {
            /* the rows of the checkpoint's run when written before it (its first checkpoint was
             * made, the rename not); else the rows of a fresh run that made no checkpoint */
            const double t_ckpt = ckpt_state ? mtime_of(ckpt_state) : -1;
            if (t_ckpt >= 0 && t_tmp <= t_ckpt) {
                if (rename(tmp, path) != 0)
                    return xa_error_set(XA_STATUS_IO, tmp, NULL, NULL, "cannot move the metrics into place: %s",
                                        strerror(errno));
            } else if (unlink(tmp) != 0) {
                return xa_error_set(XA_STATUS_IO, tmp, NULL, NULL, "cannot remove: %s", strerror(errno));
            }
        }
        xa_status st = metrics_truncate(path, resume_step);
        if (st) return st;
    }
    *f = fopen(resume_step > 0 ? path : tmp, resume_step > 0 ? "a" : "w");
    if (!*f)
        return xa_error_set(XA_STATUS_IO, resume_step > 0 ? path : tmp, NULL, NULL, "cannot write metrics: %s",
                            strerror(errno));
    return XA_STATUS_OK;
}

xa_status xa_metrics_commit(const char *path) {
    char tmp[XA_PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return xa_error_set(XA_STATUS_USAGE, path, NULL, NULL, "path too long");
    if (access(tmp, F_OK) != 0) return XA_STATUS_OK; /* already committed */
    if (rename(tmp, path) != 0)
        return xa_error_set(XA_STATUS_IO, tmp, NULL, NULL, "cannot move the metrics into place: %s", strerror(errno));
    return XA_STATUS_OK;
}

void xa_loss_log_init(xa_loss_log *L, FILE *f, int64_t window) {
    memset(L, 0, sizeof *L);
    L->f = f;
    L->window = window > 0 ? window : 1;
    L->t0 = xa_time_now();
}

int xa_loss_log_step(xa_loss_log *L, int64_t step, double loss, double lr, double gnorm,
                     double tokens, int last, const char *extra) {
    L->sum += loss;
    L->n++;
    L->tokens += tokens;
    if (step % L->window != 0 && !last) return 0;
    double mean = L->sum / (double)L->n, el = xa_time_now() - L->t0;
    if (!L->logged) L->first = mean;
    L->logged = 1;
    L->last = mean;
    if (L->f) {
        char num[32], gn[32];
        if (isfinite(mean)) snprintf(num, sizeof num, "%.6f", mean); else snprintf(num, sizeof num, "null");
        if (isfinite(gnorm)) snprintf(gn, sizeof gn, "%.4f", gnorm); else snprintf(gn, sizeof gn, "null");
        fprintf(L->f, "{\"type\": \"train\", \"phase\": \"%s\", \"step\": %" PRId64 ", \"time\": %.3f, %s%s\"loss\": %s, "
                      "\"lr\": %.6g, \"grad_norm\": %s, \"tokens_per_s\": %.1f}\n",
                L->phase ? L->phase : "train", step, xa_time_wall(), extra ? extra : "", extra ? ", " : "", num, lr, gn,
                el > 0 ? L->tokens / el : 0.0);
        fflush(L->f);
    }
    L->sum = 0;
    L->n = 0;
    return 1;
}
