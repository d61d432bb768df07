// Out of file descriptors (EMFILE, ENFILE): one log line when an episode starts and one when
// it ends, however many accepts and file opens failed in between; a log line per failure
// would flood the log at the moment it matters. While it lasts, accepting backs off
// (AcceptBackoff.swift) and static files answer 503 instead of 500: the server is not broken,
// it is full.
import Glibc
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Synchronization

/// When an episode starts and ends, decided from what failed and what succeeded since.
struct DescriptorShortageEpisode: Equatable {
    /// What ran out.
    enum Failure: Equatable {
        /// accept(2) failed: new connections wait in the kernel's backlog.
        case accept
        /// open(2) of a file to answer failed: 503.
        case file
    }

    enum Action: Equatable {
        case none
        /// The first failure of an episode: say so.
        case started
        /// The episode is over: say how long it lasted and what it cost.
        case ended(seconds: Double, delayedAccepts: Int, refusedFiles: Int)
    }

    private var since: NIODeadline?
    private var delayedAccepts = 0
    private var refusedFiles = 0

    mutating func failed(_ failure: Failure, now: NIODeadline) -> Action {
        switch failure {
        case .accept: delayedAccepts += 1
        case .file: refusedFiles += 1
        }
        guard since == nil else { return .none }
        since = now
        return .started
    }

    /// A connection was accepted: descriptors are available again.
    mutating func accepted(now: NIODeadline) -> Action {
        guard let since else { return .none }
        let action = Action.ended(
            seconds: Double((now - since).nanoseconds) / 1e9, delayedAccepts: delayedAccepts, refusedFiles: refusedFiles)
        self = DescriptorShortageEpisode()
        return action
    }
}

/// The server's one episode, shared by its listeners and event loops.
final class DescriptorShortage: Sendable {
    private let episode = NIOLockedValueBox(DescriptorShortageEpisode())
    /// Whether an episode is under way, read without the lock on every accept.
    private let active = Atomic<Bool>(false)
    private let logger: Logger

    init(logger: Logger) {
        self.logger = logger
    }

    /// Whether `error` is a lack of file descriptors, for the process or the system.
    static func isShortage(_ error: Error) -> Bool {
        guard let error = error as? IOError else { return false }
        return error.errnoCode == EMFILE || error.errnoCode == ENFILE
    }

    func failed(_ failure: DescriptorShortageEpisode.Failure, error: Error) {
        let action = episode.withLockedValue { episode in
            active.store(true, ordering: .relaxed)
            return episode.failed(failure, now: .now())
        }
        guard case .started = action else { return }
        logger.error(
            "out of file descriptors: accepting paused, files that cannot be opened answer 503",
            metadata: ["error": "\(error)"])
    }

    /// Called for every accepted connection; takes the lock only during an episode.
    func accepted() {
        guard active.load(ordering: .relaxed) else { return }
        let action = episode.withLockedValue { episode in
            active.store(false, ordering: .relaxed)
            return episode.accepted(now: .now())
        }
        guard case .ended(let seconds, let delayedAccepts, let refusedFiles) = action else { return }
        logger.warning(
            "file descriptors available again",
            metadata: [
                "after": "\(seconds) s", "accept attempts that failed": "\(delayedAccepts)",
                "files answered 503": "\(refusedFiles)",
            ])
    }
}
