// The answer of moonwire.http calls: `{status=, headers=, body=}`, whose `headers` table is
// built the first time something looks at it (`answer.headers`, `pairs(answer)`,
// moonwire.json.encode, moonwire.shared), from the upstream's fields kept packed in one
// userdata until then. A string per header name and value, each interned, and the table that
// holds them were a tenth of a proxied request (about 4,900 instructions of 53,500), and most
// handlers read only `status` and `body`.
//
// Until then the answer has the metatable of answers (`__index` and `__pairs`), one per VM, and
// its packed fields wait in a table of the registry with weak keys, keyed by the answer: a
// metatable per answer, with its three fields, cost a proxied request about 800 instructions
// more (`PROXY=1 Tests/bench/instructions.sh`). Building the headers sets `answer.headers`
// (unless the script set it first), drops the packed fields and removes the metatable: from
// then on the answer is a plain table.
//
// Answers whose fields are byte for byte the last packed ones share that userdata, which is
// never written: a keep-alive upstream sends the same head again until its Date changes, and a
// userdata per answer, allocated, copied into and collected, cost a proxied request about 880
// instructions more than comparing the bytes (`PROXY=1 Tests/bench/instructions.sh`).
import CLua
import Glibc
import MoonwireCore
import NIOCore
import NIOHTTP1

/// Pushes the answer table of an HTTP call whose head the pool's reader parsed.
func pushHTTPAnswer(status: Int, _ body: ByteBuffer, head: OutboundResponseHead, on T: LuaThread) -> Int32 {
    pushAnswer(status: status, body, on: T) { tables in
        head.withFieldRanges { bytes, ranges in PackedFields.push(bytes, ranges, on: T, tables) }
    }
}

/// Pushes the answer table of an HTTP call that AsyncHTTPClient answered.
func pushHTTPAnswer(status: Int, _ body: ByteBuffer, headers: HTTPHeaders, on T: LuaThread) -> Int32 {
    pushAnswer(status: status, body, on: T) { tables in
        var bytes: [UInt8] = []
        var ranges: [(name: Range<Int>, value: Range<Int>)] = []
        for (name, value) in headers {
            let nameStart = bytes.count
            bytes.append(contentsOf: name.utf8)
            let valueStart = bytes.count
            bytes.append(contentsOf: value.utf8)
            ranges.append((nameStart..<valueStart, valueStart..<bytes.count))
        }
        bytes.withUnsafeBytes { PackedFields.push($0, ranges, on: T, tables) }
    }
}

/// `{status=, body=}` with the metatable that builds `headers`; `packFields` pushes the fields.
private func pushAnswer(status: Int, _ body: ByteBuffer, on T: LuaThread, packFields: (LuaHTTPAnswerTables) -> Void) -> Int32 {
    // Room for status and body only: `headers`, when built, grows the table once, and the
    // collector's work follows the bytes every answer allocates.
    let tables = LuaHTTPAnswerTables.of(T)
    lua_createtable(T, 0, 2)
    lua_pushinteger(T, lua_Integer(status))
    T.setField(-2, "status")
    T.push(body)
    T.setField(-2, "body")
    tables.pushPending(on: T)
    lua_pushvalue(T, -2)
    packFields(tables)
    lua_rawset(T, -3)
    mw_pop(T, 1)
    tables.pushMetatable(on: T)
    lua_setmetatable(T, -2)
    return 1
}

/// Builds the headers of the answer at `index` if it is an answer whose headers are not built
/// yet; does nothing to any other value. For the code that copies tables with `lua_next`
/// (JSON, moonwire.shared), which sees only what a table holds.
func completeHTTPAnswer(_ L: LuaThread, _ index: Int32) {
    let table = lua_absindex(L, index)
    if lua_type(L, table) == LUA_TTABLE { buildHeaders(L, table) }
}

/// `answer.headers` before it exists: builds it. Any other missing key is nil.
private let answerIndex: LuaFunction = { L in
    let L = L!
    let isHeaders = L.type(at: 2) == LUA_TSTRING && L.withBytes(at: 2) { $0.elementsEqual("headers".utf8) } == true
    guard isHeaders else { return 0 }
    buildHeaders(L, 1)
    L.push("headers")
    lua_rawget(L, 1)
    return 1
}

/// `pairs(answer)`: the headers built first, then the table's own keys in `next`'s order.
private let answerPairs: LuaFunction = { L in
    let L = L!
    completeHTTPAnswer(L, 1)
    mw_pushnext(L)
    lua_pushvalue(L, 1)
    lua_pushnil(L)
    return 3
}

/// The metatable of answers whose headers are not built, the table of those answers to their
/// packed fields (its keys are weak, so an answer the script let go takes its fields along),
/// and the fields packed last: made with the VM, and found by their registry references.
/// Looked up by address (`lua_rawgetp`), the first two cost a proxied request about 290
/// instructions.
struct LuaHTTPAnswerTables {
    private(set) var metatable = LUA_NOREF
    private(set) var pending = LUA_NOREF
    private(set) var lastFields = LUA_NOREF

    init() {}

    /// Makes both tables in `L`'s registry.
    init(in L: LuaThread) {
        lua_createtable(L, 0, 2)
        L.push(answerIndex)
        L.setField(-2, "__index")
        L.push(answerPairs)
        L.setField(-2, "__pairs")
        metatable = luaL_ref(L, mw_registryindex())
        lua_createtable(L, 0, 0)
        lua_createtable(L, 0, 1)
        L.push("k")
        L.setField(-2, "__mode")
        lua_setmetatable(L, -2)
        pending = luaL_ref(L, mw_registryindex())
        // A slot of its own, holding no userdata yet.
        lua_pushboolean(L, 0)
        lastFields = luaL_ref(L, mw_registryindex())
    }

    /// The tables of `L`'s VM.
    static func of(_ L: LuaThread) -> LuaHTTPAnswerTables {
        LuaVM.owner(of: L)._withUnsafeGuaranteedRef { $0.httpAnswerTables }
    }

    func pushMetatable(on L: LuaThread) {
        lua_rawgeti(L, mw_registryindex(), lua_Integer(metatable))
    }

    func pushPending(on L: LuaThread) {
        lua_rawgeti(L, mw_registryindex(), lua_Integer(pending))
    }

    /// Pushes the userdata of the fields packed last (false before the first).
    func pushLastFields(on L: LuaThread) {
        lua_rawgeti(L, mw_registryindex(), lua_Integer(lastFields))
    }

    /// Keeps the userdata on top as the fields packed last, and pops it.
    func setLastFields(on L: LuaThread) {
        lua_rawseti(L, mw_registryindex(), lua_Integer(lastFields))
    }
}

/// Sets `headers` on the answer at `table` from its packed fields (unless the script set it
/// already) and takes the answer's metatable away; leaves any other table, and an answer the
/// script gave a metatable of its own, as they are.
private func buildHeaders(_ L: LuaThread, _ table: Int32) {
    guard lua_getmetatable(L, table) != 0 else { return }
    let tables = LuaHTTPAnswerTables.of(L)
    tables.pushMetatable(on: L)
    let isAnswer = lua_rawequal(L, -1, -2) != 0
    mw_pop(L, 2)
    guard isAnswer else { return }
    tables.pushPending(on: L)
    defer { mw_pop(L, 1) }
    lua_pushvalue(L, table)
    guard lua_rawget(L, -2) == LUA_TUSERDATA, let packed = lua_touserdata(L, -1) else { return mw_pop(L, 1) }
    let bytes = UnsafeRawBufferPointer(start: packed, count: Int(lua_rawlen(L, -1)))
    L.push("headers")
    if lua_rawget(L, table) == LUA_TNIL {
        mw_pop(L, 1)
        L.push("headers")
        pushHeaderTable(on: L) { field in PackedFields.forEach(in: bytes, field) }
        lua_rawset(L, table)
    } else {
        mw_pop(L, 1)
    }
    mw_pop(L, 1)
    lua_pushvalue(L, table)
    lua_pushnil(L)
    lua_rawset(L, -3)
    lua_pushnil(L)
    lua_setmetatable(L, table)
}

/// The fields of a head, packed in one userdata: their count and, per field, where its name and
/// value start and end (four bytes each, native order), then the head's bytes as they came.
/// One copy of the head, and no separator: a value over HTTP/2 is not checked for every byte
/// the HTTP/1.1 reader refuses. Never written once pushed, so answers may share one.
private enum PackedFields {
    /// Pushes the packed fields: those packed last when they are the same (see the header).
    static func push(
        _ bytes: UnsafeRawBufferPointer, _ ranges: [(name: Range<Int>, value: Range<Int>)], on L: LuaThread,
        _ tables: LuaHTTPAnswerTables
    ) {
        let table = 4 + 16 * ranges.count
        tables.pushLastFields(on: L)
        if let last = lua_touserdata(L, -1), Int(lua_rawlen(L, -1)) == table + bytes.count,
            holds(UnsafeRawBufferPointer(start: last, count: table + bytes.count), bytes, ranges)
        {
            return
        }
        mw_pop(L, 1)
        let out = UnsafeMutableRawBufferPointer(start: lua_newuserdatauv(L, table + bytes.count, 0), count: table + bytes.count)
        out.storeBytes(of: UInt32(ranges.count), as: UInt32.self)
        var offset = 4
        for range in ranges {
            for bound in [range.name.lowerBound, range.name.upperBound, range.value.lowerBound, range.value.upperBound] {
                out.storeBytes(of: UInt32(bound), toByteOffset: offset, as: UInt32.self)
                offset += 4
            }
        }
        UnsafeMutableRawBufferPointer(rebasing: out[table...]).copyMemory(from: bytes)
        lua_pushvalue(L, -1)
        tables.setLastFields(on: L)
    }

    /// Whether `packed` is `bytes` and `ranges` packed.
    private static func holds(
        _ packed: UnsafeRawBufferPointer, _ bytes: UnsafeRawBufferPointer, _ ranges: [(name: Range<Int>, value: Range<Int>)]
    ) -> Bool {
        guard Int(packed.loadUnaligned(as: UInt32.self)) == ranges.count else { return false }
        for (field, range) in ranges.enumerated() {
            let bound = { (index: Int) in Int(packed.loadUnaligned(fromByteOffset: 4 + 16 * field + 4 * index, as: UInt32.self)) }
            guard bound(0) == range.name.lowerBound, bound(1) == range.name.upperBound, bound(2) == range.value.lowerBound,
                bound(3) == range.value.upperBound
            else { return false }
        }
        return bytes.isEmpty || memcmp(packed.baseAddress! + 4 + 16 * ranges.count, bytes.baseAddress!, bytes.count) == 0
    }

    static func forEach(in packed: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> Void) {
        let count = Int(packed.loadUnaligned(as: UInt32.self))
        let bytes = UnsafeRawBufferPointer(rebasing: packed[(4 + 16 * count)...])
        for field in 0..<count {
            let bound = { (index: Int) in Int(packed.loadUnaligned(fromByteOffset: 4 + 16 * field + 4 * index, as: UInt32.self)) }
            body(UnsafeRawBufferPointer(rebasing: bytes[bound(0)..<bound(1)]), UnsafeRawBufferPointer(rebasing: bytes[bound(2)..<bound(3)]))
        }
    }
}

/// Pushes the headers table: names in lowercase; repeated headers joined with ", ", except
/// `set-cookie`, which is always a list (cookies may contain commas).
private func pushHeaderTable(on T: LuaThread, fields: ((UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> Void) -> Void) {
    lua_createtable(T, 0, 8)
    fields { name, value in
        if isSetCookie(name) { return pushCookie(value, on: T) }
        pushLowercased(name, on: T)
        lua_pushvalue(T, -1)
        if lua_rawget(T, -3) == LUA_TNIL {
            mw_pop(T, 1)
            pushBytes(value, on: T)
        } else {
            T.push(", ")
            pushBytes(value, on: T)
            lua_concat(T, 3)
        }
        lua_rawset(T, -3)
    }
}

private func pushBytes(_ bytes: UnsafeRawBufferPointer, on T: LuaThread) {
    _ = lua_pushlstring(T, bytes.baseAddress?.assumingMemoryBound(to: CChar.self), bytes.count)
}

/// Pushes a header name in lowercase, through a scratch buffer on the stack (no string is
/// made first, and nothing is allocated per header).
private func pushLowercased(_ name: UnsafeRawBufferPointer, on T: LuaThread) {
    withUnsafeTemporaryAllocation(of: UInt8.self, capacity: max(name.count, 1)) { out in
        for index in 0..<name.count {
            let byte = name[index]
            out[index] = byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
        }
        _ = lua_pushlstring(T, UnsafeRawPointer(out.baseAddress!).assumingMemoryBound(to: CChar.self), name.count)
    }
}

private func isSetCookie(_ name: UnsafeRawBufferPointer) -> Bool {
    name.count == 10 && zip(name, "set-cookie".utf8).allSatisfy { $0 | 0x20 == $1 }
}

/// Appends a Set-Cookie value to `headers["set-cookie"]` (the table on top), a list.
private func pushCookie(_ value: UnsafeRawBufferPointer, on T: LuaThread) {
    if lua_getfield(T, -1, "set-cookie") == LUA_TNIL {
        mw_pop(T, 1)
        lua_createtable(T, 1, 0)
        lua_pushvalue(T, -1)
        T.setField(-3, "set-cookie")
    }
    pushBytes(value, on: T)
    lua_rawseti(T, -2, lua_Integer(lua_rawlen(T, -2) + 1))
    mw_pop(T, 1)
}
