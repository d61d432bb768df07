/* wsload's connections: non-blocking sockets on epoll, RFC 6455 client frames (masked with a
 * fresh key each), server frames (fragments reassembled, pings answered), the upgrade, and
 * HTTP/1.1 answers with Content-Length for the fan-out's publish and probe requests. */
#include "wsload.h"

_Noreturn void die(const char *format, ...) {
    va_list args;
    va_start(args, format);
    fputs("wsload: error: ", stderr);
    vfprintf(stderr, format, args);
    fputc('\n', stderr);
    va_end(args);
    exit(1);
}

uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}
/* --- buffers, histogram --------------------------------------------------------------------- */

void reserve(struct buffer *b, size_t extra) {
    if (b->len + extra <= b->cap) return;
    size_t cap = b->cap ? b->cap : 512;
    while (cap < b->len + extra) cap *= 2;
    b->data = realloc(b->data, cap);
    if (!b->data) die("out of memory");
    b->cap = cap;
}

void append(struct buffer *b, const void *data, size_t n) {
    reserve(b, n);
    memcpy(b->data + b->len, data, n);
    b->len += n;
}

static int bucket_of(uint64_t us) {
    if (us < 128) return (int)us;
    int e = 63 - __builtin_clzll(us);
    int index = 128 + (e - 7) * 64 + (int)((us >> (e - 6)) & 63);
    return index < HIST_BUCKETS ? index : HIST_BUCKETS - 1;
}

static double value_of(int index) {
    if (index < 128) return index;
    int e = (index - 128) / 64 + 7, sub = (index - 128) % 64;
    return (double)((64 + sub) * (1ull << (e - 6))) + (double)(1ull << (e - 6)) / 2;
}

void record(struct histogram *h, uint64_t ns) {
    h->count[bucket_of(ns / 1000)]++;
    h->total++;
}

double percentile(const struct histogram *h, double p) {
    if (!h->total) return 0;
    uint64_t rank = (uint64_t)(p * (double)(h->total - 1)), seen = 0;
    for (int i = 0; i < HIST_BUCKETS; i++) {
        seen += h->count[i];
        if (seen > rank) return value_of(i);
    }
    return value_of(HIST_BUCKETS - 1);
}

/* --- sockets -------------------------------------------------------------------------------- */

static void watch(struct worker *w, struct conn *c, int op, uint32_t events) {
    struct epoll_event event = {.events = events, .data.ptr = c};
    if (epoll_ctl(w->epoll, op, c->fd, &event) < 0) die("epoll_ctl: %s", strerror(errno));
}

void open_socket(struct worker *w, struct conn *c) {
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) die("socket: %s (raise ulimit -n?)", strerror(errno));
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    const struct server *server = server_of(c);
    if (connect(c->fd, (struct sockaddr *)&server->address, sizeof server->address) < 0 && errno != EINPROGRESS)
        die("connect: %s", strerror(errno));
    c->state = CONNECTING;
    c->message_opcode = -1;
    watch(w, c, EPOLL_CTL_ADD, EPOLLOUT);
}

/* Writes what `out` holds; waits for EPOLLOUT when the socket is full. */
void flush(struct worker *w, struct conn *c) {
    while (c->out.off < c->out.len) {
        ssize_t n = write(c->fd, c->out.data + c->out.off, c->out.len - c->out.off);
        if (n < 0) {
            if (errno == EAGAIN) break;
            if (errno == EINTR) continue;
            die("write on connection %u: %s", c->id, strerror(errno));
        }
        c->out.off += (size_t)n;
    }
    if (c->out.off == c->out.len) c->out.off = c->out.len = 0;
    int wait = c->out.len > 0;
    if (wait != c->writable_wait && c->state != CONNECTING) {
        watch(w, c, EPOLL_CTL_MOD, EPOLLIN | (wait ? EPOLLOUT : 0));
        c->writable_wait = wait;
    }
}

static uint32_t next_random(void) {
    static __thread uint32_t state;
    if (!state) state = (uint32_t)now_ns() | 1;
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    return state;
}

/* Queues one masked client frame (FIN set). */
void queue_frame(struct conn *c, int opcode, const char *payload, size_t n) {
    unsigned char header[14];
    size_t h = 0;
    header[h++] = (unsigned char)(0x80 | opcode);
    if (n < 126) {
        header[h++] = (unsigned char)(0x80 | n);
    } else if (n < 65536) {
        header[h++] = 0x80 | 126;
        header[h++] = (unsigned char)(n >> 8);
        header[h++] = (unsigned char)n;
    } else {
        header[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--) header[h++] = (unsigned char)((uint64_t)n >> (8 * i));
    }
    uint32_t key = next_random();
    memcpy(header + h, &key, 4);
    const unsigned char *mask = header + h;
    h += 4;
    append(&c->out, header, h);
    reserve(&c->out, n);
    unsigned char *to = (unsigned char *)c->out.data + c->out.len;
    for (size_t i = 0; i < n; i++) to[i] = (unsigned char)payload[i] ^ mask[i & 3];
    c->out.len += n;
}

static void queue_handshake(struct conn *c) {
    const struct server *server = server_of(c);
    char request[512];
    int n = snprintf(request, sizeof request,
                     "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: " WS_KEY "\r\nSec-WebSocket-Version: 13\r\n\r\n",
                     opt.path, server->host, server->port);
    append(&c->out, request, (size_t)n);
}
void send_request(struct worker *w, struct conn *c, const char *target) {
    const struct server *server = server_of(c);
    char request[512];
    int n = snprintf(request, sizeof request, "GET %s HTTP/1.1\r\nHost: %s:%d\r\n\r\n", target, server->host, server->port);
    append(&c->out, request, (size_t)n);
    c->request_ns = now_ns();
    flush(w, c);
}

/* --- reading -------------------------------------------------------------------------------- */

/* Parses the server frames in `in`; returns the bytes used. */
static size_t parse_frames(struct worker *w, struct conn *c, char *data, size_t len) {
    size_t used = 0;
    while (len - used >= 2) {
        unsigned char *p = (unsigned char *)data + used;
        int fin = p[0] & 0x80, opcode = p[0] & 0x0f, masked = p[1] & 0x80;
        if (p[0] & 0x70) die("connection %u: reserved bits set (no extension was agreed)", c->id);
        uint64_t n = p[1] & 0x7f;
        size_t header = 2;
        if (n == 126) {
            if (len - used < 4) break;
            n = (uint64_t)p[2] << 8 | p[3];
            header = 4;
        } else if (n == 127) {
            if (len - used < 10) break;
            n = 0;
            for (int i = 0; i < 8; i++) n = n << 8 | p[2 + i];
            header = 10;
        }
        if (masked) header += 4;
        if (len - used < header + n) {
            reserve(&c->in, header + n - (len - used));
            break;
        }
        char *payload = (char *)p + header;
        if (masked)
            for (uint64_t i = 0; i < n; i++) payload[i] ^= (char)p[header - 4 + (i & 3)];
        used += header + n;
        if (opcode >= 8) {
            if (!fin || n > 125) die("connection %u: a fragmented or long control frame", c->id);
            if (opcode == 9) queue_frame(c, 10, payload, n);
            else if (opcode == 8) {
                if (c->state == DONE) continue;
                die("connection %u: the server closed the connection (code %d)", c->id,
                    n >= 2 ? (unsigned char)payload[0] << 8 | (unsigned char)payload[1] : 1005);
            } else if (opcode != 10) die("connection %u: unknown control opcode %d", c->id, opcode);
        } else if (opcode == 0) {
            if (c->message_opcode < 0) die("connection %u: a continuation with no message", c->id);
            append(&c->message, payload, n);
            if (fin) {
                on_message(w, c, c->message.data, c->message.len);
                c->message.len = 0;
                c->message_opcode = -1;
            }
        } else if (opcode == 1 || opcode == 2) {
            if (c->message_opcode >= 0) die("connection %u: a new message inside a fragmented one", c->id);
            if (fin) on_message(w, c, payload, n);
            else {
                c->message_opcode = opcode;
                append(&c->message, payload, n);
            }
        } else die("connection %u: unknown opcode %d", c->id, opcode);
    }
    return used;
}

static int handshake_done(struct worker *w, struct conn *c) {
    char *end = memmem(c->in.data, c->in.len, "\r\n\r\n", 4);
    if (!end) return 0;
    size_t head = (size_t)(end - c->in.data) + 4;
    if (c->in.len < 12 || memcmp(c->in.data, "HTTP/1.1 101", 12) || !memmem(c->in.data, head, WS_ACCEPT, strlen(WS_ACCEPT)))
        die("connection %u: the upgrade was refused: %.*s", c->id, (int)(head > 200 ? 200 : head), c->in.data);
    memmove(c->in.data, c->in.data + head, c->in.len - head);
    c->in.len -= head;
    c->state = OPEN;
    w->open++;
    w->pending--;
    return 1;
}

/* An HTTP/1.1 answer with Content-Length (the publish and probe routes send one). */
static void http_read(struct worker *w, struct conn *c) {
    for (;;) {
        char *end = memmem(c->in.data, c->in.len, "\r\n\r\n", 4);
        if (!end) return;
        size_t head = (size_t)(end - c->in.data) + 4;
        if (c->in.len < 12 || memcmp(c->in.data + 9, "200", 3))
            die("%s answered: %.*s", c->kind == HTTP_PUBLISH ? "the publish" : "the probe",
                (int)(head > 200 ? 200 : head), c->in.data);
        char *length = NULL;
        for (char *line = c->in.data; line && line < end; line = memchr(line, '\n', (size_t)(end - line) + 2)) {
            line += line[0] == '\n';
            if (!strncasecmp(line, "content-length:", 15)) { length = line + 15; break; }
        }
        if (!length) die("an HTTP answer without Content-Length");
        size_t total = head + strtoul(length, NULL, 10);
        if (c->in.len < total) return;
        memmove(c->in.data, c->in.data + total, c->in.len - total);
        c->in.len -= total;
        uint64_t took = now_ns() - c->request_ns;
        c->request_ns = 0;
        on_http_answer(w, c, took);
    }
}

static void on_readable(struct worker *w, struct conn *c) {
    for (;;) {
        reserve(&c->in, c->in.cap - c->in.len < 1024 ? 16384 : 1);
        ssize_t n = read(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len);
        if (n < 0) {
            if (errno == EAGAIN) break;
            if (errno == EINTR) continue;
            die("read on connection %u: %s", c->id, strerror(errno));
        }
        if (n == 0) {
            if (c->state == DONE) return;
            die("connection %u: the server closed the socket", c->id);
        }
        c->in.len += (size_t)n;
        if (c->kind != WS) http_read(w, c);
        else {
            if (c->state == HANDSHAKE && !handshake_done(w, c)) continue;
            size_t used = parse_frames(w, c, c->in.data, c->in.len);
            memmove(c->in.data, c->in.data + used, c->in.len - used);
            c->in.len -= used;
        }
        if ((size_t)n < 1024) break;
    }
    flush(w, c);
}

static void on_connected(struct worker *w, struct conn *c) {
    int error = 0;
    socklen_t size = sizeof error;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &error, &size);
    if (error) die("connect: %s", strerror(error));
    c->state = c->kind == WS ? HANDSHAKE : OPEN;
    c->writable_wait = -1;
    if (c->kind == WS) queue_handshake(c);
    flush(w, c);
}

static void handle(struct worker *w, struct epoll_event *event) {
    struct conn *c = event->data.ptr;
    if (c->state == CONNECTING) {
        on_connected(w, c);
        return;
    }
    if (event->events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(w, c);
    if (event->events & EPOLLOUT) flush(w, c);
}

void poll_once(struct worker *w, int timeout_ms) {
    struct epoll_event events[256];
    int n = epoll_wait(w->epoll, events, 256, timeout_ms);
    if (n < 0 && errno != EINTR) die("epoll_wait: %s", strerror(errno));
    for (int i = 0; i < n; i++) handle(w, &events[i]);
}
