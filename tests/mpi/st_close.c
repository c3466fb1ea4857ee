/* st_close: do two safetensors files hold the same tensors within a tolerance? The comparator of
 * tests/mpi/test_mpi.sh (data-parallel runs against single-process ones); built only with
 * -DXA_MPI=ON, beside the test it serves.
 *
 * usage: st_close A.safetensors B.safetensors ATOL RTOL
 * Every tensor of A must exist in B with as many elements, and every element must satisfy
 * |a - b| <= ATOL + RTOL * |b|. Prints the worst element (tensor, index, both values, its
 * difference) and "bit-identical" when every element is equal. Exit 0 within the tolerance, 1
 * outside it or on a mismatch of names or sizes, 2 on bad usage or an unreadable file. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "io/safetensors.h"

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: st_close A.safetensors B.safetensors ATOL RTOL\n");
        return 2;
    }
    const double atol = atof(argv[3]), rtol = atof(argv[4]);
    xa_st_file *fa = NULL, *fb = NULL;
    if (xa_st_open(&fa, argv[1]) || xa_st_open(&fb, argv[2])) {
        fprintf(stderr, "st_close: %s\n", xa_error_last()->what);
        xa_st_close(fa);
        return 2;
    }
    int rc = 0;
    size_t n_equal = 0, n_all = 0;
    double worst = -1, worst_a = 0, worst_b = 0, worst_ratio = 0;
    const char *worst_name = "";
    size_t worst_k = 0;
    if (xa_st_count(fa) != xa_st_count(fb)) {
        printf("st_close: %zu tensors in %s, %zu in %s\n", xa_st_count(fa), argv[1], xa_st_count(fb), argv[2]);
        rc = 1;
    }
    for (size_t i = 0; i < xa_st_count(fa) && !rc; i++) {
        const xa_st_tensor *ta = xa_st_at(fa, i), *tb = xa_st_find(fb, ta->name);
        if (!tb || tb->n_elems != ta->n_elems) {
            printf("st_close: tensor %s: %s in %s\n", ta->name, tb ? "another size" : "missing", argv[2]);
            rc = 1;
            break;
        }
        float *a = malloc((size_t)ta->n_elems * sizeof *a), *b = malloc((size_t)tb->n_elems * sizeof *b);
        if (!a || !b || xa_st_tensor_to_f32(ta, a) || xa_st_tensor_to_f32(tb, b)) {
            fprintf(stderr, "st_close: cannot read tensor %s\n", ta->name);
            free(a);
            free(b);
            rc = 2;
            break;
        }
        for (size_t k = 0; k < (size_t)ta->n_elems; k++) {
            const double d = fabs((double)a[k] - (double)b[k]), bound = atol + rtol * fabs((double)b[k]);
            n_equal += a[k] == b[k];
            n_all++;
            if (!(d <= bound)) rc = 1;
            if (d / bound > worst_ratio || worst < 0) {
                worst_ratio = d / bound;
                worst = d;
                worst_a = a[k];
                worst_b = b[k];
                worst_name = ta->name;
                worst_k = k;
            }
        }
        free(a);
        free(b);
    }
    if (n_all && n_equal == n_all)
        printf("st_close: bit-identical (%zu values)\n", n_all);
    else if (n_all)
        printf("st_close: worst %s[%zu]: %.9g vs %.9g, |diff| %.3g (%.3g of atol %g + rtol %g |b|); %zu of %zu equal\n",
               worst_name, worst_k, worst_a, worst_b, worst, worst_ratio, atol, rtol, n_equal, n_all);
    xa_st_close(fa);
    xa_st_close(fb);
    return rc;
}
