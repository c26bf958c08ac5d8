/*
 * The connections (nng pipes) of the three sockets: how many there are, on
 * which listener, and, on request.ipc, how many reply bytes each has yet to
 * read.
 *
 * Design notes:
 * - nng reports pipes on its own threads (ADD_PRE, ADD_POST, REM_POST);
 *   those callbacks touch only the record table, under pipes_lock. The
 *   loop reads it under the same lock.
 * - A socket takes at most max_connections pipes (bounded again by the
 *   process's descriptor limit, so herdd keeps descriptors for its own
 *   work). On request.ipc a new one then takes the place of the oldest
 *   idle one (no request in flight), so connections held open and unused
 *   cannot lock out clients; elsewhere, or when none is idle, the new one
 *   is closed at ADD_PRE, before it reaches the socket. Both are counted.
 * - Reply backlog: what herdd has handed to nng for a pipe, less what nng
 *   has written of it (the pipe's tx_bytes statistic), is what the client
 *   has not read yet. nng queues up to 64 replies per pipe and herdd its
 *   own retries behind them, so a client that pipelines requests and never
 *   reads could pin gigabytes; past pending_reply_bytes for one pipe, or
 *   pending_reply_bytes_total for all, a new request is answered busy
 *   instead. The statistics are read only when a bound looks crossed, at
 *   most every TX_REFRESH_MS.
 */
#include "bus/internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#define TX_REFRESH_MS 10
#define RESERVED_FDS 64 /* descriptors left to herdd's own work */

static bus_pipe_rec *rec_find(bus_endpoint *ep, uint32_t id)
{
    for (size_t i = 0; i < ep->n_pipes; i++)
        if (ep->pipes[i].id == id)
            return &ep->pipes[i];
    return NULL;
}

static void pipe_event(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    bus_endpoint *ep = arg;
    bus *b = ep->bus;
    uint32_t id = nng_pipe_id(p);
    pthread_mutex_lock(&ep->pipes_lock);
    if (ev == NNG_PIPE_EV_ADD_PRE) {
        if (ep->n_pipes < b->max_connections) {
            pthread_mutex_unlock(&ep->pipes_lock);
            return;
        }
        bus_pipe_rec *oldest = NULL;
        for (size_t i = 0; ep->evict_idle && i < ep->n_pipes; i++) {
            bus_pipe_rec *r = &ep->pipes[i];
            if (r->in_flight == 0 && r->seq != 0 && (oldest == NULL || r->seq < oldest->seq))
                oldest = r;
        }
        nng_pipe victim = p;
        if (oldest != NULL) {
            victim = oldest->pipe;
            oldest->seq = 0; /* being closed: not chosen again */
        }
        pthread_mutex_unlock(&ep->pipes_lock);
        /* Outside the lock: nng may report the victim's removal at once. */
        __atomic_add_fetch(oldest != NULL ? &b->stats.connections_evicted
                                          : &b->stats.connections_refused,
                           1, __ATOMIC_RELAXED);
        nng_pipe_close(victim);
        return;
    } else if (ev == NNG_PIPE_EV_ADD_POST) {
        if (ep->n_pipes == ep->cap_pipes) {
            size_t ncap = ep->cap_pipes != 0 ? ep->cap_pipes * 2 : 8;
            bus_pipe_rec *n = base_realloc(ep->pipes, ncap * sizeof(*n));
            if (n == NULL) { /* untracked: closed rather than uncounted */
                pthread_mutex_unlock(&ep->pipes_lock);
                nng_pipe_close(p);
                return;
            }
            ep->pipes = n;
            ep->cap_pipes = ncap;
        }
        ep->pipes[ep->n_pipes] = (bus_pipe_rec){
            .pipe = p,
            .id = id,
            .listener_id = nng_listener_id(nng_pipe_listener(p)),
            .seq = ++ep->pipe_seq,
        };
        __atomic_store_n(&ep->n_pipes, ep->n_pipes + 1, __ATOMIC_RELEASE);
    } else if (ev == NNG_PIPE_EV_REM_POST) {
        bus_pipe_rec *r = rec_find(ep, id);
        if (r != NULL) {
            *r = ep->pipes[ep->n_pipes - 1];
            __atomic_store_n(&ep->n_pipes, ep->n_pipes - 1, __ATOMIC_RELEASE);
        }
    }
    pthread_mutex_unlock(&ep->pipes_lock);
}

size_t bus__pipes_cap(size_t configured)
{
    struct rlimit rl;
    size_t cap = configured;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        size_t avail = rl.rlim_cur > 2 * RESERVED_FDS ? (size_t)rl.rlim_cur - RESERVED_FDS
                                                      : (size_t)rl.rlim_cur / 2;
        if (avail / BUS_EP_N < cap)
            cap = avail / BUS_EP_N;
    }
    return cap > 0 ? cap : 1;
}

int bus__pipes_init(bus_endpoint *ep)
{
    int rv;

    pthread_mutex_init(&ep->pipes_lock, NULL);
    ep->has_pipes_lock = 1;
    rv = nng_pipe_notify(ep->sock, NNG_PIPE_EV_ADD_PRE, pipe_event, ep);
    if (rv == 0)
        rv = nng_pipe_notify(ep->sock, NNG_PIPE_EV_ADD_POST, pipe_event, ep);
    if (rv == 0)
        rv = nng_pipe_notify(ep->sock, NNG_PIPE_EV_REM_POST, pipe_event, ep);
    return rv;
}

void bus__pipes_fini(bus_endpoint *ep)
{
    if (!ep->has_pipes_lock)
        return;
    base_free(ep->pipes);
    ep->pipes = NULL;
    ep->n_pipes = ep->cap_pipes = 0;
    pthread_mutex_destroy(&ep->pipes_lock);
    ep->has_pipes_lock = 0;
}

size_t bus__pipes_count(const bus_endpoint *ep)
{
    return __atomic_load_n(&ep->n_pipes, __ATOMIC_ACQUIRE);
}

size_t bus__pipes_of_listener(bus_endpoint *ep, int listener_id)
{
    size_t n = 0;

    pthread_mutex_lock(&ep->pipes_lock);
    for (size_t i = 0; i < ep->n_pipes; i++)
        n += ep->pipes[i].listener_id == listener_id;
    pthread_mutex_unlock(&ep->pipes_lock);
    return n;
}

void bus__pipes_request(bus_endpoint *ep, uint32_t pipe_id)
{
    pthread_mutex_lock(&ep->pipes_lock);
    bus_pipe_rec *r = rec_find(ep, pipe_id);
    if (r != NULL)
        r->in_flight++;
    pthread_mutex_unlock(&ep->pipes_lock);
}

void bus__pipes_handed(bus_endpoint *ep, uint32_t pipe_id, size_t bytes)
{
    pthread_mutex_lock(&ep->pipes_lock);
    bus_pipe_rec *r = rec_find(ep, pipe_id);
    if (r != NULL) {
        r->handed_bytes += bytes;
        if (r->in_flight > 0)
            r->in_flight--;
    }
    pthread_mutex_unlock(&ep->pipes_lock);
}

struct tx_walk {
    bus_endpoint *ep;
    uint64_t socket_id;
};

static void note_tx(nng_stat *scope, void *data)
{
    struct tx_walk *t = data;
    bus_pipe_rec *r;

    if (bus__stat_value(scope, "socket") != t->socket_id)
        return;
    r = rec_find(t->ep, (uint32_t)bus__stat_value(scope, "id"));
    if (r != NULL)
        r->tx_bytes = bus__stat_value(scope, "tx_bytes");
}

/* backlog sums what pipe_id and every pipe have not read; under the lock. */
static void backlog(bus_endpoint *ep, uint32_t pipe_id, uint64_t *one, uint64_t *all)
{
    *one = *all = 0;
    for (size_t i = 0; i < ep->n_pipes; i++) {
        const bus_pipe_rec *r = &ep->pipes[i];
        uint64_t unread = r->handed_bytes > r->tx_bytes ? r->handed_bytes - r->tx_bytes : 0;
        *all += unread;
        if (r->id == pipe_id)
            *one = unread;
    }
}

int bus__pipes_backlog(bus *b, bus_endpoint *ep, uint32_t pipe_id, char *why, size_t why_size)
{
    uint64_t one, all, now = uv_now(b->loop);
    nng_stat *stats;

    pthread_mutex_lock(&ep->pipes_lock);
    backlog(ep, pipe_id, &one, &all);
    if (one <= b->pending_reply_bytes && all <= b->pending_reply_bytes_total) {
        pthread_mutex_unlock(&ep->pipes_lock);
        return 0;
    }
    pthread_mutex_unlock(&ep->pipes_lock);
    /* Over a bound by what is known: ask nng what it has written since. */
    if (now - ep->tx_checked_ms >= TX_REFRESH_MS && nng_stats_get(&stats) == 0) {
        struct tx_walk t = {ep, (uint64_t)nng_socket_id(ep->sock)};
        ep->tx_checked_ms = now;
        pthread_mutex_lock(&ep->pipes_lock);
        bus__stats_each(stats, "pipe", note_tx, &t);
        pthread_mutex_unlock(&ep->pipes_lock);
        nng_stats_free(stats);
    }
    pthread_mutex_lock(&ep->pipes_lock);
    backlog(ep, pipe_id, &one, &all);
    pthread_mutex_unlock(&ep->pipes_lock);
    if (one > b->pending_reply_bytes) {
        snprintf(why, why_size,
                 "%llu bytes of replies wait for this connection to read them (over "
                 "bus.pending_reply_bytes, %zu): read them before asking more",
                 (unsigned long long)one, b->pending_reply_bytes);
        return -EBUSY;
    }
    if (all > b->pending_reply_bytes_total) {
        snprintf(why, why_size,
                 "%llu bytes of replies wait for their clients to read them (over "
                 "bus.pending_reply_bytes_total, %zu): try again shortly",
                 (unsigned long long)all, b->pending_reply_bytes_total);
        return -EBUSY;
    }
    return 0;
}
