/*
 * The listeners of the three sockets, and their replacement when nng 1.5.2
 * stops one (#1518).
 *
 * Design notes:
 * - #1518: in 1.5.2 a negotiation that fails with NNG_ECLOSED (the peer
 *   closed before sending its whole SP header) is handed to the listener's
 *   accept as if the listener itself were closed: it stops accepting for
 *   good. Its only trace is its "other" error counter. Every
 *   listener_check_ms the loop reads the counters (one nng_stats_get, a
 *   few microseconds) and replaces a listener whose counter moved.
 * - The counter also moves on errors after which nng accepts again (a
 *   100 ms cool-down) and for about one connection in eight that simply
 *   ends (nng counts its pipe's ECONNSHUT against the listener), so most
 *   replacements are of a listener that was fine; they cost a listen and
 *   a rename, and nobody connected is cut (below). Nothing sharper is
 *   observable: the ipc transport of a stopped listener goes on accepting
 *   and negotiating at the socket level and parks the pipes (the kernel's
 *   accept queue stays empty), and netting out the pipes that ended masks
 *   a stop that coincides with clean closes, an outage for good.
 * - A listener is created on a private name in the runtime directory and
 *   renamed over the public one once it listens, so the path never
 *   refuses a connection: the new listener takes over atomically, and the
 *   old one unlinks only its own private name (gone since its rename)
 *   when it is closed.
 * - Closing a listener closes every pipe it accepted, so a replaced one is
 *   kept until none of its pipes is left (pipes.c counts them): nobody
 *   connected is cut. Closing it then resets the connections that reached
 *   it after it stopped (they never became pipes); herdctl sends those
 *   queries again on a fresh connection. Each one kept holds a pipe, so
 *   max_connections bounds how many wait.
 */
#include "bus/internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* listener_start listens on a private name in the runtime directory (two
 * letters and a generation: never longer than the public name), then
 * renames it over the public one; ep->listener changes only on success. */
int bus__listener_start(bus *b, bus_endpoint *ep)
{
    char path[PATH_MAX + 16], url[PATH_MAX + 32];
    nng_listener l;
    int rv;

    snprintf(path, sizeof(path), "%s/.%c%u", b->dir, ep->file[0], ep->generation++ % 100);
    snprintf(url, sizeof(url), "ipc://%s", path);
    unlink(path); /* a leftover of an earlier herdd */
    rv = nng_listener_create(&l, ep->sock, url);
    if (rv != 0)
        return rv;
    rv = nng_listener_set_int(l, NNG_OPT_IPC_PERMISSIONS, 0660);
    if (rv == 0)
        rv = nng_listener_start(l, 0);
    if (rv == 0 && rename(path, ep->path) < 0)
        rv = NNG_ESYSERR + errno;
    if (rv != 0) {
        nng_listener_close(l);
        unlink(path);
        return rv;
    }
    ep->listener = l;
    return 0;
}

struct find_listener {
    int id;
    int64_t other;
};

static void find_other(nng_stat *scope, void *data)
{
    struct find_listener *f = data;
    if (bus__stat_value(scope, "id") == (uint64_t)f->id)
        f->other = (int64_t)bus__stat_value(scope, "other");
}

/* listener_stat_other is a listener's "other" error count (-1: unknown). */
static int64_t listener_stat_other(nng_stat *all, nng_listener l)
{
    struct find_listener f = {nng_listener_id(l), -1};
    bus__stats_each(all, "listener", find_other, &f);
    return f.other;
}

static void retire_listener(bus *b, bus_endpoint *ep, nng_listener old)
{
    if (ep->n_retiring == ep->cap_retiring) {
        size_t ncap = ep->cap_retiring != 0 ? 2 * ep->cap_retiring : 4;
        nng_listener *n = base_realloc(ep->retiring, ncap * sizeof(*n));
        if (n == NULL) { /* out of memory: closed now, its pipes with it */
            nng_listener_close(old);
            return;
        }
        ep->retiring = n;
        ep->cap_retiring = ncap;
    }
    ep->retiring[ep->n_retiring++] = old;
}

/* close_retired closes the replaced listeners with no pipe left (all:
 * every one). */
static void close_retired(bus_endpoint *ep, bool all)
{
    size_t kept = 0;

    for (size_t i = 0; i < ep->n_retiring; i++) {
        if (all || bus__pipes_of_listener(ep, nng_listener_id(ep->retiring[i])) == 0)
            nng_listener_close(ep->retiring[i]);
        else
            ep->retiring[kept++] = ep->retiring[i];
    }
    ep->n_retiring = kept;
}

void bus__listener_check(uv_timer_t *t)
{
    bus *b = t->data;
    nng_stat *all;

    for (int i = 0; i < BUS_EP_N; i++)
        close_retired(&b->ep[i], false);
    if (nng_stats_get(&all) != 0)
        return;
    for (int i = 0; i < BUS_EP_N; i++) {
        bus_endpoint *ep = &b->ep[i];
        int64_t other = ep->open ? listener_stat_other(all, ep->listener) : -1;
        if (other <= 0)
            continue;
        /* A new listener counts from zero: any error on this one may be
         * the one that stopped it. */
        nng_listener old = ep->listener;
        int rv = bus__listener_start(b, ep);
        b->stats.listener_restarts++;
        if (rv != 0) {
            bus__log(b, BASE_LOG_ERROR, "%s: listener stopped accepting; a new one failed: %s",
                     ep->path, nng_strerror(rv));
            continue;
        }
        retire_listener(b, ep, old);
        /* Mostly a false alarm (see above): a debug line, and the count in
         * the bus statistics. */
        bus__log(b, BASE_LOG_DEBUG, "%s: listener error counter moved (nng #1518): replaced",
                 ep->path);
    }
    nng_stats_free(all);
}

void bus__listeners_retire_all(bus_endpoint *ep)
{
    close_retired(ep, true);
    base_free(ep->retiring);
    ep->retiring = NULL;
    ep->cap_retiring = 0;
}
