// One entry of a route table: the methods it answers, its compiled path pattern, where the
// router keeps its handler, and the literal prefix the table indexes it under. Not generic
// over the handler, so lookups run as specialized code whatever the caller's handler type.

/// A registered route.
struct Route {
    /// Accepted methods, uppercase; nil accepts every method.
    let methods: [String]?
    /// The path pattern, compiled anchored at both ends.
    let regex: Regex
    /// Position of the route's handler in the router's handler list.
    let handlerSlot: Int
    /// Bytes every path this route matches starts with (see ``LiteralPrefix``).
    let literalPrefix: [UInt8]

    /// Whether this route answers `method` (case-sensitive, as HTTP methods are).
    func accepts(_ method: String) -> Bool {
        methods?.contains(method) ?? true
    }
}
