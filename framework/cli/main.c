/* xadapt CLI entry point (being written). */
#include <stdio.h>
#include <string.h>

#include "core/core.h"

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "version")) {
        printf("xadapt %s\n", XA_VERSION_STRING);
        return 0;
    }
    printf("usage: xadapt COMMAND [ARGS]\n");
    return argc > 1 ? 2 : 0;
}
