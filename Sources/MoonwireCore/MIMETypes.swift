// Content types by file extension for static files. A table of our own because Debian's
// /etc/mime.types is not on a minimal machine and the server must answer the same everywhere.

/// Maps file extensions to media types.
public enum MIMETypes {
    /// The media type for a file name, `application/octet-stream` when unknown.
    public static func type(forPath path: String) -> String {
        // By bytes, lowercasing ASCII alone: Unicode lowercasing of the extension cost more
        // than the rest of a static file's answer. Every extension in the table is ASCII and
        // none is longer.
        let bytes = path.utf8
        guard let dot = bytes.lastIndex(of: UInt8(ascii: ".")) else { return fallback }
        let suffix = bytes[bytes.index(after: dot)...]
        guard suffix.count <= longestExtension, suffix.allSatisfy({ $0 < 0x80 && $0 != UInt8(ascii: "/") }) else {
            return fallback
        }
        let key = String(ascii: longestExtension) { out in
            for byte in suffix { out.append(byte | (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? 0x20 : 0)) }
        }
        return table[key] ?? fallback
    }

    private static let longestExtension = 11

    static let fallback = "application/octet-stream"

    static let table: [String: String] = [
        "html": "text/html; charset=utf-8", "htm": "text/html; charset=utf-8",
        "css": "text/css; charset=utf-8", "js": "text/javascript; charset=utf-8",
        "mjs": "text/javascript; charset=utf-8", "json": "application/json",
        "map": "application/json", "txt": "text/plain; charset=utf-8", "md": "text/markdown; charset=utf-8",
        "csv": "text/csv; charset=utf-8", "xml": "application/xml", "svg": "image/svg+xml",
        "png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif",
        "webp": "image/webp", "avif": "image/avif", "ico": "image/vnd.microsoft.icon", "bmp": "image/bmp",
        "woff": "font/woff", "woff2": "font/woff2", "ttf": "font/ttf", "otf": "font/otf",
        "mp4": "video/mp4", "webm": "video/webm", "ogv": "video/ogg", "mov": "video/quicktime",
        "mp3": "audio/mpeg", "ogg": "audio/ogg", "oga": "audio/ogg", "wav": "audio/wav", "flac": "audio/flac",
        "m4a": "audio/mp4", "aac": "audio/aac", "pdf": "application/pdf", "zip": "application/zip",
        "gz": "application/gzip", "tar": "application/x-tar", "wasm": "application/wasm",
        "webmanifest": "application/manifest+json", "lua": "text/plain; charset=utf-8",
    ]
}
