// C shim over Lua 5.4 (liblua5.4-dev, linked statically: see module.modulemap).
// Lua's API uses macros that Swift cannot import; each one used by Moonwire has a
// static inline wrapper here. The trampoline lets Swift functions raise errors and yield:
// a longjmp must never cross a Swift frame that holds references, so Swift returns a code
// and this C frame performs the lua_error / lua_yield.
#ifndef MOONWIRE_CLUA_SHIM_H
#define MOONWIRE_CLUA_SHIM_H

#include <lua5.4/lua.h>
#include <lua5.4/lauxlib.h>
#include <lua5.4/lualib.h>
#include <stdint.h>
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
    /// Nonzero while Swift code runs: allocations then may exceed the cap, so an out-of-memory
    /// longjmp never crosses a Swift frame, or leaves Swift without a protected call to catch
    /// it; Lua code fails on its next allocation. It starts at 1: the door into Lua sets it to
    /// 0 while it resumes Lua code, and the trampoline raises it around Swift functions.
    int in_swift;
    /// The registry reference of the table of req and res fields by object, and how many
    /// objects have one there (none, for most requests: nothing to look up or clean).
    int fields;
    int field_tables;
    /// Instructions between two calls of the count hook once a thread's budget is armed; 0
    /// when the VM has no instruction budget.
    int hook_interval;
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
    void *block = ptr ? realloc(ptr, nsize) : malloc(nsize);
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
    if (!space->check) return;
    space->in_swift++;
    int stop = space->check(L);
    space->in_swift--;
    if (stop) lua_error(L);
}

/// Calls the count hook every `count` VM instructions on this thread and threads made from it;
/// a count of 0 removes the hook.
static inline void mw_sethook(lua_State *L, int count) {
    if (count > 0) lua_sethook(L, mw_count_hook, LUA_MASKCOUNT, count);
    else lua_sethook(L, NULL, 0, 0);
}

/// Arms the instruction budget on `L` unless it is armed already or the VM has no budget.
/// The CPU tick's signal handler calls it (CLuaTick), so it only sets the hook.
static void mw_armbudget(lua_State *L) {
    int interval = mw_space(L)->hook_interval;
    if (interval > 0 && !lua_gethookmask(L)) lua_sethook(L, mw_count_hook, LUA_MASKCOUNT, interval);
}

/// Takes the budget's hook off `L`, for code that runs without it until the next tick.
static inline void mw_disarmbudget(lua_State *L) {
    if (lua_gethookmask(L)) lua_sethook(L, NULL, 0, 0);
}

/// coroutine.create and coroutine.wrap: Lua's own (upvalue 1), after arming the budget on the
/// creating thread, which the new coroutine inherits. A tick arms only the threads Swift
/// runs; a coroutine of a script must carry the hook from its start.
static int mw_armedcoroutine(lua_State *L) {
    luaL_checktype(L, 1, LUA_TFUNCTION);
    mw_armbudget(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

/// Replaces `name` in the table on top with mw_armedcoroutine over its current value.
static inline void mw_armcoroutinefunction(lua_State *L, const char *name) {
    lua_getfield(L, -1, name);
    lua_pushcclosure(L, mw_armedcoroutine, 1);
    lua_setfield(L, -2, name);
}

/// Runs a Swift function as the body of a C function: its error or yield is raised here.
static int mw_callswift(lua_State *L, mw_SwiftFunction f) {
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

static int mw_trampoline(lua_State *L) {
    return mw_callswift(L, (mw_SwiftFunction)lua_touserdata(L, lua_upvalueindex(1)));
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

/// `req` and `res` are light userdata: the id of their handler call shifted left by two, with
/// their kind in the two low bits. Making one allocates nothing and leaves nothing for the
/// collector (two full userdata per request were a quarter of what Lua added to a hello), and
/// an object kept after its call finds no call under its id. Light userdata share one
/// metatable, whose metamethods tell the two kinds apart by those bits, and both from any
/// other light userdata (a real pointer is aligned: its two low bits are 0).
#define MW_REQUEST 1
#define MW_RESPONSE 2

static inline void mw_pushobject(lua_State *L, int kind, long long call) {
    lua_pushlightuserdata(L, (void *)(((uintptr_t)call << 2) | (uintptr_t)kind));
}

/// The bits of the value at `idx` if it is an object. lua_touserdata alone tells: it gives
/// NULL for what is not a userdata, and a full userdata's block, aligned, has its two low
/// bits clear (no kind), as any real pointer a light userdata holds.
static inline uintptr_t mw_objectbits(lua_State *L, int idx) { return (uintptr_t)lua_touserdata(L, idx); }

/// The kind of the object at `idx` (MW_REQUEST or MW_RESPONSE), or 0 when the value there is
/// not a req or res.
static inline int mw_objectkind(lua_State *L, int idx) {
    int kind = (int)(mw_objectbits(L, idx) & 3);
    return kind == MW_REQUEST || kind == MW_RESPONSE ? kind : 0;
}

/// The call id of the object at `idx`, or -1 when the value there is not an object of `kind`.
static inline long long mw_objectcall(lua_State *L, int idx, int kind) {
    uintptr_t bits = mw_objectbits(L, idx);
    return (bits & 3) == (uintptr_t)kind ? (long long)(bits >> 2) : -1;
}

/// Pushes the field table of the object at index 1, making it first when `create` is set;
/// returns 0 (nothing pushed) when there is none. The fields scripts set on an object, and the
/// tables built for it (which must be the same table at every read), are kept in the VM's
/// table of fields by object until the object's call ends.
static inline int mw_objectfields(lua_State *L, int create) {
    mw_VMSpace *space = mw_space(L);
    if (space->field_tables == 0 && !create) return 0;
    lua_rawgeti(L, LUA_REGISTRYINDEX, space->fields);
    lua_pushvalue(L, 1);
    if (lua_rawget(L, -2) == LUA_TTABLE) {
        lua_remove(L, -2);
        return 1;
    }
    lua_pop(L, 1);
    if (!create) {
        lua_pop(L, 1);
        return 0;
    }
    lua_createtable(L, 0, 4);
    lua_pushvalue(L, 1);
    lua_pushvalue(L, -2);
    lua_rawset(L, -4);
    lua_remove(L, -2);
    space->field_tables++;
    return 1;
}

/// Drops the field tables of the req and res of a call that has ended.
static inline void mw_objectsforget(lua_State *L, long long call) {
    mw_VMSpace *space = mw_space(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, space->fields);
    for (int kind = MW_REQUEST; kind <= MW_RESPONSE && space->field_tables > 0; kind++) {
        mw_pushobject(L, kind, call);
        if (lua_rawget(L, -2) != LUA_TNIL) {
            mw_pushobject(L, kind, call);
            lua_pushnil(L);
            lua_rawset(L, -4);
            space->field_tables--;
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

/// With an object of a live call, a key and a value at 1, 2 and 3: stores the value under the
/// key in the object's field table.
static inline void mw_objectset(lua_State *L) {
    lua_settop(L, 3);
    mw_objectfields(L, 1);
    lua_insert(L, 2);
    lua_rawset(L, 2);
}

/// With object and value at 1 and top: stores the value under the key at 2 too, and leaves
/// it on top. For the fields read once per request: tables, which must be the same table at
/// every read, and the body.
static inline void mw_objectremember(lua_State *L) {
    mw_objectfields(L, 1);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, -3);
    lua_rawset(L, -3);
    lua_pop(L, 1);
}

/// The `__index` of `req` and `res`, closed over their methods tables (upvalues 1 and 2) and
/// the Swift functions for their computed fields (3 and 4): a method, else a field the script
/// set or a table built before, else the Swift function's answer. In C, so that `res:send`
/// costs no Lua call to find.
static int mw_objectindex(lua_State *L) {
    int kind = mw_objectkind(L, 1);
    if (kind == 0) return luaL_error(L, "cannot read a field of a %s: not a req or res object", luaL_typename(L, 1));
    if (lua_gettop(L) != 2) lua_settop(L, 2);
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(kind)) != LUA_TNIL) return 1;
    lua_pop(L, 1);
    if (mw_objectfields(L, 0)) {
        lua_pushvalue(L, 2);
        if (lua_rawget(L, -2) != LUA_TNIL) return 1;
        lua_pop(L, 2);
    }
    return mw_callswift(L, (mw_SwiftFunction)lua_touserdata(L, lua_upvalueindex(kind + 2)));
}

/// Pushes the `__index` of the objects; the methods tables of req and res on top are replaced.
static inline void mw_pushobjectindex(lua_State *L, mw_SwiftFunction requestFields, mw_SwiftFunction responseFields) {
    lua_pushlightuserdata(L, (void *)requestFields);
    lua_pushlightuserdata(L, (void *)responseFields);
    lua_pushcclosure(L, mw_objectindex, 4);
}

/// Makes the table on top (popped) the metatable of every light userdata: that of the objects.
static inline void mw_setobjectmetatable(lua_State *L) {
    lua_pushlightuserdata(L, NULL);
    lua_insert(L, -2);
    lua_setmetatable(L, -2);
    lua_pop(L, 1);
}

static inline void mw_pushcfunction(lua_State *L, lua_CFunction f) { lua_pushcfunction(L, f); }

/// lua_pcall for script code that a Swift function calls back (a gsub replacement function, a
/// table's __index): protected, so its error never unwinds through the Swift frame, and under
/// the memory cap like the rest of the script's code (the cap is lifted while Swift runs; a
/// memory error here ends in this pcall, not across Swift).
static inline int mw_pcallscript(lua_State *L, int nargs, int nresults) {
    mw_VMSpace *space = mw_space(L);
    int uncapped = space->in_swift;
    space->in_swift = 0;
    int status = lua_pcall(L, nargs, nresults, 0);
    space->in_swift = uncapped;
    return status;
}

static int mw_gettable_body(lua_State *L) {
    lua_gettable(L, 1);
    return 1;
}

/// `lua_gettable` on the table at `idx` with the key on top (replaced by the value), protected:
/// a failing `__index` leaves its error on top and returns its status, instead of raising
/// through the Swift frame that asked.
static inline int mw_pgettable(lua_State *L, int idx) {
    idx = lua_absindex(L, idx);
    lua_pushcfunction(L, mw_gettable_body);
    lua_insert(L, -2);
    lua_pushvalue(L, idx);
    lua_insert(L, -2);
    return mw_pcallscript(L, 2, 1);
}

static int mw_tostring_body(lua_State *L) {
    luaL_tolstring(L, 1, NULL);
    return 1;
}

/// Pushes the value at `idx` as text, as `tostring` does, and returns it. Protected: a
/// `__tostring` that fails, yields or returns no string gives "(a table whose __tostring
/// failed)" instead of an error that would unwind through Swift frames, or panic outside any
/// protected call. `L` must be able to run calls (not a coroutine that died in an error).
static inline const char *mw_describe(lua_State *L, int idx, size_t *len) {
    idx = lua_absindex(L, idx);
    if (!lua_checkstack(L, 3)) {
        lua_pushliteral(L, "?");
        return lua_tolstring(L, -1, len);
    }
    lua_pushcfunction(L, mw_tostring_body);
    lua_pushvalue(L, idx);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        lua_pop(L, 1);
        lua_pushfstring(L, "(a %s whose __tostring failed)", luaL_typename(L, idx));
    }
    return lua_tolstring(L, -1, len);
}

/// A full garbage collection (lua_gc is variadic, which Swift cannot call).
static inline void mw_collectgarbage(lua_State *L) { lua_gc(L, LUA_GCCOLLECT); }

static int mw_next_body(lua_State *L) {
    lua_settop(L, 2);
    if (lua_next(L, 1)) return 2;
    lua_pushnil(L);
    return 1;
}

/// Pushes `next` as the base library has it, for `__pairs` metamethods written in Swift (the
/// global `next` is the script's to replace). A bad key raises in C, never through Swift.
static inline void mw_pushnext(lua_State *L) { lua_pushcfunction(L, mw_next_body); }

static inline int mw_registryindex(void) { return LUA_REGISTRYINDEX; }
static inline int mw_upvalueindex(int i) { return lua_upvalueindex(i); }

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
