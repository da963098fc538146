import Core
import Foundation

/// The ledger of finished jobs: ids whose terminal event the broker has confirmed.
///
/// A redelivered job found here is acked without running or answering again, so a crash
/// between "terminal event confirmed" and "ack" does not make a client see two terminal
/// events. On disk it is an append-only file of `id\n` lines under the state dir, shared by
/// every worker on the machine (appends and compaction under `flock`); each process follows
/// the file's tail, so an id finished by a sibling worker is seen too. It is bounded: when the
/// file holds more than twice `capacity` lines it is compacted to the newest `capacity`.
/// A torn last line (a crash mid-write) is ignored.
public final class Ledger: Sendable {
    public let path: String
    public let capacity: Int
    private let state: Locked<State>

    public init(directory: String, capacity: Int = 100_000) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        self.path = directory + "/finished-jobs.log"
        self.capacity = max(capacity, 1)
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw WorkerError(.state, "cannot create the ledger file \(path)")
            }
        }
        var initial = State(path: path, capacity: self.capacity)
        try initial.followTail()
        state = Locked(initial)
    }

    /// Whether `id` finished before (here or in a sibling worker sharing the state dir).
    public func contains(_ id: String) -> Bool {
        state.withLock { state in
            if state.ids.contains(id) { return true }
            try? state.followTail()
            return state.ids.contains(id)
        }
    }

    /// Records `id` as finished, durably (fsync) before returning.
    public func record(_ id: String) throws {
        let path = self.path, capacity = self.capacity
        try state.withLock { state in
            let fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC)
            guard fd >= 0 else { throw WorkerError(.state, "cannot open the ledger \(path): \(errnoText())") }
            defer { close(fd) }
            flock(fd, LOCK_EX)
            defer { flock(fd, LOCK_UN) }
            let line = Array((id + "\n").utf8)
            let written = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard written == line.count, fsync(fd) == 0 else {
                throw WorkerError(.state, "cannot write the ledger \(path): \(errnoText())")
            }
            try state.followTail()
            state.remember(id)
            if state.linesOnDisk > 2 * capacity { try state.compact() }
        }
    }
}

/// What a ledger holds in memory; reached only under its lock.
private struct State {
    let path: String
    let capacity: Int
    var ids = Set<String>()
    var order: [String] = []        // oldest first, for the in-memory bound
    var readOffset: UInt64 = 0      // how far into the file this process has read
    var fileID: (dev: UInt64, ino: UInt64) = (0, 0)
    var linesOnDisk = 0

    init(path: String, capacity: Int) {
        self.path = path
        self.capacity = capacity
    }

    mutating func remember(_ id: String) {
        guard ids.insert(id).inserted else { return }
        order.append(id)
        if order.count > 2 * capacity {
            let drop = order.count - capacity
            for old in order[..<drop] { ids.remove(old) }
            order.removeFirst(drop)
        }
    }

    /// Reads what was appended since the last read; starts over if the file was replaced.
    mutating func followTail() throws {
        var st = stat()
        guard stat(path, &st) == 0 else { throw WorkerError(.state, "cannot stat the ledger \(path): \(errnoText())") }
        let id = (UInt64(st.st_dev), UInt64(st.st_ino))
        if id != fileID || UInt64(st.st_size) < readOffset {
            fileID = id
            readOffset = 0
            linesOnDisk = 0
        }
        guard UInt64(st.st_size) > readOffset, let handle = FileHandle(forReadingAtPath: path) else { return }
        defer { try? handle.close() }
        try handle.seek(toOffset: readOffset)
        let data = handle.readDataToEndOfFile()
        guard let lastNewline = data.lastIndex(of: UInt8(ascii: "\n")) else { return }
        let complete = data[data.startIndex...lastNewline]
        for line in complete.split(separator: UInt8(ascii: "\n")) where !line.isEmpty {
            remember(String(decoding: line, as: UTF8.self))
            linesOnDisk += 1
        }
        readOffset += UInt64(complete.count)
    }

    /// Rewrites the file with the newest `capacity` ids (called with the file locked).
    mutating func compact() throws {
        let keep = order.suffix(capacity)
        let tmp = path + ".tmp-\(getpid())"
        let body = keep.map { $0 + "\n" }.joined()
        guard FileManager.default.createFile(atPath: tmp, contents: Data(body.utf8)) else {
            throw WorkerError(.state, "cannot write \(tmp)")
        }
        let fd = open(tmp, O_RDONLY)
        if fd >= 0 { fsync(fd); close(fd) }
        guard rename(tmp, path) == 0 else { throw WorkerError(.state, "cannot replace the ledger \(path): \(errnoText())") }
        fileID = (0, 0)
        try followTail()
    }
}

func errnoText() -> String { String(cString: strerror(errno)) }
