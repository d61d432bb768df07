// Small typed helpers over the Lua C API stack, so the bindings read as Swift and move bytes
// without String conversions where they can (lua_pushlstring straight from buffers).
import CLua
import NIOCore

/// A Lua state pointer (`lua_State *`), the main thread or a coroutine.
typealias LuaThread = OpaquePointer

/// A Swift function callable from Lua; see `mw_SwiftFunction` in the CLua shim.
typealias LuaFunction = @convention(c) (LuaThread?) -> Int32

/// The return codes a `LuaFunction` uses to raise an error or yield (performed in C).
enum LuaReturn {
    static let raise: Int32 = -1
    static let yield: Int32 = -2
}

extension LuaThread {
    /// Pushes a Swift string as Lua bytes.
    func push(_ string: String) {
        var string = string
        string.withUTF8 { bytes in
            _ = lua_pushlstring(self, bytes.baseAddress.map { UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self) }, bytes.count)
        }
    }

    /// Pushes the readable bytes of a buffer as a Lua string.
    func push(_ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { bytes in
            _ = lua_pushlstring(self, bytes.baseAddress?.assumingMemoryBound(to: CChar.self), bytes.count)
        }
    }

    /// Pushes bytes as a Lua string.
    func push(bytes: some Collection<UInt8>) {
        let pushed: Void? = bytes.withContiguousStorageIfAvailable { storage in
            _ = lua_pushlstring(self, UnsafeRawPointer(storage.baseAddress)?.assumingMemoryBound(to: CChar.self), storage.count)
        }
        if pushed == nil { push(bytes: Array(bytes)) }
    }

    /// Pushes a Swift function (through the C trampoline that raises and yields for it).
    func push(_ function: LuaFunction) {
        mw_pushswiftfunction(self, function)
    }

    /// The string at `index` (numbers are converted, as Lua does), or nil.
    func string(at index: Int32) -> String? {
        withBytes(at: index) { String(decoding: $0, as: UTF8.self) }
    }

    /// Calls `body` with the raw bytes of the string at `index` (numbers are converted, as Lua
    /// does); nil when it is neither, for which lua_tolstring gives NULL.
    func withBytes<T>(at index: Int32, _ body: (UnsafeRawBufferPointer) -> T) -> T? {
        var length = 0
        guard let pointer = mw_tolstring(self, index, &length) else { return nil }
        return body(UnsafeRawBufferPointer(start: pointer, count: length))
    }

    /// Pushes `table[name]` for the table at `index` without metamethods, and returns its type.
    /// For the option tables scripts pass: a script's `__index` must not run (and raise through
    /// Swift frames) in the middle of a Swift function.
    @discardableResult
    func rawField(_ index: Int32, _ name: String) -> Int32 {
        let table = lua_absindex(self, index)
        push(name)
        return lua_rawget(self, table)
    }

    /// The Lua type of the value at `index` (LUA_TNIL, LUA_TSTRING...).
    func type(at index: Int32) -> Int32 { lua_type(self, index) }

    /// The number at `index` if it is a number (or a numeric string).
    func number(at index: Int32) -> Double? {
        var isNumber: Int32 = 0
        let value = mw_tonumber(self, index, &isNumber)
        return isNumber != 0 ? value : nil
    }

    /// Sets `table[name] = value on top` for the table at `index`, popping the value.
    func setField(_ index: Int32, _ name: String) {
        lua_setfield(self, index, name)
    }

    /// Sets `table[name] = function` for the table on top of the stack.
    func setFunction(_ name: String, _ function: LuaFunction) {
        push(function)
        lua_setfield(self, -2, name)
    }

    /// Pushes an error message and returns the code that makes the trampoline raise it.
    func raise(_ message: String) -> Int32 {
        push(message)
        return LuaReturn.raise
    }

    /// Converts any value to text as Lua's `tostring` does (pushing nothing). A failing
    /// `__tostring` gives a placeholder, never an error (see `mw_describe`).
    func describe(at index: Int32) -> String {
        var length = 0
        guard let pointer = mw_describe(self, index, &length) else { return "?" }
        let text = String(decoding: UnsafeRawBufferPointer(start: pointer, count: length), as: UTF8.self)
        mw_pop(self, 1)
        return text
    }

    /// `file:line` of the Lua code that called the running function, or "" when unknown.
    func callerLocation() -> String { location(level: 1) }

    /// `file:line` of the running Lua function (from a hook), or "" when unknown.
    func currentLocation() -> String { location(level: 0) }

    private func location(level: Int32) -> String {
        var debug = lua_Debug()
        guard lua_getstack(self, level, &debug) != 0, lua_getinfo(self, "Sl", &debug) != 0, debug.currentline > 0 else {
            return ""
        }
        let source = withUnsafeBytes(of: &debug.short_src) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
        return "\(source):\(debug.currentline)"
    }
}
