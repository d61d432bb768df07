// The Date header value (RFC 9110 section 5.6.7), formatted at most once a second per loop.
// Foundation's DateFormatter costs microseconds per call; a response path cannot pay that.
import Glibc

/// Caches the IMF-fixdate of the current second. One per event loop; not thread-safe.
final class HTTPDateCache {
    private var second: time_t = 0
    private var cached = ""

    /// Three letters per day (Sunday first) and per month.
    private static let days: StaticString = "SunMonTueWedThuFriSat"
    private static let months: StaticString = "JanFebMarAprMayJunJulAugSepOctNovDec"

    /// Today's date as "Sun, 06 Nov 1994 08:49:37 GMT".
    var now: String {
        let current = time(nil)
        if current != second {
            second = current
            cached = Self.format(current)
        }
        return cached
    }

    /// Also the Last-Modified of every static file, so written byte by byte.
    static func format(_ seconds: time_t) -> String {
        var value = seconds
        var parts = tm()
        gmtime_r(&value, &parts)
        // 29 bytes with a four-digit year; gmtime's years go up to twelve digits.
        return String(ascii: 40) { out in
            out.append(days, offset: 3 * Int(parts.tm_wday), length: 3)
            out.append(", ")
            out.append(Int(parts.tm_mday), width: 2)
            out.append(" ")
            out.append(months, offset: 3 * Int(parts.tm_mon), length: 3)
            out.append(" ")
            out.append(Int(parts.tm_year) + 1900, width: 4)
            out.append(" ")
            out.append(Int(parts.tm_hour), width: 2)
            out.append(":")
            out.append(Int(parts.tm_min), width: 2)
            out.append(":")
            out.append(Int(parts.tm_sec), width: 2)
            out.append(" GMT")
        }
    }
}
