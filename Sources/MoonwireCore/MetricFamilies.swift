// The rules a Prometheus series must follow before it reaches swift-prometheus, whose
// registry stops the process (fatalError) on a bad name, on a name given two types, or on a
// family mixing label sets: a script's mistake must be an error it can read, not a crash.
import NIOConcurrencyHelpers

/// The three kinds of series scripts and the server make.
public enum MetricKind: String, Sendable {
    case counter, gauge, histogram
}

/// Why a series cannot be made; `description` is the message a script sees.
public struct MetricError: Error, CustomStringConvertible, Equatable {
    public let description: String

    public init(description: String) {
        self.description = description
    }
}

/// Prometheus's name syntax.
public enum MetricNames {
    /// A metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
    public static func isValidMetricName(_ name: String) -> Bool {
        isValid(name, colons: true)
    }

    /// A label name: `[a-zA-Z_][a-zA-Z0-9_]*`, and not reserved (`__` prefix, `le`, `quantile`).
    public static func isValidLabelName(_ name: String) -> Bool {
        isValid(name, colons: false) && !name.hasPrefix("__") && name != "le" && name != "quantile"
    }

    /// A label value: any text up to 1 KiB without control characters (a value is a short
    /// word; a request body pasted into a label would make a series per request).
    public static func isValidLabelValue(_ value: String) -> Bool {
        value.utf8.count <= 1024 && !value.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }
    }

    private static func isValid(_ name: String, colons: Bool) -> Bool {
        guard let first = name.utf8.first, !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else { return false }
        return name.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"):
                return true
            case UInt8(ascii: ":"):
                return colons
            default:
                return false
            }
        }
    }

    /// Checks a series' name and labels; returns the labels sorted by name (the registry tells
    /// series apart by their labels in order).
    public static func check(name: String, labels: [(String, String)], kind: MetricKind) throws(MetricError)
        -> [(String, String)]
    {
        guard isValidMetricName(name) else {
            throw MetricError(description: "invalid metric name \"\(name)\" (letters, digits, _ and :, not starting with a digit)")
        }
        let sorted = labels.sorted { $0.0 < $1.0 }
        for (index, (label, value)) in sorted.enumerated() {
            guard isValidLabelName(label) else {
                throw MetricError(
                    description: "invalid label name \"\(label)\" (letters, digits and _, not starting with a digit or __)")
            }
            if index > 0, sorted[index - 1].0 == label { throw MetricError(description: "label \"\(label)\" given twice") }
            guard isValidLabelValue(value) else {
                throw MetricError(description: "invalid value for label \"\(label)\" (at most 1024 bytes, no control characters)")
            }
        }
        if kind == .histogram, sorted.contains(where: { $0.0 == "le" }) {
            throw MetricError(description: "a histogram cannot have a label named le")
        }
        return sorted
    }
}

/// The families made so far: each name keeps the kind and label names it was first made with.
public final class MetricFamilies: Sendable {
    private struct Family: Equatable {
        var kind: MetricKind
        var labelNames: [String]
        var buckets: [Double]?
    }

    private let families = NIOLockedValueBox<[String: Family]>([:])

    /// Records `name` as a family of `kind` with these label names (sorted) and buckets, or
    /// throws when the name already stands for something else.
    public func claim(name: String, kind: MetricKind, labelNames: [String], buckets: [Double]? = nil) throws(MetricError) {
        let wanted = Family(kind: kind, labelNames: labelNames, buckets: buckets)
        let existing: Family? = families.withLockedValue { families in
            if let existing = families[name] { return existing }
            families[name] = wanted
            return nil
        }
        guard let existing, existing != wanted else { return }
        if existing.kind != kind {
            throw MetricError(description: "metric \"\(name)\" is already a \(existing.kind.rawValue)")
        }
        if existing.labelNames != labelNames {
            let names = existing.labelNames.isEmpty ? "no labels" : "labels \(existing.labelNames.joined(separator: ", "))"
            throw MetricError(description: "metric \"\(name)\" already has \(names)")
        }
        throw MetricError(description: "histogram \"\(name)\" already has other buckets")
    }
}
