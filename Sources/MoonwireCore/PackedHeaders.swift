// Request headers kept for the life of a long connection (a WebSocket's handshake headers), in
// one string of "name:value\n" lines instead of HTTPHeaders' array of string pairs: each name
// or value over 15 bytes is a heap string of its own, and the array is reserved for more
// fields than arrive, so a handshake's few headers held about 500 bytes per connection where
// one string of their text holds 200. They are read rarely (a script's `ws.headers`, the
// session cookie), and then unpacked.
import NIOHTTP1

/// A compact copy of some headers, unpacked on reading.
struct PackedHeaders: Sendable {
    private enum Storage: Sendable {
        /// "name:value\n" for each field, in order.
        case packed(String)
        /// Fields the lines could not hold apart (a name with ":" or a line feed in a field);
        /// HTTP/1.1's parser lets none through, so only headers built in code end up here.
        case plain(HTTPHeaders)
    }

    private let storage: Storage

    init(_ headers: HTTPHeaders) {
        var count = 0
        for (name, value) in headers {
            guard !name.utf8.contains(Self.colon), !name.utf8.contains(Self.newline), !value.utf8.contains(Self.newline) else {
                storage = .plain(headers)
                return
            }
            count += name.utf8.count + value.utf8.count + 2
        }
        storage = .packed(
            String(unsafeUninitializedCapacity: count) { buffer in
                var index = 0
                func put(_ text: String) {
                    for byte in text.utf8 {
                        buffer[index] = byte
                        index += 1
                    }
                }
                for (name, value) in headers {
                    put(name)
                    buffer[index] = Self.colon
                    index += 1
                    put(value)
                    buffer[index] = Self.newline
                    index += 1
                }
                return index
            })
    }

    /// The headers, as they were given.
    var headers: HTTPHeaders {
        switch storage {
        case .plain(let headers):
            return headers
        case .packed(let lines):
            var headers = HTTPHeaders()
            for line in lines.utf8.split(separator: Self.newline) {
                let colon = line.firstIndex(of: Self.colon)!
                headers.add(name: String(Substring(line[..<colon])), value: String(Substring(line[line.index(after: colon)...])))
            }
            return headers
        }
    }

    private static let colon = UInt8(ascii: ":")
    private static let newline = UInt8(ascii: "\n")
}
