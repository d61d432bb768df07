// The fields a proxy adds for its client (X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host
// and Forwarded) are the same for every request of a connection when the client sent none of
// its own: a route keeps the last ones it wrote and copies them whole while the client's address,
// host and scheme stay the same (writing them field by field, the Forwarded element escaped,
// cost about 480 instructions per forwarded request).

/// The forwarding fields a route wrote last. Confined to its route's loop (a script's routes
/// are its loop's), as the exchanges that use it are.
public final class ProxyForwardingFields {
    private var ip = ""
    private var host: String?
    private var scheme = ""
    /// Its own memory, not an array: reading an array of the object's retains it. Kept at
    /// its largest size, so that clients of other addresses taking turns (a route's usual
    /// traffic) rewrite the fields in place, with no allocation per request.
    private var memory = UnsafeMutableRawBufferPointer(start: nil, count: 0)
    /// How many bytes of `memory` the fields take; 0 before the first write.
    private var length = 0

    public init() {}

    deinit {
        memory.deallocate()
    }

    /// Writes the fields for `ip`, `host` and `scheme`: the copy when it was made for them,
    /// else those `make` writes (which become the copy).
    func write(_ line: inout ByteCursor, ip: String, host: String?, scheme: String, make: (inout ByteCursor) -> Void) {
        if length == 0 || ip != self.ip || host != self.host || scheme != self.scheme {
            self.ip = ip
            self.host = host
            self.scheme = scheme
            let size = ProxyHeaders.forwardingFieldsSize(ip: ip, host: host, scheme: scheme)
            if size > memory.count {
                memory.deallocate()
                memory = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 1)
            }
            var fields = ByteCursor(memory)
            make(&fields)
            length = fields.count
        }
        line.append(bytes: UnsafeRawBufferPointer(rebasing: memory[..<length]))
    }
}
