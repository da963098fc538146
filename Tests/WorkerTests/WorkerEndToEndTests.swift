import AMQP
import Config
import Core
import Foundation
import Imaging
import Jobs
import TestSupport
import Testing
@testable import Worker

// End to end against the real broker and the real engine (the diffusers fixture model).
@Suite(.serialized) struct WorkerEndToEnd {

    @Test func eventsFollowTheContractForSingleAndMultiImageJobsOnTwoClasses() async throws {
        let ns = uniqueNamespace(), dir = tempDir()
        let cfg = try testConfig(namespace: ns, state: dir, windowMs: 50)
        let client = try await TestClient(namespace: ns, topology: cfg.contractTopology)
        let worker = try await TestWorker(cfg)
        try await client.submit(job("one", size: 32, steps: 5, seed: 11), toClass: "tiny", id: "one")
        try await client.submit(job("three", prompt: "blue square", size: 64, steps: 6, seed: 20,
                                    extra: ",\"count\":3,\"preview\":true,\"progress_every\":2"), toClass: "big", id: "three")
        #expect(await client.waitTerminal(["one", "three"]))
        try await worker.stop()

        for (id, cls, count, steps, seed, size) in [("one", "tiny", 1, 5, UInt64(11), 32), ("three", "big", 3, 6, UInt64(20), 64)] {
            let evs = client.events(of: id)
            let kinds = evs.map(\.kind)
            #expect(kinds.first == .accepted, "\(id): \(kinds)")
            #expect(kinds.last == .completed, "\(id): \(kinds)")
            #expect(kinds.filter(\.isTerminal).count == 1)
            // accepted, progress..., image x count, completed
            let firstImage = kinds.firstIndex(of: .image)!
            #expect(kinds[1..<firstImage].allSatisfy { $0 == .progress })
            #expect(kinds[firstImage..<(kinds.count - 1)].allSatisfy { $0 == .image })
            #expect(evs.first?.accepted?.sizeClass == cls)
            let progress = evs.compactMap { e -> ProgressEvent? in if case .progress(let p) = e { return p } else { return nil } }
            #expect(progress.last?.step == steps && progress.allSatisfy { $0.steps == steps })
            #expect(progress.map(\.step) == progress.map(\.step).sorted())
            let images = evs.compactMap { e -> ImageEvent? in if case .image(let i) = e { return i } else { return nil } }
            #expect(images.map(\.index) == Array(0..<count))
            #expect(images.map(\.seed) == (0..<count).map { seed + UInt64($0) })
            for img in images {
                let png = try PNG.decode(img.png)
                #expect(png.width == size && png.height == size && img.width == size)
                #expect(png.text("parameters")?.contains("Seed: \(img.seed)") == true)
            }
            guard case .completed(let done)? = evs.last else { continue }
            #expect(done.images == count && done.seeds == (0..<count).map { seed + UInt64($0) })
            #expect(done.timings.total >= done.timings.denoise)
        }
        // every_2 steps with a preview PNG; the last step always sent
        let threeProgress = client.events(of: "three").compactMap { e -> ProgressEvent? in if case .progress(let p) = e { return p } else { return nil } }
        #expect(threeProgress.map(\.step) == [2, 4, 6])
        #expect(threeProgress.allSatisfy { $0.preview.map { (try? PNG.decode($0)) != nil } ?? false })
        // correlation id echoed, persistent, headers as the contract says
        for s in client.all where s.event.jobID == "one" {
            #expect(s.delivery.properties.correlationId == "one")
            #expect(s.delivery.properties.deliveryMode == .persistent)
            #expect(s.delivery.headers["darkroom-job"] == .string("one"))
        }
        await client.cleanUp()
    }

    @Test func eightCompatibleJobsRunInCeilOfEightOverMaxBatchBatchesAndMatchTheirSoloImages() async throws {
        let ns = uniqueNamespace(), dir = tempDir()
        let cfg = try testConfig(namespace: ns, state: dir, maxBatch: 3, windowMs: 1500)
        let client = try await TestClient(namespace: ns, topology: cfg.contractTopology)
        let labels = ["red circle", "blue square", "green triangle", "yellow star"]
        let ids = (0..<8).map { "b\($0)" }
        // Queued before the worker starts consuming: publishing after the start raced the 1.5 s window on a loaded
        // machine (a slow publish splits a batch).
        for (i, id) in ids.enumerated() {
            try await client.submit(job(id, prompt: labels[i % 4], steps: 4, seed: UInt64(100 + i)), toClass: "tiny", id: id)
        }
        let worker = try await TestWorker(cfg)
        #expect(await client.waitTerminal(ids))
        let accepted = ids.compactMap { client.events(of: $0).first?.accepted }
        #expect(Set(accepted.map(\.batch)).count == 3)                      // ceil(8 / 3)
        #expect(accepted.map(\.batchSize).sorted() == [2, 2, 3, 3, 3, 3, 3, 3])

        // The same jobs one at a time: byte-identical PNGs.
        for (i, id) in ids.enumerated() {
            let solo = "solo-\(id)"
            try await client.submit(job(solo, prompt: labels[i % 4], steps: 4, seed: UInt64(100 + i)), toClass: "tiny", id: solo)
            #expect(await client.waitTerminal([solo]))
            #expect(client.events(of: solo).first?.accepted?.batchSize == 1)
            let batched = try pixels(client.events(of: id)), alone = try pixels(client.events(of: solo))
            #expect(batched.count == 1 && batched == alone, "\(id) differs when run alone")
        }
        try await worker.stop()
        await client.cleanUp()
    }

    /// Every row of the contract module's bad-input table (BadInputTable.swift), sent to a real worker:
    /// each gets exactly one `failed` event with the code the contract module gives it for this worker's
    /// catalog, poison also lands in the dead-letter queue, and the worker keeps serving.
    @Test func theContractsBadInputTableIsAnsweredEndToEndAndTheWorkerKeepsServing() async throws {
        let ns = uniqueNamespace(), dir = tempDir()
        let cfg = try testConfig(namespace: ns, state: dir, windowMs: 0)
        let client = try await TestClient(namespace: ns, topology: cfg.contractTopology)
        let worker = try await TestWorker(cfg)
        let catalog = worker.daemon.engine.catalog
        var expected: [(row: Int, code: FailureCode, poison: Bool)] = []
        for (i, row) in badInputs.enumerated() {
            // What the contract module says of this row against this worker's catalog.
            let verdict: JobRejection
            do {
                _ = try Job.decode(body: row.body, properties: JobProperties(messageID: row.messageID, replyTo: "r"), catalog: catalog)
                continue    // valid for this worker's model (the table is written for another catalog)
            } catch {
                verdict = error
            }
            expected.append((i, verdict.failure.code, verdict.isPoison))
            let props = MessageProperties(contentType: "application/json", deliveryMode: .persistent, correlationId: "row-\(i)",
                                          replyTo: client.replyQueue, messageId: row.messageID)
            _ = try await client.client.publish(exchange: "\(ns).jobs", routingKey: "tiny", body: row.body, properties: props)
        }
        #expect(expected.count >= 40, "only \(expected.count) rows are bad for this worker's catalog")
        try await client.submit(job("noreply"), toClass: "tiny", id: "noreply", replyTo: false)
        try await client.submit(job("good", steps: 3), toClass: "tiny", id: "good")
        #expect(await client.waitTerminal(["good"]))
        let answered = await client.wait(timeout: 60) {
            client.all.filter { $0.event.kind == .failed }.count >= expected.count
        }
        #expect(answered)
        for e in expected {
            let fails = client.all.filter { $0.delivery.properties.correlationId == "row-\(e.row)" }.compactMap(\.event.failure)
            #expect(fails.count == 1, "row \(e.row) \(badInputs[e.row].name): \(fails)")
            #expect(fails.first?.code == e.code, "row \(e.row) \(badInputs[e.row].name): \(fails)")
            #expect(fails.first.map { !$0.message.isEmpty } ?? false)
        }
        // poison rows and the job nobody could answer are in the dead-letter queue, with the reason
        let deadCount = UInt32(expected.filter(\.poison).count + 1)
        var depth: UInt32 = 0
        for _ in 0..<200 where depth < deadCount {
            depth = await queueDepth(client, "\(ns).dead")
            if depth < deadCount { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(depth >= deadCount, "dead-letter queue holds \(depth), expected \(deadCount)")
        #expect(client.terminal(of: "good")?.kind == .completed)
        try await worker.stop()
        await client.cleanUp()
    }

    /// A worker with no batching window, its client, and every delivery dead-lettered in the namespace, collected.
    private func workerCollectingDeadLetters() async throws -> (String, TestClient, TestWorker, Locked<[Delivery]>) {
        let ns = uniqueNamespace(), dir = tempDir()
        let cfg = try testConfig(namespace: ns, state: dir, windowMs: 0)
        let client = try await TestClient(namespace: ns, topology: cfg.contractTopology)
        let worker = try await TestWorker(cfg)
        let dead = Locked<[Delivery]>([])
        _ = try await client.client.consume(queue: "\(ns).dead", prefetch: 10) { d in dead.withLock { $0.append(d) } }
        return (ns, client, worker, dead)
    }

    /// Headers with an empty key (which rabbitmq-c cannot copy) used to cost the connection on every
    /// delivery of the job, and the broker redelivered it forever: now it is poison, answered and
    /// dead-lettered with the reason, on the same connection, and the jobs around it run.
    @Test func aJobWithAnEmptyHeaderKeyIsDeadLetteredAndTheJobsAroundItRunOnTheSameConnection() async throws {
        let (ns, client, worker, dead) = try await workerCollectingDeadLetters()
        func message(_ id: String, headers: String?) -> PikaMessage {
            PikaMessage(exchange: "\(ns).jobs", routingKey: "tiny", body: job(id, steps: 3), headers: headers,
                        replyTo: client.replyQueue, correlationId: id)
        }
        try await pikaPublish(url: brokerURL, [
            message("before", headers: "{\"x-trace\": \"t1\"}"),
            message("emptykey", headers: "{\"\": 1}"),
            message("nested", headers: "{\"k\": {\"\": 1}}"),
            message("after", headers: nil),
        ])
        #expect(await client.waitTerminal(["before", "emptykey", "nested", "after"], timeout: 90))
        #expect(client.terminal(of: "before")?.kind == .completed)
        #expect(client.terminal(of: "after")?.kind == .completed)
        for (id, path) in [("emptykey", "headers"), ("nested", "headers[\"k\"]")] {
            let failure = client.terminal(of: id)?.failure
            #expect(failure?.code == .invalidRequest, "\(id): \(String(describing: failure))")
            #expect(failure?.message.contains("\(path) has an entry with an empty name") ?? false, "\(String(describing: failure))")
            #expect(client.events(of: id).count == 1)
        }
        let deadLettered = await client.wait(timeout: 30) { dead.withLock { $0.count } >= 2 }
        #expect(deadLettered)
        let reasons = dead.withLock { $0 }.compactMap { $0.headers["darkroom-error"]?.stringValue }.sorted()
        #expect(reasons.count == 2 && reasons.allSatisfy { $0.contains("has an entry with an empty name") }, "\(reasons)")
        // one connection throughout: no reconnect loop, nothing left in the job queue
        #expect(worker.daemon.cond.withLock { worker.daemon.staleSerial } == 0, "the worker lost its connection")
        #expect(await queueDepth(client, "\(ns).jobs.tiny") == 0)
        try await worker.stop()
        await client.cleanUp()
    }

    /// Dead-letter copies drop `expiration` (or they would vanish from the dead queue), and a job whose
    /// reply_to is empty is dead-lettered like one without, never run for nobody.
    @Test func deadLetterCopiesDropExpirationAndAnEmptyReplyToIsDeadLettered() async throws {
        let (ns, client, worker, dead) = try await workerCollectingDeadLetters()
        try await client.submit("hello", toClass: "tiny", id: "poison", expiration: "600000")
        let props = MessageProperties(contentType: "application/json", deliveryMode: .persistent, correlationId: "emptyreply",
                                      replyTo: "", expiration: "600000", messageId: "emptyreply")
        _ = try await client.client.publish(exchange: "\(ns).jobs", routingKey: "tiny", body: Array(job("emptyreply", steps: 3).utf8),
                                            properties: props)
        try await client.submit(job("good", steps: 3), toClass: "tiny", id: "good")
        #expect(await client.waitTerminal(["poison", "good"]))
        #expect(await client.wait(timeout: 30) { dead.withLock { $0.count } >= 2 })
        let copies = dead.withLock { $0 }
        #expect(copies.count == 2)
        #expect(copies.allSatisfy { $0.properties.expiration == nil }, "\(copies.map(\.properties))")
        let emptyReply = copies.first { $0.properties.messageId == "emptyreply" }
        #expect(emptyReply?.headers["darkroom-error"]?.stringValue?.contains("no reply_to") == true)
        #expect(copies.contains { $0.properties.messageId == "poison" && $0.headers["darkroom-error"] != nil })
        #expect(worker.daemon.cond.withLock { worker.daemon.done } == 1, "only the good job ran")
        try await worker.stop()
        await client.cleanUp()
    }

    /// A job whose answer cannot be delivered is dead-lettered with the reason and run once (found by
    /// `ops/chaos/run faults`): a reply_to naming no queue (the terminal event comes back unroutable; it
    /// used to be acked as if answered, leaving nothing anywhere), and a reply queue at its x-max-length
    /// with reject-publish (the terminal event is nacked; the job used to be requeued and run again forever).
    @Test func aJobWhoseAnswerCannotBeDeliveredIsDeadLetteredOnceWithTheReason() async throws {
        let (ns, client, worker, dead) = try await workerCollectingDeadLetters()
        let full = "\(ns).reply.full"
        _ = try await client.client.declareQueue(name: full, durable: false, arguments: [
            "x-max-length": .int32(1), "x-overflow": .string("reject-publish")])
        for (id, replyTo) in [("noqueue", "\(ns).no-such-queue"), ("full", full)] {
            let props = MessageProperties(contentType: "application/json", deliveryMode: .persistent, correlationId: id,
                                          replyTo: replyTo, messageId: id)
            _ = try await client.client.publish(exchange: "\(ns).jobs", routingKey: "tiny", body: Array(job(id, steps: 3).utf8),
                                                properties: props)
        }
        #expect(await client.wait(timeout: 60) { dead.withLock { $0.count } >= 2 })
        let copies = dead.withLock { $0 }
        let reason = { (id: String) in copies.first { $0.properties.messageId == id }?.headers["darkroom-error"]?.stringValue ?? "" }
        #expect(reason("noqueue").contains("does not exist"), "\(reason("noqueue"))")
        #expect(reason("full").contains("refused the terminal event"), "\(reason("full"))")
        try await client.submit(job("after", steps: 3), toClass: "tiny", id: "after")
        #expect(await client.waitTerminal(["after"]))
        #expect(client.terminal(of: "after")?.kind == .completed)
        #expect(worker.daemon.cond.withLock { worker.daemon.done } == 3, "each job ran once")
        #expect(await queueDepth(client, "\(ns).jobs.tiny") == 0)
        _ = try? await client.client.deleteQueue(name: full)
        try await worker.stop()
        await client.cleanUp()
    }

    @Test func aJobOnTheWrongClassIsReroutedAndRuns() async throws {
        let ns = uniqueNamespace(), dir = tempDir()
        let cfg = try testConfig(namespace: ns, state: dir, windowMs: 0)
        let client = try await TestClient(namespace: ns, topology: cfg.contractTopology)
        let worker = try await TestWorker(cfg)
        try await client.submit(job("wrong", size: 64, steps: 3), toClass: "tiny", id: "wrong")
        #expect(await client.waitTerminal(["wrong"]))
        #expect(client.events(of: "wrong").first?.accepted?.sizeClass == "big")
        #expect(client.terminal(of: "wrong")?.kind == .completed)
        try await worker.stop()
        await client.cleanUp()
    }

    @Test func cancellingQueuedAndRunningJobsAnswersCancelledAndBatchMatesGoOn() async throws {
        let ns = uniqueNamespace(), dir = tempDir()
        let cfg = try testConfig(namespace: ns, state: dir, maxBatch: 2, windowMs: 200)
        let client = try await TestClient(namespace: ns, topology: cfg.contractTopology)
        let worker = try await TestWorker(cfg)
        // run1 + run2 share a batch; queued waits behind them (different size: its own batch).
        try await client.submit(job("run1", size: 128, steps: 200, seed: 1), toClass: "big", id: "run1")
        try await client.submit(job("run2", size: 128, steps: 200, seed: 2), toClass: "big", id: "run2")
        try await client.submit(job("queued", size: 64, steps: 3), toClass: "big", id: "queued")
        let started = await client.wait { client.events(of: "run1").contains { $0.kind == .progress } }
        #expect(started)
        try await client.cancel("run1")
        try await client.cancel("queued")
        #expect(await client.waitTerminal(["run1", "run2", "queued"], timeout: 120))
        #expect(client.terminal(of: "run1")?.failure?.code == .cancelled)
        #expect(client.terminal(of: "queued")?.failure?.code == .cancelled)
        #expect(client.terminal(of: "run2")?.kind == .completed)
        #expect(client.events(of: "run2").compactMap(\.png).count == 1)
        #expect(client.events(of: "run1").compactMap(\.png).isEmpty)
        try await worker.stop()
        await client.cleanUp()
    }

    @Test func aStoredSeedGivesTheIdenticalImageAndSchedulesAreReusedAcrossARestart() async throws {
        let ns = uniqueNamespace(), dir = tempDir()
        let cfg = try testConfig(namespace: ns, state: dir, windowMs: 0)
        let client = try await TestClient(namespace: ns, topology: cfg.contractTopology)
        var worker = try await TestWorker(cfg)
        try await client.submit(job("keep", prompt: "green triangle", steps: 5, seed: 77, extra: ",\"save_seed_as\":\"good.77\""),
                                toClass: "tiny", id: "keep")
        #expect(await client.waitTerminal(["keep"]))
        #expect(worker.daemon.schedules.counts.misses == 1)
        try await worker.stop()

        worker = try await TestWorker(cfg)                         // restarted, same state dir
        let reuse = job("reuse", prompt: "green triangle", steps: 5).replacingOccurrences(of: ",\"seed\":1", with: ",\"seed_ref\":\"good.77\"")
        try await client.submit(reuse, toClass: "tiny", id: "reuse")
        // a stored noise whose shape does not fit the job is refused with a clear message
        let misfit = job("misfit", size: 64, steps: 5).replacingOccurrences(of: ",\"seed\":1", with: ",\"seed_ref\":\"good.77\"")
        try await client.submit(misfit, toClass: "big", id: "misfit")
        #expect(await client.waitTerminal(["reuse", "misfit"]))
        let reused = try pixels(client.events(of: "reuse")), kept = try pixels(client.events(of: "keep"))
        #expect(reused.count == 1 && reused == kept, "the stored seed gave a different image")
        guard case .completed(let c)? = client.terminal(of: "reuse") else { Issue.record("reuse did not complete"); return }
        #expect(c.seeds == [77])
        #expect(client.terminal(of: "misfit")?.failure?.code == .invalidRequest)
        #expect(client.terminal(of: "misfit")?.failure?.message.contains("shape") == true)
        let counts = worker.daemon.schedules.counts
        #expect(counts.diskHits == 1 && counts.misses == 0)
        try await worker.stop()
        await client.cleanUp()
    }

    @Test func aJobOverTheMemoryBudgetIsRefusedAsTooLargeBeforeItStarts() async throws {
        let ns = uniqueNamespace(), dir = tempDir()
        let cfg = try testConfig(namespace: ns, state: dir, windowMs: 0, extra: "memory_budget_mb = 5")
        let client = try await TestClient(namespace: ns, topology: cfg.contractTopology)
        let worker = try await TestWorker(cfg)
        try await client.submit(job("huge", size: 128, steps: 3, extra: ",\"count\":16"), toClass: "big", id: "huge")
        try await client.submit(job("fits", size: 32, steps: 3), toClass: "tiny", id: "fits")
        #expect(await client.waitTerminal(["huge", "fits"]))
        #expect(client.terminal(of: "huge")?.failure?.code == .tooLarge)
        #expect(client.terminal(of: "huge")?.failure?.message.contains("memory budget") == true)
        #expect(client.events(of: "huge").count == 1)                       // refused before accepted
        #expect(client.terminal(of: "fits")?.kind == .completed)
        try await worker.stop()
        await client.cleanUp()
    }

    @Test func aBrokerConnectionLossIsSurvivedWithoutLosingAJob() async throws {
        let ns = uniqueNamespace(), dir = tempDir()
        let cfg = try testConfig(namespace: ns, state: dir, windowMs: 0)
        let client = try await TestClient(namespace: ns, topology: cfg.contractTopology)
        let worker = try await TestWorker(cfg)
        try await client.submit(job("before", steps: 3), toClass: "tiny", id: "before")
        #expect(await client.waitTerminal(["before"]))
        // The broker drops the worker's connection (as on a broker restart or a network cut).
        let (_, listing) = try await run(repoRoot + "/ops/broker", ["ctl", "list_connections", "pid", "client_properties", "-s"])
        let line = listing.split(separator: "\n").first { $0.contains("darkroomd test-\(ns)") }
        let pid = try #require(line?.split(separator: "\t").first.map(String.init))
        _ = try await run(repoRoot + "/ops/broker", ["ctl", "close_connection", pid, "test: broker outage"])
        try await client.submit(job("after", steps: 3), toClass: "tiny", id: "after")
        #expect(await client.waitTerminal(["after"], timeout: 60))
        #expect(client.terminal(of: "after")?.kind == .completed)
        try await worker.stop()
        await client.cleanUp()
    }

    /// A batch that finishes after its connection closed does not answer its jobs: the broker requeued
    /// them and the redelivery answers, once (`ops/chaos/run cluster` saw 2 of 300 jobs answered twice:
    /// the stale batch's terminal event went out on the new connection while the redelivery ran again).
    @Test func aJobWhoseConnectionClosedMidBatchIsAnsweredOnceByItsRedelivery() async throws {
        let ns = uniqueNamespace(), dir = tempDir()
        let cfg = try testConfig(namespace: ns, state: dir, windowMs: 0)
        let client = try await TestClient(namespace: ns, topology: cfg.contractTopology)
        let worker = try await TestWorker(cfg)
        try await client.submit(job("long", size: 128, steps: 120), toClass: "big", id: "long")
        #expect(await client.wait { client.events(of: "long").contains { $0.kind == .progress } })
        let (_, listing) = try await run(repoRoot + "/ops/broker", ["ctl", "list_connections", "pid", "client_properties", "-s"])
        let line = listing.split(separator: "\n").first { $0.contains("darkroomd test-\(ns)") }
        let pid = try #require(line?.split(separator: "\t").first.map(String.init))
        _ = try await run(repoRoot + "/ops/broker", ["ctl", "close_connection", pid, "test: connection lost mid-batch"])
        #expect(await client.waitTerminal(["long"], timeout: 120))
        // the stale batch and the redelivered job have both finished by the time a later job is answered
        try await client.submit(job("later", size: 128, steps: 3), toClass: "big", id: "later")
        #expect(await client.waitTerminal(["later"], timeout: 120))
        let terminals = client.events(of: "long").filter { $0.kind.isTerminal }
        #expect(terminals.count == 1, "\(terminals.map(\.kind))")
        #expect(terminals.first?.kind == .completed)
        try await worker.stop()
        await client.cleanUp()
    }

    /// The control queue is server-named and exclusive: it dies with the connection, so after a broker
    /// restart (here: the broker closing the connection) it must be declared and bound again, or cancels
    /// reach nobody.
    @Test func aCancelSentAfterTheConnectionWasLostCancelsTheJob() async throws {
        let ns = uniqueNamespace(), dir = tempDir()
        let cfg = try testConfig(namespace: ns, state: dir, windowMs: 0)
        let client = try await TestClient(namespace: ns, topology: cfg.contractTopology)
        let worker = try await TestWorker(cfg)
        let (_, listing) = try await run(repoRoot + "/ops/broker", ["ctl", "list_connections", "pid", "client_properties", "-s"])
        let line = listing.split(separator: "\n").first { $0.contains("darkroomd test-\(ns)") }
        let pid = try #require(line?.split(separator: "\t").first.map(String.init))
        _ = try await run(repoRoot + "/ops/broker", ["ctl", "close_connection", pid, "test: broker restart"])
        try await client.submit(job("after", steps: 3), toClass: "tiny", id: "after")
        #expect(await client.waitTerminal(["after"], timeout: 60))        // reconnected and consuming jobs
        try await client.submit(job("long", size: 128, steps: 200), toClass: "big", id: "long")
        let started = await client.wait { client.events(of: "long").contains { $0.kind == .progress } }
        #expect(started)
        try await client.cancel("long")
        #expect(await client.waitTerminal(["long"], timeout: 120))
        #expect(client.terminal(of: "long")?.failure?.code == .cancelled,
                "the cancel was lost: \(String(describing: client.terminal(of: "long")))")
        try await worker.stop()
        await client.cleanUp()
    }

    /// A job queue whose consumer the broker drops (here: the queue deleted, so re-subscribing is a 404)
    /// is retried with backoff; STATUS and the watchdog show the class without a consumer meanwhile, and
    /// once the queue is back the worker consumes it again.
    @Test func aConsumerTheBrokerDropsIsRetriedAndShownUntilItIsBack() async throws {
        let ns = uniqueNamespace(), dir = tempDir()
        let cfg = try testConfig(namespace: ns, state: dir, windowMs: 0)
        let client = try await TestClient(namespace: ns, topology: cfg.contractTopology)
        let worker = try await TestWorker(cfg)
        let daemon = worker.daemon
        _ = try await client.client.deleteQueue(name: "\(ns).jobs.tiny")
        let down = await client.wait(timeout: 30) { daemon.cond.withLock { daemon.consumersDown } == ["\(ns).jobs.tiny"] }
        #expect(down)
        #expect(daemon.statusLine(.serving).contains("(no consumer on tiny, retrying)"), "\(daemon.statusLine(.serving))")
        #expect(daemon.liveness.staleParts(now: .now + .seconds(3600)).contains("consumers"))
        try await client.client.declare(cfg.contractTopology)
        let up = await client.wait(timeout: 60) { daemon.cond.withLock { daemon.consumersDown }.isEmpty }
        #expect(up)
        #expect(!daemon.liveness.staleParts(now: .now + .seconds(3600)).contains("consumers"))
        try await client.submit(job("back", steps: 3), toClass: "tiny", id: "back")
        #expect(await client.waitTerminal(["back"], timeout: 60))
        #expect(client.terminal(of: "back")?.kind == .completed)
        try await worker.stop()
        await client.cleanUp()
    }

    @Test func aReloadChangesBatchingLimitsWithoutDroppingWork() async throws {
        let ns = uniqueNamespace(), dir = tempDir()
        let cfg = try testConfig(namespace: ns, state: dir, maxBatch: 1, windowMs: 300)
        let client = try await TestClient(namespace: ns, topology: cfg.contractTopology)
        let worker = try await TestWorker(cfg)
        for id in ["r1", "r2"] { try await client.submit(job(id, steps: 3), toClass: "tiny", id: id) }
        #expect(await client.waitTerminal(["r1", "r2"]))
        #expect(["r1", "r2"].allSatisfy { client.events(of: $0).first?.accepted?.batchSize == 1 })
        // As SIGHUP does. The new limit is the batch size, with a window no loaded machine outlasts while the three
        // jobs arrive (a full batch starts at once; the 1 s window raced a slow publish).
        worker.daemon.reload(try testConfig(namespace: ns, state: dir, maxBatch: 3, windowMs: 60_000))
        for id in ["r3", "r4", "r5"] { try await client.submit(job(id, steps: 3), toClass: "tiny", id: id) }
        #expect(await client.waitTerminal(["r3", "r4", "r5"]))
        #expect(["r3", "r4", "r5"].allSatisfy { client.events(of: $0).first?.accepted?.batchSize == 3 })
        try await worker.stop()
        await client.cleanUp()
    }

    @Test func aRedeliveredFinishedJobIsAckedWithoutRunningAgain() async throws {
        let ns = uniqueNamespace(), dir = tempDir()
        let cfg = try testConfig(namespace: ns, state: dir, windowMs: 0)
        let client = try await TestClient(namespace: ns, topology: cfg.contractTopology)
        let worker = try await TestWorker(cfg)
        try await client.submit(job("once", steps: 3), toClass: "tiny", id: "once")
        #expect(await client.waitTerminal(["once"]))
        // The ledger is written once the broker confirms the terminal event, which may come after the client saw it.
        let daemon = worker.daemon
        #expect(await client.wait(timeout: 30) { daemon.ledger.contains("once") })
        try await client.submit(job("once", steps: 3), toClass: "tiny", id: "once")   // as a redelivery would
        #expect(await client.wait(timeout: 30) { daemon.cond.withLock { daemon.acknowledgedAsFinished } == 1 })
        #expect(client.events(of: "once").filter(\.kind.isTerminal).count == 1)
        #expect(daemon.cond.withLock { daemon.batchesStarted } == 1)
        #expect(await queueDepth(client, "\(ns).jobs.tiny") == 0)
        try await worker.stop()
        await client.cleanUp()
    }
}

/// The decoded pixels of a job's images (the PNG bytes differ by the job id in `parameters`).
func pixels(_ events: [JobEvent]) throws -> [[UInt8]] {
    try events.compactMap(\.png).map { try PNG.decode($0).pixels }
}

/// Messages ready in a queue (a passive declare).
func queueDepth(_ client: TestClient, _ queue: String) async -> UInt32 {
    (try? await client.client.queueInfo(name: queue).messageCount) ?? 0
}
