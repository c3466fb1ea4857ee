/* train/dist: data-parallel training over MPI, behind five calls (issue 13). The only file that
 * includes <mpi.h> is dist.c, and only in a build with -DXA_MPI=ON (XA_HAVE_MPI); without it the
 * same calls are the one-process twin (rank 0 of 1, sums are no-ops), so the rest of the code calls
 * xa_dist_* unconditionally and a build without MPI behaves as before.
 *
 * Model: every rank runs the same command on the same files. Each step's global batch is drawn
 * whole on every rank (the data, masks and schedule are functions of the step), each rank runs
 * its contiguous share of the batch's pieces (train/trainer.h, xa_trainer_micro), the trainable
 * gradients (and the loss) are summed in one flat xa_dist_allreduce_sum per step, and every rank
 * applies the same optimizer step. Rank 0 alone writes files (checkpoints, metrics, logs, final
 * outputs, provenance, evaluation). */
#ifndef XA_TRAIN_DIST_H
#define XA_TRAIN_DIST_H

#include <stddef.h>

#include "core/core.h"

/* Start MPI when the process was launched as a rank (mpirun / mpiexec / srun: their environment
 * variables); otherwise, and without MPI, nothing happens and the process is rank 0 of 1. Call
 * once from main, before any other xa_dist_* call; argc/argv may be NULL. Errors: RUNTIME when
 * MPI_Init fails. */
xa_status xa_dist_init(int *argc, char ***argv);
/* MPI_Finalize (nothing without MPI or before init). */
void xa_dist_finalize(void);
/* This process's rank and the number of ranks (0 and 1 without MPI or before init). */
int xa_dist_rank(void);
int xa_dist_size(void);
/* Ranks on this machine (OMPI_COMM_WORLD_LOCAL_SIZE; 1 without MPI): the default thread count
 * divides the cores by it. */
int xa_dist_local_size(void);
/* In-place sum of buf (n floats) over all ranks; every rank gets the same sums (one
 * MPI_Allreduce, MPI_SUM on MPI_FLOAT, whose result MPI makes identical on every rank).
 * No-op with one rank. Errors: RUNTIME naming `who` when MPI reports one (a rank died). */
xa_status xa_dist_allreduce_sum(float *buf, size_t n, const char *who);
/* Wait for every rank (no-op with one rank). Errors: RUNTIME naming `who`. */
xa_status xa_dist_barrier(const char *who);
/* Stop every rank with exit status code (MPI_Abort); with one rank, returns (the caller exits). */
void xa_dist_abort(int code);
/* Seconds spent in xa_dist_allreduce_sum so far, and the floats it moved (the benchmark's
 * allreduce time per step). */
double xa_dist_allreduce_seconds(void);
double xa_dist_allreduce_floats(void);

#endif
