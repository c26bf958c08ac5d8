/*
 * Restart policy arithmetic, after Erlang/OTP and systemd: permanent,
 * transient or temporary; doubling backoff; an intensity window.
 *
 * Design notes: a worker that stayed up for a whole period starts afresh
 * (backoff back to initial); the window counts restarts, so with
 * max_restarts 5 the sixth failure inside period_s gives up.
 */
#include "supervisor/supervisor.h"

#include <stdlib.h>

void sup_history_free(sup_history *h)
{
    free(h->at_ms);
    h->at_ms = NULL;
    h->n = h->cap = h->head = 0;
    h->next_backoff_ms = 0;
}

/* prune drops restarts older than the window. */
static void prune(const sup_policy *p, sup_history *h, uint64_t now_ms)
{
    uint64_t window = (uint64_t)p->period_s * 1000;

    while (h->n > 0) {
        uint64_t oldest = h->at_ms[(h->head + h->cap - h->n) % h->cap];
        if (now_ms - oldest < window)
            break;
        h->n--;
    }
}

enum sup_decision sup_policy_decide(const sup_policy *p, sup_history *h, uint64_t now_ms, int clean,
                                    uint64_t uptime_ms, uint64_t *delay_ms)
{
    *delay_ms = 0;
    if (p->restart == SUP_RESTART_TEMPORARY)
        return clean ? SUP_DECIDE_STOP : SUP_DECIDE_GIVE_UP;
    if (p->restart == SUP_RESTART_TRANSIENT && clean)
        return SUP_DECIDE_STOP;
    if (h->cap != p->max_restarts) {
        sup_history_free(h);
        if (p->max_restarts > 0) {
            h->at_ms = calloc((size_t)p->max_restarts, sizeof(*h->at_ms));
            if (h->at_ms == NULL)
                return SUP_DECIDE_GIVE_UP;
        }
        h->cap = p->max_restarts;
    }
    if (h->cap == 0)
        return SUP_DECIDE_GIVE_UP;
    prune(p, h, now_ms);
    if (h->n >= h->cap)
        return SUP_DECIDE_GIVE_UP;
    if (uptime_ms >= (uint64_t)p->period_s * 1000 || h->next_backoff_ms == 0)
        h->next_backoff_ms = p->backoff_initial_ms;
    *delay_ms = h->next_backoff_ms;
    h->next_backoff_ms *= 2;
    if (h->next_backoff_ms > p->backoff_max_ms)
        h->next_backoff_ms = p->backoff_max_ms;
    if (*delay_ms > p->backoff_max_ms)
        *delay_ms = p->backoff_max_ms;
    h->at_ms[h->head] = now_ms;
    h->head = (h->head + 1) % h->cap;
    h->n++;
    return SUP_DECIDE_RESTART;
}
