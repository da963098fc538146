import Config
import Core
import Foundation
import Jobs
import TestSupport
import Testing
@testable import Worker

/// A `darkroomd` process configured through the environment, logging to a file.
final class WorkerProcess {
    let process = Process()
    let log: String
    /// Opens when the process has exited (Process's termination handler).
    let exited = Gate()

    /// - journalDirectory: run darkroomd in a mount namespace whose journald socket is `<dir>/socket`.
    /// - mounts: run darkroomd in a mount namespace set up by these shell commands (`inPrivateMounts`).
    init(namespace: String, state: String, journalDirectory: String? = nil, mounts: String? = nil,
         extraEnv: [String: String] = [:]) throws {
        log = state + "/darkroomd-\(UUID().uuidString.prefix(6)).log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        let command = [darkroomdBinary(), "--config", repoRoot + "/config/darkroom.toml"]
        let (executable, arguments) = journalDirectory.map { inJournalNamespace($0, command) }
            ?? mounts.map { inPrivateMounts($0, command) }
            ?? (command[0], Array(command.dropFirst()))
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let systemdVariables: Set = ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "JOURNAL_STREAM"]
        var env = ProcessInfo.processInfo.environment.filter {
            !$0.key.hasPrefix("DARKROOM_") && !systemdVariables.contains($0.key)
        }
        env["DARKROOM_BROKER_URLS"] = brokerURL
        env["DARKROOM_NAMESPACE"] = namespace
        env["DARKROOM_STATE_DIR"] = state + "/state"
        env["DARKROOM_CACHE_DIR"] = state + "/cache"
        env["DARKROOM_SEEDS_DIR"] = state + "/seeds"
        env["DARKROOM_MODEL_DIR"] = fixtureModels
        env["DARKROOM_MODELS"] = "latent-dit"
        env["DARKROOM_DEFAULT_MODEL"] = "latent-dit"
        env["DARKROOM_WORKER_PROGRESS_MAX_HZ"] = "1000"
        env["DARKROOM_LOG_FORMAT"] = "text"
        for (k, v) in extraEnv { env[k] = v }
        process.environment = env
        process.standardError = FileHandle(forWritingAtPath: log)
        process.standardOutput = FileHandle.nullDevice
        process.terminationHandler = { [exited] _ in exited.open() }
        try process.run()
    }

    func signal(_ signo: Int32) { kill(process.processIdentifier, signo) }

    func waitExit(timeout: Double = 60) async -> Int32? {
        guard await exited.wait(timeout: .milliseconds(Int(timeout * 1000))) else { return nil }
        return process.terminationStatus
    }

    var output: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
}

/// SIGTERMs a worker, expects exit 0, then expects every job to have ended exactly once, completed.
func stopAndExpectEachCompletedOnce(_ worker: WorkerProcess, _ client: TestClient, _ ids: [String]) async throws {
    worker.signal(SIGTERM)
    #expect(await worker.waitExit() == 0, "darkroomd did not exit 0 on SIGTERM:\n\(worker.output)")
    #expect(try await client.barrier(), "the reply queue's last events did not arrive")
    for id in ids {
        let terminals = client.events(of: id).filter(\.kind.isTerminal)
        #expect(terminals.count == 1 && terminals.first?.kind == .completed, "\(id) ended \(terminals.map(\.kind))")
    }
}

@Suite(.serialized) struct CrashRecovery {
    /// worker.threads is applied (it used to be parsed and ignored): the ready line reports OpenBLAS's thread count.
    @Test func workerThreadsSetsTheEnginesThreadCount() async throws {
        let (ns, dir, client) = try await binaryWorkerTest()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let worker = try WorkerProcess(namespace: ns, state: dir, extraEnv: [
            "DARKROOM_WORKER_THREADS": "3", "DARKROOM_WORKER_CONSUME": "small", "OPENBLAS_NUM_THREADS": "1",
        ])
        defer { if worker.process.isRunning { worker.signal(SIGKILL) } }
        try await client.submit(job("threads", size: 32, steps: 3), toClass: "small", id: "threads")
        #expect(await client.waitTerminal(["threads"], timeout: 90), "\(worker.output)")
        let ready = worker.output.split(separator: "\n").first { $0.contains("serving") } ?? ""
        #expect(ready.contains(" threads=3"), "\(ready)")
        worker.signal(SIGTERM)
        #expect(await worker.waitExit(timeout: 60) == 0)
        await client.cleanUp(classes: ["small", "medium", "large"])
    }

    @Test func killNineInTheMiddleOfABatchLosesNoJobAndEachJobEndsOnce() async throws {
        let (ns, dir, client) = try await binaryWorkerTest()
        let ids = (0..<6).map { "crash\($0)" }
        for (i, id) in ids.enumerated() {
            try await client.submit(job(id, size: 128, steps: 120, seed: UInt64(i), extra: ",\"count\":2"), toClass: "small", id: id)
        }
        let first = try WorkerProcess(namespace: ns, state: dir)
        let midBatch = await client.wait(timeout: 60) { ids.contains { client.events(of: $0).contains { $0.kind == .progress } } }
        #expect(midBatch, "the first worker never started the batch:\n\(first.output)")
        #expect(ids.allSatisfy { client.terminal(of: $0) == nil }, "the batch finished before the kill; make it longer")
        first.signal(SIGKILL)
        _ = await first.waitExit()

        let second = try WorkerProcess(namespace: ns, state: dir)
        let finished = await client.waitTerminal(ids, timeout: 180)
        #expect(finished, "not every job finished after the restart:\n\(second.output)")
        try await stopAndExpectEachCompletedOnce(second, client, ids)
        for id in ids { #expect(client.events(of: id).compactMap(\.png).count >= 2) }
        #expect(await queueDepth(client, "\(ns).jobs.small") == 0)
        await client.cleanUp(classes: ["small", "medium", "large"])
    }
}
