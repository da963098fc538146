import AMQP
import Diffusion
import Foundation
import Imaging
import Jobs
import Logging

/// The engine runner role: one thread takes ready batches from the batcher and runs them,
/// one at a time (a batch already uses both cores), emitting progress, images and terminal
/// events through the publisher. It never touches the connection itself.
extension Daemon {
    func engineLoop() {
        while true {
            cond.lock()
            var batch: Batcher<Pending>.Batch?
            while true {
                liveness.beat("engine")
                if stopping { break }
                if let b = batcher.next(nowMs: Self.nowMs()) { batch = b; break }
                let wait = batcher.msUntilReady(nowMs: Self.nowMs()).map { min($0, 1000) } ?? 1000
                _ = cond.wait(until: Date().addingTimeInterval(Double(max(wait, 1)) / 1000))
            }
            guard let batch else {
                engineDone = true
                cond.unlock()
                return
            }
            cond.unlock()
            run(batch)
        }
    }

    /// One engine batch: every job in it has the same model, size, steps, sampler and guidance on/off.
    /// The steps, in order: admit the jobs still wanted, announce them, build one sampler request per image,
    /// denoise (with progress, cancels and the drain deadline), then deliver each job's images and terminal event.
    func run(_ batch: Batcher<Pending>.Batch) {
        let batchID = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        let now = Date()
        let live = admit(batch.items, batchID: batchID, now: now)
        let model = live.first.flatMap { engine.models[$0.job.model] }
        let samplerName = live.first.flatMap { SamplerName(rawValue: $0.job.sampler) }
        guard !live.isEmpty, let model, model.text != nil || samplerName != nil else {
            for p in live {
                finishFailed(p, JobFailure(.unsupported, "model \(p.job.model) with sampler \(p.job.sampler) is not served here"), [:])
            }
            return
        }
        let run = BatchRun(id: batchID, started: now, live: live, model: model, sampler: samplerName,
                           meta: ["batch": "\(batchID)", "class": "\(batch.className)", "model": "\(model.name)"])
        cond.withLock {
            runningJobs = Set(live.map(\.job.id))
            currentBatch = .init(id: batchID, jobs: live.count)
        }
        metrics.batchStarted(className: batch.className, jobs: live.count)
        defer {
            metrics.batchEnded()
            metrics.syncCaches(prompt: engine.promptCache.stats, schedule: schedules.counts)
            cond.withLock { runningJobs = []; currentBatch = nil }
            _ = notifier.status(statusLine(.serving))
        }
        announce(run)
        let rows = sampleRows(live)
        guard let denoised = denoise(run, rows) else { return }
        if denoised.requeueAll {
            for p in live { work.run { await self.settle(p.delivery, requeue: true) } }
            logger.warning("batch stopped at the drain deadline; \(live.count) job(s) requeued", metadata: run.meta.with("event", "requeued"))
            return
        }
        for (j, p) in live.enumerated() { deliver(p, index: j, run, rows, denoised) }
        let c = schedules.counts
        let ms = Int(Date().timeIntervalSince(denoised.start) * 1000)
        logger.info("batch finished in \(ms) ms",
                    metadata: run.meta.with("event", "batch_done").with("duration_ms", "\(ms)")
                        .with("schedule_cache", "\(c.hits + c.diskHits) hits, \(c.misses) misses"))
    }

    /// What every step of one batch shares.
    struct BatchRun {
        let id: String
        let started: Date
        let live: [Pending]
        let model: Engine.Model
        /// nil for text models (their folder's scheduler runs).
        let sampler: SamplerName?
        let meta: Logger.Metadata
        /// The settings every job of the batch shares (size, steps, sampler).
        var job0: Job { live[0].job }
    }

    /// One sampler request per image; rowsOf[j] are job j's request indices, seedsOf[j] its seeds.
    struct SampleRows {
        var requests: [SampleRequest] = []
        /// The same rows for a text model.
        var textRequests: [TextRequest] = []
        var rowsOf: [[Int]] = []
        var seedsOf: [[UInt64]] = []
    }

    /// How the denoising went.
    struct Denoised {
        let outcomes: [SampleOutcome]
        let cancelledJobs: Set<Int>
        let requeueAll: Bool
        let start: Date
        let denoiseEnd: Date
        let decodeEnd: Date
    }

    /// The jobs still wanted: those from a connection that has since closed are skipped (the broker
    /// requeued them); cancelled and expired ones end here with `failed`.
    func admit(_ items: [Pending], batchID: String, now: Date) -> [Pending] {
        var live: [Pending] = []
        for p in items {
            let meta: Logger.Metadata = ["job": "\(p.job.id)", "class": "\(p.className)", "batch": "\(batchID)"]
            if cond.withLock({ p.delivery.connectionSerial <= staleSerial && staleSerial > 0 }) { continue }
            if cancels.isCancelled(p.job.id) {
                finishFailed(p, JobFailure(.cancelled, "job \(p.job.id) was cancelled before it started"), meta)
            } else if let f = p.job.deadlineFailure(now: now) {
                finishFailed(p, f, meta)
            } else if let e = p.expires, now > e {
                finishFailed(p, JobFailure(.expired, "the job's AMQP expiration (\(p.job.expirationMs ?? 0) ms) passed before it started"), meta)
            } else {
                live.append(p)
            }
        }
        return live
    }

    /// `accepted` for every job, and the batch's start in the log.
    func announce(_ run: BatchRun) {
        for p in run.live {
            let queued = Int64(run.started.timeIntervalSince(p.received) * 1000)
            send(AcceptedEvent(id: p.job.id, worker: workerID, sizeClass: p.className, batch: run.id,
                               batchSize: run.live.count, queuedMs: queued).encoded(), p.job)
        }
        let job0 = run.job0
        cond.withLock { batchesStarted += 1 }
        logger.info("batch started: \(run.live.count) job(s), \(job0.width)x\(job0.height), \(job0.steps) steps, \(job0.sampler)",
                    metadata: run.meta.with("event", "batch_started"))
    }

    /// Image i of a job uses seed + i (or row i of its stored noise).
    func sampleRows(_ live: [Pending]) -> SampleRows {
        var r = SampleRows()
        for p in live {
            let label: Int
            if case .classLabel(let id, _) = p.job.conditioning { label = id } else { label = 0 }
            var rows: [Int] = [], seeds: [UInt64] = []
            let base: UInt64
            switch p.job.seed {
            case .value(let s, _): base = s
            case .stored: base = p.storedSeed ?? 0
            }
            for i in 0..<p.job.count {
                let seed = base &+ UInt64(i)
                let noise: InitialNoise
                if let stored = p.storedNoise {
                    noise = .latents(stored[i % stored.count])
                } else {
                    noise = .seed(Int64(bitPattern: seed))
                }
                rows.append(r.requests.count)
                seeds.append(seed)
                r.requests.append(SampleRequest(label: label, guidanceScale: p.job.guidance, noise: noise,
                                                cacheThreshold: p.job.cacheThreshold))
                if case .text(let prompt, let negative) = p.job.conditioning {
                    r.textRequests.append(TextRequest(prompt: prompt, negativePrompt: negative, guidanceScale: p.job.guidance,
                                                      seed: Int64(bitPattern: seed)))
                }
            }
            r.rowsOf.append(rows)
            r.seedsOf.append(seeds)
        }
        return r
    }

    /// Runs the sampler over every row (scheduler tables from the cache), sending progress at most
    /// progress_max_hz per job, dropping cancelled jobs' rows and stopping everything at the drain
    /// deadline. nil: the engine failed, and every job ended with `failed`.
    func denoise(_ run: BatchRun, _ rows: SampleRows) -> Denoised? {
        let model = run.model, job0 = run.job0, live = run.live
        let cacheKey = "\(model.name)|\(model.schedulerFingerprint)|\(run.sampler?.rawValue ?? "-")|\(job0.steps)"
        let start = Date()
        var lastStepAt = start
        var stepTimes: [Double] = []
        var lastSent = [Date](repeating: .distantPast, count: live.count)
        var cancelledJobs = Set<Int>(), requeueAll = false
        let maxHz = cond.withLock { config.worker.progressMaxHz }
        var denoiseEnd = start
        let outcomes: [SampleOutcome]
        do {
            let generate: (@escaping (SamplerProgress) -> Set<Int>) throws -> [SampleOutcome]
            if let text = model.text {
                // Text models: the folder's scheduler; resolution binning as the jobs say (one batch key), else as its
                // darkroom.json says, else on (diffusers' default).
                generate = { callback in
                    try text.generate(rows.textRequests, steps: job0.steps, height: job0.height, width: job0.width,
                                      binning: job0.useResolutionBinning, callback: callback)
                }
            } else if let pipeline = model.pipeline, let sampler = run.sampler {
                let tables = try schedules.tables(for: cacheKey) { try pipeline.schedulerTables(sampler, steps: job0.steps) }
                generate = { callback in
                    try pipeline.generate(requests: rows.requests, steps: job0.steps, sampler: sampler, height: job0.height,
                                          width: job0.width, tables: tables, callback: callback)
                }
            } else {
                throw WorkerError(.engine, "model \(model.name) has no pipeline for sampler \(job0.sampler)")
            }
            outcomes = try generate { [self] progress in
                let t = Date()
                stepTimes.append(t.timeIntervalSince(lastStepAt))
                lastStepAt = t
                denoiseEnd = t
                let abort = cond.withLock { () -> Bool in liveness.beat("engine"); return abortRunning }
                metrics.step(JobLabels(className: live[0].className, model: model.name), now: t)
                var drop = Set<Int>()
                if abort {
                    requeueAll = true
                    return Set(rows.requests.indices)
                }
                let perStep = stepTimes.suffix(5).reduce(0, +) / Double(min(stepTimes.count, 5))
                for (j, p) in live.enumerated() where !cancelledJobs.contains(j) {
                    if cancels.isCancelled(p.job.id) {
                        cancelledJobs.insert(j)
                        drop.formUnion(rows.rowsOf[j])
                        continue
                    }
                    let last = progress.step == progress.steps
                    let due = progress.step % p.job.progressEvery == 0
                    let tooSoon = maxHz > 0 && t.timeIntervalSince(lastSent[j]) < 1 / maxHz
                    guard last || (due && !tooSoon) else { continue }
                    lastSent[j] = t
                    var preview: [UInt8]?
                    if p.job.preview, let img = progress.preview(rows.rowsOf[j][0]) {
                        preview = try? PNG.encodeRGB(width: img.width, height: img.height, pixels: img.pixels)
                    }
                    let eta = Int64(perStep * Double(progress.steps - progress.step) * 1000)
                    send(ProgressEvent(id: p.job.id, step: progress.step, steps: progress.steps,
                                       elapsedMs: Int64(t.timeIntervalSince(start) * 1000), etaMs: eta, preview: preview).encoded(), p.job)
                }
                return drop
            }
        } catch {
            logger.error("engine failed: \(error)", metadata: run.meta.with("event", "engine_error"))
            for p in live {
                finishFailed(p, JobFailure(.internal, "the engine failed on this batch: \(error)"), run.meta.with("job", p.job.id))
            }
            return nil
        }
        return Denoised(outcomes: outcomes, cancelledJobs: cancelledJobs, requeueAll: requeueAll, start: start,
                        denoiseEnd: denoiseEnd, decodeEnd: Date())
    }

    /// Job j's images, its stored seed if asked for, and `completed` (or `failed`).
    func deliver(_ p: Pending, index j: Int, _ run: BatchRun, _ rows: SampleRows, _ d: Denoised) {
        let meta = run.meta.with("job", p.job.id)
        if d.cancelledJobs.contains(j) {
            finishFailed(p, JobFailure(.cancelled, "job \(p.job.id) was cancelled while running"), meta)
            return
        }
        let encodeStart = Date()
        var noiseRows: [Float] = []
        var images: [ImageEvent] = []
        for (i, r) in rows.rowsOf[j].enumerated() {
            guard let img = d.outcomes[r].image else { continue }
            noiseRows += img.initialNoise
            do {
                images.append(try ImageEvent(job: p.job, index: i, seed: rows.seedsOf[j][i], rgb: img.rgb.pixels))
            } catch {
                logger.error("PNG encoding failed: \(error)", metadata: meta)
            }
        }
        guard images.count == p.job.count else {
            finishFailed(p, JobFailure(.internal, "only \(images.count) of \(p.job.count) images could be produced"), meta)
            return
        }
        if p.job.cacheThreshold > 0 {
            let skipped = rows.rowsOf[j].compactMap { d.outcomes[$0].image?.cachedSteps }
            logger.info("step cache (threshold \(p.job.cacheThreshold)): block 0 only at \(skipped) of \(p.job.steps) steps per image",
                        metadata: meta.with("event", "step_cache"))
        }
        if let name = p.job.saveSeedAs, let pipeline = run.model.pipeline {
            let s = pipeline.decoder.scale
            let shape = [p.job.count, pipeline.denoiser.inChannels, p.job.height / s, p.job.width / s]
            do {
                try seeds.save(name: name, noise: noiseRows, shape: shape, seed: rows.seedsOf[j].first, model: run.model.name,
                               width: p.job.width, height: p.job.height)
                logger.info("stored seed \(name)", metadata: meta.with("event", "seed_saved"))
            } catch {
                finishFailed(p, JobFailure(.internal, "the images were made but the seed could not be stored: \(error)"), meta)
                return
            }
        }
        let end = Date()
        let labels = p.labels
        metrics.imagesSent(labels, images.count)
        let s = { (a: Date, b: Date) in b.timeIntervalSince(a) }
        metrics.timings(labels, queue: s(p.received, run.started), denoise: s(d.start, d.denoiseEnd), decode: s(d.denoiseEnd, d.decodeEnd),
                        total: s(p.received, end))
        let ms = { (a: Date, b: Date) in Int64(max(0, b.timeIntervalSince(a)) * 1000) }
        let timings = Timings(queue: ms(p.received, run.started), denoise: ms(d.start, d.denoiseEnd),
                              decode: ms(d.denoiseEnd, d.decodeEnd), encode: ms(encodeStart, end), total: ms(p.received, end))
        let completed = CompletedEvent(id: p.job.id, seeds: rows.seedsOf[j], timings: timings).encoded()
        guard p.job.store == .inline else {
            // Uploads and file writes run as tracked work: the engine goes on with the next batch meanwhile.
            let made = images
            work.run { await self.deliverStored(p, images: made, completed: completed, meta: meta) }
            return
        }
        let events = images.map { $0.encoded() }
        // Kept on disk until `completed` is confirmed: if the broker is away now, the redelivery is answered from it.
        do {
            try results.save(key: KeptResults.key(jobID: p.job.id, body: p.delivery.body), events: events + [completed])
        } catch {
            stateWriteFailed(.results, error, meta)
        }
        for image in events { send(image, p.job) }
        logger.info("completed", metadata: meta.with("event", "completed").with("duration_ms", "\(timings.total)"))
        terminal(completed, for: p.delivery, jobID: p.job.id, replyTo: p.job.replyTo, correlationID: p.job.correlationID,
                 labels: labels, failure: nil, webhook: p.job.webhook, metadata: meta)
    }

    func finishFailed(_ p: Pending, _ failure: JobFailure, _ meta: Logger.Metadata) {
        logger.info("\(failure.code.rawValue): \(failure.message)", metadata: meta.with("event", "failed"))
        terminal(FailedEvent(id: p.job.id, failure: failure).encoded(), for: p.delivery, jobID: p.job.id, replyTo: p.job.replyTo,
                 correlationID: p.job.correlationID, labels: p.labels, failure: failure.code, webhook: p.job.webhook, metadata: meta)
    }
}

extension Pending {
    var labels: JobLabels { JobLabels(className: className, model: job.model) }
}
