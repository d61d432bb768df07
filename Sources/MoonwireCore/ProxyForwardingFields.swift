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
    /// Its own memory, not an array: reading an array of the object's retains it.
    private var lines = UnsafeMutableRawBufferPointer(start: nil, count: 0)

    public init() {}

    deinit {
        lines.deallocate()
    }

    /// Writes the fields for `ip`, `host` and `scheme`: the copy when it was made for them,
    /// else those `make` writes (which become the copy).
    func write(_ line: inout ByteCursor, ip: String, host: String?, scheme: String, make: (inout ByteCursor) -> Void) {
        if lines.isEmpty || ip != self.ip || host != self.host || scheme != self.scheme {
            self.ip = ip
            self.host = host
            self.scheme = scheme
            lines.deallocate()
            let memory = UnsafeMutableRawBufferPointer.allocate(
                byteCount: ProxyHeaders.forwardingFieldsSize(ip: ip, host: host, scheme: scheme), alignment: 1)
            var fields = ByteCursor(memory)
            make(&fields)
            lines = UnsafeMutableRawBufferPointer(rebasing: memory[..<fields.count])
        }
        line.append(bytes: UnsafeRawBufferPointer(lines))
    }
}
