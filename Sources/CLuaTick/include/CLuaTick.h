// The CPU tick that arms Lua's instruction budget lazily (see LuaTick.c).
#ifndef MOONWIRE_CLUATICK_H
#define MOONWIRE_CLUATICK_H

struct lua_State;
/// One per OS thread that runs Lua: its CPU timer and the Lua threads a tick arms there.
typedef struct mw_Ticker mw_Ticker;
/// Arms the instruction budget's count hook on a Lua thread (if its VM has a budget). Called
/// from the signal handler: it may only set the hook.
typedef void (*mw_ArmFunction)(struct lua_State *L);

/// The calling thread's ticker, its timer started on first use; NULL when the thread can have
/// no CPU timer, and then the budget must be armed for good.
mw_Ticker *mw_tick_thread(mw_ArmFunction arm);

/// Registers a VM's main thread, armed at every tick until removed. Returns 0 when the ticker
/// has no free slot (the VM must then arm its budget for good).
int mw_tick_addvm(mw_Ticker *ticker, struct lua_State *main);

/// Unregisters a VM's main thread; from any thread. On return no tick touches it any more.
void mw_tick_removevm(mw_Ticker *ticker, struct lua_State *main);

/// Makes `L` the coroutine a tick arms besides the VMs' main threads, and returns the one it
/// replaces (NULL for none).
struct lua_State *mw_tick_swaprunning(mw_Ticker *ticker, struct lua_State *L);

#endif
