/* train/dist: the MPI calls of data-parallel training (dist.h), and their one-process twin when
 * xadapt is built without MPI (XA_HAVE_MPI unset). Errors are returned, not fatal:
 * MPI_COMM_WORLD gets MPI_ERRORS_RETURN, so a failed collective becomes a RUNTIME status that
 * the CLI reports before it aborts the job (a rank killed by a signal is caught by mpirun, which
 * stops the others). Does not: split communicators, overlap communication with the backward, or
 * reduce in anything but MPI's own order (Open MPI picks the algorithm by size; every rank
 * receives the same bytes). */
#include "train/dist.h"

#include <stdint.h>
#include <stdlib.h>

#ifdef XA_HAVE_MPI
#include <mpi.h>
#endif

static int g_rank = 0, g_size = 1, g_started = 0;
static double g_seconds = 0, g_floats = 0;

#ifdef XA_HAVE_MPI
/* Whether a launcher started this process as a rank: Open MPI's mpirun sets OMPI_COMM_WORLD_SIZE,
 * PMIx launchers PMIX_RANK, Hydra / Slurm PMI_SIZE. Without one, MPI is not started at all: a
 * singleton MPI_Init costs ~0.4 s (it starts a daemon) on every command of an MPI build. */
static int launched(void) {
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_SIZE");
}
#endif

xa_status xa_dist_init(int *argc, char ***argv) {
#ifdef XA_HAVE_MPI
    if (!launched()) return XA_STATUS_OK;
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited && MPI_Init(argc, argv) != MPI_SUCCESS)
        return xa_error_set(XA_STATUS_RUNTIME, "xa_dist_init", NULL, "is the program started by mpirun?",
                            "MPI_Init failed");
    g_started = 1;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
#else
    (void)argc;
    (void)argv;
#endif
    return XA_STATUS_OK;
}

void xa_dist_finalize(void) {
#ifdef XA_HAVE_MPI
    if (g_started) MPI_Finalize();
#endif
    g_started = 0;
}

int xa_dist_rank(void) { return g_rank; }
int xa_dist_size(void) { return g_size; }

int xa_dist_local_size(void) {
    if (g_size <= 1) return 1;
    const char *s = getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
    const int n = s ? atoi(s) : 0;
    return n >= 1 ? n : 1;
}

xa_status xa_dist_allreduce_sum(float *buf, size_t n, const char *who) {
    if (g_size <= 1 || n == 0) return XA_STATUS_OK;
#ifdef XA_HAVE_MPI
    const double t0 = xa_time_now();
    /* MPI counts are int: large buffers go in chunks of 2^30 floats */
    for (size_t off = 0; off < n;) {
        const size_t c = n - off < ((size_t)1 << 30) ? n - off : ((size_t)1 << 30);
        const int rc = MPI_Allreduce(MPI_IN_PLACE, buf + off, (int)c, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) {
            char msg[MPI_MAX_ERROR_STRING];
            int len = 0;
            MPI_Error_string(rc, msg, &len);
            return xa_error_set(XA_STATUS_RUNTIME, who, NULL, "another rank has died; see its messages",
                                "MPI_Allreduce of %zu floats failed: %s", c, msg);
        }
        off += c;
    }
    g_seconds += xa_time_now() - t0;
    g_floats += (double)n;
#else
    (void)buf;
    (void)who;
#endif
    return XA_STATUS_OK;
}

xa_status xa_dist_barrier(const char *who) {
    if (g_size <= 1) return XA_STATUS_OK;
#ifdef XA_HAVE_MPI
    if (MPI_Barrier(MPI_COMM_WORLD) != MPI_SUCCESS)
        return xa_error_set(XA_STATUS_RUNTIME, who, NULL, "another rank has died; see its messages",
                            "MPI_Barrier failed");
#else
    (void)who;
#endif
    return XA_STATUS_OK;
}

void xa_dist_abort(int code) {
#ifdef XA_HAVE_MPI
    if (g_started && g_size > 1) MPI_Abort(MPI_COMM_WORLD, code);
#else
    (void)code;
#endif
}

double xa_dist_allreduce_seconds(void) { return g_seconds; }
double xa_dist_allreduce_floats(void) { return g_floats; }
