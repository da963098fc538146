// Journal logging through libsystemd, as a listener at journald's own socket path receives it: the probe
// process (Tests/SystemdProbe) logs inside a private mount namespace where /run/systemd/journal/socket is a
// test listener; the stderr fallback when the socket is missing or refuses; the readable text lines.
import Foundation
import Glibc
import Logging
import Systemd
import TestSupport
import Testing

/// What one run of systemd-probe did.
struct ProbeRun {
    var pid: Int32
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs systemd-probe ARGS inside a namespace whose journald socket is `listener` (nil: no socket at all).
func probe(_ listener: SystemdTestListener?, _ arguments: [String]) throws -> ProbeRun {
    let (executable, args) = inJournalNamespace(listener?.directory, [builtProduct("systemd-probe")] + arguments)
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = args
    var env = ProcessInfo.processInfo.environment
    env["JOURNAL_STREAM"] = nil
    p.environment = env
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return ProbeRun(pid: p.processIdentifier, status: p.terminationStatus,
                    stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
}

private func journalField(_ fields: [JournalField], _ name: String) -> String? {
    fields.first { $0.name == name }?.value
}

// JOURNAL_STREAM is passed to LoggingBootstrap as a value: no test changes this process's environment.
@Suite("journald logging through libsystemd")
struct JournalTests {
    @Test func entriesCarryMessagePriorityIdentifierAndDarkroomFields() throws {
        let listener = try SystemdTestListener(name: "socket")
        #expect(try probe(listener, ["available"]).stdout == "true\n")
        let run = try probe(listener, ["log", "info", "batch finished", "class=small", "job=job-42", "batch=7",
                                       "model=tiny-shapes", "event=completed", "duration_ms=812", "queueDepth=3",
                                       "cache-hits=5"])
        #expect(run.status == 0, "\(run.stderr)")
        let raw = try #require(listener.receive())
        let fields = try #require(decodeJournalDatagram(raw))
        #expect(journalField(fields, "MESSAGE") == "batch finished")
        #expect(journalField(fields, "PRIORITY") == "6")
        #expect(journalField(fields, "SYSLOG_IDENTIFIER") == "darkroomd")
        #expect(journalField(fields, "SYSLOG_PID") != nil)
        #expect(journalField(fields, "DARKROOM_JOB") == "job-42")
        #expect(journalField(fields, "DARKROOM_CLASS") == "small")
        #expect(journalField(fields, "DARKROOM_BATCH") == "7")
        #expect(journalField(fields, "DARKROOM_MODEL") == "tiny-shapes")
        #expect(journalField(fields, "DARKROOM_EVENT") == "completed")
        #expect(journalField(fields, "DARKROOM_DURATION_MS") == "812")
        #expect(journalField(fields, "DARKROOM_QUEUE_DEPTH") == "3")
        #expect(journalField(fields, "DARKROOM_CACHE_HITS") == "5")
        #expect(journalField(fields, "CODE_FILE")?.hasSuffix("main.swift") == true)
        // Nothing went to the fallback.
        #expect(run.stderr == "")
    }

    @Test func aMultiLineMessageTravelsInTheBinaryLengthForm() throws {
        let listener = try SystemdTestListener(name: "socket")
        let run = try probe(listener, ["log", "error", "decode failed\nat step 3", "job=j1"])
        #expect(run.status == 0, "\(run.stderr)")
        let raw = try #require(listener.receive())
        // MESSAGE\n <8-byte little-endian length> value \n
        let message = Array("decode failed\nat step 3".utf8)
        let expected = Array("MESSAGE\n".utf8) + [UInt8(message.count), 0, 0, 0, 0, 0, 0, 0] + message + [10]
        #expect(raw.firstRange(of: expected) != nil)
        let fields = try #require(decodeJournalDatagram(raw))
        #expect(journalField(fields, "MESSAGE") == "decode failed\nat step 3")
        #expect(journalField(fields, "PRIORITY") == "3")
        #expect(journalField(fields, "DARKROOM_JOB") == "j1")
    }

    @Test(arguments: [
        (Logger.Level.trace, "7"), (.debug, "7"), (.info, "6"), (.notice, "5"),
        (.warning, "4"), (.error, "3"), (.critical, "2"),
    ])
    func levelsMapToSyslogPriorities(level: Logger.Level, priority: String) throws {
        let listener = try SystemdTestListener(name: "socket")
        let run = try probe(listener, ["log", level.rawValue, "level \(level.rawValue)"])
        #expect(run.status == 0, "\(run.stderr)")
        let raw = try #require(listener.receive())
        let fields = try #require(decodeJournalDatagram(raw))
        #expect(journalField(fields, "PRIORITY") == priority)
        #expect(journalField(fields, "MESSAGE") == "level \(level.rawValue)")
    }

    @Test func aMissingJournalSocketIsAFailureAndFallsBackToTextLines() throws {
        // libsystemd's sd_journal_sendv returns 0 with no socket; the sender must not report success.
        #expect(try probe(nil, ["available"]).stdout == "false\n")
        #expect(try probe(nil, ["send", "MESSAGE=darkroom test entry", "PRIORITY=7"]).stdout == "journal_socket_missing \(ENOENT)\n")
        let run = try probe(nil, ["log", "warning", "broker connection lost", "class=small", "job=abc"])
        #expect(run.status == 0)
        #expect(run.stderr.hasSuffix("\n"))
        #expect(run.stderr.contains(" warning darkroomd: broker connection lost job=abc class=small journal_error=journal_socket_missing"),
                "\(run.stderr)")
    }

    @Test func aRefusedJournalSendFallsBackToTextLines() throws {
        let listener = try SystemdTestListener(name: "socket")
        listener.closeKeepingFile()
        #expect(try probe(listener, ["send", "MESSAGE=x"]).stdout == "journal_send_failed \(ECONNREFUSED)\n")
        let run = try probe(listener, ["log", "info", "still here", "job=j9"])
        #expect(run.stderr.contains(" info darkroomd: still here job=j9 journal_error=journal_send_failed\n"), "\(run.stderr)")
    }

    @Test func autoChoosesTheJournalWhenJournalStreamMatchesStderr() throws {
        var info = stat()
        #expect(fstat(STDERR_FILENO, &info) == 0)
        let stream = "\(info.st_dev):\(info.st_ino)"
        #expect(LoggingBootstrap.stderrIsJournalStream(stream))
        #expect(LoggingBootstrap.resolve(.auto, journalStream: stream, journalAvailable: false) == .journal)
        #expect(LoggingBootstrap.resolve(.text, journalStream: stream, journalAvailable: false) == .text)
        let other = "\(info.st_dev):\(info.st_ino + 1)"
        #expect(!LoggingBootstrap.stderrIsJournalStream(other))
        #expect(LoggingBootstrap.resolve(.auto, journalStream: other, journalAvailable: false) == .text)
        #expect(LoggingBootstrap.resolve(.journal, journalStream: other, journalAvailable: false) == .journal)
        for bad in ["garbage", "", "1:", ":2", "1:2:3"] {
            #expect(!LoggingBootstrap.stderrIsJournalStream(bad), "\(bad)")
        }
        #expect(!LoggingBootstrap.stderrIsJournalStream(nil))
    }

    @Test func autoKeepsTextLinesWhenSomeoneReadsStderrEvenWithAJournalSocket() throws {
        // The test runner's stderr is a terminal, pipe or file: lines must stay readable there.
        var info = stat()
        #expect(fstat(STDERR_FILENO, &info) == 0)
        let kind = info.st_mode & S_IFMT
        let readable = isatty(STDERR_FILENO) != 0 || kind == S_IFIFO || kind == S_IFREG || kind == S_IFSOCK
        let chosen = LoggingBootstrap.resolve(.auto, journalStream: nil, journalAvailable: true)
        #expect(chosen == (readable ? .text : .journal))
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
}
