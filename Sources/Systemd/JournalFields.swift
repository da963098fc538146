// What one log line becomes in the journal: PRIORITY from the swift-log level, DARKROOM_* fields from
// the metadata. libsystemd puts them on the wire (JournalSender).
import Logging

/// One journal field, `NAME=value`.
public struct JournalField: Sendable, Equatable {
    public let name: String
    public let value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

public enum JournalFields {
    /// syslog priorities: trace/debug 7, info 6, notice 5, warning 4, error 3, critical 2.
    public static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: return 7
        case .info: return 6
        case .notice: return 5
        case .warning: return 4
        case .error: return 3
        case .critical: return 2
        }
    }

    /// The metadata keys every Darkroom log line may carry, in the order text lines show them.
    /// `job`, `class`, `batch`, `model`, `event` and `duration_ms` become DARKROOM_JOB, DARKROOM_CLASS,
    /// DARKROOM_BATCH, DARKROOM_MODEL, DARKROOM_EVENT and DARKROOM_DURATION_MS.
    public static let wellKnownKeys = ["job", "class", "batch", "model", "event", "duration_ms"]

    /// The journal field name for a metadata key: upper snake case with a DARKROOM_ prefix
    /// (`job` -> DARKROOM_JOB, `durationMs` and `duration-ms` -> DARKROOM_DURATION_MS). Only A-Z, 0-9
    /// and `_` survive, and the name is cut to journald's 64 characters.
    public static func fieldName(forMetadataKey key: String) -> String {
        var out = ""
        var previous: Character? = nil
        for ch in key {
            if ch.isASCII, ch.isLetter || ch.isNumber {
                if ch.isUppercase, let p = previous, p.isLowercase || p.isNumber, out.last != "_" {
                    out.append("_")
                }
                out.append(Character(ch.uppercased()))
            } else if !out.isEmpty, out.last != "_" {
                out.append("_")
            }
            previous = ch
        }
        while out.last == "_" { out.removeLast() }
        if out.isEmpty { out = "FIELD" }
        return String(("DARKROOM_" + out).prefix(64))
    }

    /// Metadata in display order: the well-known keys first, then the rest sorted by key.
    public static func ordered(_ metadata: Logger.Metadata) -> [(key: String, value: Logger.Metadata.Value)] {
        var result: [(key: String, value: Logger.Metadata.Value)] = []
        for key in wellKnownKeys {
            if let value = metadata[key] { result.append((key, value)) }
        }
        for key in metadata.keys.sorted() where !wellKnownKeys.contains(key) {
            if let value = metadata[key] { result.append((key, value)) }
        }
        return result
    }

    /// A metadata value as one string: strings as they are, arrays and dictionaries in swift-log's form.
    public static func string(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let s): return s
        case .stringConvertible(let c): return c.description
        default: return value.description
        }
    }

    /// The whole entry: MESSAGE, PRIORITY, SYSLOG_IDENTIFIER, SYSLOG_PID, code location, an ERROR field
    /// when the event carries an error, then one DARKROOM_* field per metadata entry.
    public static func entry(
        message: String, level: Logger.Level, identifier: String, metadata: Logger.Metadata,
        error: (any Error)? = nil, file: String = "", function: String = "", line: UInt = 0,
        pid: Int32? = nil
    ) -> [JournalField] {
        var fields = [
            JournalField(name: "MESSAGE", value: message),
            JournalField(name: "PRIORITY", value: String(priority(level))),
            JournalField(name: "SYSLOG_IDENTIFIER", value: identifier),
        ]
        if let pid { fields.append(JournalField(name: "SYSLOG_PID", value: String(pid))) }
        if !file.isEmpty {
            fields.append(JournalField(name: "CODE_FILE", value: file))
            fields.append(JournalField(name: "CODE_LINE", value: String(line)))
            fields.append(JournalField(name: "CODE_FUNC", value: function))
        }
        if let error { fields.append(JournalField(name: "DARKROOM_ERROR", value: String(describing: error))) }
        var seen = Set(fields.map(\.name))
        for (key, value) in ordered(metadata) {
            let name = fieldName(forMetadataKey: key)
            // Two keys mapping to one name (`durationMs` and `duration_ms`): the first wins.
            guard seen.insert(name).inserted else { continue }
            fields.append(JournalField(name: name, value: string(value)))
        }
        return fields
    }
}
