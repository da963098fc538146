import Core
import Foundation

/// Precomputed noise schedules: the scheduler tables (timesteps, sigmas, alphas) for one
/// (scheduler config, steps) pair are computed once, shared by every batch that needs them,
/// and persisted as JSON under `<state_dir>/schedules/` so a restarted worker reuses them.
/// Hit and miss counts feed the logs and the systemd STATUS line.
public final class ScheduleCache<Tables: Codable & Sendable>: Sendable {
    public let directory: String
    private let state = Locked(State())

    private struct State {
        var memory: [String: Tables] = [:]
        var hits = 0
        var diskHits = 0
        var misses = 0
    }

    public init(directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        self.directory = directory
    }

    /// The tables for `key` (a stable description of scheduler config + steps), computing and
    /// persisting them with `compute` on a miss.
    public func tables(for key: String, compute: () throws -> Tables) rethrows -> Tables {
        let file = directory + "/" + Self.fileName(for: key)
        return try state.withLock { state in
            if let t = state.memory[key] { state.hits += 1; return t }
            if let data = FileManager.default.contents(atPath: file),
               let t = try? JSONDecoder().decode(Stored.self, from: data), t.key == key {
                state.diskHits += 1
                state.memory[key] = t.tables
                return t.tables
            }
            state.misses += 1
            let t = try compute()
            state.memory[key] = t
            if let data = try? JSONEncoder().encode(Stored(key: key, tables: t)) {
                let tmp = file + ".tmp-\(getpid())"
                if FileManager.default.createFile(atPath: tmp, contents: data) { _ = rename(tmp, file) }
            }
            return t
        }
    }

    public var counts: (hits: Int, diskHits: Int, misses: Int) { state.withLock { ($0.hits, $0.diskHits, $0.misses) } }

    struct Stored: Codable {
        let key: String
        let tables: Tables
    }

    /// FNV-1a of the key: a short, stable, path-safe file name.
    static func fileName(for key: String) -> String {
        FNV1a.hex(key.utf8) + ".json"
    }
}
