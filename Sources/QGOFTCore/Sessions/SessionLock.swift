import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The `lock` file of a session being written: which process writes it and when it last showed
/// signs of life. The writer's timer thread rewrites it (atomically) every few seconds and
/// deletes it when the session is closed cleanly.
public struct SessionLock: Codable, Sendable, Equatable {
    public var formatVersion: Int
    public var pid: Int32
    public var hostname: String
    public var started: String
    /// Seconds since 1970 of the last heartbeat.
    public var heartbeat: Double

    enum CodingKeys: String, CodingKey {
        case pid, hostname, started, heartbeat
        case formatVersion = "format_version"
    }

    public init(pid: Int32, hostname: String, started: String, heartbeat: Double) {
        formatVersion = SessionFormat.version
        self.pid = pid
        self.hostname = hostname
        self.started = started
        self.heartbeat = heartbeat
    }

    /// Reads a session's lock; nil when there is none or it does not parse.
    public static func read(session: URL) -> SessionLock? {
        let url = session.appendingPathComponent(SessionFormat.lockFile)
        guard let data = try? Data(contentsOf: url) else { return nil }
        return try? SessionJSON.decoder().decode(SessionLock.self, from: data)
    }

    /// Whether the writing process is still there: same host and the pid is alive, and the
    /// heartbeat is younger than `SessionFormat.staleAfter`. (On another host only the heartbeat
    /// can tell.)
    public func isAlive(now: Date = Date()) -> Bool {
        if now.timeIntervalSince1970 - heartbeat > SessionFormat.staleAfter { return false }
        if hostname == SessionMachine.hostName() {
            if pid == getpid() { return true }
            if kill(pid, 0) != 0 && errno == ESRCH { return false }
        }
        return true
    }

    /// The status readers show: a `running` or `paused` session without a living writer is `crashed`.
    public static func effectiveStatus(_ written: SessionStatus, session: URL, now: Date = Date()) -> SessionStatus {
        guard written.isLive else { return written }
        guard let lock = read(session: session), lock.isAlive(now: now) else { return .crashed }
        return written
    }

    /// True when a writer holds the session folder's flock (a `SessionWriter` does for its whole
    /// life; the kernel drops it when the process dies). Tested by trying to take it.
    public static func isHeld(session: URL) -> Bool {
        let fd = open(session.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 { return errno == EWOULDBLOCK }
        flock(fd, LOCK_UN)
        return false
    }
}
