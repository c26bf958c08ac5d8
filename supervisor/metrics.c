/*
 * /metrics: herdd in the Prometheus text exposition format (version
 * 0.0.4), for a scrape every few seconds.
 *
 * Design notes:
 * - Computed when scraped from the figures `status` reports (each worker's
 *   health object, the bus counters, smaps_rollup), never cached: nothing
 *   is kept between scrapes.
 * - Each family is written whole (HELP, TYPE, then all its samples), every
 *   name starts with herd_ (or is one of the standard process_ metrics),
 *   counters end in _total, units are bytes and seconds, and per-worker
 *   samples carry `worker` and `kind` labels: `promtool check metrics`
 *   passes without a lint warning (tests/integration/http_metrics.sh).
 * - Label values are escaped (\\, \", \n) though herd's own names never
 *   need it.
 * - A kind's own numeric health fields are exported without the kind's
 *   help as herd_worker_<field> (gauges, or counters named _total for the
 *   fields known to be monotonic), and the members of an object field whose
 *   keys are all names and whose values all numbers as
 *   herd_worker_<field>_<member> (`lru`, `jobs`). A field whose name cannot
 *   make a valid, lint-clean metric name is left out; so is an object whose
 *   keys are data (`exit_codes`: "0", "SIGTERM") rather than names, so the
 *   set of names stays stable. Fields ending in _s or _ms become _seconds.
 *   The samples of a worker come and go with its fields (a stopped worker
 *   reports none of its kind's).
 */
#include "supervisor/internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* ---- names ----------------------------------------------------------------- */

/* Kind health fields known to only ever grow while an instance runs. */
static const char *const counter_fields[] = {
    "received",
    "done",
    "failed",
    "dropped",
    "ignored",
    "rotations",
    "torn_lines_cut",
    "write_errors",
    "timeouts",
    "spawn_errors",
    "output_lines_dropped",
    "leftovers_killed",
    "retries",
    "http_4xx",
    "http_5xx",
    "conn_errors",
    "reconnects",
    "topics_too_long",
    "jobs_json_writes",
    "exported",
    "imported",
    "lru_hits",
    "lru_misses",
    NULL,
};

/* Health fields every worker has: exported under their own names. */
static const char *const common_fields[] = {
    "worker",     "kind",       "state",      "pid", "uptime_s", "restarts",
    "heap_bytes", "memory_max", "last_error", "ts",  NULL,
};

/* Names (after herd_worker_) the fixed families use. */
static const char *const fixed_names[] = {
    "up",
    "state",
    "restarts_total",
    "heap_bytes",
    "memory_max_bytes",
    "memory_high_bytes",
    "uptime_seconds",
    NULL,
};

/* What promtool's lint refuses in a name's tokens. */
static const char *const abbreviations[] = {"s",  "ms", "us", "ns", "sec", "b", "kb", "mb",
                                            "gb", "tb", "pb", "m",  "h",   "d", NULL};
static const char *const type_words[] = {"counter", "gauge", "histogram", "summary", NULL};
static const char *const base_units[] = {"amperes", "bytes",  "celsius", "grams",
                                         "joules",  "kelvin", "meters",  "metres",
                                         "seconds", "volts",  NULL};
static const char *const other_units[] = {"minutes",    "hours",    "days",   "weeks",  "kelvins",
                                          "fahrenheit", "rankine",  "inches", "yards",  "miles",
                                          "bits",       "calories", "pounds", "ounces", NULL};
static const char *const unit_prefixes[] = {
    "pico", "nano", "micro", "milli", "centi", "deci", "deca", "hecto", "kilo", "kibi",
    "mega", "mibi", "giga",  "gibi",  "tera",  "tebi", "peta", "pebi",  NULL};

static bool in_list(const char *const *list, const char *s, size_t len)
{
    for (; *list != NULL; list++)
        if (strlen(*list) == len && memcmp(*list, s, len) == 0)
            return true;
    return false;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* A token that names a unit other than a base one ("kilobytes", "hours"). */
static bool non_base_unit(const char *t, size_t len)
{
    if (in_list(other_units, t, len))
        return true;
    for (const char *const *p = unit_prefixes; *p != NULL; p++) {
        size_t pl = strlen(*p);
        if (len > pl && memcmp(t, *p, pl) == 0 &&
            (in_list(base_units, t + pl, len - pl) || in_list(other_units, t + pl, len - pl)))
            return true;
    }
    return false;
}

/* ident: [a-z][a-z0-9_]*, no empty token. */
static bool ident(const char *s)
{
    if (*s < 'a' || *s > 'z')
        return false;
    for (const char *p = s; *p != '\0'; p++) {
        bool ok = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_';
        if (!ok || (*p == '_' && (p[1] == '_' || p[1] == '\0')))
            return false;
    }
    return true;
}

bool sup__metrics_field_name(const char *key, const char *sub, char *out, size_t size,
                             bool *counter, double *scale)
{
    char name[160];
    int n;

    *counter = false;
    *scale = 1;
    if (!ident(key) || (sub != NULL && !ident(sub)))
        return false;
    n = sub != NULL ? snprintf(name, sizeof(name), "%s_%s", key, sub)
                    : snprintf(name, sizeof(name), "%s", key);
    if (n < 0 || (size_t)n >= sizeof(name) - 16)
        return false;
    *counter = in_list(counter_fields, name, strlen(name)) || ends_with(name, "_total");
    if (ends_with(name, "_ms")) {
        name[n - 3] = '\0';
        strcat(name, "_seconds");
        *scale = 0.001;
    } else if (ends_with(name, "_s")) {
        name[n - 2] = '\0';
        strcat(name, "_seconds");
    }
    if (*counter && !ends_with(name, "_total"))
        strcat(name, "_total");
    if (ends_with(name, "_count") || ends_with(name, "_sum") || ends_with(name, "_bucket"))
        return false;
    for (const char *t = name; *t != '\0';) {
        size_t len = strcspn(t, "_");
        if (in_list(abbreviations, t, len) || in_list(type_words, t, len) || non_base_unit(t, len))
            return false;
        t += len;
        if (*t == '_')
            t++;
    }
    if (in_list(fixed_names, name, strlen(name)) || strlen(name) >= size)
        return false;
    memcpy(out, name, strlen(name) + 1);
    return true;
}

int sup__metrics_label_value(base_buf *b, const char *v)
{
    int rc = 0;

    for (const char *p = v; *p != '\0' && rc == 0; p++) {
        if (*p == '\\')
            rc = base_buf_adds(b, "\\\\");
        else if (*p == '"')
            rc = base_buf_adds(b, "\\\"");
        else if (*p == '\n')
            rc = base_buf_adds(b, "\\n");
        else
            rc = base_buf_add(b, p, 1);
    }
    return rc;
}

/* ---- writing ----------------------------------------------------------------- */

static int family(base_buf *b, const char *name, const char *type, const char *help)
{
    return base_buf_addf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static int sample_u(base_buf *b, const char *name, const char *labels, uint64_t v)
{
    return base_buf_addf(b, "%s%s %llu\n", name, labels, (unsigned long long)v);
}

static int sample_f(base_buf *b, const char *name, const char *labels, double v)
{
    return base_buf_addf(b, "%s%s %.15g\n", name, labels, v);
}

/* sample_json writes a JSON number or boolean; false for anything else. */
static int sample_json(base_buf *b, const char *name, const char *labels, const json_t *v,
                       double scale)
{
    if (json_is_integer(v) && scale == 1)
        return base_buf_addf(b, "%s%s %lld\n", name, labels, (long long)json_integer_value(v));
    if (json_is_number(v))
        return sample_f(b, name, labels, json_number_value(v) * scale);
    if (json_is_boolean(v))
        return sample_u(b, name, labels, json_is_true(v) ? 1 : 0);
    return 0;
}

/* One family with one unlabelled sample. */
static int single_u(base_buf *b, const char *name, const char *type, const char *help, uint64_t v)
{
    return family(b, name, type, help) | sample_u(b, name, "", v);
}

static int single_f(base_buf *b, const char *name, const char *type, const char *help, double v)
{
    return family(b, name, type, help) | sample_f(b, name, "", v);
}

/* ---- the process ----------------------------------------------------------------- */

typedef struct proc_figures {
    double cpu_s, start_s;
    uint64_t vsize, open_fds, max_fds;
    bool have_stat;
} proc_figures;

static void read_process(proc_figures *pf)
{
    char buf[1024];
    unsigned long long utime, stime, start, vsize, btime = 0;
    long clk = sysconf(_SC_CLK_TCK);
    FILE *f;
    size_t n = 0;

    memset(pf, 0, sizeof(*pf));
    if ((f = fopen("/proc/self/stat", "re")) != NULL) {
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
    }
    buf[n] = '\0';
    /* Fields after the command, which may hold spaces and parentheses. */
    const char *p = strrchr(buf, ')');
    if (p != NULL && clk > 0 &&
        sscanf(p + 1,
               " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d "
               "%llu %llu",
               &utime, &stime, &start, &vsize) == 4) {
        pf->cpu_s = (double)(utime + stime) / (double)clk;
        pf->vsize = vsize;
        if ((f = fopen("/proc/stat", "re")) != NULL) {
            while (fgets(buf, sizeof(buf), f) != NULL)
                if (sscanf(buf, "btime %llu", &btime) == 1)
                    break;
            fclose(f);
        }
        pf->start_s = (double)btime + (double)start / (double)clk;
        pf->have_stat = true;
    }
    DIR *d = opendir("/proc/self/fd");
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL)
            pf->open_fds += e->d_name[0] != '.';
        closedir(d);
        pf->open_fds -= pf->open_fds > 0; /* the directory's own */
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        pf->max_fds = rl.rlim_cur == RLIM_INFINITY ? 0 : (uint64_t)rl.rlim_cur;
}

static int render_process(base_buf *b)
{
    proc_figures pf;
    uint64_t rss;
    int rc = 0;

    read_process(&pf);
    sup_memory_resident(&rss);
    rc |= single_u(b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
                   rss);
    if (pf.have_stat) {
        rc |= single_f(b, "process_cpu_seconds_total", "counter",
                       "Total user and system CPU time spent in seconds.", pf.cpu_s);
        rc |= single_u(b, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.",
                       pf.vsize);
        rc |= single_f(b, "process_start_time_seconds", "gauge",
                       "Start time of the process since unix epoch in seconds.", pf.start_s);
    }
    rc |= single_u(b, "process_open_fds", "gauge", "Number of open file descriptors.", pf.open_fds);
    if (pf.max_fds > 0)
        rc |= single_u(b, "process_max_fds", "gauge", "Maximum number of open file descriptors.",
                       pf.max_fds);
    return rc;
}

/* ---- the supervisor and the bus ---------------------------------------------------- */

static int render_supervisor(struct sup *s, base_buf *b)
{
    sup_memory mem;
    int rc = 0;

    sup_memory_read(0, &mem);
    rc |= family(b, "herd_build_info", "gauge",
                 "herd's version and this host's name in fleet topics (the value is always 1).");
    rc |= base_buf_adds(b, "herd_build_info{version=\"");
    rc |= sup__metrics_label_value(b, HERD_VERSION);
    rc |= base_buf_adds(b, "\",host=\"");
    rc |= sup__metrics_label_value(b, s->cfg.host);
    rc |= base_buf_adds(b, "\"} 1\n");
    rc |= single_u(b, "herd_supervisor_rss_bytes", "gauge",
                   "herdd's resident set size (smaps_rollup Rss).", mem.rss_bytes);
    rc |= single_u(b, "herd_supervisor_pss_bytes", "gauge",
                   "herdd's proportional set size (smaps_rollup Pss).", mem.pss_bytes);
    rc |= single_u(b, "herd_supervisor_uss_bytes", "gauge",
                   "herdd's unique set size (smaps_rollup Private_Clean + Private_Dirty).",
                   mem.uss_bytes);
    rc |= single_u(b, "herd_supervisor_unaccounted_heap_bytes", "gauge",
                   "Heap allocated outside any worker's account (herdd's own).",
                   base_mem_slot_bytes(0));
    rc |= single_f(b, "herd_supervisor_uptime_seconds", "gauge", "Seconds since herdd started.",
                   (double)(uv_hrtime() - s->started_ns) / 1e9);
    rc |= single_u(b, "herd_supervisor_control_refused_total", "counter",
                   "Control messages refused (unknown action or malformed).", s->control_unknown);
    rc |= single_u(b, "herd_supervisor_malloc_trims_total", "counter",
                   "malloc_trim calls that gave freed heap back to the system.", s->malloc_trims);
    rc |= single_u(b, "herd_supervisor_malloc_trimmed_bytes_total", "counter",
                   "Resident bytes malloc_trim gave back.", s->malloc_trimmed_bytes);
    rc |= family(b, "herd_workers", "gauge", "Configured workers in each state.");
    for (int i = 0; i < SUP_N_STATES; i++) {
        uint64_t n = 0;
        for (sup_worker *sw = s->workers; sw != NULL; sw = sw->next)
            n += sw->state == (enum sup_state)i;
        rc |= base_buf_addf(b, "herd_workers{state=\"%s\"} %llu\n", sup__state_name(i),
                            (unsigned long long)n);
    }
    return rc;
}

static int render_bus(struct sup *s, base_buf *b)
{
    static const struct {
        const char *name, *help;
        size_t offset;
    } counters[] = {
        {"herd_bus_published_total", "Events accepted, in-process and remote.",
         offsetof(bus_stats, published)},
        {"herd_bus_delivered_total", "Callbacks made to in-process subscribers.",
         offsetof(bus_stats, delivered)},
        {"herd_bus_remote_in_total", "Event frames received on publish.ipc.",
         offsetof(bus_stats, remote_in)},
        {"herd_bus_remote_out_total", "Event frames sent on events.ipc.",
         offsetof(bus_stats, remote_out)},
        {"herd_bus_requests_total", "Requests received.", offsetof(bus_stats, requests)},
        {"herd_bus_replies_total", "Replies sent.", offsetof(bus_stats, replies)},
        {"herd_bus_listener_restarts_total", "Listeners found broken and re-created.",
         offsetof(bus_stats, listener_restarts)},
        {"herd_bus_connections_refused_total", "Bus connections refused over the limit.",
         offsetof(bus_stats, connections_refused)},
        {"herd_bus_connections_evicted_total", "Idle bus connections closed for a new one.",
         offsetof(bus_stats, connections_evicted)},
    };
    bus_stats st;
    int rc = 0;

    bus_get_stats(s->bus, &st);
    for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++) {
        uint64_t v;
        memcpy(&v, (const char *)&st + counters[i].offset, sizeof(v));
        rc |= single_u(b, counters[i].name, "counter", counters[i].help, v);
    }
    rc |= family(b, "herd_bus_dropped_total", "counter",
                 "Frames, events and requests dropped, by reason.");
    for (int i = 0; i < BUS_DROP_N; i++) {
        rc |= base_buf_adds(b, "herd_bus_dropped_total{reason=\"");
        rc |= sup__metrics_label_value(b, bus_drop_reason_name((enum bus_drop_reason)i));
        rc |= base_buf_addf(b, "\"} %llu\n", (unsigned long long)st.dropped[i]);
    }
    rc |= single_u(b, "herd_bus_remote_subscribers", "gauge", "Pipes connected to events.ipc now.",
                   (uint64_t)st.remote_subscribers);
    rc |= single_u(b, "herd_bus_subscriptions", "gauge", "In-process subscriptions now.",
                   (uint64_t)st.subscriptions);
    rc |= single_u(b, "herd_bus_requests_pending", "gauge", "Requests not yet replied.",
                   (uint64_t)st.requests_pending);
    return rc;
}

static int render_http(const sup_http_stats *hs, base_buf *b)
{
    int rc = 0;

    rc |= single_u(b, "herd_http_connections_open", "gauge", "HTTP connections open now.",
                   (uint64_t)hs->connections);
    rc |= single_u(b, "herd_http_connections_accepted_total", "counter",
                   "HTTP connections accepted.", hs->connections_total);
    rc |= single_u(b, "herd_http_connections_refused_total", "counter",
                   "HTTP connections answered 503 or closed over the connection limit.",
                   hs->connections_refused);
    rc |= single_u(b, "herd_http_connections_evicted_total", "counter",
                   "Idle keep-alive HTTP connections closed to make room for a new one.",
                   hs->connections_evicted);
    rc |= single_u(b, "herd_http_timeouts_total", "counter",
                   "HTTP connections closed for a request head or a response too slow.",
                   hs->timeouts);
    rc |= single_u(b, "herd_http_requests_total", "counter", "HTTP requests answered or refused.",
                   hs->requests);
    rc |= family(b, "herd_http_responses_total", "counter", "HTTP responses by status code.");
    for (int i = 0; i < SUP_HTTP_N_CODES; i++)
        rc |= base_buf_addf(b, "herd_http_responses_total{code=\"%d\"} %llu\n", sup__http_codes[i],
                            (unsigned long long)hs->responses[i]);
    rc |= single_u(b, "herd_http_event_streams_open", "gauge", "/api/events clients now.",
                   (uint64_t)hs->streams);
    rc |= single_u(b, "herd_http_event_streams_started_total", "counter",
                   "/api/events streams started.", hs->streams_total);
    rc |= single_u(b, "herd_http_event_streams_cut_total", "counter",
                   "/api/events clients cut off for not reading what they were sent.",
                   hs->streams_cut);
    rc |= single_u(b, "herd_http_events_sent_total", "counter",
                   "Events written to /api/events streams (one per stream).", hs->stream_events);
    rc |= single_u(b, "herd_http_unsent_bytes", "gauge",
                   "Response bytes the HTTP server holds not yet written (every connection).",
                   hs->unsent_bytes);
    rc |= single_u(b, "herd_http_heap_bytes", "gauge",
                   "Heap held by the HTTP server (connections, responses in flight).",
                   hs->heap_bytes);
    return rc;
}

/* ---- workers -------------------------------------------------------------------- */

typedef struct worker_row {
    json_t *health;
    const sup_worker *sw;
    char *labels; /* {worker="...",kind="..."} */
} worker_row;

/* A kind-specific family: its name after herd_worker_ and where its value
 * is in a worker's health object (health[key], or health[key][sub]). */
typedef struct kind_family {
    char name[128];
    char key[64], sub[64];
    bool counter;
    double scale;
} kind_family;

typedef struct kind_families {
    kind_family *v;
    size_t n, cap;
} kind_families;

static bool flattenable(const json_t *obj)
{
    const char *k;
    json_t *v;

    if (json_object_size(obj) == 0)
        return false;
    json_object_foreach((json_t *)obj, k, v)
    {
        if (!ident(k) || !(json_is_number(v) || json_is_boolean(v)))
            return false;
    }
    return true;
}

static int add_family(kind_families *fs, const char *key, const char *sub)
{
    kind_family f = {0};

    if (strlen(key) >= sizeof(f.key) || (sub != NULL && strlen(sub) >= sizeof(f.sub)) ||
        !sup__metrics_field_name(key, sub, f.name, sizeof(f.name), &f.counter, &f.scale))
        return 0;
    for (size_t i = 0; i < fs->n; i++)
        if (strcmp(fs->v[i].name, f.name) == 0)
            return 0; /* first source wins */
    if (fs->n == fs->cap) {
        size_t cap = fs->cap ? fs->cap * 2 : 32;
        kind_family *v = base_realloc(fs->v, cap * sizeof(*v));
        if (v == NULL)
            return -ENOMEM;
        fs->v = v;
        fs->cap = cap;
    }
    snprintf(f.key, sizeof(f.key), "%s", key);
    snprintf(f.sub, sizeof(f.sub), "%s", sub != NULL ? sub : "");
    fs->v[fs->n++] = f;
    return 0;
}

static int collect_families(const worker_row *rows, size_t n, kind_families *fs)
{
    for (size_t i = 0; i < n; i++) {
        const char *key;
        json_t *v;
        json_object_foreach(rows[i].health, key, v)
        {
            if (in_list(common_fields, key, strlen(key)))
                continue;
            if (json_is_number(v) || json_is_boolean(v)) {
                if (add_family(fs, key, NULL) < 0)
                    return -ENOMEM;
            } else if (json_is_object(v) && flattenable(v)) {
                const char *sub;
                json_t *sv;
                json_object_foreach(v, sub, sv)
                {
                    if (add_family(fs, key, sub) < 0)
                        return -ENOMEM;
                }
            }
        }
    }
    return 0;
}

static const json_t *family_value(const kind_family *f, const json_t *health)
{
    const json_t *v = json_object_get(health, f->key);

    if (f->sub[0] == '\0')
        return v;
    return json_is_object(v) && flattenable(v) ? json_object_get(v, f->sub) : NULL;
}

static int render_workers(struct sup *s, base_buf *b)
{
    worker_row *rows;
    kind_families fs = {0};
    size_t n = 0, i;
    int rc = 0;

    for (sup_worker *sw = s->workers; sw != NULL; sw = sw->next)
        n++;
    rows = base_calloc(n ? n : 1, sizeof(*rows));
    if (rows == NULL)
        return -ENOMEM;
    i = 0;
    for (sup_worker *sw = s->workers; sw != NULL; sw = sw->next, i++) {
        base_buf l = {0};
        rows[i].sw = sw;
        rows[i].health = sup__worker_health(sw);
        rc |= base_buf_adds(&l, "{worker=\"");
        rc |= sup__metrics_label_value(&l, sw->cfg.name);
        rc |= base_buf_adds(&l, "\",kind=\"");
        rc |= sup__metrics_label_value(&l, sw->cfg.kind);
        rc |= base_buf_adds(&l, "\"}");
        rows[i].labels = l.data;
        if (rows[i].health == NULL || rows[i].labels == NULL)
            rc = -ENOMEM;
    }
    if (rc < 0)
        goto out;

    rc |= family(b, "herd_worker_up", "gauge", "1 when the worker is running, else 0.");
    for (i = 0; i < n; i++)
        rc |= sample_u(b, "herd_worker_up", rows[i].labels, rows[i].sw->state == SUP_RUNNING);

    rc |= family(b, "herd_worker_state", "gauge", "1 for the state the worker is in, else 0.");
    for (i = 0; i < n; i++) {
        size_t ll = strlen(rows[i].labels);
        for (int st = 0; st < SUP_N_STATES; st++)
            rc |= base_buf_addf(b, "herd_worker_state%.*s,state=\"%s\"} %d\n", (int)(ll - 1),
                                rows[i].labels, sup__state_name(st),
                                rows[i].sw->state == (enum sup_state)st);
    }

    rc |= family(b, "herd_worker_restarts_total", "counter",
                 "Restarts of the worker since herdd started.");
    for (i = 0; i < n; i++)
        rc |= sample_json(b, "herd_worker_restarts_total", rows[i].labels,
                          json_object_get(rows[i].health, "restarts"), 1);

    rc |= family(b, "herd_worker_heap_bytes", "gauge",
                 "Heap charged to the worker (a process worker: its child's resident set).");
    for (i = 0; i < n; i++)
        rc |= sample_json(b, "herd_worker_heap_bytes", rows[i].labels,
                          json_object_get(rows[i].health, "heap_bytes"), 1);

    rc |= family(b, "herd_worker_uptime_seconds", "gauge",
                 "Seconds the worker has been running (0 when it is not).");
    for (i = 0; i < n; i++)
        rc |= sample_json(b, "herd_worker_uptime_seconds", rows[i].labels,
                          json_object_get(rows[i].health, "uptime_s"), 1);

    bool any_max = false, any_high = false;
    for (i = 0; i < n; i++) {
        any_max |= rows[i].sw->cfg.memory_max > 0;
        any_high |= rows[i].sw->cfg.memory_high > 0;
    }
    if (any_max) {
        rc |= family(b, "herd_worker_memory_max_bytes", "gauge",
                     "The worker's memory_max: over it the worker fails.");
        for (i = 0; i < n; i++)
            if (rows[i].sw->cfg.memory_max > 0)
                rc |= sample_u(b, "herd_worker_memory_max_bytes", rows[i].labels,
                               rows[i].sw->cfg.memory_max);
    }
    if (any_high) {
        rc |= family(b, "herd_worker_memory_high_bytes", "gauge",
                     "The worker's memory_high: over it a warning is published.");
        for (i = 0; i < n; i++)
            if (rows[i].sw->cfg.memory_high > 0)
                rc |= sample_u(b, "herd_worker_memory_high_bytes", rows[i].labels,
                               rows[i].sw->cfg.memory_high);
    }

    if ((rc |= collect_families(rows, n, &fs)) < 0)
        goto out;
    for (size_t f = 0; f < fs.n; f++) {
        char name[160], help[200];
        snprintf(name, sizeof(name), "herd_worker_%s", fs.v[f].name);
        snprintf(help, sizeof(help), "Health field %s%s%s of the worker's kind (herdctl status).",
                 fs.v[f].key, fs.v[f].sub[0] ? "." : "", fs.v[f].sub);
        rc |= family(b, name, fs.v[f].counter ? "counter" : "gauge", help);
        for (i = 0; i < n; i++) {
            const json_t *v = family_value(&fs.v[f], rows[i].health);
            if (v != NULL)
                rc |= sample_json(b, name, rows[i].labels, v, fs.v[f].scale);
        }
    }
out:
    for (i = 0; i < n; i++) {
        json_decref(rows[i].health);
        base_free(rows[i].labels);
    }
    base_free(rows);
    base_free(fs.v);
    return rc;
}

int sup__metrics_render(struct sup *s, const sup_http_stats *hs, base_buf *out)
{
    int rc = 0;

    rc |= render_process(out);
    rc |= render_supervisor(s, out);
    rc |= render_workers(s, out);
    rc |= render_bus(s, out);
    if (hs != NULL)
        rc |= render_http(hs, out);
    return rc < 0 ? -ENOMEM : 0;
}
