// A swift-log handler that writes native journal entries (MESSAGE, PRIORITY, SYSLOG_IDENTIFIER,
// DARKROOM_* fields). When an entry cannot be sent (socket missing, send failed) the same line goes to
// the fallback text handler with `journal_error=<code>` added: a line is never silently dropped.
import Glibc
import Logging

public struct JournalLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    public let identifier: String
    public let sender: JournalSender
    /// Where lines go when the journal does not take them (stderr by default).
    public let fallback: TextLogHandler

    public init(identifier: String, level: Logger.Level = .info,
                sender: JournalSender = JournalSender(), fallback: TextLogHandler? = nil,
                metadataProvider: Logger.MetadataProvider? = nil) {
        self.identifier = identifier
        self.logLevel = level
        self.sender = sender
        self.fallback = fallback ?? TextLogHandler(identifier: identifier, level: level)
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let merged = TextLogHandler.merge(metadata, metadataProvider, event.metadata)
        let message = event.message.description
        let fields = JournalFields.entry(
            message: message, level: event.level, identifier: identifier, metadata: merged,
            error: event.error, file: event.file, function: event.function, line: event.line, pid: getpid())
        if case .failure(let failure) = sender.send(fields) {
            var withReason = merged
            withReason["journal_error"] = .string(failure.code.rawValue)
            fallback.write(level: event.level, message: message, metadata: withReason, error: event.error)
        }
    }
}
