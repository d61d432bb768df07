// C shim over the system Lua 5.4 (liblua5.4-dev).
// Lua's API uses macros that Swift cannot import; each one used by Moonwire has a
// static inline wrapper here. The trampoline lets Swift functions raise errors and yield:
// a longjmp must never cross a Swift frame that holds references, so Swift returns a code
// and this C frame performs the lua_error / lua_yield.
#ifndef MOONWIRE_CLUA_SHIM_H
#define MOONWIRE_CLUA_SHIM_H

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include <stdlib.h>

/// A Swift-implemented Lua function. Returns the number of results (>= 0), or
/// MW_RAISE to raise the value on top of the stack as an error, or MW_YIELD to yield.
typedef int (*mw_SwiftFunction)(lua_State *L);
#define MW_RAISE (-1)
#define MW_YIELD (-2)

/// Per-VM bookkeeping shared by the allocator, the count hook and the trampoline.
/// `owner` is the Swift LuaVM; `check` is called by the count hook and returns nonzero
/// (with a message pushed) to end the running call.
typedef struct {
    void *owner;
    int (*check)(lua_State *L);
    size_t used;
    size_t limit;
    /// Nonzero while Swift code runs inside Lua: allocations then may exceed the cap, so an
    /// out-of-memory longjmp never crosses a Swift frame; Lua code fails on its next one.
    int in_swift;
} mw_VMSpace;

static inline mw_VMSpace *mw_space(lua_State *L) { return *(mw_VMSpace **)lua_getextraspace(L); }

static void *mw_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    mw_VMSpace *space = (mw_VMSpace *)ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        space->used -= old;
        free(ptr);
        return NULL;
    }
    if (nsize > old && space->limit && !space->in_swift && space->used + (nsize - old) > space->limit) return NULL;
    void *block = realloc(ptr, nsize);
    if (block) space->used = space->used - old + nsize;
    return block;
}

/// A new state whose allocations are counted (and capped) in `space`.
static inline lua_State *mw_newstate(mw_VMSpace *space) {
    lua_State *L = lua_newstate(mw_alloc, space);
    if (L) *(mw_VMSpace **)lua_getextraspace(L) = space;
    return L;
}

static void mw_count_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    mw_VMSpace *space = mw_space(L);
    if (space->check && space->check(L)) lua_error(L);
}

/// Calls the count hook every `count` VM instructions on this thread and threads made from it;
/// a count of 0 removes the hook.
static inline void mw_sethook(lua_State *L, int count) {
    if (count > 0) lua_sethook(L, mw_count_hook, LUA_MASKCOUNT, count);
    else lua_sethook(L, NULL, 0, 0);
}

static int mw_trampoline(lua_State *L) {
    mw_SwiftFunction f = (mw_SwiftFunction)lua_touserdata(L, lua_upvalueindex(1));
    mw_VMSpace *space = mw_space(L);
    space->in_swift++;
    int n = f(L);
    space->in_swift--;
    if (n == MW_RAISE) {
        /* As luaL_error does: a message names the script line that made the call. */
        if (lua_type(L, -1) == LUA_TSTRING) {
            luaL_where(L, 1);
            lua_insert(L, -2);
            lua_concat(L, 2);
        }
        return lua_error(L);
    }
    if (n == MW_YIELD) return lua_yield(L, 0);
    return n;
}

/// Pushes a Swift function as a Lua C closure whose errors and yields are raised in C.
static inline void mw_pushswiftfunction(lua_State *L, mw_SwiftFunction f) {
    lua_pushlightuserdata(L, (void *)f);
    lua_pushcclosure(L, mw_trampoline, 1);
}

/// Pushes a Swift function as a closure over the `n` values on top of the stack; inside it
/// they are upvalues 2...n+1 (upvalue 1 is the function pointer).
static inline void mw_pushswiftclosure(lua_State *L, mw_SwiftFunction f, int n) {
    lua_pushlightuserdata(L, (void *)f);
    lua_insert(L, -(n + 1));
    lua_pushcclosure(L, mw_trampoline, n + 1);
}

static inline int mw_registryindex(void) { return LUA_REGISTRYINDEX; }
static inline int mw_upvalueindex(int i) { return lua_upvalueindex(i); }

static inline int mw_pcall(lua_State *L, int nargs, int nresults, int msgh) { return lua_pcall(L, nargs, nresults, msgh); }
static inline const char *mw_tolstring(lua_State *L, int idx, size_t *len) { return lua_tolstring(L, idx, len); }
static inline lua_Number mw_tonumber(lua_State *L, int idx, int *isnum) { return lua_tonumberx(L, idx, isnum); }
static inline lua_Integer mw_tointeger(lua_State *L, int idx, int *isnum) { return lua_tointegerx(L, idx, isnum); }
static inline void mw_pop(lua_State *L, int n) { lua_pop(L, n); }
static inline void mw_newtable(lua_State *L) { lua_newtable(L); }
static inline void mw_pushglobaltable(lua_State *L) { lua_pushglobaltable(L); }
static inline void mw_insert(lua_State *L, int idx) { lua_insert(L, idx); }
static inline void mw_remove(lua_State *L, int idx) { lua_remove(L, idx); }
static inline void mw_replace(lua_State *L, int idx) { lua_replace(L, idx); }
static inline int mw_isinteger(lua_State *L, int idx) { return lua_isinteger(L, idx); }
static inline int mw_loadbuffer(lua_State *L, const char *buf, size_t len, const char *name) {
    return luaL_loadbufferx(L, buf, len, name, NULL);
}
static inline const char *mw_typename(lua_State *L, int idx) { return luaL_typename(L, idx); }

#endif
