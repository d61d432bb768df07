// res:write and res:finish: a body sent piece by piece (video, logs, long computations).
// A write to a client that reads slowly suspends the handler until the socket drains, so a
// stream never piles up in memory.
import CLua
import MoonwireCore
import NIOCore

/// `res:write(chunk)`: the first call sends the head (status and headers as set so far, and
/// whatever res:send buffered); each call sends one chunk. Returns true, or nil and "closed"
/// once the client is gone.
let responseWrite: LuaFunction = { L in
    let L = L!
    guard let call = responseCall(L, LuaAPI.responseWrite, streaming: true) else { return LuaReturn.raise }
    guard !call.responded else { return L.raise("res:write: the response was already finished") }
    guard L.type(at: 2) == LUA_TSTRING || L.type(at: 2) == LUA_TNUMBER else {
        return L.raise("res:write: expected a string, got \(L.describe(at: 2))")
    }
    let stream = call.stream ?? startStream(call)
    guard stream.isOpen else {
        lua_pushnil(L)
        L.push("closed")
        return 2
    }
    let vm = LuaVM.from(L)
    _ = L.withBytes(at: 2) { bytes in
        var chunk = ByteBufferAllocator().buffer(capacity: bytes.count)
        chunk.writeBytes(bytes)
        stream.write(chunk)
    }
    call.lastProgress = .now()
    vm.disarmDeadline(call)
    if stream.isWritable || vm.eventLoop == nil {
        lua_pushboolean(L, 1)
        return 1
    }
    guard lua_isyieldable(L) != 0, vm.runningCall === call, call.thread == L else {
        lua_pushboolean(L, 1)
        return 1
    }
    let callID = call.id
    call.isWaiting = true
    // The VM held strongly (a weak reference would slow all its retains, see
    // LuaCallDeadlines.swift): the stream drops its waiters when the response ends.
    stream.whenWritable {
        guard let call = vm.calls[callID] else { return }
        if stream.isOpen {
            lua_pushboolean(call.thread, 1)
            vm.proceed(call, arguments: 1)
        } else {
            lua_pushnil(call.thread)
            call.thread.push("closed")
            vm.proceed(call, arguments: 2)
        }
    }
    return LuaReturn.yield
}

/// `res:finish()`: ends a streamed body, or sends the buffered response now; the handler may
/// go on working after the client has its answer.
let responseFinish: LuaFunction = { L in
    let L = L!
    guard let call = responseCall(L, LuaAPI.responseFinish, streaming: true) else { return LuaReturn.raise }
    if let stream = call.stream {
        stream.finish()
    } else if !call.responded {
        call.responded = true
        call.responder.respond(call.response)
    }
    return 0
}

/// Sends the head of a streamed response, with what res:send had buffered as the first chunk.
private func startStream(_ call: LuaCall) -> HTTPResponseStream {
    var headers = call.headers
    if !headers.contains(name: "content-type") {
        headers.add(name: "content-type", value: "text/plain; charset=utf-8")
    }
    call.answered = true
    let stream = call.responder.startStream(status: call.status, headers: headers)
    call.stream = stream
    if call.body.readableBytes > 0 {
        stream.write(call.body)
        call.body.clear()
    }
    return stream
}
