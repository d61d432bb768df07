// moonwire.metrics: counters, gauges and histograms that scripts add to the server's
// Prometheus exposition. The series live in the server's registry (ServerMetrics), shared by
// every loop and kept across reloads; a script's object is a handle to this VM's list of the
// series it asked for, so asking again for the same name and labels (in a handler, on every
// request) finds the same series instead of growing anything.
import CLua
import MoonwireCore
import Prometheus

extension LuaAPI {
    static let metricsCounter = LuaAPIFunction("moonwire.metrics.counter", .anywhere)
    static let metricsGauge = LuaAPIFunction("moonwire.metrics.gauge", .anywhere)
    static let metricsHistogram = LuaAPIFunction("moonwire.metrics.histogram", .anywhere)
    static let counterInc = LuaAPIFunction("counter:inc", .anywhere)
    static let gaugeSet = LuaAPIFunction("gauge:set", .anywhere)
    static let gaugeInc = LuaAPIFunction("gauge:inc", .anywhere)
    static let gaugeDec = LuaAPIFunction("gauge:dec", .anywhere)
    static let histogramObserve = LuaAPIFunction("histogram:observe", .anywhere)
    /// Anywhere: series are made while the scripts load and counted while serving.
    static let metricsFunctions = [
        metricsCounter, metricsGauge, metricsHistogram, counterInc, gaugeSet, gaugeInc, gaugeDec, histogramObserve,
    ]
}

/// A series a script asked for.
enum ScriptSeries {
    case counter(Counter)
    case gauge(Gauge)
    case histogram(ValueHistogram)
}

/// This VM's script series: the handles' ids index `list`.
struct ScriptSeriesTable {
    var list: [ScriptSeries] = []
    /// Ids by kind, name and labels.
    var ids: [String: Int] = [:]
}

let luaCounterKind = LuaHandleKind(name: "moonwire.counter", methods: [("inc", luaCounterInc)], collected: nil)
let luaGaugeKind = LuaHandleKind(
    name: "moonwire.gauge", methods: [("set", luaGaugeSet), ("inc", luaGaugeInc), ("dec", luaGaugeDec)], collected: nil)
let luaHistogramKind = LuaHandleKind(name: "moonwire.histogram", methods: [("observe", luaHistogramObserve)], collected: nil)

/// Prometheus's default buckets, for a histogram made without its own.
private let defaultBuckets = LatencyHistogram.bounds

extension LuaVM {
    /// Pushes the moonwire.metrics table.
    func installMetrics() {
        luaCounterKind.install(in: L)
        luaGaugeKind.install(in: L)
        luaHistogramKind.install(in: L)
        lua_createtable(L, 0, 3)
        L.setFunction("counter", luaMetricsCounter)
        L.setFunction("gauge", luaMetricsGauge)
        L.setFunction("histogram", luaMetricsHistogram)
    }

    /// Finds or makes the series, and pushes its handle.
    fileprivate func pushSeries(
        _ L: LuaThread, _ function: LuaAPIFunction, kind: MetricKind, buckets: [Double]?
    ) -> Int32 {
        guard L.type(at: 1) == LUA_TSTRING, let name = L.string(at: 1) else {
            return L.raise("\(function.name): expected a metric name, got \(L.describe(at: 1))")
        }
        guard !name.hasPrefix("moonwire_") else {
            return L.raise("\(function.name): names starting with moonwire_ are the server's (\"\(name)\")")
        }
        let labels: [(String, String)]
        switch readLabels(L, at: 2) {
        case .success(let read): labels = read
        case .failure(let error): return L.raise("\(function.name): \(error.description)")
        }
        let sorted: [(String, String)]
        do {
            sorted = try MetricNames.check(name: name, labels: labels, kind: kind)
            try runtime.metrics.families.claim(name: name, kind: kind, labelNames: sorted.map(\.0), buckets: buckets)
        } catch {
            return L.raise("\(function.name): \(error.description)")
        }
        let key = ([kind.rawValue, name] + sorted.flatMap { [$0.0, $0.1] }).joined(separator: "\u{0}")
        let handle: LuaHandleKind
        switch kind {
        case .counter: handle = luaCounterKind
        case .gauge: handle = luaGaugeKind
        case .histogram: handle = luaHistogramKind
        }
        if let id = scriptSeries.ids[key] {
            handle.push(id, on: L)
            return 1
        }
        let registry = runtime.metrics.registry
        let series: ScriptSeries
        switch kind {
        case .counter: series = .counter(registry.makeCounter(descriptor: ServerMetrics.name(name), labels: sorted))
        case .gauge: series = .gauge(registry.makeGauge(descriptor: ServerMetrics.name(name), labels: sorted))
        case .histogram:
            series = .histogram(registry.makeValueHistogram(descriptor: ServerMetrics.name(name), labels: sorted, buckets: buckets ?? []))
        }
        let id = scriptSeries.list.count
        scriptSeries.list.append(series)
        scriptSeries.ids[key] = id
        handle.push(id, on: L)
        return 1
    }
}

/// The labels table at `index` (absent or nil: none): string keys, string or number values.
private func readLabels(_ L: LuaThread, at index: Int32) -> Result<[(String, String)], MetricError> {
    switch L.type(at: index) {
    case LUA_TNONE, LUA_TNIL: return .success([])
    case LUA_TTABLE: break
    default: return .failure(MetricError(description: "labels must be a table of name = value, got \(L.describe(at: index))"))
    }
    var labels: [(String, String)] = []
    let table = lua_absindex(L, index)
    lua_pushnil(L)
    while lua_next(L, table) != 0 {
        defer { mw_pop(L, 1) }
        guard L.type(at: -2) == LUA_TSTRING, let name = L.string(at: -2) else {
            mw_pop(L, 1)
            return .failure(MetricError(description: "label names must be strings, got \(L.describe(at: -1))"))
        }
        let type = L.type(at: -1)
        guard type == LUA_TSTRING || type == LUA_TNUMBER, let value = L.string(at: -1) else {
            let message = "the value of label \"\(name)\" must be a string or a number, got \(L.describe(at: -1))"
            mw_pop(L, 1)
            return .failure(MetricError(description: message))
        }
        labels.append((name, value))
        if labels.count > 16 {
            mw_pop(L, 1)
            return .failure(MetricError(description: "at most 16 labels"))
        }
    }
    return .success(labels)
}

/// The histogram buckets at `index`: absent or nil for the defaults, else increasing numbers.
private func readBuckets(_ L: LuaThread, at index: Int32) -> Result<[Double]?, MetricError> {
    switch L.type(at: index) {
    case LUA_TNONE, LUA_TNIL: return .success(nil)
    case LUA_TTABLE: break
    default: return .failure(MetricError(description: "buckets must be a list of increasing numbers, got \(L.describe(at: index))"))
    }
    let count = Int(lua_rawlen(L, index))
    guard (1...64).contains(count) else { return .failure(MetricError(description: "buckets must list 1 to 64 numbers")) }
    var buckets: [Double] = []
    for position in 1...count {
        lua_rawgeti(L, index, lua_Integer(position))
        let value = L.type(at: -1) == LUA_TNUMBER ? L.number(at: -1) : nil
        mw_pop(L, 1)
        guard let value, value.isFinite, value > (buckets.last ?? -.infinity) else {
            return .failure(MetricError(description: "buckets must be finite numbers in increasing order"))
        }
        buckets.append(value)
    }
    return .success(buckets)
}

/// `moonwire.metrics.counter(name [, labels])`.
private let luaMetricsCounter: LuaFunction = { L in
    let L = L!
    return LuaVM.from(L).pushSeries(L, LuaAPI.metricsCounter, kind: .counter, buckets: nil)
}

/// `moonwire.metrics.gauge(name [, labels])`.
private let luaMetricsGauge: LuaFunction = { L in
    let L = L!
    return LuaVM.from(L).pushSeries(L, LuaAPI.metricsGauge, kind: .gauge, buckets: nil)
}

/// `moonwire.metrics.histogram(name [, labels [, buckets]])`.
private let luaMetricsHistogram: LuaFunction = { L in
    let L = L!
    switch readBuckets(L, at: 3) {
    case .success(let buckets):
        return LuaVM.from(L).pushSeries(L, LuaAPI.metricsHistogram, kind: .histogram, buckets: buckets ?? defaultBuckets)
    case .failure(let error):
        return L.raise("\(LuaAPI.metricsHistogram.name): \(error.description)")
    }
}

/// The series of the handle at 1, when it is one of `kind`.
private func series(_ L: LuaThread, _ kind: LuaHandleKind) -> ScriptSeries? {
    guard let id = kind.id(at: 1, on: L) else { return nil }
    let table = LuaVM.from(L).scriptSeries
    return id < table.list.count ? table.list[id] : nil
}

/// The amount at 2 for inc and dec: absent for 1; else a finite number, not negative when
/// `positive` (a counter only goes up).
private func amount(_ L: LuaThread, positive: Bool) -> Double? {
    if L.type(at: 2) == LUA_TNONE || L.type(at: 2) == LUA_TNIL { return 1 }
    guard L.type(at: 2) == LUA_TNUMBER, let value = L.number(at: 2), value.isFinite, !positive || value >= 0 else { return nil }
    return value
}

/// `counter:inc([n])`.
private let luaCounterInc: LuaFunction = { L in
    let L = L!
    guard case .counter(let counter)? = series(L, luaCounterKind) else {
        return L.raise("counter:inc: expected a counter (call it as counter:inc(n))")
    }
    guard let value = amount(L, positive: true) else {
        return L.raise("counter:inc: expected a number of 0 or more, got \(L.describe(at: 2))")
    }
    if value == value.rounded(), value < 1e15 { counter.increment(by: Int64(value)) } else { counter.increment(by: value) }
    return 0
}

/// The gauge a gauge method was called on; nil when it is not one.
private func gauge(_ L: LuaThread) -> Gauge? {
    guard case .gauge(let gauge)? = series(L, luaGaugeKind) else { return nil }
    return gauge
}

/// `gauge:set(v)`.
private let luaGaugeSet: LuaFunction = { L in
    let L = L!
    guard let gauge = gauge(L) else { return L.raise("gauge:set: expected a gauge (call it as gauge:set(v))") }
    guard L.type(at: 2) == LUA_TNUMBER, let value = L.number(at: 2), value.isFinite else {
        return L.raise("gauge:set: expected a finite number, got \(L.describe(at: 2))")
    }
    gauge.set(to: value)
    return 0
}

/// `gauge:inc([n])`.
private let luaGaugeInc: LuaFunction = { L in
    let L = L!
    guard let gauge = gauge(L) else { return L.raise("gauge:inc: expected a gauge (call it as gauge:inc(n))") }
    guard let value = amount(L, positive: false) else {
        return L.raise("gauge:inc: expected a finite number, got \(L.describe(at: 2))")
    }
    gauge.increment(by: value)
    return 0
}

/// `gauge:dec([n])`.
private let luaGaugeDec: LuaFunction = { L in
    let L = L!
    guard let gauge = gauge(L) else { return L.raise("gauge:dec: expected a gauge (call it as gauge:dec(n))") }
    guard let value = amount(L, positive: false) else {
        return L.raise("gauge:dec: expected a finite number, got \(L.describe(at: 2))")
    }
    gauge.decrement(by: value)
    return 0
}

/// `histogram:observe(v)`.
private let luaHistogramObserve: LuaFunction = { L in
    let L = L!
    guard case .histogram(let histogram)? = series(L, luaHistogramKind) else {
        return L.raise("histogram:observe: expected a histogram (call it as histogram:observe(v))")
    }
    guard L.type(at: 2) == LUA_TNUMBER, let value = L.number(at: 2), value.isFinite else {
        return L.raise("histogram:observe: expected a finite number, got \(L.describe(at: 2))")
    }
    histogram.record(value)
    return 0
}
