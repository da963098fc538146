import Foundation
import TestSupport
import Testing
@testable import Worker

/// Runs a command, returning (status, stdout + stderr). It waits on a thread of its own, never on the
/// tests' cooperative threads: an in-process worker needs those while the command runs.
func run(_ path: String, _ args: [String], env: [String: String] = [:]) async throws -> (Int32, String) {
    try await withCheckedThrowingContinuation { (done: CheckedContinuation<(Int32, String), any Error>) in
        Thread.detachNewThread { done.resume(with: Result { try runBlocking(path, args, env: env) }) }
    }
}

private func runBlocking(_ path: String, _ args: [String], env: [String: String]) throws -> (Int32, String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = args
    var e = ProcessInfo.processInfo.environment
    for (k, v) in env { e[k] = v }
    p.environment = e
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    try p.run()
    let out = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: out, as: UTF8.self))
}

@Test func topologyDeclareCreatesExactlyTheContractsExchangesAndQueues() async throws {
    let ns = uniqueNamespace()
    let env = ["DARKROOM_NAMESPACE": ns, "DARKROOM_BROKER_URLS": brokerURL]
    let (status, out) = try await run(darkroomBinary(), ["topology", "declare", "--config", repoRoot + "/config/darkroom.toml"], env: env)
    #expect(status == 0, "\(out)")

    let (_, queues) = try await run(repoRoot + "/ops/broker", ["ctl", "list_queues", "name", "arguments", "--quiet"])
    let ours = queues.split(separator: "\n").filter { $0.hasPrefix(ns + ".") }.map(String.init).sorted()
    #expect(ours == [
        "\(ns).dead\t[]",
        "\(ns).jobs.large\t[{\"x-dead-letter-exchange\",\"\(ns).dead\"},{\"x-max-priority\",10}]",
        "\(ns).jobs.medium\t[{\"x-dead-letter-exchange\",\"\(ns).dead\"},{\"x-max-priority\",10}]",
        "\(ns).jobs.small\t[{\"x-dead-letter-exchange\",\"\(ns).dead\"},{\"x-max-priority\",10}]",
    ].sorted(), "\(ours)")
    let (_, exchanges) = try await run(repoRoot + "/ops/broker", ["ctl", "list_exchanges", "name", "type", "durable", "--quiet"])
    let ex = exchanges.split(separator: "\n").filter { $0.hasPrefix(ns + ".") }.map(String.init).sorted()
    #expect(ex == ["\(ns).control\tfanout\ttrue", "\(ns).dead\tfanout\ttrue", "\(ns).jobs\tdirect\ttrue"], "\(ex)")

    // Declaring again is idempotent; `topology show` lists depth and consumers.
    #expect(try await run(darkroomBinary(), ["topology", "declare"], env: env).0 == 0)
    let (showStatus, show) = try await run(darkroomBinary(), ["topology", "show", "--json"], env: env)
    #expect(showStatus == 0 && show.contains("\"queue\":\"\(ns).jobs.small\",\"messages\":0,\"consumers\":0"), "\(show)")

    let client = try await TestClient(namespace: ns)
    await client.cleanUp(classes: ["small", "medium", "large"])
}

@Test func aJobPublishedWithPikaPerTheContractIsAnswered() async throws {
    let ns = uniqueNamespace(), dir = tempDir()
    let cfg = try testConfig(namespace: ns, state: dir, windowMs: 0)
    let client = try await TestClient(namespace: ns, topology: cfg.contractTopology)
    let worker = try await TestWorker(cfg)
    let (status, out) = try await run("/usr/bin/python3", [repoRoot + "/examples/pika_producer.py", "--url", brokerURL, "--namespace", ns,
                                                     "--class", "tiny", "--size", "32", "--steps", "3", "--prompt", "red circle",
                                                     "--prompt", "blue square", "--out", dir + "/pika", "--timeout", "60"])
    #expect(status == 0, "\(out)")
    #expect(out.contains("completed") && out.contains("image"), "\(out)")
    let pngs = try FileManager.default.contentsOfDirectory(atPath: dir + "/pika").filter { $0.hasSuffix(".png") }
    #expect(pngs.count == 2)
    try await worker.stop()
    await client.cleanUp()
}

@Test func darkroomSubmitWaitAndWatchFollowAJobToItsEnd() async throws {
    let ns = uniqueNamespace(), dir = tempDir()
    let cfg = try testConfig(namespace: ns, state: dir, windowMs: 0)
    let client = try await TestClient(namespace: ns, topology: cfg.contractTopology)
    let worker = try await TestWorker(cfg)
    // The CLI's own config: defaults plus this test's namespace and a class named like the worker's.
    let env = ["DARKROOM_NAMESPACE": ns, "DARKROOM_BROKER_URLS": brokerURL, "DARKROOM_CLASSES_TINY_MAX_PIXELS": "1024",
               "DARKROOM_CLASSES_TINY_MAX_BATCH": "4", "DARKROOM_CLASSES_TINY_PREFETCH": "8"]
    let common = ["--prompt", "red circle", "--width", "32", "--height", "32", "--steps", "3", "--class", "tiny"]

    let (waited, out1) = try await run(darkroomBinary(), ["submit"] + common + ["--seed", "5", "--wait", "-o", dir + "/one.png"], env: env)
    #expect(waited == 0, "\(out1)")
    #expect(out1.contains("completed") && FileManager.default.fileExists(atPath: dir + "/one.png"), "\(out1)")

    let (queued, out2) = try await run(darkroomBinary(), ["submit"] + common + ["--id", "later-1"], env: env)
    #expect(queued == 0 && out2.contains("later-1"), "\(out2)")
    let (watched, out3) = try await run(darkroomBinary(), ["watch", "later-1", "-o", dir + "/watched"], env: env)
    #expect(watched == 0 && out3.contains("completed later-1"), "\(out3)")
    #expect(FileManager.default.fileExists(atPath: dir + "/watched/later-1-0.png"))

    let (failed, out4) = try await run(darkroomBinary(), ["submit", "--prompt", "purple elephant", "--class", "tiny", "--wait"], env: env)
    #expect(failed == 1 && out4.contains("invalid_request") && out4.contains("purple elephant"), "\(out4)")
    try await worker.stop()
    await client.cleanUp()
}
