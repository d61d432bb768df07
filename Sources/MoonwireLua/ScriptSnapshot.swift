// The scripts of one generation, read once. Every VM of a generation loads its main.lua and
// its modules from this one copy, so event loops cannot load different versions of a file that
// changed while a reload read it, and what one VM validated is what every VM runs.
//
// A file being written is not taken: an editor that truncates a file and then writes it leaves
// it empty or partial meanwhile, for as long as the writer is descheduled. The kernel knows
// whether a file is open for writing, and says so to a read lease (F_SETLEASE refuses one with
// EAGAIN), which the reader takes and gives back at once. Where leases are not allowed (files
// of another user without CAP_LEASE), a file modified within the quiet period, or changed while
// it was read, counts as being written. Either way the reader reports the tree unsettled and
// the reloader reads it again later.
import Foundation
import Glibc

/// Every `.lua` file under a scripts folder, by path relative to the folder.
public final class ScriptSnapshot: Sendable {
    /// The folder the files came from.
    public let directory: String
    let names: ScriptNames
    private let files: [String: [UInt8]]
    /// How each file looked when it was read, and when that was.
    private let stamps: [String: Stamp]
    private let readAt = Date()

    /// How long a file must have been left alone to be read: writes closer together than this
    /// are taken as one edit still in progress.
    public static let quietPeriod = 0.05

    /// Why the tree could not be read as it stands.
    public enum ReadError: Error, Sendable, CustomStringConvertible {
        /// A file is being written, or changed while it was read: read again later.
        case unsettled(String)
        /// The folder or a file cannot be read.
        case unreadable(String)

        public var description: String {
            switch self {
            case .unsettled(let file): "\(file): still being written"
            case .unreadable(let problem): problem
            }
        }
    }

    private init(directory: String, files: [String: [UInt8]], stamps: [String: Stamp]) {
        self.directory = directory
        self.names = ScriptNames(directory: directory)
        self.files = files
        self.stamps = stamps
    }

    /// Reads every `.lua` file under `directory`, or throws why it cannot now.
    public static func read(directory: String) throws(ReadError) -> ScriptSnapshot {
        guard FileManager.default.fileExists(atPath: directory) else { throw .unreadable("\(directory): cannot read the folder") }
        let now = Date().timeIntervalSince1970
        var files: [String: [UInt8]] = [:]
        var stamps: [String: Stamp] = [:]
        for relative in luaFiles(directory) {
            let path = directory + "/" + relative
            guard let before = Stamp(path), before.isRegularFile else { continue }
            let descriptor = open(path, O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else { throw .unreadable("\(relative): cannot read the file") }
            defer { close(descriptor) }
            switch isOpenForWriting(descriptor) {
            case true?: throw .unsettled(relative)
            case false?: break
            case nil: guard now - before.modified >= quietPeriod else { throw .unsettled(relative) }
            }
            guard var bytes = readAll(descriptor) else { throw .unreadable("\(relative): cannot read the file") }
            guard Stamp(path) == before, bytes.count == before.size else { throw .unsettled(relative) }
            // A leading #! line is a comment, as lua(1) takes it.
            if bytes.first == UInt8(ascii: "#") { bytes.insert(contentsOf: Array("--".utf8), at: 0) }
            files[relative] = bytes
            stamps[relative] = before
        }
        return ScriptSnapshot(directory: directory, files: files, stamps: stamps)
    }

    /// Reads the tree once no file of it is being written, trying again meanwhile for at most
    /// `patience` seconds. Called off the event loops (it sleeps).
    public static func readSettled(directory: String, patience: Double = 5) throws(ReadError) -> ScriptSnapshot {
        let deadline = Date().addingTimeInterval(patience)
        while true {
            do {
                return try read(directory: directory)
            } catch {
                guard case .unsettled = error, Date() < deadline else { throw error }
                Thread.sleep(forTimeInterval: quietPeriod)
            }
        }
    }

    /// Whether the files on disk are still those read, a quiet period after the read (it
    /// sleeps until then): a writer that opened a file just after it was read shows here.
    func isUnchanged() -> Bool {
        let wait = Self.quietPeriod - Date().timeIntervalSince(readAt)
        if wait > 0 { Thread.sleep(forTimeInterval: wait) }
        var now: [String: Stamp] = [:]
        for relative in Self.luaFiles(directory) {
            if let stamp = Stamp(directory + "/" + relative), stamp.isRegularFile { now[relative] = stamp }
        }
        return now == stamps
    }

    /// The source of a file, by path relative to the folder.
    func source(_ relative: String) -> [UInt8]? { files[relative] }

    /// The size of every file together.
    var byteCount: Int { files.values.reduce(0) { $0 + $1.count } }

    /// Every file, by relative path, in a stable order.
    var paths: [String] { files.keys.sorted() }

    /// The file a module name stands for (`app.hello` → `app/hello.lua`, or `app/hello/init.lua`).
    func module(named name: String) -> String? {
        let base = name.replacingOccurrences(of: ".", with: "/")
        return [base + ".lua", base + "/init.lua"].first { files[$0] != nil }
    }

    private static func luaFiles(_ directory: String) -> [String] {
        FileManager.default.enumerator(atPath: directory).map { $0.compactMap { $0 as? String }.filter { $0.hasSuffix(".lua") } } ?? []
    }

    /// Whether any process has the file open for writing; nil when the kernel does not let this
    /// process ask (leases are for the file's owner, or CAP_LEASE).
    private static func isOpenForWriting(_ descriptor: Int32) -> Bool? {
        leaseSignalIgnored
        guard fcntl(descriptor, setLease, Int32(F_RDLCK)) != 0 else {
            _ = fcntl(descriptor, setLease, Int32(F_UNLCK))
            return false
        }
        return errno == EAGAIN ? true : nil
    }

    /// F_SETLEASE (Linux-specific, not imported from Glibc).
    private static let setLease: Int32 = 1024

    /// A writer opening a file while its lease is held makes the kernel signal the holder
    /// (SIGIO, which would end the process). The lease lasts microseconds; the signal is ignored.
    private static let leaseSignalIgnored: Void = { _ = signal(SIGIO, SIG_IGN) }()

    private static func readAll(_ descriptor: Int32) -> [UInt8]? {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = Glibc.read(descriptor, &chunk, chunk.count)
            if count < 0 { return nil }
            if count == 0 { return bytes }
            bytes += chunk[..<count]
        }
    }

    /// What a file looked like on disk: enough to tell it was written to meanwhile.
    private struct Stamp: Equatable, Sendable {
        var size: Int
        var modified: Double
        var inode: UInt
        var isRegularFile: Bool

        init?(_ path: String) {
            var info = stat()
            guard stat(path, &info) == 0 else { return nil }
            size = Int(info.st_size)
            modified = Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9
            inode = UInt(info.st_ino)
            isRegularFile = info.st_mode & S_IFMT == S_IFREG
        }
    }
}
