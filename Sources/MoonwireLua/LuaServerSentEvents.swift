// res:sse and the stream it returns: a `text/event-stream` answer that a handler writes events
// to, and that broadcasts on its channels reach after the handler has returned. The stream
// itself lives in Swift (ServerSentEventStream); scripts hold a handle to it by id.
import CLua
import MoonwireCore
import NIOCore
import NIOHTTP1

/// The event streams of a VM by handle id; a handle the collector frees lets go of its entry,
/// while the stream lives on as long as its connection (and its channels) keep it.
struct LuaEventStreamTable {
    var byID: [Int: ServerSentEventStream] = [:]
    var lastID = 0
}

let luaEventStreamKind = LuaHandleKind(
    name: "moonwire.sse",
    methods: [("send", eventStreamSend), ("subscribe", eventStreamSubscribe), ("close", eventStreamClose)],
    collected: { L in
        let L = L!
        if let id = luaEventStreamKind.id(at: 1, on: L) { LuaVM.from(L).eventStreams.byID[id] = nil }
        return 0
    })

/// `res:sse()`: sends the head of an event stream (status as set, no compression, no caching,
/// no proxy buffering) and returns the stream.
let responseSSE: LuaFunction = { L in
    let L = L!
    guard let call = responseCall(L, LuaAPI.responseSSE) else { return LuaReturn.raise }
    let vm = LuaVM.from(L)
    guard !vm.isWorker, let loop = vm.eventLoop else {
        return L.raise("res:sse: not in an asynchronous handler (its worker loop does not own the connection)")
    }
    var headers = call.headers
    headers.replaceOrAdd(name: "content-type", value: "text/event-stream; charset=utf-8")
    headers.replaceOrAdd(name: "cache-control", value: "no-cache")
    headers.replaceOrAdd(name: "x-accel-buffering", value: "no")
    call.answered = true
    let stream = call.responder.startStream(status: call.status, headers: headers)
    call.stream = stream
    let events = ServerSentEventStream(
        stream, settings: vm.settings.serverSentEvents, registry: vm.runtime.webSockets, logger: vm.logger, eventLoop: loop)
    call.eventStream = events
    // A HEAD request gets the head alone: its stream ends at once (sends return nil, "closed",
    // subscriptions are not taken), so the connection does not stay open for events.
    if call.request.method == "HEAD" { events.close() }
    vm.eventStreams.lastID += 1
    vm.eventStreams.byID[vm.eventStreams.lastID] = events
    luaEventStreamKind.push(vm.eventStreams.lastID, on: L)
    return 1
}

/// The stream of the handle at 1 for `function`, or nil with the error pushed.
private func eventStream(_ L: LuaThread, _ function: LuaAPIFunction) -> ServerSentEventStream? {
    guard let vm = LuaVM.checked(L, function) else { return nil }
    guard let id = luaEventStreamKind.id(at: 1, on: L), let stream = vm.eventStreams.byID[id] else {
        L.push("\(function.name): expected the stream res:sse() returned, got \(L.describe(at: 1))")
        return nil
    }
    return stream
}

/// `sse:send(text)` or `sse:send{event=, data=, id=, retry=}` → true, or nil and "closed" once
/// the client is gone (or was dropped for not reading).
private let eventStreamSend: LuaFunction = { L in
    let L = L!
    guard let stream = eventStream(L, LuaAPI.sseSend) else { return LuaReturn.raise }
    let event: ServerSentEvent
    switch readEvent(L) {
    case .success(let read): event = read
    case .failure(let message): return L.raise("sse:send: \(message.text)")
    }
    guard stream.send(event.encoded()) else {
        lua_pushnil(L)
        L.push("closed")
        return 2
    }
    let vm = LuaVM.from(L)
    if let call = vm.runningCall, call.eventStream === stream {
        call.lastProgress = .now()
        vm.disarmDeadline(call)
    }
    lua_pushboolean(L, 1)
    return 1
}

private struct EventError: Error {
    let text: String
}

/// The event at index 2: a string (its data) or a table of fields.
private func readEvent(_ L: LuaThread) -> Result<ServerSentEvent, EventError> {
    let type = L.type(at: 2)
    if type == LUA_TSTRING || type == LUA_TNUMBER {
        // Only `event` and `id` are ever refused: data alone cannot fail.
        return .success(try! ServerSentEvent(data: L.string(at: 2)))
    }
    guard type == LUA_TTABLE else { return .failure(EventError(text: "expected a string or a table, got \(L.describe(at: 2))")) }
    if let unknown = LuaSettingKeys.unknownKey(L, at: 2, known: ["event", "data", "id", "retry"]) {
        return .failure(EventError(text: unknown.replacingOccurrences(of: "option", with: "field")))
    }
    func text(_ name: String) -> Result<String?, EventError> {
        L.rawField(2, name)
        defer { mw_pop(L, 1) }
        switch L.type(at: -1) {
        case LUA_TNIL: return .success(nil)
        case LUA_TSTRING, LUA_TNUMBER: return .success(L.string(at: -1))
        default: return .failure(EventError(text: "\(name) must be a string, got \(L.describe(at: -1))"))
        }
    }
    L.rawField(2, "retry")
    let retryValue = L.type(at: -1) == LUA_TNIL ? nil : L.number(at: -1)
    let retryGiven = L.type(at: -1) != LUA_TNIL
    mw_pop(L, 1)
    if retryGiven {
        guard let retryValue, retryValue >= 0, retryValue < 1e12, retryValue == retryValue.rounded() else {
            return .failure(EventError(text: "retry must be a whole number of milliseconds"))
        }
    }
    do {
        let event = try ServerSentEvent(
            event: text("event").get(), data: text("data").get(), id: text("id").get(), retry: retryValue.map { Int($0) })
        guard event.event != nil || event.data != nil || event.id != nil || event.retry != nil else {
            return .failure(EventError(text: "the event has none of event, data, id, retry"))
        }
        return .success(event)
    } catch let error as EventError {
        return .failure(error)
    } catch {
        return .failure(EventError(text: "\(error)"))
    }
}

/// `sse:subscribe(channel)`: broadcasts on the channel reach the stream, which stays open
/// after the handler returns, until the client leaves or `sse:close()`.
private let eventStreamSubscribe: LuaFunction = { L in
    let L = L!
    guard let stream = eventStream(L, LuaAPI.sseSubscribe) else { return LuaReturn.raise }
    guard let channel = L.string(at: 2) else { return L.raise("sse:subscribe: expected a channel name") }
    stream.subscribe(to: channel)
    return 0
}

/// `sse:close()`: ends the stream; a browser's EventSource reconnects with Last-Event-ID.
private let eventStreamClose: LuaFunction = { L in
    let L = L!
    guard let stream = eventStream(L, LuaAPI.sseClose) else { return LuaReturn.raise }
    stream.close()
    return 0
}
