// The upload settings (moonwire.options{uploads = {...}}) and what one request's
// multipart upload has come to: the fields and files so far, the part being read, and the
// events the parser produced that are still to be handled.
import CLua
import MoonwireCore
import NIOCore

/// `moonwire.options{uploads = {...}}`.
struct LuaUploadRules {
    /// Where files go, relative to the working directory.
    var dir = "uploads"
    /// The largest file; a larger one is answered 413.
    var maxFileSize = 1 << 30
    /// The most files in one request.
    var maxFiles = 20
    /// The most plain fields in one request.
    var maxFields = 1000
    /// Whether files outlive their request; by default the handler moves what it keeps.
    var keep = false
}

func readUploads(_ L: LuaThread, into rules: inout LuaUploadRules) -> String? {
    if let error = LuaSettingKeys.unknownKey(L, at: -1, known: LuaSettingKeys.uploads, path: "uploads.") { return error }
    if L.rawField(-1, "dir") != LUA_TNIL {
        guard let dir = L.string(at: -1), !dir.isEmpty, !dir.utf8.contains(0) else { return "uploads.dir must be a folder name" }
        rules.dir = dir.count > 1 && dir.hasSuffix("/") ? String(dir.dropLast()) : dir
    }
    mw_pop(L, 1)
    for (name, path) in [("max_file_size", \LuaUploadRules.maxFileSize), ("max_files", \.maxFiles), ("max_fields", \.maxFields)] {
        L.rawField(-1, name)
        defer { mw_pop(L, 1) }
        if L.type(at: -1) == LUA_TNIL { continue }
        guard let value = L.number(at: -1), value >= 0, value < 1e18, value == value.rounded() else {
            return "uploads.\(name) must be a whole number, 0 or more"
        }
        rules[keyPath: path] = Int(value)
    }
    if L.rawField(-1, "keep") != LUA_TNIL {
        guard L.type(at: -1) == LUA_TBOOLEAN else { return "uploads.keep must be true or false" }
        rules.keep = lua_toboolean(L, -1) != 0
    }
    mw_pop(L, 1)
    return nil
}

/// A file the upload saved, as `req.files` lists it.
struct LuaUploadedFile {
    var field: String
    var filename: String
    var path: String
    var size: Int
    var contentType: String?
}

/// One request's multipart upload. Used on its VM's loop.
final class LuaUpload {
    /// The part being read.
    enum Part {
        case none
        case field(name: String, value: ByteBuffer)
        /// A file part; `file` is nil while it opens, and when the script skipped it.
        case file(LuaUploadedFile, file: UploadFile?, skipped: Bool)
    }

    let reader: MultipartFormReader
    let stream: RequestBodyStream
    let folder: String
    /// Parser events not handled yet.
    var pending = CircularBuffer<MultipartEvent>()
    var part = Part.none
    var fields: [(String, String)] = []
    var files: [LuaUploadedFile] = []
    /// Every file written, for the cleanup when the request ends.
    var written: [String] = []
    var fileCount = 0
    /// Bytes of plain fields held in memory, within the body limit.
    var fieldBytes = 0
    /// The body has ended and been checked.
    var bodyEnded = false
    /// The body was read whole and the handler runs: with `keep`, its files stay.
    var handled = false
    /// Whether the request ended: callbacks that arrive later do nothing.
    var isOver = false

    init(reader: MultipartFormReader, stream: RequestBodyStream, folder: String) {
        self.reader = reader
        self.stream = stream
        self.folder = folder
    }

    /// The open file, when the part is a file being written.
    var openFile: UploadFile? {
        if case .file(_, let file, _) = part { return file }
        return nil
    }
}

/// Pushes `req.files`: a list of `{field=, filename=, path=, size=, content_type=}`.
func pushUploadedFiles(_ L: LuaThread, _ files: [LuaUploadedFile]) {
    lua_createtable(L, Int32(files.count), 0)
    for (position, file) in files.enumerated() {
        lua_createtable(L, 0, 5)
        L.push(file.field)
        L.setField(-2, "field")
        L.push(file.filename)
        L.setField(-2, "filename")
        L.push(file.path)
        L.setField(-2, "path")
        lua_pushinteger(L, lua_Integer(file.size))
        L.setField(-2, "size")
        if let type = file.contentType {
            L.push(type)
            L.setField(-2, "content_type")
        }
        lua_rawseti(L, -2, lua_Integer(position + 1))
    }
}
