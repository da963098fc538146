// Finished results kept on disk across a broker outage (issue 13, "wasted work on reconnect"): a batch that
// finishes while the broker is down keeps its images and `completed` under <state_dir>/results; after the
// broker comes back the redelivered job is answered from them, without running the engine again, and the
// file goes once `completed` is confirmed. Through a real broker crash and restart, on a node of the test's own.
import Foundation
import Jobs
import Testing
import TestSupport
@testable import Worker

@Suite struct ResultsOnDiskTests {
    @Test func aBatchFinishedWhileTheBrokerIsDownIsAnsweredFromDiskAfterTheRestartAndRunsOnce() async throws {
        let dir = tempDir()
        let node = try BrokerNode(state: dir + "/broker")
        do {
            try await run(node, dir: dir)
            try node.stop()
        } catch {
            try? node.stop()
            throw error
        }
    }

    func run(_ node: BrokerNode, dir: String) async throws {
        let ns = uniqueNamespace()
        let cfg = try testConfig(namespace: ns, state: dir, windowMs: 50, broker: """
            urls = ["\(node.url)"]
            heartbeat = 10
            reconnect_max_backoff = 1
            """)
        let client = try await TestClient(namespace: ns, topology: cfg.contractTopology, url: node.url, durableReply: true)
        let worker = try await TestWorker(cfg)
        let results = worker.daemon.results
        // 8 images of 128x128 at 200 steps: a few seconds of engine time, long enough to kill the broker mid-batch.
        try await client.submit(job("kept", size: 128, steps: 200, seed: 40, extra: ",\"count\":8"), toClass: "big", id: "kept")
        #expect(await client.wait(timeout: 120) { client.events(of: "kept").contains { $0.kind == .progress } })
        try node.kill()
        // The batch finishes with the broker gone: its result is kept, its terminal event cannot be confirmed.
        #expect(await client.wait(timeout: 300) { results.keys.contains { $0.hasPrefix("kept.") } }, "no result kept on disk")
        #expect(client.terminal(of: "kept") == nil)
        let computed = worker.daemon.cond.withLock { worker.daemon.batchesStarted }
        #expect(computed == 1)

        try node.start()
        #expect(await client.waitTerminal(["kept"], timeout: 300), "no terminal event after the broker came back")
        let events = client.events(of: "kept")
        #expect(events.filter(\.kind.isTerminal).map(\.kind) == [.completed])
        // Every image arrives (an image event published just before the broker died may arrive twice: at least once).
        let indices = events.compactMap { e -> Int? in if case .image(let i) = e { return i.index } else { return nil } }
        #expect(Set(indices) == Set(0..<8), "image indices \(indices.sorted())")
        let (batches, fromDisk) = worker.daemon.cond.withLock { (worker.daemon.batchesStarted, worker.daemon.answeredFromDisk) }
        #expect(batches == 1, "the engine ran \(batches) batches for one job")
        #expect(fromDisk == 1)
        // Confirmed: the result is dropped, and the id is in the ledger.
        #expect(await client.wait(timeout: 30) { results.keys.isEmpty }, "result still on disk: \(results.keys)")
        #expect(worker.daemon.ledger.contains("kept"))
        try await worker.stop()
        await client.cleanUp()
    }
}

@Suite struct ResultStoreTests {
    func event(_ kind: EventKind, _ body: String) -> OutgoingEvent {
        OutgoingEvent(kind: kind, jobID: "j-1", body: Array(body.utf8), contentType: "application/json",
                      headers: [Header("darkroom-event", .string(kind.rawValue)), Header("darkroom-index", .int(-3))])
    }

    @Test func eventsRoundTripByJobIDAndBodyAndATornFileIsIgnored() throws {
        let store = try KeptResults(directory: tempDir() + "/results")
        let key = KeptResults.key(jobID: "j-1", body: Array("{\"v\":1}".utf8))
        #expect(key != KeptResults.key(jobID: "j-1", body: Array("{\"v\":1,\"seed\":2}".utf8)))
        let events = [event(.image, "{\"png\":\"AAAA\"}"), event(.completed, "{}")]
        try store.save(key: key, events: events)
        #expect(store.load(key: key) == events)
        #expect(store.load(key: "j-1.other") == nil)
        // A torn write (the file cut short) fails its checksum: not answered from, and removed.
        let path = store.directory + "/" + key + ".result"
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        try data.prefix(data.count - 3).write(to: URL(fileURLWithPath: path))
        #expect(store.load(key: key) == nil)
        #expect(store.keys.isEmpty)
    }

    @Test func boundedBySizeAndAge() throws {
        let store = try KeptResults(directory: tempDir() + "/results", maxBytes: 3000, maxAge: 3600)
        let big = String(repeating: "x", count: 1000)
        for i in 0..<5 { try store.save(key: "j-\(i).0", events: [event(.completed, big)]) }
        #expect(store.keys.count == 2, "\(store.keys)")
        #expect(store.keys == ["j-3.0", "j-4.0"])
        store.prune(now: Date().addingTimeInterval(7200))
        #expect(store.keys.isEmpty)
    }
}
