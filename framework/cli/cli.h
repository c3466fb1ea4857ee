/* The xadapt CLI: shared helpers of the subcommands. Only the CLI writes to stdout and maps a status
 * to an exit code (0 ok, 1 runtime failure, 2 usage or config error). */
#ifndef XA_CLI_H
#define XA_CLI_H

#include <stdint.h>

#include "core/core.h"
#include "tensor/tensor.h"

#define CLI_EXIT_OK 0
#define CLI_EXIT_RUNTIME 1
#define CLI_EXIT_USAGE 2

/* Print the calling thread's error record to stderr; return the exit code of its status. */
int cli_fail(void);
/* Print "xadapt CMD: MESSAGE" and a pointer to --help on stderr; return 2. */
int cli_usage_error(const char *cmd, const char *fmt, ...) XA_PRINTF(2, 3);
/* Parse a whole decimal integer / float option value within [lo, hi]; on failure print a usage error
 * naming the option and return 0. */
int cli_parse_i64(const char *cmd, const char *opt, const char *text, int64_t lo, int64_t hi,
                  int64_t *out);
int cli_parse_f64(const char *cmd, const char *opt, const char *text, double lo, double hi,
                  double *out);
/* --precision: "fp32" or "bf16" into *out (a usage error naming the option otherwise, return 0);
 * a warning when this CPU would compute bf16 in fp32 (no AVX512-BF16). */
int cli_parse_precision(const char *cmd, const char *text, xa_precision *out);
/* Is this argument a request for help ("-h", "--help", "help")? */
int cli_is_help(const char *arg);
/* --quiet: no progress lines, and only warnings and errors logged (unless XA_LOG_LEVEL is set). */
void cli_set_quiet(void);

/* Subcommands: argv[0] is the subcommand's name. */
int cli_cmd_inspect(int argc, char **argv);
int cli_cmd_convert(int argc, char **argv);
int cli_cmd_tokenizer(int argc, char **argv);
int cli_cmd_pretrain(int argc, char **argv);
int cli_cmd_bench(int argc, char **argv);
int cli_cmd_train(int argc, char **argv);
int cli_cmd_run(int argc, char **argv);
int cli_cmd_eval(int argc, char **argv);
int cli_cmd_predict(int argc, char **argv);
int cli_cmd_retrieval(int argc, char **argv);
int cli_cmd_plot(int argc, char **argv);

#endif
