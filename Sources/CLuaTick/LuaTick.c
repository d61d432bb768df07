// The CPU tick that arms Lua's instruction budget. Lua's count hook makes the VM check a
// counter before every instruction, which roughly doubles what plain Lua code costs, so a call
// runs without it until it has used a tick of CPU: a timer on each thread's CPU clock sends
// that thread a signal every 10 ms of CPU it uses, and the handler arms the hook on the Lua
// threads that may be running there (the coroutine Swift resumed, and the VMs' main threads).
// lua_sethook is made to be called from a signal handler (lua.c stops scripts on Ctrl-C so).
// Coroutines that scripts create inherit the hook of the thread creating them, which the
// shim's coroutine.create and coroutine.wrap arm first.
#define _GNU_SOURCE
#include "CLuaTick.h"
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MW_TICK_NANOSECONDS 10000000L
#define MW_TICK_VMS 8
#ifndef SIGEV_THREAD_ID
#define SIGEV_THREAD_ID 4
#endif

struct mw_Ticker {
    /// Arms one Lua thread; set when the ticker is made, before its timer starts.
    mw_ArmFunction arm;
    /// Written by the owning thread only, read by its signal handler.
    struct lua_State *volatile running;
    _Atomic(struct lua_State *) vms[MW_TICK_VMS];
    /// Set while the handler arms: a VM removed from another thread waits for it to clear.
    atomic_int busy;
    timer_t timer;
    /// VMs registered and whether the thread has exited: the last of the two frees the ticker.
    pthread_mutex_t lock;
    int vmcount;
    int exited;
};

static pthread_key_t mw_tickkey;
static pthread_once_t mw_tickonce = PTHREAD_ONCE_INIT;
static int mw_tickready;
static __thread mw_Ticker *mw_threadticker;

static int mw_ticksignal(void) { return SIGRTMIN + 4; }

static void mw_tick(int signal, siginfo_t *info, void *context) {
    (void)signal;
    (void)info;
    (void)context;
    mw_Ticker *ticker = mw_threadticker;
    if (!ticker) return;
    int saved = errno;
    atomic_store(&ticker->busy, 1);
    struct lua_State *running = ticker->running;
    if (running) ticker->arm(running);
    for (int i = 0; i < MW_TICK_VMS; i++) {
        struct lua_State *main = atomic_load(&ticker->vms[i]);
        if (main) ticker->arm(main);
    }
    atomic_store(&ticker->busy, 0);
    errno = saved;
}

static void mw_tickrelease(mw_Ticker *ticker, int exiting) {
    pthread_mutex_lock(&ticker->lock);
    if (exiting) ticker->exited = 1; else ticker->vmcount--;
    int last = ticker->exited && ticker->vmcount == 0;
    pthread_mutex_unlock(&ticker->lock);
    if (last) {
        pthread_mutex_destroy(&ticker->lock);
        free(ticker);
    }
}

/// At thread exit. A tick still pending is delivered when timer_delete returns, on this
/// thread, before anything is freed.
static void mw_tickexit(void *pointer) {
    mw_Ticker *ticker = pointer;
    timer_delete(ticker->timer);
    mw_threadticker = NULL;
    mw_tickrelease(ticker, 1);
}

static void mw_tickinstall(void) {
    struct sigaction action = {0};
    action.sa_sigaction = mw_tick;
    action.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&action.sa_mask);
    mw_tickready = sigaction(mw_ticksignal(), &action, NULL) == 0 && pthread_key_create(&mw_tickkey, mw_tickexit) == 0;
}

mw_Ticker *mw_tick_thread(mw_ArmFunction arm) {
    if (mw_threadticker) return mw_threadticker;
    pthread_once(&mw_tickonce, mw_tickinstall);
    if (!mw_tickready) return NULL;
    // A thread that inherited a mask blocking the tick would never arm the budget.
    sigset_t tick;
    sigemptyset(&tick);
    sigaddset(&tick, mw_ticksignal());
    if (pthread_sigmask(SIG_UNBLOCK, &tick, NULL) != 0) return NULL;
    mw_Ticker *ticker = calloc(1, sizeof(mw_Ticker));
    if (!ticker) return NULL;
    ticker->arm = arm;
    pthread_mutex_init(&ticker->lock, NULL);
    struct sigevent event = {0};
    event.sigev_notify = SIGEV_THREAD_ID;
    event.sigev_signo = mw_ticksignal();
    event._sigev_un._tid = (pid_t)syscall(SYS_gettid);
    struct itimerspec every = {{0, MW_TICK_NANOSECONDS}, {0, MW_TICK_NANOSECONDS}};
    if (timer_create(CLOCK_THREAD_CPUTIME_ID, &event, &ticker->timer) != 0) {
        pthread_mutex_destroy(&ticker->lock);
        free(ticker);
        return NULL;
    }
    if (timer_settime(ticker->timer, 0, &every, NULL) != 0 || pthread_setspecific(mw_tickkey, ticker) != 0) {
        timer_delete(ticker->timer);
        pthread_mutex_destroy(&ticker->lock);
        free(ticker);
        return NULL;
    }
    mw_threadticker = ticker;
    return ticker;
}

int mw_tick_addvm(mw_Ticker *ticker, struct lua_State *main) {
    for (int i = 0; i < MW_TICK_VMS; i++) {
        struct lua_State *empty = NULL;
        if (atomic_compare_exchange_strong(&ticker->vms[i], &empty, main)) {
            pthread_mutex_lock(&ticker->lock);
            ticker->vmcount++;
            pthread_mutex_unlock(&ticker->lock);
            return 1;
        }
    }
    return 0;
}

void mw_tick_removevm(mw_Ticker *ticker, struct lua_State *main) {
    for (int i = 0; i < MW_TICK_VMS; i++) {
        struct lua_State *expected = main;
        if (atomic_compare_exchange_strong(&ticker->vms[i], &expected, NULL)) break;
    }
    // A handler running on the owning thread may have read the slot before it was cleared.
    while (atomic_load(&ticker->busy)) {}
    mw_tickrelease(ticker, 0);
}

struct lua_State *mw_tick_swaprunning(mw_Ticker *ticker, struct lua_State *L) {
    struct lua_State *previous = ticker->running;
    ticker->running = L;
    return previous;
}
