// HTTP dates (RFC 9110 section 5.6.7): formatting, and parsing of the three forms a
// recipient must accept.
import Glibc

/// Conversions between HTTP date strings and seconds since the epoch.
enum HTTPDate {
    private static let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]

    /// "Sun, 06 Nov 1994 08:49:37 GMT".
    static func format(_ seconds: Int) -> String {
        HTTPDateCache.format(time_t(seconds))
    }

    /// Seconds since the epoch for an IMF-fixdate, an RFC 850 date or an asctime date.
    static func parse(_ text: String) -> Int? {
        let words = text.split(whereSeparator: { $0 == " " || $0 == "," || $0 == "-" }).map { $0.lowercased() }
        var day: Int?, month: Int?, year: Int?, clock: [Int]?
        for word in words {
            if let index = months.firstIndex(of: word) {
                month = index
            } else if word.contains(":") {
                let parts = word.split(separator: ":").compactMap { Int($0) }
                guard parts.count == 3 else { return nil }
                clock = parts
            } else if let number = Int(word) {
                if number > 31 || word.count == 4 { year = number } else if day == nil { day = number } else { year = number }
            }
        }
        guard let day, let month, var year, let clock else { return nil }
        if year < 100 { year += year < 70 ? 2000 : 1900 }
        var parts = tm()
        parts.tm_year = Int32(year - 1900)
        parts.tm_mon = Int32(month)
        parts.tm_mday = Int32(day)
        parts.tm_hour = Int32(clock[0])
        parts.tm_min = Int32(clock[1])
        parts.tm_sec = Int32(clock[2])
        let seconds = timegm(&parts)
        return seconds < 0 ? nil : Int(seconds)
    }
}
