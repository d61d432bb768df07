// The Date header value (RFC 9110 section 5.6.7), formatted at most once a second per loop.
// Foundation's DateFormatter costs microseconds per call; a response path cannot pay that.
import Glibc

/// Caches the IMF-fixdate of the current second. One per event loop; not thread-safe.
final class HTTPDateCache {
    private var second: time_t = 0
    private var cached = ""

    private static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// Today's date as "Sun, 06 Nov 1994 08:49:37 GMT".
    var now: String {
        let current = time(nil)
        if current != second {
            second = current
            cached = Self.format(current)
        }
        return cached
    }

    static func format(_ seconds: time_t) -> String {
        var value = seconds
        var parts = tm()
        gmtime_r(&value, &parts)
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }
}
