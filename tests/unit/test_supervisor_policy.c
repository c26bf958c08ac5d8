/* Restart-policy arithmetic: permanent/transient/temporary, doubling
 * backoff capped at max, the intensity window, and a fresh start after a
 * worker stayed up for a whole period. Times are given, never measured. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "supervisor/supervisor.h"

static const sup_policy base = {SUP_RESTART_PERMANENT, 100, 1000, 3, 60};

static void test_doubling_then_give_up(void **state)
{
    sup_history h = {0};
    uint64_t delay, now = 1000000;
    static const uint64_t want[] = {100, 200, 400};

    for (int i = 0; i < 3; i++) {
        assert_int_equal(sup_policy_decide(&base, &h, now, 0, 5, &delay), SUP_DECIDE_RESTART);
        assert_int_equal(delay, want[i]);
        now += delay + 5;
    }
    /* The fourth failure inside the period: give up. */
    assert_int_equal(sup_policy_decide(&base, &h, now, 0, 5, &delay), SUP_DECIDE_GIVE_UP);
    sup_history_free(&h);
}

static void test_backoff_capped(void **state)
{
    sup_policy p = base;
    sup_history h = {0};
    uint64_t delay, now = 0;

    p.max_restarts = 100;
    p.period_s = 3600;
    uint64_t last = 0;
    for (int i = 0; i < 10; i++) {
        assert_int_equal(sup_policy_decide(&p, &h, now, 0, 0, &delay), SUP_DECIDE_RESTART);
        assert_true(delay <= p.backoff_max_ms);
        assert_true(delay >= last);
        last = delay;
        now += 10;
    }
    assert_int_equal(last, 1000);
    sup_history_free(&h);
}

static void test_window_slides(void **state)
{
    sup_history h = {0};
    uint64_t delay, now = 0;

    for (int i = 0; i < 3; i++) {
        assert_int_equal(sup_policy_decide(&base, &h, now, 0, 0, &delay), SUP_DECIDE_RESTART);
        now += 1000;
    }
    /* 61 s after the first restart, one has left the window. */
    now = 61000;
    assert_int_equal(sup_policy_decide(&base, &h, now, 0, 0, &delay), SUP_DECIDE_RESTART);
    sup_history_free(&h);
}

static void test_reset_after_long_uptime(void **state)
{
    sup_history h = {0};
    uint64_t delay;

    sup_policy_decide(&base, &h, 0, 0, 0, &delay);
    sup_policy_decide(&base, &h, 100, 0, 0, &delay);
    assert_int_equal(delay, 200);
    /* It then ran for a whole period: the backoff starts over. */
    assert_int_equal(sup_policy_decide(&base, &h, 70000, 0, 60000, &delay), SUP_DECIDE_RESTART);
    assert_int_equal(delay, 100);
    sup_history_free(&h);
}

static void test_kinds_of_restart(void **state)
{
    sup_policy p = base;
    sup_history h = {0};
    uint64_t delay;

    /* permanent restarts even after a clean exit */
    assert_int_equal(sup_policy_decide(&p, &h, 0, 1, 0, &delay), SUP_DECIDE_RESTART);
    sup_history_free(&h);
    p.restart = SUP_RESTART_TRANSIENT;
    assert_int_equal(sup_policy_decide(&p, &h, 0, 1, 0, &delay), SUP_DECIDE_STOP);
    assert_int_equal(sup_policy_decide(&p, &h, 0, 0, 0, &delay), SUP_DECIDE_RESTART);
    sup_history_free(&h);
    p.restart = SUP_RESTART_TEMPORARY;
    assert_int_equal(sup_policy_decide(&p, &h, 0, 1, 0, &delay), SUP_DECIDE_STOP);
    assert_int_equal(sup_policy_decide(&p, &h, 0, 0, 0, &delay), SUP_DECIDE_GIVE_UP);
    /* max_restarts 0: the first failure gives up */
    p.restart = SUP_RESTART_PERMANENT;
    p.max_restarts = 0;
    assert_int_equal(sup_policy_decide(&p, &h, 0, 0, 0, &delay), SUP_DECIDE_GIVE_UP);
    sup_history_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_doubling_then_give_up),
        cmocka_unit_test(test_backoff_capped),
        cmocka_unit_test(test_window_slides),
        cmocka_unit_test(test_reset_after_long_uptime),
        cmocka_unit_test(test_kinds_of_restart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
