// `req:read([max_bytes])`: the body of a `stream_body` route, chunk by chunk as the client
// sends it. The handler waits for each chunk (LuaWaiter); the client is read only as fast as
// the handler takes chunks, since the body stream holds the socket's reads while its
// untaken bytes pass its high-water mark (RequestBodyStream), and max_body_size still ends
// the body with 413.
import CLua
import MoonwireCore
import NIOCore

/// `req:read([max_bytes])` → the next chunk (at most `max_bytes`), or nil at the end; `nil, err`
/// when the client left or the body passed max_body_size.
let requestRead: LuaFunction = { L in
    let L = L!
    guard let call = LuaVM.call(ofObjectAt: 1, on: L, kind: .request, function: LuaAPI.requestRead) else {
        return LuaReturn.raise
    }
    var maxBytes = Int.max
    if L.type(at: 2) != LUA_TNONE, L.type(at: 2) != LUA_TNIL {
        guard let value = L.number(at: 2), value >= 1, value < 1e15 else {
            return L.raise("req:read: max_bytes must be a number of bytes, 1 or more")
        }
        maxBytes = Int(value)
    }
    guard let stream = call.request.bodyStream else {
        return L.raise("req:read: this route does not take its body as a stream (declare it with {stream_body = true})")
    }
    guard let waiter = LuaVM.waiter(L, LuaAPI.requestRead) else { return LuaReturn.raise }
    stream.read(maxBytes: maxBytes).assumeIsolated().whenComplete { result in
        switch result {
        case .success(let chunk?):
            // Each chunk is progress: handler_timeout counts from the last one.
            if let call = waiter.vm.calls[waiter.callID] {
                call.lastProgress = .now()
                waiter.vm.disarmDeadline(call)
            }
            waiter.resume { T in
                T.push(chunk)
                return 1
            }
        case .success(nil):
            waiter.resume { T in
                lua_pushnil(T)
                return 1
            }
        case .failure(let error):
            let why = error as? RequestBodyStream.Failure == .clientLeft ? "the client left" : "the body exceeds max_body_size"
            waiter.resume(failure: "req:read: \(why)")
        }
    }
    return LuaReturn.yield
}
