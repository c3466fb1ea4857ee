/* core: status codes, the error record, logging, the arena, the seedable RNG, the monotonic timer
 * and the progress line. Depends on libc only; every other module of libxadapt includes this.
 *
 * Ownership and threading:
 *  - The error record is thread-local: every failing xa_* call fills it through xa_error_set() and
 *    returns the same status; xa_error_last() reads it until the next failure or xa_error_clear().
 *  - Library code never writes to stdout. Logs go to stderr unless a callback is set.
 */
#ifndef XA_CORE_H
#define XA_CORE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define XA_VERSION_MAJOR 0
#define XA_VERSION_MINOR 1
#define XA_VERSION_PATCH 0
#define XA_VERSION_STRING "0.1.0"

#ifdef __cplusplus
#define XA_NORETURN [[noreturn]]
#else
#define XA_NORETURN _Noreturn
#endif

#if defined(__GNUC__)
#define XA_PRINTF(fmt_idx, arg_idx) __attribute__((format(printf, fmt_idx, arg_idx)))
#else
#define XA_PRINTF(fmt_idx, arg_idx)
#endif

/* ---- status codes ------------------------------------------------------------------------ */

typedef enum xa_status {
    XA_STATUS_OK = 0,
    XA_STATUS_IO,          /* a file cannot be opened, read, written or renamed */
    XA_STATUS_FORMAT,      /* a file's content is malformed (safetensors, JSON, model file) */
    XA_STATUS_CONFIG,      /* a config or recipe is invalid: wrong key, type or value */
    XA_STATUS_USAGE,       /* bad command-line usage or bad argument to an API */
    XA_STATUS_SHAPE,       /* a tensor has the wrong shape or dtype */
    XA_STATUS_NOT_FOUND,   /* a named item (tensor, key, piece, file) does not exist */
    XA_STATUS_NOMEM,       /* an allocation failed or a size overflowed */
    XA_STATUS_UNSUPPORTED, /* valid input that this build does not handle */
    XA_STATUS_RUNTIME,     /* anything else at run time (e.g. a library call failed) */
} xa_status;

/* Short lowercase name of a status ("io", "format", ...); never NULL. */
const char *xa_status_name(xa_status st);

/* Process exit code for a status: 0 for OK, 2 for CONFIG and USAGE, 1 otherwise. */
int xa_status_exit_code(xa_status st);

/* ---- the error record --------------------------------------------------------------------- */

#define XA_ERROR_FIELD 512

typedef struct xa_error {
    xa_status status;
    char where[XA_ERROR_FIELD];    /* "recipe.yaml:3:7", "model.safetensors: tensor 'x'", or "" */
    char what[XA_ERROR_FIELD * 2]; /* what was found, starting with the function or file */
    char expected[XA_ERROR_FIELD]; /* what was expected, or "" */
    char hint[XA_ERROR_FIELD];     /* a likely fix, or "" */
} xa_error;

/* Fill the calling thread's error record and return `st` so callers can write
 *     return xa_error_set(XA_STATUS_FORMAT, path, "a u64 header length", NULL, "file is %zu bytes", n);
 * `where`, `expected` and `hint` may be NULL. Strings longer than a field are truncated. */
xa_status xa_error_set(xa_status st, const char *where, const char *expected, const char *hint,
                       const char *fmt, ...) XA_PRINTF(5, 6);

/* Prepend "prefix: " to the current record's `what` (adds context while an error propagates). */
void xa_error_prefix(const char *fmt, ...) XA_PRINTF(1, 2);

/* The calling thread's last error; status is XA_STATUS_OK after xa_error_clear(). Never NULL. */
const xa_error *xa_error_last(void);
void xa_error_clear(void);

/* Render an error as one or more lines:
 *     error: WHERE: WHAT
 *       expected: EXPECTED
 *       hint: HINT
 * into buf (always NUL-terminated when n > 0). Returns the length it wanted, like snprintf. */
size_t xa_error_format(const xa_error *e, char *buf, size_t n);

/* Always-on assertion for internal invariants (programmer errors), never for input errors. */
#define XA_ASSERT(cond)                                                                            \
    do {                                                                                           \
        if (!(cond)) xa_assert_fail(#cond, __FILE__, __LINE__);                                   \
    } while (0)
XA_NORETURN void xa_assert_fail(const char *expr, const char *file, int line);

/* ---- logging ------------------------------------------------------------------------------- */

typedef enum xa_log_level {
    XA_LOG_LEVEL_DEBUG = 0,
    XA_LOG_LEVEL_INFO,
    XA_LOG_LEVEL_WARN,
    XA_LOG_LEVEL_ERROR,
    XA_LOG_LEVEL_SILENT, /* only as a threshold: nothing is logged */
} xa_log_level;

/* A log sink: receives the level and the formatted message (no trailing newline). */
typedef void (*xa_log_fn)(xa_log_level level, const char *msg, void *user);

/* Set the sink (NULL restores the default: "[xadapt] LEVEL: msg" on stderr). Not thread-safe with
 * concurrent logging; call it at start-up. */
void xa_log_set_callback(xa_log_fn fn, void *user);
/* Messages below `level` are dropped. Default: INFO, or XA_LOG_LEVEL from the environment
 * ("debug", "info", "warn", "error", "silent") read on first use. */
void xa_log_set_level(xa_log_level level);
xa_log_level xa_log_get_level(void);
void xa_log(xa_log_level level, const char *fmt, ...) XA_PRINTF(2, 3);
void xa_logv(xa_log_level level, const char *fmt, va_list ap);
/* Also write every message at INFO or above (DEBUG too when the level is DEBUG), whatever the
 * console level, to f as "YYYY-MM-DD HH:MM:SS LEVEL: msg" lines (UTC), flushed: a run's log file
 * (train/trainer.c: train.log). NULL stops it. The caller owns f. */
void xa_log_set_file(FILE *f);

#define XA_LOG_DEBUG(...) xa_log(XA_LOG_LEVEL_DEBUG, __VA_ARGS__)
#define XA_LOG_INFO(...) xa_log(XA_LOG_LEVEL_INFO, __VA_ARGS__)
#define XA_LOG_WARN(...) xa_log(XA_LOG_LEVEL_WARN, __VA_ARGS__)
#define XA_LOG_ERROR(...) xa_log(XA_LOG_LEVEL_ERROR, __VA_ARGS__)

/* ---- checked sizes -------------------------------------------------------------------------- */

/* The most tokens (B * T) one batch may hold. Row counts B * T are int everywhere (kernels take
 * int rows): every entry point that takes a user's batch size and sequence length checks this
 * bound, so the products stay far inside int and element counts (rows * width) in size_t. */
#define XA_MAX_BATCH_TOKENS (1 << 24)

/* *out = a * b or a + b; return 0 on overflow (and leave *out unspecified), 1 otherwise. */
int xa_size_mul(size_t a, size_t b, size_t *out);
int xa_size_add(size_t a, size_t b, size_t *out);

/* ---- UTF-8 (core/utf8.c) ---------------------------------------------------------------------- */

/* Length of the well-formed UTF-8 sequence at s[0..n) (1 to 4; RFC 3629: no overlong forms, no
 * surrogates, nothing past U+10FFFF), or 0 when s starts with an ill-formed one (or n == 0). */
size_t xa_utf8_char(const char *s, size_t n);
/* 1 when s[0..n) is valid UTF-8; otherwise 0 and *bad (may be NULL) = the offset of the first
 * ill-formed byte. */
int xa_utf8_valid(const char *s, size_t n, size_t *bad);

/* ---- arena ---------------------------------------------------------------------------------- */

/* One aligned buffer carved into n views by a sizes table (llm.c style). Buffers of 2 MiB or more
 * are advised to use transparent huge pages. The memory is zeroed. */
typedef struct xa_arena {
    void *base;   /* owned; NULL when empty */
    size_t size;  /* bytes in use, the sum of the aligned sizes */
    size_t align; /* alignment of every view, a power of two >= 16 */
} xa_arena;

#define XA_ARENA_ALIGN 64

/* Compute the offset of each view (`offsets` may be NULL) and return the total size; each size is
 * rounded up to `align` (a power of two). Returns SIZE_MAX on overflow. */
size_t xa_arena_plan(const size_t *sizes, size_t n, size_t align, size_t *offsets);

/* Allocate the arena for `sizes[0..n)` bytes and write a pointer to each view into views[i]
 * (views may be NULL). A zero size gets a valid, empty view. On failure the arena is empty and the
 * error is XA_STATUS_NOMEM. */
xa_status xa_arena_init(xa_arena *arena, const size_t *sizes, size_t n, size_t align, void **views);
/* Release the buffer; accepts NULL and an empty arena. */
void xa_arena_free(xa_arena *arena);

/* Aligned allocation used by the arena and by modules that need one large zeroed buffer. Returns
 * NULL on failure (no error record). Free with xa_aligned_free. */
void *xa_aligned_alloc(size_t size, size_t align);
void xa_aligned_free(void *p);

/* ---- parameter buffers -------------------------------------------------------------------------
 * A parameter group (encoder, adapter, head) keeps its tensors in one flat float buffer carved into
 * views by a sizes table, and a gradient buffer of the same layout only while it trains. */

/* views[i] = base + (sum of numel[0..i)); NULL for an empty tensor or a NULL base. */
void xa_params_carve(float *base, const size_t *numel, int n, float **views);
/* trainable: allocate a zeroed gradient buffer of `total` floats into *grads if there is none;
 * frozen: free it. Then carve gviews from it (all NULL when frozen). `who` names the caller in the
 * NOMEM error. */
xa_status xa_params_set_trainable(float **grads, size_t total, const size_t *numel, int n,
                                  float **gviews, int trainable, const char *who);

/* ---- RNG ------------------------------------------------------------------------------------ */

/* PCG32 (O'Neill 2014, XSH-RR output on a 64-bit LCG). The state is two integers, so it can be
 * saved in a checkpoint and the stream continues exactly. The integer and uniform streams are
 * bit-identical on every platform; normals use Box-Muller in double precision, rounded to float. */
typedef struct xa_rng {
    uint64_t state;
    uint64_t inc; /* odd: selects the stream */
} xa_rng;

/* The PCG32 step, inline for hot loops (xa_rng_u32 is the same function out of line). */
static inline uint32_t xa_rng_next(xa_rng *rng) {
    uint64_t old = rng->state;
    rng->state = old * 6364136223846793005ULL + rng->inc;
    uint32_t xorshifted = (uint32_t)(((old >> 18u) ^ old) >> 27u);
    uint32_t rot = (uint32_t)(old >> 59u);
    return (xorshifted >> rot) | (xorshifted << ((-rot) & 31u));
}

/* Seed a generator. Different `stream` values give independent streams for the same seed. */
void xa_rng_seed(xa_rng *rng, uint64_t seed, uint64_t stream);
uint32_t xa_rng_u32(xa_rng *rng);
uint64_t xa_rng_u64(xa_rng *rng);
/* Jump ahead: leave rng where `delta` draws of xa_rng_u32 would leave it, in O(log delta) steps
 * (the LCG skip of O'Neill's pcg32_advance: Brown, "Random number generation with arbitrary
 * strides", 1994). */
void xa_rng_advance(xa_rng *rng, uint64_t delta);
/* Uniform integer in [0, n), unbiased (rejection sampling); n > 0. */
uint32_t xa_rng_below(xa_rng *rng, uint32_t n);
/* Uniform float in [0, 1) with 24 random bits. */
float xa_rng_uniform(xa_rng *rng);
/* Standard normal float; consumes two u32 draws per call (no cached spare, so a saved state
 * resumes exactly). */
float xa_rng_normal(xa_rng *rng);
/* Fill out[0..n) with uniform draws in [lo, hi) / normal draws with mean and std. */
void xa_rng_fill_uniform(xa_rng *rng, float *out, size_t n, float lo, float hi);
void xa_rng_fill_normal(xa_rng *rng, float *out, size_t n, float mean, float std);
/* Fisher-Yates shuffle of an index array. */
void xa_rng_shuffle_u32(xa_rng *rng, uint32_t *idx, size_t n);

/* ---- timer ----------------------------------------------------------------------------------- */

/* Seconds on the monotonic clock (CLOCK_MONOTONIC); only differences are meaningful. */
double xa_time_now(void);
/* Seconds since the Unix epoch (CLOCK_REALTIME, UTC): timestamps of records. */
double xa_time_wall(void);
/* The wall time t as "YYYY-MM-DDTHH:MM:SSZ" (UTC) into buf (at least 21 bytes); returns buf. */
char *xa_time_format(double t, char *buf, size_t n);

/* Peak resident set size of this process in bytes (getrusage), 0 if unknown. */
size_t xa_peak_rss_bytes(void);

/* ---- progress line ---------------------------------------------------------------------------- */

/* Progress of a long loop: step/total, rate, ETA and extra fields (loss, lr, ...).
 * On a terminal the line is redrawn in place (at most ~10 times a second), cut to the terminal's
 * width (TIOCGWINSZ, else $COLUMNS, else 80) so that it never wraps; a log message printed while
 * it is shown goes on its own line (the progress line is erased first and redrawn after it).
 * Otherwise one plain line is written every `interval` seconds, plus the first and the last step.
 * xa_progress_set_quiet(1) turns every progress line off (the CLI's --quiet). */
typedef struct xa_progress {
    FILE *out;             /* where the line goes; the CLI passes stderr */
    char label[64];        /* e.g. "pretrain" */
    char unit[16];         /* rate unit, e.g. "step" or "tok" */
    int64_t total;         /* steps in all, or 0 when unknown (no ETA, no percentage) */
    int64_t start_step;    /* step at init (resumed runs start past 0) */
    int is_tty;            /* 1: redraw in place */
    double interval;       /* seconds between plain lines (default 10) */
    double t_start;        /* xa_time_now() at init */
    double t_last;         /* time of the last line written */
    int64_t last_step;     /* last step printed */
    size_t last_len;       /* length of the last in-place line (to blank leftovers) */
    int64_t cur_step;      /* last step reported (printed or not) */
    double cur_amount;     /* its amount */
    char cur_extra[192];   /* its formatted extra fields */
    char shown[512];       /* the line as drawn on the terminal (for a redraw after a log line) */
} xa_progress;

/* Start a progress line. `out` NULL means stderr. `label` and `unit` may be NULL. */
void xa_progress_init(xa_progress *p, FILE *out, const char *label, const char *unit, int64_t start,
                      int64_t total);
/* Report that `step` is done. `amount` is units processed per step for the rate (1 for steps,
 * tokens per step for tok/s). `extra` is printf-formatted and appended ("loss 3.21"), or NULL. */
void xa_progress_update(xa_progress *p, int64_t step, double amount, const char *extra, ...)
    XA_PRINTF(4, 5);
/* Finish: write the last reported step if it was not shown yet, and end the line on a terminal. */
void xa_progress_finish(xa_progress *p);
/* Quiet: no progress line is written at all (process-wide; default 0). */
void xa_progress_set_quiet(int quiet);
int xa_progress_quiet(void);
/* Erase the progress line shown on a terminal, if any, so that other text starts a fresh line;
 * xa_progress_redraw draws it again below that text. Both do nothing without a shown line. The
 * log module calls them around every message. */
void xa_progress_erase(void);
void xa_progress_redraw(void);
/* Format seconds as "1h02m", "4m12s" or "9.3s" into buf (returns buf). */
char *xa_format_duration(double seconds, char *buf, size_t n);

#ifdef __cplusplus
}
#endif
#endif /* XA_CORE_H */
