/* Tests of the optim module: AdamW, clipping and schedules against torch.optim.AdamW,
 * torch.nn.utils.clip_grad_norm_ and HF's LambdaLR lambdas, step by step (golden values from
 * tests/golden/gen_tensor_golden.py in tests/data/tensor/ops.safetensors), plus the group table.
 */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "io/safetensors.h"
#include "optim/optim.h"

static xa_st_file *g_st;

static int group_setup(void **state) {
    (void)state;
    g_st = xt_open_golden("tensor/ops.safetensors");
    return g_st ? 0 : -1;
}

static int group_teardown(void **state) {
    (void)state;
    xa_st_close(g_st);
    return 0;
}

/* ---- schedules --------------------------------------------------------------------------------
 */

static void check_sched(const char *name, xa_sched s) {
    float ref[13];
    xt_gold_f32(g_st, name, ref, 13);
    for (int step = 0; step < 13; step++) {
        double f = xa_sched_factor(&s, step);
        /* the golden values are the Python doubles rounded to float */
        if (fabs(f - (double)ref[step]) > 1e-7) {
            fail_msg("%s: step %d factor %.9g, HF gives %.9g", name, step, f, (double)ref[step]);
        }
        assert_true(fabs(xa_sched_lr(&s, step) - s.lr_max * f) < 1e-15);
    }
}

static void test_schedules_vs_hf(void **state) {
    (void)state;
    check_sched("sched.linear", (xa_sched){XA_SCHED_KIND_LINEAR, 1e-3, 3, 10, 0.5});
    check_sched("sched.cosine", (xa_sched){XA_SCHED_KIND_COSINE, 1e-3, 3, 10, 0.5});
    check_sched("sched.constant_warmup",
                (xa_sched){XA_SCHED_KIND_CONSTANT_WITH_WARMUP, 1e-3, 3, 10, 0.5});
    /* plain constant ignores the warmup, as HF get_constant_schedule */
    xa_sched c = {XA_SCHED_KIND_CONSTANT, 2e-4, 3, 10, 0.5};
    for (int step = 0; step < 20; step++)
        assert_true(xa_sched_lr(&c, step) == 2e-4);
    /* exact values of the formulas at a few steps */
    xa_sched lin = {XA_SCHED_KIND_LINEAR, 1.0, 4, 104, 0.5};
    assert_true(xa_sched_factor(&lin, 0) == 0.0);
    assert_true(xa_sched_factor(&lin, 2) == 0.5);
    assert_true(xa_sched_factor(&lin, 4) == 1.0);
    assert_true(xa_sched_factor(&lin, 54) == 0.5);
    assert_true(xa_sched_factor(&lin, 104) == 0.0);
    assert_true(xa_sched_factor(&lin, 200) == 0.0);
    xa_sched cosine = {XA_SCHED_KIND_COSINE, 1.0, 0, 100, 0.5};
    assert_true(xa_sched_factor(&cosine, 0) == 1.0);
    assert_true(fabs(xa_sched_factor(&cosine, 50) - 0.5) < 1e-15);
    assert_true(xa_sched_factor(&cosine, 100) < 1e-15);
}

static void test_sched_parse(void **state) {
    (void)state;
    const char *names[] = {"constant", "constant_with_warmup", "linear", "cosine"};
    for (int i = 0; i < 4; i++) {
        xa_sched_kind k;
        assert_int_equal(xa_sched_parse_kind(names[i], &k), XA_STATUS_OK);
        assert_int_equal(k, i);
        assert_string_equal(xa_sched_kind_name(k), names[i]);
    }
    xa_sched_kind k;
    assert_int_equal(xa_sched_parse_kind("Linear", &k), XA_STATUS_OK);
    assert_int_equal(k, XA_SCHED_KIND_LINEAR);
    assert_int_equal(xa_sched_parse_kind("polynomial", &k), XA_STATUS_CONFIG);
    xt_assert_error_mentions("polynomial");
    xt_assert_error_mentions("cosine");
    assert_string_equal(xa_sched_kind_name((xa_sched_kind)99), "?");
}

/* ---- AdamW vs torch
 * ------------------------------------------------------------------------------ */

typedef struct adamw_run {
    const char *tag;
    double lr, beta1, beta2, eps, wd, clip;
    xa_sched sched;
    int n_steps;
} adamw_run;

static void check_adamw_run(const adamw_run *r) {
    char key[96];
    float w[12], b[5], gw[6 * 12], gb[6 * 5], ref_w[6 * 12], ref_b[6 * 5], ref_lr[6], ref_norm[6];
    float frozen[4] = {1.0f, -2.0f, 3.0f, 0.5f}, frozen0[4];
    float grad_w[12], grad_b[5];
    const int S = r->n_steps;
#define G(name, dst, n)                                                                            \
    (snprintf(key, sizeof key, "%s.%s", r->tag, name), xt_gold_f32(g_st, key, dst, n))
    G("w0", w, 12);
    G("b0", b, 5);
    G("grad_w", gw, (size_t)S * 12);
    G("grad_b", gb, (size_t)S * 5);
    G("w", ref_w, (size_t)S * 12);
    G("b", ref_b, (size_t)S * 5);
    G("lr", ref_lr, S);
    G("norm", ref_norm, S);
#undef G
    memcpy(frozen0, frozen, sizeof frozen);

    xa_optim opt;
    assert_int_equal(xa_optim_init(&opt, r->beta1, r->beta2, r->eps), XA_STATUS_OK);
    xa_param_group *gr = NULL;
    assert_int_equal(xa_optim_add_group(&opt, "w", w, grad_w, 12, 1.0, r->wd, 1, &gr),
                     XA_STATUS_OK);
    assert_non_null(gr->m);
    assert_int_equal(xa_optim_add_group(&opt, "frozen", frozen, NULL, 4, 1.0, 0.5, 0, &gr),
                     XA_STATUS_OK);
    assert_null(gr->m);
    assert_null(gr->grads);
    assert_int_equal(xa_optim_add_group(&opt, "b", b, grad_b, 5, 0.5, 0.0, 1, NULL), XA_STATUS_OK);
    assert_int_equal(xa_optim_n_trainable(&opt), 17);

    for (int s = 0; s < S; s++) {
        xa_optim_zero_grad(&opt);
        memcpy(grad_w, gw + s * 12, sizeof grad_w);
        memcpy(grad_b, gb + s * 5, sizeof grad_b);
        double lr = xa_sched_lr(&r->sched, xa_optim_find(&opt, "w")->step);
        char label[96];
        snprintf(label, sizeof label, "%s step %d lr", r->tag, s);
        float lrf = (float)lr;
        xt_assert_close(label, &lrf, &ref_lr[s], 1, 0.0f, 1e-6f);
        double norm =
            r->clip > 0.0 ? xa_optim_clip_grad_norm(&opt, r->clip) : xa_optim_grad_norm(&opt);
        float normf = (float)norm;
        snprintf(label, sizeof label, "%s step %d grad norm", r->tag, s);
        xt_assert_close(label, &normf, &ref_norm[s], 1, 0.0f, 1e-6f);
        xa_optim_step(&opt, lr);
        snprintf(label, sizeof label, "%s step %d params w", r->tag, s);
        xt_assert_close(label, w, ref_w + s * 12, 12, 1e-7f, 1e-5f);
        snprintf(label, sizeof label, "%s step %d params b", r->tag, s);
        xt_assert_close(label, b, ref_b + s * 5, 5, 1e-7f, 1e-5f);
    }
    assert_memory_equal(frozen, frozen0, sizeof frozen);
    assert_int_equal(xa_optim_find(&opt, "w")->step, S);
    assert_int_equal(xa_optim_find(&opt, "frozen")->step, 0);
    xa_optim_free(&opt);
}

static void test_adamw_vs_torch_linear_clip(void **state) {
    (void)state;
    adamw_run r = {
        "adamw", 1e-2, 0.9, 0.999, 1e-8, 0.01, 1.0, {XA_SCHED_KIND_LINEAR, 1e-2, 2, 8, 0.5}, 6};
    check_adamw_run(&r);
}

static void test_adamw_vs_torch_cosine(void **state) {
    (void)state;
    adamw_run r = {
        "adamw_cos", 3e-3, 0.8, 0.99, 1e-6, 0.1, 0.0, {XA_SCHED_KIND_COSINE, 3e-3, 1, 6, 0.5}, 5};
    check_adamw_run(&r);
}

/* ---- clipping, zero_grad, the table
 * ---------------------------------------------------------------- */

static void test_clip_and_zero_grad(void **state) {
    (void)state;
    float p1[3] = {0}, g1[3] = {3.0f, 0.0f, 0.0f}, p2[2] = {0}, g2[2] = {0.0f, 4.0f};
    float pf[2] = {0}, gf[2] = {100.0f, 100.0f}; /* frozen: never counted or touched */
    xa_optim opt;
    assert_int_equal(xa_optim_init(&opt, 0.9, 0.999, 1e-8), XA_STATUS_OK);
    assert_int_equal(xa_optim_add_group(&opt, "a", p1, g1, 3, 1.0, 0.0, 1, NULL), XA_STATUS_OK);
    assert_int_equal(xa_optim_add_group(&opt, "f", pf, gf, 2, 1.0, 0.0, 0, NULL), XA_STATUS_OK);
    assert_int_equal(xa_optim_add_group(&opt, "b", p2, g2, 2, 1.0, 0.0, 1, NULL), XA_STATUS_OK);
    assert_true(fabs(xa_optim_grad_norm(&opt) - 5.0) < 1e-12);
    /* under the limit: untouched */
    assert_true(fabs(xa_optim_clip_grad_norm(&opt, 10.0) - 5.0) < 1e-12);
    assert_true(g1[0] == 3.0f && g2[1] == 4.0f);
    /* max_norm <= 0 measures only */
    assert_true(fabs(xa_optim_clip_grad_norm(&opt, 0.0) - 5.0) < 1e-12);
    assert_true(g1[0] == 3.0f);
    /* over: scaled by 1/(5 + 1e-6) */
    assert_true(fabs(xa_optim_clip_grad_norm(&opt, 1.0) - 5.0) < 1e-12);
    float c = 1.0f / (5.0f + 1e-6f);
    assert_true(g1[0] == 3.0f * c && g2[1] == 4.0f * c);
    assert_true(fabs(xa_optim_grad_norm(&opt) - 1.0) < 1e-6);
    /* a non-finite gradient: reported, nothing scaled */
    g2[0] = NAN;
    assert_true(isnan(xa_optim_clip_grad_norm(&opt, 1.0)));
    assert_true(g1[0] == 3.0f * c);
    xa_optim_zero_grad(&opt);
    assert_true(g1[0] == 0.0f && g2[0] == 0.0f && g2[1] == 0.0f);
    assert_true(gf[0] == 100.0f && gf[1] == 100.0f);
    xa_optim_free(&opt);
    xa_optim_free(&opt); /* twice is fine */
    xa_optim_free(NULL);
}

static void test_table_errors(void **state) {
    (void)state;
    xa_optim opt;
    assert_int_equal(xa_optim_init(&opt, 1.0, 0.999, 1e-8), XA_STATUS_USAGE);
    xt_assert_error_mentions("beta1");
    xa_optim_free(&opt);
    assert_int_equal(xa_optim_init(&opt, 0.9, 0.999, 1e-8), XA_STATUS_OK);
    float p[4] = {0}, g[4] = {0};
    assert_int_equal(xa_optim_add_group(&opt, "x", p, g, 4, 1.0, 0.0, 1, NULL), XA_STATUS_OK);
    assert_int_equal(xa_optim_add_group(&opt, "x", p, g, 4, 1.0, 0.0, 1, NULL), XA_STATUS_USAGE);
    xt_assert_error_mentions("already");
    assert_int_equal(xa_optim_add_group(&opt, "", p, g, 4, 1.0, 0.0, 1, NULL), XA_STATUS_USAGE);
    assert_int_equal(xa_optim_add_group(&opt, "y", p, NULL, 4, 1.0, 0.0, 1, NULL), XA_STATUS_USAGE);
    xt_assert_error_mentions("gradient");
    assert_null(xa_optim_find(&opt, "y"));
    /* many groups: the table grows; pointers from find stay consistent */
    char name[32];
    for (int i = 0; i < 40; i++) {
        snprintf(name, sizeof name, "g%d", i);
        assert_int_equal(xa_optim_add_group(&opt, name, p, g, 4, 1.0, 0.0, i % 2, NULL),
                         XA_STATUS_OK);
    }
    assert_int_equal(opt.n_groups, 41);
    assert_int_equal(xa_optim_n_trainable(&opt), 4 + 20 * 4);
    assert_string_equal(xa_optim_find(&opt, "g39")->name, "g39");
    xa_optim_free(&opt);
}

/* With lr 0 nothing moves; with zero gradients only the decay acts: p *= 1 - lr*wd. */
static void test_adamw_edge_cases(void **state) {
    (void)state;
    float p[3] = {1.0f, -2.0f, 0.5f}, g[3] = {0.3f, -0.1f, 2.0f};
    xa_optim opt;
    assert_int_equal(xa_optim_init(&opt, 0.9, 0.999, 1e-8), XA_STATUS_OK);
    assert_int_equal(xa_optim_add_group(&opt, "p", p, g, 3, 1.0, 0.1, 1, NULL), XA_STATUS_OK);
    xa_optim_step(&opt, 0.0);
    assert_true(p[0] == 1.0f && p[1] == -2.0f && p[2] == 0.5f);
    xa_optim_free(&opt);

    float q[2] = {1.0f, -4.0f}, z[2] = {0.0f, 0.0f};
    assert_int_equal(xa_optim_init(&opt, 0.9, 0.999, 1e-8), XA_STATUS_OK);
    assert_int_equal(xa_optim_add_group(&opt, "q", q, z, 2, 2.0, 0.25, 1, NULL), XA_STATUS_OK);
    xa_optim_step(&opt, 0.1); /* lr_g = 0.2: factor 1 - 0.2*0.25 = 0.95 */
    assert_true(fabsf(q[0] - 0.95f) < 1e-7f && fabsf(q[1] + 3.8f) < 1e-6f);
    xa_optim_free(&opt);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schedules_vs_hf),
        cmocka_unit_test(test_sched_parse),
        cmocka_unit_test(test_adamw_vs_torch_linear_clip),
        cmocka_unit_test(test_adamw_vs_torch_cosine),
        cmocka_unit_test(test_clip_and_zero_grad),
        cmocka_unit_test(test_table_errors),
        cmocka_unit_test(test_adamw_edge_cases),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
