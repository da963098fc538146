// Chooses, once at start-up, between native journal logging and readable stderr lines.
import Glibc
import Logging

public enum LogFormat: String, Sendable, CaseIterable {
    /// Journal when running under journald, text otherwise (see `LoggingBootstrap.resolve`).
    case auto
    case journal
    case text
}

public enum LoggingBootstrap {
    /// Installs the chosen handler for the whole process. swift-log allows this once per process.
    /// - environment: the process's variables (`JOURNAL_STREAM` is the one read), passed in once at start.
    public static func bootstrap(identifier: String, level: Logger.Level = .info, format: LogFormat = .auto,
                                 environment: [String: String]) {
        let chosen = resolve(format, journalStream: environment["JOURNAL_STREAM"])
        LoggingSystem.bootstrap { _ in makeHandler(identifier: identifier, level: level, format: chosen) }
    }

    /// The handler for an explicit format (`.auto` counts as `.text`: resolve it first).
    public static func makeHandler(identifier: String, level: Logger.Level = .info,
                                   format: LogFormat) -> any LogHandler {
        switch format {
        case .journal:
            return JournalLogHandler(identifier: identifier, level: level)
        case .text, .auto:
            return TextLogHandler(identifier: identifier, level: level)
        }
    }

    /// `.journal` or `.text`. An explicit format (the config's `log.format`) stays as it is. `.auto`
    /// is `.journal` when stderr is the stream systemd connected to journald (`JOURNAL_STREAM` names
    /// stderr's device and inode), or when the journal socket exists and stderr leads nowhere anyone
    /// reads (closed, or a character device that is not a terminal, such as /dev/null). Otherwise
    /// `.text`: a terminal, a pipe or a file gets readable lines, so a test or a person capturing stderr
    /// sees them even on a machine that runs journald.
    /// - journalStream: the `JOURNAL_STREAM` variable systemd set for this process (nil when unset).
    public static func resolve(_ format: LogFormat, journalStream: String?,
                               journalAvailable: Bool = JournalSender.isAvailable) -> LogFormat {
        guard format == .auto else { return format }
        if stderrIsJournalStream(journalStream) { return .journal }
        if journalAvailable && stderrLeadsNowhere() { return .journal }
        return .text
    }

    /// stderr is closed, or a character device that is not a terminal (/dev/null).
    static func stderrLeadsNowhere() -> Bool {
        var info = stat()
        guard fstat(STDERR_FILENO, &info) == 0 else { return true }
        return (info.st_mode & S_IFMT) == S_IFCHR && isatty(STDERR_FILENO) == 0
    }

    /// Whether `JOURNAL_STREAM` (`<device>:<inode>`) names the file stderr is (systemd.exec(5)).
    public static func stderrIsJournalStream(_ journalStream: String?) -> Bool {
        guard let raw = journalStream else { return false }
        let parts = raw.split(separator: ":")
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return false }
        var info = stat()
        guard fstat(STDERR_FILENO, &info) == 0 else { return false }
        return UInt64(info.st_dev) == device && UInt64(info.st_ino) == inode
    }
}
