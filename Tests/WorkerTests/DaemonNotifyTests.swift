// The real `darkroomd` binary under a stand-in systemd: a NOTIFY_SOCKET listener sees READY=1 once the
// worker serves, STATUS= lines that follow its work, WATCHDOG=1 from the liveness monitor and STOPPING=1
// on SIGTERM, with exit status 0; a listener at journald's socket path (in the worker's own mount
// namespace, where libsystemd sends) sees the job's structured entries. The worker is WorkerProcess
// (CrashRecoveryTests.swift): the built binary, configured through DARKROOM_* variables.
import Config
import Foundation
import Core
import Glibc
import Systemd
import TestSupport
import Testing

/// Every datagram a SystemdTestListener receives, collected on a background thread.
final class DaemonNotifyCollector: @unchecked Sendable {
    let listener: SystemdTestListener
    private let received = Locked<[[UInt8]]>([])
    private let stopped = Locked(false)
    private let finished = DispatchSemaphore(value: 0)

    init(name: String) throws {
        listener = try SystemdTestListener(name: name)
        let thread = Thread { [self] in
            while !stopped.value {
                if let datagram = listener.receive(seconds: 1) { received.withLock { $0.append(datagram) } }
            }
            finished.signal()
        }
        thread.start()
    }

    var path: String { listener.path }

    var datagrams: [[UInt8]] { received.value }

    /// Each notify message as its `KEY=value` lines.
    var messages: [[String]] {
        datagrams.map { String(decoding: $0, as: UTF8.self).split(separator: "\n").map(String.init) }
    }

    /// Each journal entry decoded from the native protocol (malformed datagrams left out).
    var entries: [[JournalField]] { datagrams.compactMap(decodeJournalDatagram) }

    /// Waits until `done` holds for what arrived, or the timeout passes.
    func wait(timeout: Double, until done: (DaemonNotifyCollector) -> Bool) async -> Bool {
        let end = Date().addingTimeInterval(timeout)
        while Date() < end {
            if done(self) { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return done(self)
    }

    func stop() {
        stopped.withLock { $0 = true }
        finished.wait()
    }
}

/// The index of the first message with a line `line` (or starting with it, for `prefix`).
private func firstIndex(_ messages: [[String]], of line: String, prefix: Bool = false) -> Int? {
    messages.firstIndex { $0.contains { prefix ? $0.hasPrefix(line) : $0 == line } }
}

private func field(_ entry: [JournalField], _ name: String) -> String? {
    entry.first { $0.name == name }?.value
}

// WorkerProcess does not pass on this process's systemd variables (a runner started by systemd has some), only the
// ones a test gives it.
@Suite("darkroomd under systemd") struct DaemonUnderSystemd {
    @Test func aRealWorkerSendsReadyStatusWatchdogAndStoppingAndExitsZero() async throws {
        let (ns, dir, client) = try await binaryWorkerTest()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let notify = try DaemonNotifyCollector(name: "notify")
        defer { notify.stop() }
        let worker = try WorkerProcess(namespace: ns, state: dir, extraEnv: [
            "NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "2000000", "DARKROOM_WORKER_CONSUME": "small",
        ])
        defer { if worker.process.isRunning { worker.signal(SIGKILL) } }

        let ready = await notify.wait(timeout: 90) { firstIndex($0.messages, of: "READY=1") != nil }
        #expect(ready, "no READY=1 from darkroomd; it said:\n\(worker.output)")
        let readyMessage = try #require(notify.messages.first { $0.contains("READY=1") })
        // READY=1 carries the first status line: serving the one class, nothing done yet.
        #expect(readyMessage.contains { $0.hasPrefix("STATUS=consuming small: 0 done, 0 failed") }, "\(readyMessage)")

        try await client.submit(job("notify-1", size: 32, steps: 4), toClass: "small", id: "notify-1")
        #expect(await client.waitTerminal(["notify-1"], timeout: 60), "the job did not finish:\n\(worker.output)")
        #expect(client.terminal(of: "notify-1")?.kind == .completed)

        // The status line follows the work, and the liveness monitor pings (every second for WATCHDOG_USEC=2 s).
        let doneShown = await notify.wait(timeout: 10) { c in
            c.messages.contains { $0.contains { $0.hasPrefix("STATUS=") && $0.contains(": 1 done, 0 failed") } }
        }
        #expect(doneShown, "no STATUS= with 1 done: \(notify.messages)")
        let pinged = await notify.wait(timeout: 10) { firstIndex($0.messages, of: "WATCHDOG=1") != nil }
        #expect(pinged, "no WATCHDOG=1: \(notify.messages)\n\(worker.output)")

        worker.signal(SIGTERM)
        let status = await worker.waitExit(timeout: 60)
        #expect(status == 0, "darkroomd did not exit 0 on SIGTERM:\n\(worker.output)")
        let stopping = await notify.wait(timeout: 5) { firstIndex($0.messages, of: "STOPPING=1") != nil }
        #expect(stopping, "no STOPPING=1: \(notify.messages)")

        // The order systemd relies on: nothing is READY before the loading notes, pings and STOPPING after READY.
        let m = notify.messages
        let readyAt = try #require(firstIndex(m, of: "READY=1"))
        #expect(firstIndex(m, of: "EXTEND_TIMEOUT_USEC=", prefix: true).map { $0 < readyAt } == true, "\(m)")
        #expect(firstIndex(m, of: "WATCHDOG=1").map { $0 > readyAt } == true, "\(m)")
        #expect(firstIndex(m, of: "STOPPING=1").map { $0 > readyAt } == true, "\(m)")
        #expect(m.filter { $0.contains("READY=1") }.count == 1, "\(m)")
        await client.cleanUp(classes: ["small", "medium", "large"])
    }

    @Test func aRealWorkerLogsTheJobToTheJournalWithDarkroomFields() async throws {
        let (ns, dir, client) = try await binaryWorkerTest()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let journal = try DaemonNotifyCollector(name: "socket")
        defer { journal.stop() }
        let worker = try WorkerProcess(namespace: ns, state: dir, journalDirectory: journal.listener.directory, extraEnv: [
            "DARKROOM_LOG_FORMAT": "journal", "DARKROOM_WORKER_CONSUME": "small",
        ])
        defer { if worker.process.isRunning { worker.signal(SIGKILL) } }

        let serving = await journal.wait(timeout: 90) { c in c.entries.contains { field($0, "DARKROOM_EVENT") == "ready" } }
        #expect(serving, "no journal entry with DARKROOM_EVENT=ready; stderr:\n\(worker.output)")
        try await client.submit(job("journal-1", size: 32, steps: 4), toClass: "small", id: "journal-1")
        #expect(await client.waitTerminal(["journal-1"], timeout: 60), "the job did not finish:\n\(worker.output)")

        let completed = await journal.wait(timeout: 10) { c in
            c.entries.contains { field($0, "DARKROOM_JOB") == "journal-1" && field($0, "DARKROOM_EVENT") == "completed" }
        }
        #expect(completed, "no completed entry for the job: \(journal.entries.count) entries")
        let entry = try #require(journal.entries.first {
            field($0, "DARKROOM_JOB") == "journal-1" && field($0, "DARKROOM_EVENT") == "completed"
        })
        #expect(field(entry, "DARKROOM_CLASS") == "small")
        #expect(field(entry, "DARKROOM_BATCH").map { !$0.isEmpty } == true)
        #expect(field(entry, "DARKROOM_MODEL") == "latent-dit")
        #expect(field(entry, "DARKROOM_DURATION_MS").flatMap { Int($0) } != nil)
        #expect(field(entry, "PRIORITY") == "6")
        #expect(field(entry, "SYSLOG_IDENTIFIER") == "darkroomd")
        #expect(field(entry, "MESSAGE").map { !$0.isEmpty } == true)
        // The batch that carried the job logged its start under the same batch id.
        let batch = field(entry, "DARKROOM_BATCH")
        #expect(journal.entries.contains { field($0, "DARKROOM_BATCH") == batch && field($0, "DARKROOM_EVENT") == "batch_started" })

        worker.signal(SIGTERM)
        #expect(await worker.waitExit(timeout: 60) == 0, "darkroomd did not exit 0 on SIGTERM:\n\(worker.output)")
        // Everything went to the journal: stderr carries no log lines (and no journal_error fallbacks).
        #expect(!worker.output.contains("journal_error"), "\(worker.output)")
        #expect(journal.entries.contains { field($0, "DARKROOM_EVENT") == "stopped" })
        await client.cleanUp(classes: ["small", "medium", "large"])
    }
}
