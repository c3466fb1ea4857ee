/* Temporary: replaced by cmd_inspect.c and cmd_tokenizer.c once io and tokenizer land. */
#include "cli/cli.h"
int cli_cmd_inspect(int argc, char **argv) { (void)argc; (void)argv; return 2; }
int cli_cmd_tokenizer(int argc, char **argv) { (void)argc; (void)argv; return 2; }
