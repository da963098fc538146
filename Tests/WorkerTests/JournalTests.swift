// Journal logging as a listener speaking journald's native protocol receives it, the stderr fallback
// when the journal is missing or refuses, and the readable text lines.
import Glibc
import Logging
import Systemd
import Testing

/// A pipe whose write end a TextLogHandler writes to; reads what arrived.
final class SystemdTestCapturedLines {
    let readEnd: Int32
    let writeEnd: Int32

    init() throws {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw SystemdTestListenerError("pipe failed: errno \(errno)") }
        readEnd = fds[0]
        writeEnd = fds[1]
        _ = fcntl(readEnd, F_SETFL, fcntl(readEnd, F_GETFL) | O_NONBLOCK)
    }

    /// Everything written so far.
    func drain() -> String {
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(readEnd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            out += buffer[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }

    deinit {
        close(readEnd)
        close(writeEnd)
    }
}

private func journalField(_ fields: [JournalField], _ name: String) -> String? {
    fields.first { $0.name == name }?.value
}

// Nested in the serialized environment suite (SystemdNotifyTests.swift): some tests set JOURNAL_STREAM,
// DARKROOM_JOURNAL_SOCKET and DARKROOM_LOG_FORMAT in this process.
extension SystemdProcessEnvironmentTests {
    @Suite("journald native logging")
    struct JournalTests {
        @Test func entriesCarryMessagePriorityIdentifierAndDarkroomFields() throws {
            let listener = try SystemdTestListener(name: "journal")
            let lines = try SystemdTestCapturedLines()
            let handler = JournalLogHandler(
                identifier: "darkroomd", level: .trace, sender: JournalSender(socketPath: listener.path),
                fallback: TextLogHandler(identifier: "darkroomd", fileDescriptor: lines.writeEnd))
            var logger = Logger(label: "test") { _ in handler }
            logger[metadataKey: "class"] = "small"
            logger.info("batch finished", metadata: [
                "job": "job-42", "batch": "7", "model": "tiny-shapes", "event": "completed",
                "duration_ms": "812", "queueDepth": "3", "cache-hits": "5",
            ])
            let raw = try #require(listener.receive())
            let fields = try #require(JournalFields.decodeNative(raw))
            #expect(journalField(fields, "MESSAGE") == "batch finished")
            #expect(journalField(fields, "PRIORITY") == "6")
            #expect(journalField(fields, "SYSLOG_IDENTIFIER") == "darkroomd")
            #expect(journalField(fields, "SYSLOG_PID") == String(getpid()))
            #expect(journalField(fields, "DARKROOM_JOB") == "job-42")
            #expect(journalField(fields, "DARKROOM_CLASS") == "small")
            #expect(journalField(fields, "DARKROOM_BATCH") == "7")
            #expect(journalField(fields, "DARKROOM_MODEL") == "tiny-shapes")
            #expect(journalField(fields, "DARKROOM_EVENT") == "completed")
            #expect(journalField(fields, "DARKROOM_DURATION_MS") == "812")
            #expect(journalField(fields, "DARKROOM_QUEUE_DEPTH") == "3")
            #expect(journalField(fields, "DARKROOM_CACHE_HITS") == "5")
            #expect(journalField(fields, "CODE_FILE")?.hasSuffix("JournalTests.swift") == true)
            // Nothing went to the fallback.
            #expect(lines.drain() == "")
        }

        @Test func aMultiLineMessageTravelsInTheBinaryLengthForm() throws {
            let listener = try SystemdTestListener(name: "journal")
            let handler = JournalLogHandler(identifier: "darkroomd", sender: JournalSender(socketPath: listener.path))
            let logger = Logger(label: "test") { _ in handler }
            logger.error("decode failed\nat step 3", metadata: ["job": "j1"])
            let raw = try #require(listener.receive())
            // MESSAGE\n <8-byte little-endian length> value \n
            let message = Array("decode failed\nat step 3".utf8)
            let expectedPrefix = Array("MESSAGE\n".utf8) + [UInt8(message.count), 0, 0, 0, 0, 0, 0, 0] + message + [10]
            #expect(Array(raw.prefix(expectedPrefix.count)) == expectedPrefix)
            let fields = try #require(JournalFields.decodeNative(raw))
            #expect(journalField(fields, "MESSAGE") == "decode failed\nat step 3")
            #expect(journalField(fields, "PRIORITY") == "3")
            #expect(journalField(fields, "DARKROOM_JOB") == "j1")
        }

        @Test(arguments: [
            (Logger.Level.trace, "7"), (.debug, "7"), (.info, "6"), (.notice, "5"),
            (.warning, "4"), (.error, "3"), (.critical, "2"),
        ])
        func levelsMapToSyslogPriorities(level: Logger.Level, priority: String) throws {
            let listener = try SystemdTestListener(name: "journal")
            let handler = JournalLogHandler(identifier: "darkroomd", level: .trace,
                                            sender: JournalSender(socketPath: listener.path))
            let logger = Logger(label: "test") { _ in handler }
            logger.log(level: level, "level \(level.rawValue)")
            let raw = try #require(listener.receive())
            let fields = try #require(JournalFields.decodeNative(raw))
            #expect(journalField(fields, "PRIORITY") == priority)
            #expect(journalField(fields, "MESSAGE") == "level \(level.rawValue)")
        }

        @Test func aMissingJournalSocketFallsBackToTextLines() throws {
            let lines = try SystemdTestCapturedLines()
            let sender = JournalSender(socketPath: "/tmp/darkroom-no-such-dir/journal.sock")
            #expect(!sender.isAvailable)
            let handler = JournalLogHandler(
                identifier: "darkroomd", sender: sender,
                fallback: TextLogHandler(identifier: "darkroomd", fileDescriptor: lines.writeEnd))
            let logger = Logger(label: "test") { _ in handler }
            logger.warning("broker connection lost", metadata: ["class": "small", "job": "abc"])
            let text = lines.drain()
            #expect(text.hasSuffix("\n"))
            #expect(text.contains(" warning darkroomd: broker connection lost job=abc class=small journal_error=journal_socket_missing"))
        }

        @Test func aRefusedJournalSendFallsBackToTextLines() throws {
            let listener = try SystemdTestListener(name: "journal")
            listener.closeKeepingFile()
            let sender = JournalSender(socketPath: listener.path)
            #expect(sender.isAvailable)
            guard case .failure(let failure) = sender.send([JournalField(name: "MESSAGE", value: "x")]) else {
                Issue.record("a send to a socket nobody reads must fail")
                return
            }
            #expect(failure.code == "journal_send_failed")
            #expect(failure.errno == ECONNREFUSED)
            let lines = try SystemdTestCapturedLines()
            let handler = JournalLogHandler(
                identifier: "darkroomd", sender: sender,
                fallback: TextLogHandler(identifier: "darkroomd", fileDescriptor: lines.writeEnd))
            Logger(label: "test") { _ in handler }.info("still here", metadata: ["job": "j9"])
            #expect(lines.drain().contains(" info darkroomd: still here job=j9 journal_error=journal_send_failed\n"))
        }

        @Test func theRealJournalSocketIsNotTrustedWhenItIsAbsent() throws {
            // libsystemd's sd_journal_sendv returns 0 even with no socket; the sender must not.
            let sender = JournalSender()
            #expect(sender.socketPath == "/run/systemd/journal/socket")
            let result = sender.send([JournalField(name: "MESSAGE", value: "darkroom test entry"),
                                      JournalField(name: "PRIORITY", value: "7")])
            var info = stat()
            if stat(JournalSender.defaultSocketPath, &info) == 0 {
                #expect(sender.isAvailable)
                if case .failure(let failure) = result { Issue.record("journald is there but the send failed: \(failure)") }
            } else {
                #expect(!sender.isAvailable)
                guard case .failure(let failure) = result else {
                    Issue.record("a send with no journald socket must fail, not report success")
                    return
                }
                #expect(failure.code == "journal_socket_missing")
                #expect(failure.errno == ENOENT)
            }
        }

        @Test func theEnvironmentVariableRedirectsTheSender() throws {
            let listener = try SystemdTestListener(name: "journal")
            withSystemdTestEnvironment(["DARKROOM_JOURNAL_SOCKET": listener.path]) {
                #expect(JournalSender.fromEnvironment().socketPath == listener.path)
            }
            withSystemdTestEnvironment(["DARKROOM_JOURNAL_SOCKET": nil]) {
                #expect(JournalSender.fromEnvironment().socketPath == JournalSender.defaultSocketPath)
            }
        }

        @Test func autoChoosesTheJournalWhenJournalStreamMatchesStderr() throws {
            var info = stat()
            #expect(fstat(STDERR_FILENO, &info) == 0)
            let missing = JournalSender(socketPath: "/tmp/darkroom-no-such-dir/journal.sock")
            withSystemdTestEnvironment(["JOURNAL_STREAM": "\(info.st_dev):\(info.st_ino)", "DARKROOM_LOG_FORMAT": nil]) {
                #expect(LoggingBootstrap.stderrIsJournalStream())
                #expect(LoggingBootstrap.resolve(.auto, sender: missing) == .journal)
                #expect(LoggingBootstrap.resolve(.text, sender: missing) == .text)
            }
            withSystemdTestEnvironment(["JOURNAL_STREAM": "\(info.st_dev):\(info.st_ino + 1)", "DARKROOM_LOG_FORMAT": nil]) {
                #expect(!LoggingBootstrap.stderrIsJournalStream())
                #expect(LoggingBootstrap.resolve(.auto, sender: missing) == .text)
                #expect(LoggingBootstrap.resolve(.journal, sender: missing) == .journal)
            }
            withSystemdTestEnvironment(["JOURNAL_STREAM": nil, "DARKROOM_LOG_FORMAT": "journal"]) {
                #expect(LoggingBootstrap.resolve(.auto, sender: missing) == .journal)
            }
            withSystemdTestEnvironment(["JOURNAL_STREAM": "garbage", "DARKROOM_LOG_FORMAT": nil]) {
                #expect(!LoggingBootstrap.stderrIsJournalStream())
            }
        }

        @Test func autoKeepsTextLinesWhenSomeoneReadsStderrEvenWithAJournalSocket() throws {
            // The test runner's stderr is a terminal, pipe or file: lines must stay readable there.
            let listener = try SystemdTestListener(name: "journal")
            var info = stat()
            #expect(fstat(STDERR_FILENO, &info) == 0)
            let kind = info.st_mode & S_IFMT
            let readable = isatty(STDERR_FILENO) != 0 || kind == S_IFIFO || kind == S_IFREG || kind == S_IFSOCK
            withSystemdTestEnvironment(["JOURNAL_STREAM": nil, "DARKROOM_LOG_FORMAT": nil]) {
                let chosen = LoggingBootstrap.resolve(.auto, sender: JournalSender(socketPath: listener.path))
                #expect(chosen == (readable ? .text : .journal))
            }
        }

        @Test func textLinesShowTimeLevelIdentifierMessageAndMetadata() {
            let line = TextLogHandler.format(
                time: 1_795_867_200, level: .info, identifier: "darkroomd", message: "message",
                metadata: ["class": "small", "job": "abc"])
            #expect(line == "2026-11-28T12:00:00Z info darkroomd: message job=abc class=small")
            let quoted = TextLogHandler.format(
                time: 0, level: .error, identifier: "darkroomd", message: "failed",
                metadata: ["reason": "out of \"memory\"", "duration_ms": "5", "event": "failed", "empty": ""])
            #expect(quoted == #"1970-01-01T00:00:00Z error darkroomd: failed event=failed duration_ms=5 empty="" reason="out of \"memory\"""#)
        }

        @Test(arguments: [
            ("job", "DARKROOM_JOB"), ("class", "DARKROOM_CLASS"), ("batch", "DARKROOM_BATCH"),
            ("model", "DARKROOM_MODEL"), ("event", "DARKROOM_EVENT"), ("duration_ms", "DARKROOM_DURATION_MS"),
            ("durationMs", "DARKROOM_DURATION_MS"), ("queue-depth", "DARKROOM_QUEUE_DEPTH"),
            ("cache.hits", "DARKROOM_CACHE_HITS"), ("__odd__key__", "DARKROOM_ODD_KEY"), ("", "DARKROOM_FIELD"),
        ])
        func metadataKeysBecomeUpperSnakeCaseDarkroomFields(key: String, name: String) {
            #expect(JournalFields.fieldName(forMetadataKey: key) == name)
        }

        @Test func nativeEncodingRoundTripsBothForms() {
            let fields = [JournalField(name: "MESSAGE", value: "two\nlines"), JournalField(name: "A", value: "b=c"),
                          JournalField(name: "EMPTY", value: "")]
            let bytes = JournalFields.encodeNative(fields)
            #expect(JournalFields.decodeNative(bytes) == fields)
            #expect(JournalFields.decodeNative(Array("MESSAGE\n".utf8) + [200, 0, 0, 0, 0, 0, 0, 0] + Array("x\n".utf8)) == nil)
        }
    }
}
