import Foundation

// The command channel of a session (docs/sessions.md, "commands.jsonl"): whoever steers a run
// appends one JSON object per line to `commands.jsonl`; the process training the run reads the
// lines added since its last look at every step boundary and acknowledges each one exactly once
// by an event that carries a `CommandAck`.

/// The answer to one line of commands.jsonl, carried by the event that acknowledges it.
public struct CommandAck: Codable, Sendable, Equatable {
    public enum Status: String, Codable, Sendable {
        case applied, refused
    }
    /// The line's `id` (nil when the line had none, e.g. it was not JSON).
    public var id: String?
    /// The line's `command` as written (nil when it had none).
    public var name: String?
    public var status: Status
    /// Why a command was refused (or a note on one applied without effect).
    public var reason: String?

    public init(id: String?, name: String?, status: Status, reason: String? = nil) {
        self.id = id
        self.name = name
        self.status = status
        self.reason = reason
    }

    func applied(_ note: String? = nil) -> CommandAck { CommandAck(id: id, name: name, status: .applied, reason: note) }
    func refused(_ why: String) -> CommandAck { CommandAck(id: id, name: name, status: .refused, reason: why) }
}

/// The command names of the channel and what they mean to a `TrainerCommand`.
public enum ChannelCommandName: String, CaseIterable, Sendable {
    case pause, resume, step
    case setLambda = "set_lambda"
    case setLearningRate = "set_lr"
    case snapshot, evaluate, stop

    /// The trainer command, given the line's value (nil: the command needs a value it lacks).
    public func command(value: Double?) -> TrainerCommand? {
        switch self {
        case .pause: .pause
        case .resume: .resume
        case .step: .stepOnce
        case .setLambda: value.map { .setLambda($0) }
        case .setLearningRate: value.map { .setLearningRate($0) }
        case .snapshot: .snapshot
        case .evaluate: .evaluate
        case .stop: .stop
        }
    }

    /// The channel's name and value for a trainer command.
    public static func encode(_ command: TrainerCommand) -> (name: ChannelCommandName, value: Double?) {
        switch command {
        case .pause: (.pause, nil)
        case .resume: (.resume, nil)
        case .stepOnce: (.step, nil)
        case .setLambda(let x): (.setLambda, x)
        case .setLearningRate(let x): (.setLearningRate, x)
        case .snapshot: (.snapshot, nil)
        case .evaluate: (.evaluate, nil)
        case .stop: (.stop, nil)
        }
    }
}

/// One line of the channel as the trainer receives it: a command to apply (and acknowledge with
/// `ack`), or a line refused before it reached the trainer (`command` nil, `ack.status` refused).
public struct ChannelInput: Sendable, Equatable {
    public var command: TrainerCommand?
    public var ack: CommandAck
    /// The line's `from`, for the event log.
    public var from: String?
}

/// Where a trainer reads commands from besides its own front end (`Trainer.commandSource`).
public protocol CommandSource: AnyObject {
    /// The lines appended since the last call, in file order. Throws when the file cannot be read
    /// (the trainer reports it and goes on).
    func poll() throws -> [ChannelInput]
}

/// Reads a session's commands.jsonl as it grows.
///
/// Lines already in the file when the reader is made were written while no trainer ran: those
/// whose id is in `acknowledged` (events.jsonl already answers them) are skipped, every other one
/// is refused, so a stale `stop` never ends a resumed run. Only complete lines are taken; a torn
/// last line is read once its newline arrives. A file that shrank (replaced by someone) is read
/// again from its start, skipping the ids already seen.
public final class CommandChannelReader: CommandSource {
    public let url: URL
    private var seen: Set<String>
    private var tail = AppendedLines()
    /// Lines ending before this byte offset predate the reader.
    private var boundary: UInt64
    private var lineNumber = 0

    public init(url: URL, acknowledged: Set<String> = []) {
        self.url = url
        seen = acknowledged
        let size = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? NSNumber)?.uint64Value
        boundary = size ?? 0
    }

    /// The reader of the commands.jsonl in `session`; the ids that events.jsonl already
    /// acknowledges (every line of it, superseded continuations included) are skipped.
    public convenience init(session: URL) {
        self.init(url: session.appendingPathComponent(SessionFormat.commandsFile),
                  acknowledged: CommandChannelReader.acknowledgedIDs(session: session))
    }

    /// The command ids that the events of `session` acknowledge.
    public static func acknowledgedIDs(session: URL) -> Set<String> {
        struct Probe: Decodable {
            struct Ack: Decodable { var id: String? }
            var command: Ack?
        }
        let url = session.appendingPathComponent(SessionFormat.eventsFile)
        guard let (lines, _) = try? LineReader.lines(url) else { return [] }
        let decoder = SessionJSON.decoder()
        return Set(lines.compactMap { try? decoder.decode(Probe.self, from: $0.data).command?.id })
    }

    public func poll() throws -> [ChannelInput] {
        let new = try tail.read(url)
        if new.restarted {
            // Replaced or truncated: read again from the start; ids already seen are skipped.
            boundary = 0
            lineNumber = 0
        }
        var out: [ChannelInput] = []
        for line in new.lines {
            lineNumber += 1
            if line.isBlank { continue }
            if let input = parse(line.data, stale: line.end < boundary) { out.append(input) }
        }
        return out
    }

    /// The input for one line (nil: skipped, already acknowledged).
    private func parse(_ line: Data, stale: Bool) -> ChannelInput? {
        let file = SessionFormat.commandsFile
        guard let l = try? SessionJSON.decoder().decode(ChannelLine.Loose.self, from: line) else {
            return refusal(id: nil, name: nil, "line \(lineNumber) of \(file) is not a JSON object")
        }
        let (id, name, from) = (l.id, l.command, l.from)
        if let id {
            if seen.contains(id) {
                // Already answered (before this trainer started, or a repeated id).
                return stale ? nil : refusal(id: id, name: name, "id '\(id)' was already used in \(file)", from: from)
            }
            seen.insert(id)
        }
        if stale { return refusal(id: id, name: name, "written while the run was not running", from: from) }
        guard let id, !id.isEmpty else {
            return refusal(id: nil, name: name, "line \(lineNumber) of \(file) has no string 'id'", from: from)
        }
        switch l.formatVersion {
        case .bad: return refusal(id: id, name: name, "'format_version' must be an integer", from: from)
        case .value(let v) where v > SessionFormat.version:
            return refusal(
                id: id, name: name, "format_version \(v) is newer than this trainer reads (\(SessionFormat.version))", from: from)
        default: break
        }
        guard let name else { return refusal(id: id, name: nil, "the line has no string 'command'", from: from) }
        guard let known = ChannelCommandName(rawValue: name) else {
            let all = ChannelCommandName.allCases.map(\.rawValue).joined(separator: ", ")
            return refusal(id: id, name: name, "unknown command '\(name)' (known: \(all))", from: from)
        }
        var value: Double?
        switch l.value {
        case .bad: return refusal(id: id, name: name, "'value' must be a number", from: from)
        case .value(let v): value = v
        case .absent: break
        }
        guard let command = known.command(value: value) else {
            return refusal(id: id, name: name, "\(name) needs a numeric 'value'", from: from)
        }
        return ChannelInput(command: command, ack: CommandAck(id: id, name: name, status: .applied), from: from)
    }

    private func refusal(id: String?, name: String?, _ why: String, from: String? = nil) -> ChannelInput {
        ChannelInput(command: nil, ack: CommandAck(id: id, name: name, status: .refused, reason: why), from: from)
    }
}

/// Appends commands to a session's commands.jsonl, as `qgoft attach` does.
public final class CommandChannelWriter: @unchecked Sendable {
    public let url: URL
    /// Written as each line's `from`.
    public let origin: String
    private let idPrefix: String
    private let lock = NSLock()
    private var counter = 0

    /// `kind` starts the ids (`attach` gives `attach-<host>-<pid>-<n>`).
    public init(session: URL, kind: String) {
        url = session.appendingPathComponent(SessionFormat.commandsFile)
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "host"
        let pid = getpid()
        origin = "\(kind) \(host) pid \(pid)"
        // A random suffix keeps ids unique across processes that reuse a pid.
        let salt = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        idPrefix = "\(kind)-\(host)-\(pid)-\(salt)"
    }

    /// Appends `command` as one line; returns its id.
    @discardableResult
    public func append(_ command: TrainerCommand, time: Date = Date()) throws -> String {
        let id = lock.withLock {
            counter += 1
            return "\(idPrefix)-\(counter)"
        }
        let (name, value) = ChannelCommandName.encode(command)
        if let value, !value.isFinite {
            throw SessionError(url, "\(name.rawValue): the value \(value) is not a finite number")
        }
        let entry = ChannelLine(
            formatVersion: SessionFormat.version, id: id, time: time.timeIntervalSince1970, command: name.rawValue,
            value: value, from: origin)
        var line = try SessionJSON.encoder().encode(entry)
        line.append(UInt8(ascii: "\n"))
        let fd = open(url.path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SessionError(url, "cannot append: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        // One write(2) of a whole line: concurrent appenders do not interleave.
        let written = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == line.count else {
            let why = written < 0 ? String(cString: strerror(errno)) : "short write (\(written) of \(line.count) bytes)"
            throw SessionError(url, "cannot append: \(why)")
        }
        return id
    }
}

/// A line of commands.jsonl as written, and the tolerant form it is read in (a field of the wrong
/// type is reported by name instead of failing the whole line).
struct ChannelLine: Encodable {
    var formatVersion: Int
    var id: String
    var time: Double
    var command: String
    var value: Double?
    var from: String?

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version", id, time, command, value, from
    }

    enum Field<T: Decodable & Sendable>: Sendable {
        case absent, bad, value(T)
    }

    struct Loose: Decodable {
        var id: String?
        var command: String?
        var from: String?
        var value: Field<Double>
        var formatVersion: Field<Int>

        init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            id = try? c.decodeIfPresent(String.self, forKey: .id)
            command = try? c.decodeIfPresent(String.self, forKey: .command)
            from = try? c.decodeIfPresent(String.self, forKey: .from)
            value = Loose.field(c, .value)
            formatVersion = Loose.field(c, .formatVersion)
        }

        private static func field<T>(_ c: KeyedDecodingContainer<CodingKeys>, _ key: CodingKeys) -> Field<T> {
            guard c.contains(key), (try? c.decodeNil(forKey: key)) == false else { return .absent }
            return (try? c.decode(T.self, forKey: key)).map { .value($0) } ?? .bad
        }
    }
}

/// Reads a file that another process appends lines to: each call returns the complete lines
/// added since the previous one (a torn last line waits for its newline). A file that got
/// shorter was replaced: it is read again from the start, and `restarted` says so.
struct AppendedLines {
    private var offset: UInt64 = 0
    private var carry = Data()

    struct Line {
        var data: Data
        /// Byte offset of the line's newline.
        var end: UInt64
        /// Only spaces (or a CR): readers skip it but count it.
        var isBlank: Bool { data.allSatisfy { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\r") } }
    }

    mutating func read(_ url: URL) throws -> (lines: [Line], restarted: Bool) {
        var lines: [Line] = []
        let restarted = try read(url, restart: {}) { lines.append($0) }
        return (lines, restarted)
    }

    /// Hands each new complete line to `body` as it is read, a megabyte at a time, so a large
    /// file (the first look at a long session) never sits in memory whole. `restart` is called
    /// first when the file was replaced (it is then read from its start). Returns whether it was.
    mutating func read(_ url: URL, restart: () -> Void, _ body: (Line) -> Void) throws -> Bool {
        let fd = open(url.path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return false }
            throw SessionError(url, "cannot read: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        func failure() -> SessionError { SessionError(url, "cannot read: \(String(cString: strerror(errno)))") }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw failure() }
        let size = UInt64(st.st_size)
        var restarted = false
        if size < offset {
            offset = 0
            carry.removeAll()
            restarted = true
            restart()
        }
        guard size > offset else { return restarted }
        guard lseek(fd, off_t(offset), SEEK_SET) >= 0 else { throw failure() }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = Foundation.read(fd, &buffer, buffer.count)
            if n < 0 {
                if errno == EINTR { continue }
                throw failure()
            }
            if n == 0 { break }
            // `carry` (the unfinished line) starts at `offset - carry.count`.
            var position = offset - UInt64(carry.count)
            offset += UInt64(n)
            var start = 0
            buffer.withUnsafeBufferPointer { chunk in
                for i in 0..<n where chunk[i] == UInt8(ascii: "\n") {
                    var data = carry
                    data.append(chunk.baseAddress! + start, count: i - start)
                    carry.removeAll(keepingCapacity: true)
                    let end = position + UInt64(data.count)
                    position = end + 1
                    start = i + 1
                    body(Line(data: data, end: end))
                }
                carry.append(chunk.baseAddress! + start, count: n - start)
            }
        }
        return restarted
    }
}
