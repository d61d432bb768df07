// Watches the scripts folder tree with inotify and reports changes to .lua files. A thread
// of its own blocks in poll(2), so nothing polls on the request path; the reloader debounces.
// A folder deleted and made again (a deploy that replaces it) is watched again when it is back.
import Foundation
import Glibc
import NIOConcurrencyHelpers

/// Reports changes under a folder (recursively) until stopped.
public final class ScriptWatcher: Sendable {
    private let descriptor: Int32
    private let stopped = NIOLockedValueBox(false)

    private static let mask = UInt32(
        IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF)

    /// Starts watching; nil when inotify is unavailable.
    public init?(directory: String, onChange: @escaping @Sendable () -> Void) {
        descriptor = inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK))
        guard descriptor >= 0 else { return nil }
        let descriptor = self.descriptor
        let stopped = self.stopped
        let thread = Thread {
            var watches: [Int32: String] = [:]
            Self.watchTree(directory, descriptor: descriptor, into: &watches)
            var buffer = [UInt8](repeating: 0, count: 64 * 1024)
            while !stopped.withLockedValue({ $0 }) {
                // The folder was deleted (or never there): watch it again once it is back, as a
                // change, since what it holds now is new.
                if !watches.values.contains(directory), Self.isDirectory(directory) {
                    Self.watchTree(directory, descriptor: descriptor, into: &watches)
                    onChange()
                }
                var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
                guard poll(&poller, 1, 250) > 0 else { continue }
                let count = read(descriptor, &buffer, buffer.count)
                guard count > 0 else { continue }
                if Self.process(buffer[..<count], descriptor: descriptor, watches: &watches) { onChange() }
            }
            close(descriptor)
        }
        thread.name = "moonwire-script-watcher"
        thread.start()
    }

    /// Stops the watcher thread (within a quarter of a second).
    public func stop() {
        stopped.withLockedValue { $0 = true }
    }

    /// Handles a batch of inotify events; returns whether a script may have changed.
    private static func process(_ bytes: ArraySlice<UInt8>, descriptor: Int32, watches: inout [Int32: String]) -> Bool {
        var changed = false
        var offset = bytes.startIndex
        while offset + 16 <= bytes.endIndex {
            func word(_ at: Int) -> UInt32 {
                bytes[offset + at ..< offset + at + 4].enumerated().reduce(0) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) }
            }
            let watch = Int32(bitPattern: word(0))
            let mask = word(4)
            let length = Int(word(12))
            let nameBytes = bytes[offset + 16 ..< min(offset + 16 + length, bytes.endIndex)].prefix { $0 != 0 }
            let name = String(decoding: nameBytes, as: UTF8.self)
            offset += 16 + length
            let isDirectory = mask & UInt32(IN_ISDIR) != 0
            if isDirectory, mask & UInt32(IN_CREATE | IN_MOVED_TO) != 0, let parent = watches[watch] {
                watchTree(parent + "/" + name, descriptor: descriptor, into: &watches)
            }
            // The folder was deleted (the kernel dropped the watch) or moved away (its path no
            // longer names it): forget it, so the folder at that path is watched when it is back.
            if mask & UInt32(IN_MOVE_SELF) != 0 { inotify_rm_watch(descriptor, watch) }
            if mask & UInt32(IN_IGNORED | IN_MOVE_SELF) != 0 {
                watches[watch] = nil
                changed = true
            }
            if name.hasSuffix(".lua") || isDirectory || mask & UInt32(IN_DELETE_SELF) != 0 { changed = true }
        }
        return changed
    }

    private static func isDirectory(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    private static func watchTree(_ root: String, descriptor: Int32, into watches: inout [Int32: String]) {
        var folders = [root]
        if let enumerator = FileManager.default.enumerator(atPath: root) {
            for case let relative as String in enumerator {
                if isDirectory(root + "/" + relative) { folders.append(root + "/" + relative) }
            }
        }
        for folder in folders {
            let watch = inotify_add_watch(descriptor, folder, mask)
            if watch >= 0 { watches[watch] = folder }
        }
    }
}
