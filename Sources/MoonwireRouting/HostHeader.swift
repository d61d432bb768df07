// The host name part of a Host header (or HTTP/2 :authority): virtual host patterns describe
// names, not ports, so the port is cut off first. IPv6 literals keep their brackets, which is
// how they appear in URLs and how a pattern would spell them (`\[::1\]`).

/// Splitting the port off a Host header value.
public enum HostHeader {
    /// `value` without its `:port`: `example.com:80` → `example.com`, `[::1]:8080` → `[::1]`,
    /// `EXAMPLE.com` unchanged (case is left to the caseless host patterns), a missing or
    /// empty header → "". A value with several colons and no brackets is not a host:port
    /// pair and is returned whole.
    public static func withoutPort(_ value: String) -> String {
        let bytes = value.utf8
        return String(value[..<bytes.index(bytes.startIndex, offsetBy: hostLength(of: bytes))])
    }

    /// How many leading bytes of a Host value are the host name, for callers holding bytes.
    static func hostLength(of value: some Collection<UInt8>) -> Int {
        let colon = UInt8(ascii: ":")
        if value.first == UInt8(ascii: "[") {
            guard let close = value.firstIndex(of: UInt8(ascii: "]")) else { return value.count }
            return value.distance(from: value.startIndex, to: close) + 1
        }
        guard let first = value.firstIndex(of: colon) else { return value.count }
        let rest = value[value.index(after: first)...]
        return rest.contains(colon) ? value.count : value.distance(from: value.startIndex, to: first)
    }
}
