/* mpi_allreduce: the time of one MPI_Allreduce (MPI_SUM, MPI_FLOAT, in place) of the buffer sizes
 * xadapt's data-parallel steps reduce (README "Scale-out"): the tiny recipe's language adapter
 * (25089 floats with the loss), its task adapter + head (25509), its whole encoder when
 * pretraining (557147), and a base-size (XLM-R base) seq_bn_inv language adapter, reduction
 * factor 2 (7387777). Each call follows a barrier, so it times the reduction, not the wait for a
 * slower rank (which the trainer's own figure in train.log includes). Not built by CMake:
 *   mpicc -O2 tests/bench/mpi_allreduce.c -o /tmp/mpi_allreduce
 *   mpirun -np 2 --oversubscribe --bind-to none /tmp/mpi_allreduce */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int r; MPI_Comm_rank(MPI_COMM_WORLD, &r);
    int sizes[] = {25089, 25509, 557147, 7387777};
    for (int s = 0; s < 4; s++) {
        int n = sizes[s]; float *b = calloc(n, 4);
        double best = 1e9, sum = 0; int reps = s == 3 ? 10 : 50;
        for (int i = 0; i < reps; i++) {
            MPI_Barrier(MPI_COMM_WORLD);
            double t0 = MPI_Wtime();
            MPI_Allreduce(MPI_IN_PLACE, b, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
            double t = MPI_Wtime() - t0; sum += t; if (t < best) best = t;
        }
        if (!r) printf("%d floats (%.2f MB): best %.3f ms, mean %.3f ms\n", n, n * 4e-6, best * 1e3, sum / reps * 1e3);
        free(b);
    }
    MPI_Finalize();
}
