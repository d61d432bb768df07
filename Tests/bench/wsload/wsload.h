/* wsload's shared parts: the connection (conn.c: sockets, RFC 6455 frames, the handshake, HTTP
 * answers) and the measuring (wsload.c: the modes, the phases, the report). */
#ifndef WSLOAD_H
#define WSLOAD_H
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* The RFC 6455 example key and its accept value: a bench may reuse one key. */
#define WS_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define WS_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
#define MAX_ROUNDS 1000

enum mode { ECHO, FANOUT, IDLE };
enum kind { WS, HTTP_PUBLISH, HTTP_PROBE };
enum state { CONNECTING, HANDSHAKE, OPEN, DONE };

struct buffer { char *data; size_t len, cap, off; };

struct conn {
    int fd, kind, state, writable_wait;
    uint32_t id;
    struct buffer in, out, message;
    int message_opcode;          /* opcode of a fragmented message being reassembled, or -1 */
    uint64_t sent, received;     /* echo: messages */
    uint64_t *stamps;            /* echo: send time of message n at n % inflight */
    uint64_t request_ns;         /* HTTP: when the request in flight went out (0: none) */
};

/* Latency histogram in µs: exact below 128, then 64 steps per power of two (about 1.5%). */
#define HIST_BUCKETS (128 + 40 * 64)
struct histogram { uint64_t count[HIST_BUCKETS]; uint64_t total; };

struct worker {
    int index, epoll;
    struct conn *conns;
    uint32_t first, count;       /* connection ids first..first+count-1 */
    uint32_t open, pending, started;
    struct histogram latency;
    uint64_t messages;           /* echo: echoed inside the window */
    pthread_t thread;
    /* the controller (the last worker) in fanout mode only */
    struct conn publisher, probe;
};

/* A server measured: where it listens, and its process (servers.c). */
#define MAX_SERVERS 8
struct server {
    char host[256];
    int port, pid;
    struct sockaddr_in address;
};

/* The command line (wsload.c). */
struct options {
    enum mode mode;
    const char *path;
    int threads, concurrency;
    uint32_t connections;
    size_t size;
    int inflight, rounds, burst;
    double seconds;
    struct server servers[MAX_SERVERS];
    int server_count, pid_count;
};

extern struct options opt;

/* servers.c */
void parse_servers(const char *addresses);
void parse_pids(const char *pids);
const struct server *server_of(const struct conn *c);
double cpu_seconds_servers(void);
long rss_kib_servers(void);

/* conn.c */
_Noreturn void die(const char *format, ...);
uint64_t now_ns(void);
void reserve(struct buffer *b, size_t extra);
void append(struct buffer *b, const void *data, size_t n);
void record(struct histogram *h, uint64_t ns);
double percentile(const struct histogram *h, double p);
void open_socket(struct worker *w, struct conn *c);
void flush(struct worker *w, struct conn *c);
void queue_frame(struct conn *c, int opcode, const char *payload, size_t n);
void send_request(struct worker *w, struct conn *c, const char *target);
void poll_once(struct worker *w, int timeout_ms);

/* wsload.c: what a complete message or HTTP answer means to the mode */
void on_message(struct worker *w, struct conn *c, const char *data, size_t n);
void on_http_answer(struct worker *w, struct conn *c, uint64_t took);
#endif
