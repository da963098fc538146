import AMQP
import Foundation
import Jobs
import Logging
import Systemd

/// The intake (fetcher) role: each delivery of a class queue is decoded and validated, and
/// then either answered at once (invalid, poison, cancelled, too large, already finished),
/// re-routed to its right class, or handed to the batcher.
extension Daemon {
    func intake(_ d: Delivery, className: String) {
        work.run { await self.admit(d, className: className) }
    }

    func admit(_ d: Delivery, className: String) async {
        let received = Date()
        cond.withLock { maxSerialSeen = max(maxSerialSeen, d.connectionSerial) }
        let props = JobProperties(messageID: d.properties.messageId, replyTo: d.properties.replyTo,
                                  correlationID: d.properties.correlationId, priority: d.properties.priority,
                                  expiration: d.properties.expiration)
        var catalog = engine.catalog
        catalog.delivery = deliveries.catalog(cond.withLock { config })
        let decoded = Result { () throws(JobRejection) -> Job in
            try Job.decode(body: d.body, properties: props, catalog: catalog, now: received)
        }
        if let problem = d.malformed {
            // Headers that break AMQP 0-9-1 (an empty field name) make the message poison whatever its body.
            let id: String
            switch decoded {
            case .success(let job): id = job.id
            case .failure(let rejection): id = rejection.jobID
            }
            let failure = JobFailure(.invalidRequest, "the message's AMQP \(problem); AMQP 0-9-1 field names are 1..128 characters")
            await reject(d, JobRejection(jobID: id, failure: failure, isPoison: true), props, className: className)
            return
        }
        let job: Job
        switch decoded {
        case .success(let j): job = j
        case .failure(let rejection):
            await reject(d, rejection, props, className: className)
            return
        }
        var meta: Logger.Metadata = ["job": "\(job.id)", "class": "\(className)", "model": "\(job.model)"]
        if ledger.contains(job.id) {
            logger.notice("redelivered job already finished: acking without running it", metadata: meta.with("event", "duplicate"))
            await settle(d, requeue: false)
            cond.withLock { acknowledgedAsFinished += 1 }
            return
        }
        guard job.replyTo != nil else {
            await deadLetter(d, reason: "job \(job.id) has no reply_to property (or an empty one): nobody could receive its events",
                             meta: meta)
            return
        }
        if job.sizeClass != className {
            await reroute(d, job: job, from: className, meta: meta)
            return
        }
        if let kept = results.load(key: KeptResults.key(jobID: job.id, body: d.body)), let last = kept.last, last.kind.isTerminal {
            // It finished here (or in a sibling worker) but its terminal event was never confirmed: send what was kept.
            logger.notice("redelivered job already computed: answering from the result kept on disk (\(kept.count - 1) image(s))",
                          metadata: meta.with("event", "answered_from_disk"))
            cond.withLock { answeredFromDisk += 1 }
            for event in kept.dropLast() { send(event, job) }
            terminal(last, for: d, jobID: job.id, replyTo: job.replyTo, correlationID: job.correlationID,
                     labels: JobLabels(className: className, model: job.model), failure: nil, webhook: job.webhook, metadata: meta)
            return
        }
        func fail(_ failure: JobFailure) {
            logger.info("\(failure.code.rawValue): \(failure.message)", metadata: meta.with("event", "failed"))
            terminal(FailedEvent(id: job.id, failure: failure).encoded(), for: d, jobID: job.id, replyTo: job.replyTo,
                     correlationID: job.correlationID, labels: JobLabels(className: className, model: job.model), failure: failure.code,
                     webhook: job.webhook, metadata: meta)
        }
        if cancels.isCancelled(job.id) {
            fail(JobFailure(.cancelled, "job \(job.id) was cancelled before it started"))
            return
        }
        let rows = job.count * (job.usesGuidance ? 2 : 1)
        let need = engine.estimateBytes(model: job.model, width: job.width, height: job.height, rows: rows)
        let budget = cond.withLock { config.worker.memoryBudgetBytes }
        if budget > 0, need > budget {
            metrics.memoryGuardRefused(className: className)
            fail(JobFailure(.tooLarge, "job \(job.id) needs about \(need >> 20) MiB (\(job.count) image(s) of \(job.width)x\(job.height)"
                            + "\(job.usesGuidance ? " with guidance" : "")), more than this worker's memory budget of \(budget >> 20) MiB; "
                            + "ask for fewer images or a smaller size"))
            return
        }
        if engine.models[job.model]?.text != nil, job.saveSeedAs != nil {
            fail(JobFailure(.invalidRequest, "save_seed_as is for class-conditional models; model \(job.model) reads text (give seed)"))
            return
        }
        var storedNoise: [[Float]]?
        var storedSeed: UInt64?
        if case .stored(let name) = job.seed {
            switch loadStoredNoise(name, job: job) {
            case .success(let (rows, seed)): storedNoise = rows; storedSeed = seed
            case .failure(let failure): fail(failure); return
            }
        }
        let expires = job.expirationMs.map { received.addingTimeInterval(Double($0) / 1000) }
        let pending = Pending(job: job, delivery: d, className: className, received: received, expires: expires,
                              storedNoise: storedNoise, storedSeed: storedSeed)
        meta["batch_key"] = "\(job.batchKey)"
        logger.debug("queued for batching", metadata: meta.with("event", "queued"))
        cond.withLock {
            if stopping {
                work.run { await self.settle(d, requeue: true) }
                return
            }
            batcher.add(pending, className: className, key: "\(job.batchKey)", nowMs: Self.nowMs())
            cond.broadcast()
        }
    }

    /// A stored good seed for `job`: its noise rows must fit the job's sample shape.
    func loadStoredNoise(_ name: String, job: Job) -> Result<([[Float]], UInt64?), JobFailure> {
        guard let model = engine.models[job.model] else { return .failure(JobFailure(.unsupported, "model \(job.model) is not served")) }
        let stored: (entry: SeedStore.Entry, noise: [Float])
        do {
            stored = try seeds.load(name: name)
        } catch {
            return .failure(JobFailure(.invalidRequest, "seed_ref \"\(name)\": \((error as? WorkerError)?.message ?? "\(error)")"))
        }
        guard let p = model.pipeline else {
            return .failure(JobFailure(.invalidRequest, "seed_ref is for class-conditional models; model \(job.model) reads text (give seed)"))
        }
        let s = p.decoder.scale
        let want = [p.denoiser.inChannels, job.height / s, job.width / s]
        let shape = stored.entry.shape
        guard shape.count == 4, Array(shape[1...]) == want, shape[0] >= 1 else {
            return .failure(JobFailure(.invalidRequest,
                "seed_ref \"\(name)\" holds noise of shape \(shape) (made for \(stored.entry.width)x\(stored.entry.height) on \(stored.entry.model)), "
                + "but this job (\(job.width)x\(job.height) on \(job.model)) needs [n, \(want.map(String.init).joined(separator: ", "))]"))
        }
        let n = want.reduce(1, *)
        let rows = (0..<shape[0]).map { Array(stored.noise[($0 * n)..<(($0 + 1) * n)]) }
        return .success((rows, UInt64(stored.entry.seed)))
    }

    /// Answers a message that is not a valid job: `failed` where it has a reply_to; poison (not
    /// JSON, not an object) and unanswerable messages also go to the dead-letter exchange.
    /// Its metrics count it under `className` with model "none" (the request named no model it could be run with).
    func reject(_ d: Delivery, _ rejection: JobRejection, _ props: JobProperties, className: String) async {
        let labels = JobLabels(className: className, model: "none")
        let meta: Logger.Metadata = ["job": "\(rejection.jobID)", "event": "failed"]
        logger.info("\(rejection.failure.code.rawValue): \(rejection.failure.message)", metadata: meta)
        guard let replyTo = props.replyTo, !replyTo.isEmpty else {
            await deadLetter(d, reason: "\(rejection.failure.code.rawValue): \(rejection.failure.message) (and no reply_to to answer)", meta: meta)
            return
        }
        if rejection.isPoison {
            _ = await publisher.sendAndWait(FailedEvent(rejection).encoded(), replyTo: replyTo, correlationID: props.correlationID)
            cond.withLock { failed += 1 }
            metrics.jobEnded(labels, failure: rejection.failure.code)
            await deadLetter(d, reason: "\(rejection.failure.code.rawValue): \(rejection.failure.message)", meta: meta)
            return
        }
        terminal(FailedEvent(rejection).encoded(), for: d, jobID: rejection.jobID, replyTo: replyTo,
                 correlationID: props.correlationID, labels: labels, failure: rejection.failure.code, metadata: meta)
    }

    /// Copies the message to `<ns>.dead` with header `darkroom-error`, confirmed, then acks it.
    func deadLetter(_ d: Delivery, reason: String, meta: Logger.Metadata) async {
        var props = d.properties
        props.headers[HeaderName.error] = .string(reason)
        props.expiration = nil   // as RabbitMQ's own dead-lettering does: the copy must not expire from the dead queue
        do {
            let outcome = try await client.publish(exchange: topology.deadExchange, routingKey: d.routingKey, body: d.body,
                                                   properties: props)
            guard outcome == .acked else { throw WorkerError(.broker, "dead-letter publish answered \(outcome)") }
            logger.warning("dead-lettered: \(reason)", metadata: meta.with("event", "dead_letter"))
            await settle(d, requeue: false)
        } catch {
            // Let the broker's own dead-lettering take it, so it is never lost.
            logger.error("dead-letter publish failed (\(error)); rejecting to the queue's DLX", metadata: meta)
            try? await client.reject(d, requeue: false)
        }
    }

    /// A job on the wrong class's queue goes to its right class: publish confirmed, then ack.
    func reroute(_ d: Delivery, job: Job, from: String, meta: Logger.Metadata) async {
        do {
            let outcome = try await client.publish(exchange: topology.jobsExchange, routingKey: job.sizeClass, body: d.body,
                                                   properties: d.properties, mandatory: true)
            guard outcome == .acked else { throw WorkerError(.broker, "re-route publish answered \(outcome)") }
            logger.notice("re-routed from class \(from) to \(job.sizeClass) (\(job.width)x\(job.height))",
                          metadata: meta.with("event", "rerouted"))
            await settle(d, requeue: false)
        } catch {
            logger.error("could not re-route to \(job.sizeClass): \(error); requeueing", metadata: meta)
            await settle(d, requeue: true)
        }
    }

    /// `{"v":1,"cancel":"<id>"}` or `{"v":1,"status":true}` from the control exchange.
    func control(_ d: Delivery) {
        work.run { [self] in
            let message: ControlMessage
            do {
                message = try ControlMessage.decode(d.body)
            } catch {
                logger.warning("ignored a control message: \(error)", metadata: ["event": "control"])
                await settle(d, requeue: false)
                return
            }
            guard case .cancel(let id) = message else {
                await answerStatus(d)
                await settle(d, requeue: false)
                return
            }
            cancels.cancel(id)
            let queued = cond.withLock { batcher.remove { $0.job.id == id } }
            let running = cond.withLock { runningJobs.contains(id) }
            logger.info("cancel requested\(running ? " (running: stops at the next step)" : queued.isEmpty ? "" : " (queued)")",
                        metadata: ["job": "\(id)", "event": "cancel"])
            for p in queued {
                terminal(FailedEvent(id: id, failure: JobFailure(.cancelled, "job \(id) was cancelled before it started")).encoded(),
                         for: p.delivery, jobID: id, replyTo: p.job.replyTo, correlationID: p.job.correlationID,
                         labels: p.labels, failure: .cancelled, webhook: p.job.webhook, metadata: ["job": "\(id)"])
            }
            await settle(d, requeue: false)
        }
    }

    /// Sends this worker's `WorkerStatusReport` to the request's reply_to (nothing when it has none).
    func answerStatus(_ d: Delivery) async {
        guard let replyTo = d.properties.replyTo, !replyTo.isEmpty else {
            logger.warning("ignored a status request without reply_to", metadata: ["event": "control"])
            return
        }
        let report = statusReport()
        let props = MessageProperties(contentType: "application/json", correlationId: d.properties.correlationId)
        do {
            _ = try await client.publish(exchange: "", routingKey: replyTo, body: report.encoded(), properties: props)
        } catch {
            logger.warning("could not answer a status request: \(error)", metadata: ["event": "control"])
        }
    }

    func statusReport(now: Date = Date()) -> WorkerStatusReport {
        let (classes, d, f, batch, isStopping) = cond.withLock { () -> ([String], Int, Int, ServiceStatus.Batch?, Bool) in
            (config.consumedClasses.map(\.name), done, failed, currentBatch, stopping)
        }
        let state = isStopping ? "draining" : client.isConnected ? "consuming" : "reconnecting"
        return WorkerStatusReport(worker: workerID, pid: Int(ProcessInfo.processInfo.processIdentifier), classes: classes,
                                  models: engine.models.keys.sorted(), state: state,
                                  batch: batch.map { WorkerStatusReport.Batch(id: $0.id, jobs: $0.jobs) }, jobsDone: d, jobsFailed: f,
                                  uptimeSeconds: Int(now.timeIntervalSince(startedAt)))
    }

    static func nowMs() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
}

extension Logger.Metadata {
    func with(_ key: String, _ value: String) -> Logger.Metadata {
        var m = self
        m[key] = "\(value)"
        return m
    }
}
