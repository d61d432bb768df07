// The two access log formats: Apache's combined format, which log analysers read, and one JSON
// object per line, which log shippers read.
import Glibc

enum AccessLogLine {
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// The time of a line, in UTC: `06/Dec/2026:15:42:59 +0000` (combined) or
    /// `2026-12-06T15:42:59Z` (JSON).
    static func timestamp(_ seconds: time_t, format: AccessLog.Format) -> String {
        var value = seconds
        var parts = tm()
        gmtime_r(&value, &parts)
        func two(_ number: Int32) -> String { number < 10 ? "0\(number)" : "\(number)" }
        let year = parts.tm_year + 1900
        let clock = "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))"
        switch format {
        case .combined: return "\(two(parts.tm_mday))/\(months[Int(parts.tm_mon)])/\(year):\(clock) +0000"
        case .json: return "\(year)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(clock)Z"
        }
    }

    /// Appends the line of `entry` and its newline.
    static func append(
        _ entry: AccessLogEntry, time: String, milliseconds: Double, format: AccessLog.Format, to out: inout [UInt8]
    ) {
        switch format {
        case .combined:
            // host ident user [time] "request" status bytes "referer" "user agent"
            let bytes = entry.bytes.map { $0 == 0 ? "-" : "\($0)" } ?? "-"
            out += "\(entry.remoteIP) - - [\(time)] \"".utf8
            quoted(entry.method, to: &out)
            out.append(0x20)
            quoted(entry.target, to: &out)
            out.append(0x20)
            quoted(entry.version, to: &out)
            out += "\" \(entry.status) \(bytes) \"".utf8
            quoted(entry.referer.isEmpty ? "-" : entry.referer, to: &out)
            out += "\" \"".utf8
            quoted(entry.userAgent.isEmpty ? "-" : entry.userAgent, to: &out)
            out += "\"\n".utf8
        case .json:
            out += "{\"time\":\"\(time)\",\"remote\":".utf8
            json(entry.remoteIP, to: &out)
            out += ",\"method\":".utf8
            json(entry.method, to: &out)
            out += ",\"target\":".utf8
            json(entry.target, to: &out)
            out += ",\"protocol\":".utf8
            json(entry.version, to: &out)
            out += ",\"status\":\(entry.status),\"bytes\":\(entry.bytes.map(String.init) ?? "null"),\"referer\":".utf8
            json(entry.referer, to: &out)
            out += ",\"user_agent\":".utf8
            json(entry.userAgent, to: &out)
            let rounded = (milliseconds * 1000).rounded() / 1000
            out += ",\"duration_ms\":\(rounded)}\n".utf8
        }
    }

    /// Inside a combined line's quotes: `"` and `\` escaped, control bytes as `\xHH`, so a
    /// client cannot forge a line (nginx does the same).
    private static func quoted(_ text: String, to out: inout [UInt8]) {
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"):
                out.append(UInt8(ascii: "\\"))
                out.append(byte)
            case 0..<0x20, 0x7F:
                out += "\\x".utf8
                out.append(hex(byte >> 4))
                out.append(hex(byte & 0xF))
            default:
                out.append(byte)
            }
        }
    }

    /// A JSON string (RFC 8259).
    private static func json(_ text: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"):
                out.append(UInt8(ascii: "\\"))
                out.append(byte)
            case 0..<0x20:
                out += "\\u00".utf8
                out.append(hex(byte >> 4))
                out.append(hex(byte & 0xF))
            default:
                out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    private static func hex(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
    }
}
