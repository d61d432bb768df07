/*
 * wsload: the WebSocket load client of `make bench`, in C so that the client is not the limit.
 * epoll, one thread by default (--threads N splits the connections over N threads, each with
 * its own epoll). RFC 6455 framing done properly: every client frame is masked with a fresh
 * key, server frames may be fragmented (reassembled) or be pings (answered with a pong), and
 * every echoed payload is compared with what was sent. Loopback benchmarking only.
 *
 *   wsload echo   HOST:PORT --pid PID [--connections 100] [--size 20] [--inflight 1] [--seconds 5]
 *   wsload fanout HOST:PORT --pid PID [--connections 100] [--rounds 20] [--burst 1]
 *   wsload idle   HOST:PORT --pid PID [--connections 100]
 *
 * --pid is the server's: its CPU time and RSS are read from /proc. Several servers (the nodes
 * of a cluster): HOST:PORT,HOST:PORT,... and --pid PID,PID,...; WebSocket connection i goes to
 * server i modulo their number, HTTP requests to the first, and CPU and RSS are their sums.
 * Common options: --path /,
 * --threads 1, --concurrency 256 (handshakes in flight per thread while connecting).
 *
 * echo:   each connection keeps --inflight text messages of --size bytes in flight for
 *         --seconds; messages/s, latency p50/p99, server CPU µs per message.
 * fanout: every connection gets "subscribed" from the server's OnConnect first; then each
 *         round sends GET /publish?seq=R&n=BURST on an HTTP connection, whose handler calls
 *         moonwire.broadcast (or the peer's equivalent) BURST times with messages starting
 *         "R:"; a round ends when every subscriber has every message. Deliveries/s, latency
 *         from sending the publish to each receipt, the publish request's round trip, and
 *         the longest answer to a GET /hello probe sent every millisecond meanwhile: how long
 *         the server's event loop was held. The publisher and the probe have a thread and an
 *         epoll of their own, beside the --threads that read the subscribers: an answer waits
 *         for the server, not behind a batch of deliveries this client has yet to read.
 * idle:   opens the connections, waits a second, and reads the server's RSS growth.
 *
 * One JSON object on stdout; the same figures for people on stderr, each with the client's
 * own CPU share (user+system time / wall time) so a reader sees which side was the limit.
 */
#include "wsload.h"

struct options opt = {.path = "/", .threads = 1, .concurrency = 256, .connections = 100, .size = 20,
                      .inflight = 1, .rounds = 20, .burst = 1, .seconds = 5};

static struct worker *workers;
static pthread_barrier_t barrier;
static volatile int stop_flag;       /* set by the controller: workers leave their loop */
static uint64_t window_start, window_end;
/* fanout: shared between the controller (the last worker) and the others */
static uint64_t publish_ns[MAX_ROUNDS + 1];
static uint64_t delivered, last_receipt_ns, subscribed;

static double cpu_seconds_self(void) {
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return usage.ru_utime.tv_sec + usage.ru_utime.tv_usec / 1e6 + usage.ru_stime.tv_sec +
           usage.ru_stime.tv_usec / 1e6;
}

/* --- echo ----------------------------------------------------------------------------------- */

/* Message `seq` of connection `id`: its numbers in hex, then letters: each payload differs. */
static void make_payload(char *to, uint32_t id, uint64_t seq) {
    char head[40];
    int n = snprintf(head, sizeof head, "%08x%016llx", id, (unsigned long long)seq);
    for (size_t i = 0; i < opt.size; i++) to[i] = i < (size_t)n ? head[i] : (char)('a' + i % 26);
}

static void echo_send(struct conn *c) {
    char payload[opt.size + 1];
    make_payload(payload, c->id, c->sent);
    c->stamps[c->sent % (uint64_t)opt.inflight] = now_ns();
    c->sent++;
    queue_frame(c, 1, payload, opt.size);
}

static void echo_message(struct worker *w, struct conn *c, const char *data, size_t n) {
    char expected[opt.size + 1];
    if (c->received >= c->sent) die("connection %u: a message nobody sent", c->id);
    make_payload(expected, c->id, c->received);
    if (n != opt.size || memcmp(expected, data, n))
        die("connection %u: message %llu came back as %zu different bytes", c->id,
            (unsigned long long)c->received, n);
    uint64_t now = now_ns();
    uint64_t sent_at = c->stamps[c->received % (uint64_t)opt.inflight];
    c->received++;
    if (now <= window_end || !window_end) {
        if (sent_at >= window_start) {
            record(&w->latency, now - sent_at);
            w->messages++;
        }
        echo_send(c);
    }
}

/* --- fanout --------------------------------------------------------------------------------- */

static void fanout_message(struct worker *w, struct conn *c, const char *data, size_t n) {
    if (n == 10 && !memcmp(data, "subscribed", 10)) {
        __atomic_add_fetch(&subscribed, 1, __ATOMIC_RELAXED);
        return;
    }
    unsigned round = 0;
    for (size_t i = 0; i < n && data[i] >= '0' && data[i] <= '9' && round <= MAX_ROUNDS; i++)
        round = round * 10 + (unsigned)(data[i] - '0');
    uint64_t sent = round && round <= MAX_ROUNDS ? __atomic_load_n(&publish_ns[round], __ATOMIC_ACQUIRE) : 0;
    if (!sent)
        die("connection %u: unexpected broadcast \"%.*s\"", c->id, (int)(n < 40 ? n : 40), data);
    uint64_t now = now_ns();
    record(&w->latency, now - sent);
    __atomic_add_fetch(&delivered, 1, __ATOMIC_RELAXED);
    uint64_t last = __atomic_load_n(&last_receipt_ns, __ATOMIC_RELAXED);
    while (now > last && !__atomic_compare_exchange_n(&last_receipt_ns, &last, now, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {}
}
void on_message(struct worker *w, struct conn *c, const char *data, size_t n) {
    if (opt.mode == ECHO) echo_message(w, c, data, n);
    else if (opt.mode == FANOUT) fanout_message(w, c, data, n);
}

/* --- the phases ----------------------------------------------------------------------------- */

/* Opens this worker's connections, at most --concurrency handshakes at a time. */
static void connect_all(struct worker *w) {
    uint64_t deadline = now_ns() + 120ull * 1000000000u;
    while (w->open < w->count) {
        while (w->started < w->count && w->pending < (uint32_t)opt.concurrency) {
            struct conn *c = &w->conns[w->started++];
            c->id = w->first + w->started - 1;
            c->kind = WS;
            if (opt.mode == ECHO) c->stamps = calloc((size_t)opt.inflight, sizeof *c->stamps);
            open_socket(w, c);
            w->pending++;
        }
        poll_once(w, 100);
        if (now_ns() > deadline) die("only %u of %u connections open after 120 s", w->open, w->count);
    }
}

/* fanout: per round, what the controller saw */
static struct { uint64_t started, publish_rtt, probe_max, deliveries, last; } rounds[MAX_ROUNDS + 1];
static int current_round;
static uint64_t probe_idle_max;

void on_http_answer(struct worker *w, struct conn *c, uint64_t took) {
    (void)w;
    if (c->kind == HTTP_PUBLISH) rounds[current_round].publish_rtt = took;
    else if (current_round && !rounds[current_round].last) {
        if (took > rounds[current_round].probe_max) rounds[current_round].probe_max = took;
    } else if (took > probe_idle_max) probe_idle_max = took;
}

/* The last worker in fanout mode, with no subscriber: publishes round by round, probing the
 * loop every millisecond. It shares wsload's CPU with the workers reading the deliveries, so it
 * asks for a higher priority (nice -10; root may): a woken probe then runs at once instead of
 * after the workers' share of the CPU, and its wait is the server's. */
static void fanout_control(struct worker *w) {
    if (setpriority(PRIO_PROCESS, (id_t)gettid(), -10) != 0)
        fprintf(stderr, "wsload: the probe's thread keeps its priority (%s): its waits include this client's\n",
                strerror(errno));
    struct conn *probe = &w->probe, *publisher = &w->publisher;
    probe->kind = HTTP_PROBE;
    publisher->kind = HTTP_PUBLISH;
    open_socket(w, probe);
    open_socket(w, publisher);
    while (probe->state != OPEN || publisher->state != OPEN) poll_once(w, 100);
    uint64_t per_round = (uint64_t)opt.connections * (uint64_t)opt.burst, next_probe = 0;
    for (int r = 1; r <= opt.rounds; r++) {
        /* a quiet 100 ms between rounds, probing, so each round starts from an idle server */
        for (uint64_t quiet = now_ns() + 100000000u; now_ns() < quiet;) {
            if (!probe->request_ns && now_ns() >= next_probe) {
                send_request(w, probe, "/hello");
                next_probe = now_ns() + 1000000u;
            }
            poll_once(w, 1);
        }
        char target[64];
        snprintf(target, sizeof target, "/publish?seq=%d&n=%d", r, opt.burst);
        current_round = r;
        rounds[r].started = now_ns();
        __atomic_store_n(&publish_ns[r], rounds[r].started, __ATOMIC_RELEASE);
        send_request(w, publisher, target);
        uint64_t deadline = rounds[r].started + 60ull * 1000000000u;
        while (__atomic_load_n(&delivered, __ATOMIC_RELAXED) < per_round * (uint64_t)r || publisher->request_ns) {
            if (!probe->request_ns && now_ns() >= next_probe) {
                send_request(w, probe, "/hello");
                next_probe = now_ns() + 1000000u;
            }
            poll_once(w, 1);
            if (now_ns() > deadline)
                die("round %d: %llu of %llu deliveries after 60 s", r,
                    (unsigned long long)(__atomic_load_n(&delivered, __ATOMIC_RELAXED) - per_round * (uint64_t)(r - 1)),
                    (unsigned long long)per_round);
        }
        /* the probe sent during the round counts for the round */
        while (probe->request_ns) poll_once(w, 1);
        rounds[r].last = __atomic_load_n(&last_receipt_ns, __ATOMIC_RELAXED);
        rounds[r].deliveries = per_round;
    }
    current_round = 0;
}

static void *run_worker(void *argument) {
    struct worker *w = argument;
    w->epoll = epoll_create1(EPOLL_CLOEXEC);
    if (w->epoll < 0) die("epoll_create1: %s", strerror(errno));
    connect_all(w);
    if (opt.mode == FANOUT) /* every subscriber has its "subscribed" before the rounds start */
        while (__atomic_load_n(&subscribed, __ATOMIC_RELAXED) < opt.connections) poll_once(w, 10);
    pthread_barrier_wait(&barrier); /* all open: the controller takes its readings */
    pthread_barrier_wait(&barrier); /* go */
    if (opt.mode == ECHO) {
        for (uint32_t i = 0; i < w->count; i++) {
            for (int k = 0; k < opt.inflight; k++) echo_send(&w->conns[i]);
            flush(w, &w->conns[i]);
        }
        while (now_ns() < window_end) poll_once(w, 1);
    } else if (opt.mode == FANOUT && w->index == opt.threads) {
        fanout_control(w);
        stop_flag = 1;
    } else if (opt.mode == FANOUT) {
        while (!stop_flag) poll_once(w, 10);
    }
    pthread_barrier_wait(&barrier); /* measured: the controller reads again */
    pthread_barrier_wait(&barrier); /* the controller finished reading */
    /* a closing frame (1000), not waited for: the server sees a clean end, not a lost client */
    for (uint32_t i = 0; i < w->count; i++) {
        struct conn *c = &w->conns[i];
        c->state = DONE;
        c->out.len = c->out.off = 0;
        queue_frame(c, 8, "\x03\xe8", 2);
        if (write(c->fd, c->out.data, c->out.len) < 0) { /* a full socket: it only loses the courtesy */ }
        close(c->fd);
    }
    return NULL;
}

static void usage(void) {
    fputs("usage: wsload echo|fanout|idle HOST:PORT[,HOST:PORT...] --pid PID[,PID...] [--connections N] [--size BYTES] [--inflight N]\n"
          "       [--seconds S] [--rounds N] [--burst N] [--threads N]\n"
          "       [--path /] [--concurrency N]\n", stderr);
    exit(2);
}

static void parse_arguments(int argc, char **argv) {
    if (argc < 3) usage();
    if (!strcmp(argv[1], "echo")) opt.mode = ECHO;
    else if (!strcmp(argv[1], "fanout")) opt.mode = FANOUT;
    else if (!strcmp(argv[1], "idle")) opt.mode = IDLE;
    else usage();
    parse_servers(argv[2]);
    for (int i = 3; i < argc; i += 2) {
        if (i + 1 >= argc) usage();
        const char *name = argv[i], *value = argv[i + 1];
        if (!strcmp(name, "--connections")) opt.connections = (uint32_t)atol(value);
        else if (!strcmp(name, "--size")) opt.size = (size_t)atol(value);
        else if (!strcmp(name, "--inflight")) opt.inflight = atoi(value);
        else if (!strcmp(name, "--seconds")) opt.seconds = atof(value);
        else if (!strcmp(name, "--rounds")) opt.rounds = atoi(value);
        else if (!strcmp(name, "--burst")) opt.burst = atoi(value);
        else if (!strcmp(name, "--threads")) opt.threads = atoi(value);
        else if (!strcmp(name, "--pid")) parse_pids(value);
        else if (!strcmp(name, "--path")) opt.path = value;
        else if (!strcmp(name, "--concurrency")) opt.concurrency = atoi(value);
        else usage();
    }
    if (!opt.connections || opt.threads < 1 || opt.inflight < 1 || opt.concurrency < 1 || opt.seconds <= 0 ||
        opt.rounds < 1 || opt.rounds > MAX_ROUNDS || opt.burst < 1 || !opt.size || opt.size > (1 << 20))
        die("an option is out of range");
    if (!opt.pid_count) die("--pid SERVER_PID is needed: the server's CPU time and RSS are half of what is measured");
    if (opt.pid_count != opt.server_count) die("%d addresses but %d pids: one --pid per server", opt.server_count, opt.pid_count);
    if ((uint32_t)opt.threads > opt.connections) opt.threads = (int)opt.connections;
}

static void merge(struct histogram *into) {
    memset(into, 0, sizeof *into);
    for (int t = 0; t < opt.threads; t++) {
        for (int i = 0; i < HIST_BUCKETS; i++) into->count[i] += workers[t].latency.count[i];
        into->total += workers[t].latency.total;
    }
}

int main(int argc, char **argv) {
    parse_arguments(argc, argv);
    struct rlimit limit;
    getrlimit(RLIMIT_NOFILE, &limit);
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
    if (limit.rlim_cur < opt.connections + 64)
        die("%u connections need %u descriptors; the hard limit is %llu", opt.connections, opt.connections + 64,
            (unsigned long long)limit.rlim_cur);

    long rss_before = rss_kib_servers();
    /* fanout: one more worker, with no subscriber, for the publisher and the probe */
    int started = opt.threads + (opt.mode == FANOUT);
    workers = calloc((size_t)started, sizeof *workers);
    pthread_barrier_init(&barrier, NULL, (unsigned)started + 1);
    uint32_t first = 0;
    for (int t = 0; t < started; t++) {
        struct worker *w = &workers[t];
        w->index = t;
        w->first = first;
        w->count = t == opt.threads ? 0 : opt.connections / (uint32_t)opt.threads + ((uint32_t)t < opt.connections % (uint32_t)opt.threads);
        w->conns = calloc(w->count, sizeof *w->conns);
        first += w->count;
        pthread_create(&w->thread, NULL, run_worker, w);
    }
    uint64_t connect_started = now_ns();
    pthread_barrier_wait(&barrier);
    double connect_seconds = (double)(now_ns() - connect_started) / 1e9;
    if (opt.mode == IDLE) sleep(1); /* let the server settle its per-connection allocations */
    double client_cpu = cpu_seconds_self(), server_cpu = cpu_seconds_servers();
    window_start = now_ns();
    window_end = opt.mode == ECHO ? window_start + (uint64_t)(opt.seconds * 1e9) : 0;
    long rss_after = opt.mode == IDLE ? rss_kib_servers() : -1;
    pthread_barrier_wait(&barrier);
    pthread_barrier_wait(&barrier);
    uint64_t stopped = now_ns();
    double wall = (double)(stopped - window_start) / 1e9;
    client_cpu = cpu_seconds_self() - client_cpu;
    server_cpu = cpu_seconds_servers() - server_cpu;
    pthread_barrier_wait(&barrier);
    for (int t = 0; t < started; t++) pthread_join(workers[t].thread, NULL);

    struct histogram latency;
    merge(&latency);
    const char *modes[] = {"echo", "fanout", "idle"};
    printf("{\"mode\": \"%s\", \"connections\": %u, \"client_threads\": %d", modes[opt.mode], opt.connections, opt.threads);
    if (opt.mode == ECHO) {
        uint64_t messages = 0;
        for (int t = 0; t < opt.threads; t++) messages += workers[t].messages;
        double rate = (double)messages / wall, server_us = server_cpu * 1e6 / (double)messages;
        printf(", \"message_bytes\": %zu, \"inflight\": %d, \"seconds\": %.2f, \"messages\": %llu, "
               "\"messages_per_second\": %.0f, \"latency_us\": {\"p50\": %.0f, \"p99\": %.0f}, "
               "\"client_cpu_share\": %.3f, \"server_cpu_share\": %.3f, \"server_cpu_us_per_message\": %.2f",
               opt.size, opt.inflight, wall, (unsigned long long)messages, rate, percentile(&latency, 0.5),
               percentile(&latency, 0.99), client_cpu / wall, server_cpu / wall, server_us);
        fprintf(stderr, "wsload echo: %.0f messages/s (client CPU %.0f%%, server CPU %.0f%%), latency p50 %.0f µs "
                "p99 %.0f µs, server CPU %.2f µs per message; %u connections, %zu bytes, %d in flight, %.1f s\n",
                rate, 100 * client_cpu / wall, 100 * server_cpu / wall, percentile(&latency, 0.5),
                percentile(&latency, 0.99), server_us, opt.connections, opt.size, opt.inflight, wall);
    } else if (opt.mode == FANOUT) {
        uint64_t total = 0;
        double busy = 0, worst_hold = 0, worst_publish = 0;
        printf(", \"burst\": %d, \"rounds\": [", opt.burst);
        for (int r = 1; r <= opt.rounds; r++) {
            double seconds = (double)(rounds[r].last - rounds[r].started) / 1e9;
            double hold = (double)rounds[r].probe_max / 1e6, publish = (double)rounds[r].publish_rtt / 1e6;
            total += rounds[r].deliveries;
            busy += seconds;
            if (hold > worst_hold) worst_hold = hold;
            if (publish > worst_publish) worst_publish = publish;
            printf("%s{\"deliveries\": %llu, \"seconds\": %.4f, \"deliveries_per_second\": %.0f, "
                   "\"publish_rtt_ms\": %.2f, \"probe_max_ms\": %.2f}", r > 1 ? ", " : "",
                   (unsigned long long)rounds[r].deliveries, seconds, (double)rounds[r].deliveries / seconds, publish, hold);
        }
        double rate = (double)total / busy, server_us = server_cpu * 1e6 / (double)total;
        printf("], \"deliveries\": %llu, \"deliveries_per_second\": %.0f, \"latency_ms\": {\"p50\": %.2f, \"p99\": %.2f}, "
               "\"publish_rtt_max_ms\": %.2f, \"loop_held_max_ms\": %.2f, \"probe_idle_max_ms\": %.2f, "
               "\"client_cpu_share\": %.3f, \"server_cpu_us_per_delivery\": %.3f",
               (unsigned long long)total, rate, percentile(&latency, 0.5) / 1e3, percentile(&latency, 0.99) / 1e3,
               worst_publish, worst_hold, (double)probe_idle_max / 1e6, client_cpu / wall, server_us);
        fprintf(stderr, "wsload fanout: %.0f deliveries/s to %u subscribers (client CPU %.0f%% over the run, "
                "%.1f µs per delivery), publish to receipt p50 %.1f ms p99 %.1f ms, server CPU %.2f µs per delivery; "
                "the loop was held up to %.1f ms (GET /hello probe; %.1f ms when idle), publish request up to %.1f ms\n",
                rate, opt.connections, 100 * client_cpu / wall, client_cpu * 1e6 / (double)total,
                percentile(&latency, 0.5) / 1e3, percentile(&latency, 0.99) / 1e3, server_us, worst_hold,
                (double)probe_idle_max / 1e6, worst_publish);
    } else {
        double kib = (double)(rss_after - rss_before) / opt.connections;
        printf(", \"rss_before_kib\": %ld, \"rss_after_kib\": %ld, \"kib_per_connection\": %.2f, \"connect_seconds\": %.2f",
               rss_before, rss_after, kib, connect_seconds);
        fprintf(stderr, "wsload idle: %.2f KiB RSS per connection over %u connections (%ld -> %ld KiB; "
                "connected in %.1f s)\n", kib, opt.connections, rss_before, rss_after, connect_seconds);
    }
    printf("}\n");
    return 0;
}
