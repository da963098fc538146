import AMQP
import Config
import Foundation
import Jobs
import Testing
@testable import Worker

// Paths that only show over time: a SIGTERM whose running batch cannot finish before the drain
// deadline (Sidekiq's rule: requeue it, never lose it), a batch that outlasts several heartbeats, and
// a job whose AMQP `expiration` passes while it waits in the batcher behind a long batch.
@Suite(.serialized) struct ShutdownAndExpiry {

    @Test func sigtermPastTheDrainDeadlineRequeuesTheRunningBatchAndAnotherWorkerFinishesIt() async throws {
        let (ns, dir, client) = try await binaryWorkerTest()
        let ids = ["drain0", "drain1"]
        // 2 jobs x 16 images x 200 steps at 128x128: the first batch runs well over 5 s on an idle 2-core machine,
        // so it is still running 1 s after SIGTERM (8 images per job, about 5 s once, became too short as the
        // engine got faster); a job still waiting in the batcher is requeued too.
        for (i, id) in ids.enumerated() {
            try await client.submit(job(id, size: 128, steps: 200, seed: UInt64(i), extra: ",\"count\":16"), toClass: "small", id: id)
        }
        let first = try WorkerProcess(namespace: ns, state: dir, extraEnv: ["DARKROOM_WORKER_DRAIN_DEADLINE": "1"])
        let running = await client.wait(timeout: 60) { ids.contains { client.events(of: $0).contains { $0.kind == .progress } } }
        #expect(running, "the first worker never started the batch:\n\(first.output)")
        let sentAt = Date()
        first.signal(SIGTERM)
        #expect(await first.waitExit(timeout: 30) == 0, "darkroomd did not exit 0 on SIGTERM:\n\(first.output)")
        let took = Date().timeIntervalSince(sentAt)
        #expect(took < 15, "the drain took \(took) s with a 1 s deadline")
        #expect(first.output.contains("drain deadline reached"), "no drain-deadline log line:\n\(first.output)")
        #expect(try await client.barrier(), "the reply queue's last events did not arrive")   // all the first worker sent
        #expect(ids.allSatisfy { client.terminal(of: $0) == nil }, "a job ended although its batch was stopped")
        #expect(await queueDepth(client, "\(ns).jobs.small") == UInt32(ids.count), "the stopped batch's jobs are not back in the queue")

        let second = try WorkerProcess(namespace: ns, state: dir)
        #expect(await client.waitTerminal(ids, timeout: 300), "not every requeued job finished:\n\(second.output)")
        try await stopAndExpectEachCompletedOnce(second, client, ids)
        #expect(await queueDepth(client, "\(ns).jobs.small") == 0)
        await client.cleanUp(classes: ["small", "medium", "large"])
    }

    /// The engine never runs on the connection's I/O thread, so a batch longer than several heartbeat
    /// intervals neither loses the connection (the broker closes it after two missed heartbeats) nor has
    /// its jobs redelivered.
    @Test func aBatchLongerThanThreeHeartbeatsKeepsTheConnectionAndEachJobEndsOnce() async throws {
        let (ns, dir, client) = try await binaryWorkerTest()
        let ids = ["beat0", "beat1", "beat2"]
        for (i, id) in ids.enumerated() {   // one batch of 3 jobs x 16 images x 200 steps at 128x128
            try await client.submit(job(id, size: 128, steps: 200, seed: UInt64(i), extra: ",\"count\":16"), toClass: "small", id: id)
        }
        let worker = try WorkerProcess(namespace: ns, state: dir, extraEnv: ["DARKROOM_BROKER_HEARTBEAT": "2"])
        let started = await client.wait(timeout: 60) { ids.contains { client.events(of: $0).contains { $0.kind == .progress } } }
        #expect(started, "the batch never started:\n\(worker.output)")
        let startedAt = Date()
        #expect(await client.waitTerminal(ids, timeout: 300), "not every job finished:\n\(worker.output)")
        let took = Date().timeIntervalSince(startedAt)
        #expect(took > 6, "the batch took only \(took) s, under three 2 s heartbeats: make it longer")
        try await stopAndExpectEachCompletedOnce(worker, client, ids)
        for id in ids { #expect(client.events(of: id).compactMap(\.png).count == 16) }
        for line in ["broker connection lost", "reconnecting", "redelivered"] {
            #expect(!worker.output.contains(line), "the worker logged \"\(line)\" during a long batch:\n\(worker.output)")
        }
        await client.cleanUp(classes: ["small", "medium", "large"])
    }

    @Test func aJobWhoseAMQPExpirationPassesWhileItWaitsInTheBatcherFailsAsExpired() async throws {
        let ns = uniqueNamespace(), dir = tempDir()
        let cfg = try testConfig(namespace: ns, state: dir, maxBatch: 1, windowMs: 50)
        let client = try await TestClient(namespace: ns, topology: cfg.contractTopology)
        let worker = try await TestWorker(cfg)
        // Four images of 200 steps: still running for well over 100 ms after its first progress event,
        // however fast the machine (one image of 200 steps took under 400 ms on an idle one).
        try await client.submit(job("long", size: 128, steps: 200, seed: 1, extra: ",\"count\":4"), toClass: "big", id: "long")
        let started = await client.wait { client.events(of: "long").contains { $0.kind == .progress } }
        #expect(started)
        // Delivered at once (prefetch 32), then it waits: max_batch 1 and the engine is busy.
        try await client.submit(job("short-lived", size: 128, steps: 3, seed: 2), toClass: "big", id: "short-lived", expiration: "100")
        try await client.submit(job("patient", size: 128, steps: 3, seed: 3), toClass: "big", id: "patient")
        #expect(await client.waitTerminal(["long", "short-lived", "patient"], timeout: 120))
        #expect(client.terminal(of: "long")?.kind == .completed)
        let failure = client.terminal(of: "short-lived")?.failure
        #expect(failure?.code == .expired)
        #expect(failure?.message.contains("100 ms") == true, "\(failure?.message ?? "no message")")
        #expect(client.events(of: "short-lived").compactMap(\.png).isEmpty)
        #expect(client.terminal(of: "patient")?.kind == .completed)
        try await worker.stop()
        await client.cleanUp()
    }
}
