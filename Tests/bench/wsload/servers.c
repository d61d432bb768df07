/* The servers wsload measures: their addresses (one, or the nodes of a cluster, WebSocket
 * connections spread over them) and their processes' CPU time and RSS, read from /proc. */
#include "wsload.h"

static void parse_server(struct server *server, const char *text, size_t length) {
    const char *colon = memrchr(text, ':', length);
    if (!colon || (size_t)(colon - text) >= sizeof server->host) die("address must be HOST:PORT, not %.*s", (int)length, text);
    memcpy(server->host, text, (size_t)(colon - text));
    server->host[colon - text] = 0;
    char port[16];
    size_t digits = length - (size_t)(colon + 1 - text);
    if (!digits || digits >= sizeof port) die("address must be HOST:PORT, not %.*s", (int)length, text);
    memcpy(port, colon + 1, digits);
    port[digits] = 0;
    server->port = atoi(port);
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *found;
    if (getaddrinfo(server->host, port, &hints, &found)) die("cannot resolve %s", server->host);
    memcpy(&server->address, found->ai_addr, sizeof server->address);
    freeaddrinfo(found);
}

/* HOST:PORT[,HOST:PORT...] */
void parse_servers(const char *addresses) {
    for (const char *p = addresses; *p;) {
        if (opt.server_count == MAX_SERVERS) die("at most %d servers", MAX_SERVERS);
        size_t length = strcspn(p, ",");
        parse_server(&opt.servers[opt.server_count++], p, length);
        p += length + (p[length] == ',');
    }
    if (!opt.server_count) die("no HOST:PORT given");
}

/* PID[,PID...], in the order of the addresses. */
void parse_pids(const char *pids) {
    for (const char *p = pids; *p;) {
        if (opt.pid_count == MAX_SERVERS) die("at most %d servers", MAX_SERVERS);
        char *end;
        long pid = strtol(p, &end, 10);
        if (end == p || pid <= 0 || (*end && *end != ',')) die("--pid takes PID[,PID...], not %s", pids);
        opt.servers[opt.pid_count++].pid = (int)pid;
        p = *end ? end + 1 : end;
    }
}

/* WebSocket connection i goes to server i modulo their number; HTTP requests to the first. */
const struct server *server_of(const struct conn *c) {
    return &opt.servers[c->kind == WS ? c->id % (uint32_t)opt.server_count : 0];
}

/* A server's user+system CPU seconds from /proc/PID/stat. */
static double cpu_seconds(int pid) {
    char path[64], text[4096];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *file = fopen(path, "r");
    if (!file) die("cannot read %s", path);
    size_t n = fread(text, 1, sizeof text - 1, file);
    fclose(file);
    text[n] = 0;
    char *p = strrchr(text, ')'); /* the command may hold spaces; fields follow its ')' */
    unsigned long utime = 0, stime = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2)
        die("cannot parse %s", path);
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

static long rss_kib(int pid) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *file = fopen(path, "r");
    if (!file) die("cannot read %s", path);
    long kib = -1;
    while (fgets(line, sizeof line, file))
        if (sscanf(line, "VmRSS: %ld", &kib) == 1) break;
    fclose(file);
    return kib;
}

double cpu_seconds_servers(void) {
    double total = 0;
    for (int i = 0; i < opt.pid_count; i++) total += cpu_seconds(opt.servers[i].pid);
    return total;
}

long rss_kib_servers(void) {
    long total = 0;
    for (int i = 0; i < opt.pid_count; i++) total += rss_kib(opt.servers[i].pid);
    return total;
}
