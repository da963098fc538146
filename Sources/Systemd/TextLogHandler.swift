// Readable log lines for a terminal or a plain log file:
//   2026-11-28T12:00:00Z info darkroomd: batch done job=abc class=small duration_ms=812
// Metadata in the journal handler's order (job, class, batch, model, event, duration_ms, then the rest
// by key); values with spaces, quotes or `=` are quoted.
import Glibc
import Logging

public struct TextLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    /// The program name shown on every line (e.g. "darkroomd").
    public let identifier: String
    /// Where lines go; stderr unless a test or a caller says otherwise. Not owned: never closed.
    public let fileDescriptor: Int32

    public init(identifier: String, level: Logger.Level = .info, fileDescriptor: Int32 = STDERR_FILENO,
                metadataProvider: Logger.MetadataProvider? = nil) {
        self.identifier = identifier
        self.logLevel = level
        self.fileDescriptor = fileDescriptor
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let merged = Self.merge(metadata, metadataProvider, event.metadata)
        write(level: event.level, message: event.message.description, metadata: merged, error: event.error)
    }

    /// Writes one line with one write(2) so lines from several threads do not interleave.
    func write(level: Logger.Level, message: String, metadata: Logger.Metadata, error: (any Error)? = nil) {
        var line = Self.format(time: time(nil), level: level, identifier: identifier, message: message,
                               metadata: metadata)
        if let error { line += " error=" + Self.quoted(String(describing: error)) }
        line += "\n"
        var bytes = Array(line.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeMutableBytes { raw in
                Glibc.write(fileDescriptor, raw.baseAddress! + offset, raw.count - offset)
            }
            if n < 0 {
                if errno == EINTR { continue }
                return
            }
            offset += n
        }
        bytes.removeAll()
    }

    /// One line, without the trailing newline.
    public static func format(time: time_t, level: Logger.Level, identifier: String, message: String,
                              metadata: Logger.Metadata) -> String {
        var line = timestamp(time) + " " + level.rawValue + " " + identifier + ": " + message
        for (key, value) in JournalFields.ordered(metadata) {
            line += " " + key + "=" + quoted(JournalFields.string(value))
        }
        return line
    }

    /// RFC 3339 UTC with seconds, e.g. 2026-11-28T12:00:00Z.
    public static func timestamp(_ time: time_t) -> String {
        var t = time
        var parts = tm()
        gmtime_r(&t, &parts)
        var buffer = [CChar](repeating: 0, count: 32)
        let n = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%SZ", &parts)
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// A value as it appears after `key=`: bare when safe, else in double quotes with \" \\ \n escapes.
    static func quoted(_ value: String) -> String {
        let needsQuotes = value.isEmpty || value.contains { $0 == " " || $0 == "\"" || $0 == "=" || $0.isNewline || $0 == "\t" }
        guard needsQuotes else { return value }
        var out = "\""
        for ch in value {
            switch ch {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            default: out.append(ch)
            }
        }
        return out + "\""
    }

    /// Handler metadata, then the provider's, then the event's: later ones win.
    static func merge(_ base: Logger.Metadata, _ provider: Logger.MetadataProvider?,
                      _ event: Logger.Metadata?) -> Logger.Metadata {
        var merged = base
        if let provided = provider?.get() { merged.merge(provided) { _, new in new } }
        if let event { merged.merge(event) { _, new in new } }
        return merged
    }
}
