/*
 * writefloor: the kernel's price of one fan-out delivery, with no server at all. Opens N
 * loopback TCP connections from a child process (the subscribers, reading with epoll on
 * --reader-cpu) and, round by round, writes one unmasked 64-byte WebSocket text frame to each
 * accepted end: one write(2) per socket, the least any server does to deliver one message to
 * N subscribers (loopback runs the receive side within that call).
 *
 * websocket.sh runs it on the server's core right before the fan-out, so that the fan-out's
 * µs per delivery can be read against the floor this kernel sets under any server. Its own
 * program, not a wsload mode: wsload measures a server, this measures the machine.
 *
 *   writefloor [--sockets 10000] [--rounds 20] [--reader-cpu 1]
 *
 * One JSON object on stdout: the median wall and CPU µs per write over the rounds.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what) {
    fprintf(stderr, "writefloor: %s: %s\n", what, strerror(errno));
    exit(1);
}

static double seconds(clockid_t clock) {
    struct timespec t;
    clock_gettime(clock, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int compare(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *values, int n) {
    qsort(values, (size_t)n, sizeof *values, compare);
    return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

/* The subscribers: connect every socket, say so on `ready`, then read until each has every
 * round's frame. */
static void subscribe(struct sockaddr_in *address, int sockets, int rounds, size_t frame, int cpu, int ready) {
    if (cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        sched_setaffinity(0, sizeof set, &set);
    }
    int poll = epoll_create1(0);
    if (poll < 0) die("epoll_create1");
    for (int i = 0; i < sockets; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)address, sizeof *address)) die("connect");
        struct epoll_event event = {.events = EPOLLIN, .data.fd = fd};
        if (epoll_ctl(poll, EPOLL_CTL_ADD, fd, &event)) die("epoll_ctl");
    }
    if (write(ready, "r", 1) != 1) die("write to the parent");
    size_t left = (size_t)sockets * (size_t)rounds * frame;
    struct epoll_event events[256];
    unsigned char buffer[4096];
    while (left) {
        int n = epoll_wait(poll, events, 256, 10000);
        if (n <= 0) die("epoll_wait (no frames for 10 s)");
        for (int i = 0; i < n; i++) {
            ssize_t got = read(events[i].data.fd, buffer, sizeof buffer);
            if (got <= 0) die("read");
            left -= (size_t)got;
        }
    }
    exit(0);
}

int main(int argc, char **argv) {
    int sockets = 10000, rounds = 20, reader_cpu = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--sockets")) sockets = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--rounds")) rounds = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--reader-cpu")) reader_cpu = atoi(argv[i + 1]);
        else {
            fputs("usage: writefloor [--sockets N] [--rounds N] [--reader-cpu K]\n", stderr);
            return 2;
        }
    }
    if (sockets < 1 || rounds < 1) {
        fputs("writefloor: --sockets and --rounds must be positive\n", stderr);
        return 2;
    }
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
    }
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t length = sizeof address;
    if (listener < 0 || bind(listener, (struct sockaddr *)&address, sizeof address) ||
        listen(listener, 4096) || getsockname(listener, (struct sockaddr *)&address, &length))
        die("listen on 127.0.0.1");
    unsigned char frame[66] = {0x81, 64};
    memset(frame + 2, 'm', 64);
    int ready[2];
    if (pipe(ready)) die("pipe");
    pid_t reader = fork();
    if (reader < 0) die("fork");
    if (reader == 0) subscribe(&address, sockets, rounds, sizeof frame, reader_cpu, ready[1]);
    int *server = malloc(sizeof(int) * (size_t)sockets);
    if (!server) die("malloc");
    for (int i = 0; i < sockets; i++) {
        server[i] = accept(listener, NULL, NULL);
        if (server[i] < 0) die("accept");
        int one = 1;
        setsockopt(server[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    char byte;
    if (read(ready[0], &byte, 1) != 1) die("the subscribers did not connect");
    double *wall = malloc(sizeof(double) * (size_t)rounds), *cpu = malloc(sizeof(double) * (size_t)rounds);
    if (!wall || !cpu) die("malloc");
    for (int r = 0; r < rounds; r++) {
        usleep(50000); /* the reader drains the last round: each round starts from quiet */
        double wall_start = seconds(CLOCK_MONOTONIC), cpu_start = seconds(CLOCK_PROCESS_CPUTIME_ID);
        for (int i = 0; i < sockets; i++)
            if (write(server[i], frame, sizeof frame) != (ssize_t)sizeof frame) die("write");
        wall[r] = (seconds(CLOCK_MONOTONIC) - wall_start) * 1e6 / sockets;
        cpu[r] = (seconds(CLOCK_PROCESS_CPUTIME_ID) - cpu_start) * 1e6 / sockets;
    }
    int status;
    if (waitpid(reader, &status, 0) != reader || !WIFEXITED(status) || WEXITSTATUS(status)) {
        fputs("writefloor: the subscribers did not get every frame\n", stderr);
        return 1;
    }
    double wall_us = median(wall, rounds), cpu_us = median(cpu, rounds);
    printf("{\"sockets\": %d, \"rounds\": %d, \"frame_bytes\": %zu, \"us_per_write\": %.2f, \"cpu_us_per_write\": %.2f}\n",
           sockets, rounds, sizeof frame, wall_us, cpu_us);
    fprintf(stderr, "writefloor: %.2f µs per write(2) of a %zu-byte frame to each of %d loopback sockets "
            "(%.2f µs of CPU; medians of %d rounds): %.0f deliveries/s with one write per subscriber\n",
            wall_us, sizeof frame, sockets, cpu_us, rounds, 1e6 / wall_us);
    return 0;
}
