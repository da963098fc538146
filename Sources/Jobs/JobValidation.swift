// The rules of the contract's job table that need context (the models served, the size
// classes, the clock), applied to a parsed JobRequest. Every message names the field, the value
// and the rule.

import Foundation

public enum JobLimits {
    public static let promptMaxLength = 2000
    public static let steps = 1...200
    public static let guidance = 0.0...30.0
    public static let cacheThreshold = 0.0...1.0
    public static let count = 1...16
}

extension Job {
    /// Decodes and validates a job message: `JobRequest.parse` then `resolve`.
    public static func decode(body: [UInt8], properties: JobProperties, catalog: Catalog,
                              now: Date = Date()) throws(JobRejection) -> Job {
        let fallback = properties.messageID.flatMap { JobID.isValid($0) ? $0 : nil } ?? JobID.generate()
        return try JobRequest.parse(body: body, fallbackID: fallback)
            .resolve(properties: properties, catalog: catalog, now: now, fallbackID: fallback)
    }
}

extension JobRequest {
    /// Applies every contract rule that needs the catalog and the clock, filling in defaults.
    /// `fallbackID` is the id used on the rejection when neither `id` nor message_id is a
    /// valid id (generated when not given).
    public func resolve(properties: JobProperties, catalog: Catalog, now: Date = Date(),
                        fallbackID: String? = nil) throws(JobRejection) -> Job {
        let fallback = fallbackID ?? JobID.generate()
        var jobID = fallback
        do throws(JobFailure) {
            // id: the body's, else message_id, else generated.
            if let id {
                guard JobID.isValid(id) else {
                    throw JobFailure(.invalidRequest, "field \"id\" must be \(JobID.rule), got \(quoted(id))")
                }
                jobID = id
            } else if let messageID = properties.messageID {
                guard JobID.isValid(messageID) else {
                    throw JobFailure(.invalidRequest,
                        "message_id \(quoted(messageID)) cannot be the job id (\(JobID.rule)); set \"id\" in the body")
                }
                jobID = messageID
            }
            return try resolved(id: jobID, properties: properties, catalog: catalog, now: now)
        } catch {
            throw JobRejection(jobID: jobID, failure: error)
        }
    }

    private func resolved(id: String, properties: JobProperties, catalog: Catalog,
                          now: Date) throws(JobFailure) -> Job {
        // model
        let served = catalog.models.map(\.name).joined(separator: ", ")
        guard let modelName = model ?? catalog.defaultModel else {
            throw JobFailure(.unsupported, "no \"model\" given and this worker has no default model; it serves: \(served)")
        }
        guard let info = catalog.model(named: modelName) else {
            throw JobFailure(.unsupported, catalog.models.isEmpty
                ? "model \(quoted(modelName)) is not served: this worker serves no models"
                : "model \(quoted(modelName)) is not served by this worker; it serves: \(served)")
        }

        // prompt, class_id, negative_prompt
        for (key, text) in [("prompt", prompt), ("negative_prompt", negativePrompt)] {
            if let text, text.unicodeScalars.count > JobLimits.promptMaxLength {
                throw JobFailure(.invalidRequest,
                    "field \"\(key)\" has \(text.unicodeScalars.count) characters; at most \(JobLimits.promptMaxLength) are allowed")
            }
        }
        let conditioning: Job.Conditioning
        switch info.kind {
        case .classConditional:
            if prompt != nil, classID != nil {
                throw JobFailure(.invalidRequest, "give either \"prompt\" (a class label) or \"class_id\", not both")
            }
            for (key, given) in [("negative_prompt", negativePrompt != nil), ("use_resolution_binning", useResolutionBinning != nil)] where given {
                throw JobFailure(.invalidRequest,
                    "field \"\(key)\" is for text models; model \(quoted(info.name)) is class-conditional")
            }
            if let classID {
                guard classID >= 0, classID < Int64(info.numClasses) else {
                    throw JobFailure(.invalidRequest,
                        "field \"class_id\" must be from 0 to \(info.numClasses - 1) for model \(quoted(info.name)), got \(classID)")
                }
                conditioning = .classLabel(id: Int(classID), label: nil)
            } else if let prompt {
                guard let classID = info.classID(forLabel: prompt) else {
                    throw JobFailure(.invalidRequest, info.labels.isEmpty
                        ? "model \(quoted(info.name)) has no label names; give \"class_id\" instead of prompt \(quoted(prompt))"
                        : "prompt \(quoted(prompt)) is not a label of model \(quoted(info.name)); labels include: \(labelSample(info))")
                }
                conditioning = .classLabel(id: classID, label: info.label(forClass: classID) ?? prompt)
            } else {
                throw JobFailure(.invalidRequest,
                    "model \(quoted(info.name)) is class-conditional: give \"prompt\" (a label such as \(quoted(info.label(forClass: 0) ?? "?"))) or \"class_id\"")
            }
        case .text:
            if classID != nil {
                throw JobFailure(.invalidRequest,
                    "field \"class_id\" is for class-conditional models; model \(quoted(info.name)) takes a text \"prompt\"")
            }
            guard let prompt else {
                throw JobFailure(.invalidRequest, "field \"prompt\" is required for text model \(quoted(info.name))")
            }
            conditioning = .text(prompt: prompt, negativePrompt: negativePrompt ?? "")
        }

        // width, height, size class
        let g = info.granularity
        var size: [Int] = []
        for (key, value, fallback) in [("width", width, info.defaultWidth), ("height", height, info.defaultHeight)] {
            let n = value ?? Int64(fallback)
            guard n >= Int64(g) else {
                throw JobFailure(.invalidRequest,
                    "field \"\(key)\" must be a positive multiple of \(g) (model \(quoted(info.name))), got \(n)")
            }
            guard n % Int64(g) == 0 else {
                throw JobFailure(.invalidRequest,
                    "field \"\(key)\" must be a multiple of \(g) for model \(quoted(info.name)), got \(n)")
            }
            size.append(Int(n))
        }
        let (w, h) = (size[0], size[1])
        guard let largest = catalog.largestClass else {
            throw JobFailure(.unsupported, "this worker has no size classes configured")
        }
        let (pixels, overflow) = w.multipliedReportingOverflow(by: h)
        if overflow || pixels > largest.maxPixels {
            throw JobFailure(.tooLarge,
                "\(w)x\(h) is \(overflow ? "too many" : String(pixels)) pixels, more than the largest size class \(quoted(largest.name)) allows (\(largest.maxPixels) pixels)")
        }
        if !info.sizes.isEmpty, !info.sizes.contains(ImageSize(width: w, height: h)) {
            throw JobFailure(.unsupported,
                "model \(quoted(info.name)) serves the sizes \(info.sizes.map(\.description).joined(separator: ", ")); \(w)x\(h) is not one of them")
        }
        guard let sizeClass = catalog.sizeClass(width: w, height: h) else {
            throw JobFailure(.tooLarge,
                "\(w)x\(h) fits no size class: each class with room for \(pixels) pixels limits the width or height")
        }

        // steps, guidance, sampler
        let steps = self.steps ?? Int64(info.defaultSteps)
        guard JobLimits.steps.contains(Int(clamping: steps)) else {
            throw JobFailure(.invalidRequest, "field \"steps\" must be from 1 to 200, got \(steps)")
        }
        let guidance = self.guidance ?? info.defaultGuidance
        guard JobLimits.guidance.contains(guidance) else {
            throw JobFailure(.invalidRequest, "field \"guidance\" must be from 0 to 30, got \(guidance)")
        }
        let cacheThreshold = self.cacheThreshold ?? 0
        guard JobLimits.cacheThreshold.contains(cacheThreshold) else {
            throw JobFailure(.invalidRequest, "field \"cache_threshold\" must be from 0 (off) to 1, got \(cacheThreshold)")
        }
        if cacheThreshold > 0, info.kind == .text {
            throw JobFailure(.unsupported,
                "field \"cache_threshold\" is supported by class-conditional (DiT) models only; model \(quoted(info.name)) is a text model")
        }
        let sampler = self.sampler ?? info.defaultSampler
        guard info.samplers.contains(sampler) else {
            throw JobFailure(.unsupported,
                "sampler \(quoted(sampler)) is not available for model \(quoted(info.name)); choose one of: \(info.samplers.joined(separator: ", "))")
        }

        // seed, seed_ref, save_seed_as
        let seedSource: Job.SeedSource
        if let seed {
            if seedRef != nil {
                throw JobFailure(.invalidRequest, "give either \"seed\" or \"seed_ref\", not both")
            }
            seedSource = .value(seed, generated: false)
        } else if let seedRef {
            guard SeedName.isValid(seedRef) else {
                throw JobFailure(.invalidRequest, "field \"seed_ref\" must be a seed name, \(SeedName.rule), got \(quoted(seedRef))")
            }
            seedSource = .stored(name: seedRef)
        } else {
            seedSource = .value(UInt64.random(in: 0..<(1 << 53)), generated: true)
        }
        if let saveSeedAs, !SeedName.isValid(saveSeedAs) {
            throw JobFailure(.invalidRequest, "field \"save_seed_as\" must be a seed name, \(SeedName.rule), got \(quoted(saveSeedAs))")
        }

        // count, preview, progress_every
        let count = self.count ?? 1
        guard JobLimits.count.contains(Int(clamping: count)) else {
            throw JobFailure(.invalidRequest, "field \"count\" must be from 1 to 16, got \(count)")
        }
        let progressEvery = self.progressEvery ?? 1
        guard progressEvery >= 1 else {
            throw JobFailure(.invalidRequest, "field \"progress_every\" must be at least 1, got \(progressEvery)")
        }

        // deadline
        var deadlineDate: Date?
        if let deadline {
            guard let date = RFC3339.parse(deadline) else {
                throw JobFailure(.invalidRequest,
                    "field \"deadline\" must be an RFC 3339 time such as \"2026-11-28T23:59:00Z\", got \(quoted(deadline))")
            }
            deadlineDate = date
        }

        // webhook, output
        var webhook: Webhook?
        if let w = self.webhook { webhook = try w.resolve(catalog.delivery) }
        let store = try output.resolve(sizeClass: sizeClass.name, catalog.delivery)

        var job = Job(
            id: id, model: info.name, conditioning: conditioning, width: w, height: h, steps: Int(steps),
            guidance: guidance, sampler: sampler, seed: seedSource, count: Int(count), preview: preview ?? false,
            progressEvery: Int(clamping: progressEvery), saveSeedAs: saveSeedAs, deadline: deadlineDate,
            sizeClass: sizeClass.name, replyTo: properties.replyTo.flatMap { $0.isEmpty ? nil : $0 }, correlationID: properties.correlationID,
            priority: properties.priority, expirationMs: properties.expiration.flatMap { UInt64($0) },
            useResolutionBinning: info.kind == .text ? useResolutionBinning ?? info.defaultBinning ?? true : nil)
        job.webhook = webhook
        job.store = store
        job.cacheThreshold = cacheThreshold
        if let failure = job.deadlineFailure(now: now) { throw failure }
        return job
    }

    private func labelSample(_ info: ModelInfo) -> String {
        let names = (0..<min(info.labels.count, 12)).compactMap { info.label(forClass: $0) }.map { quoted($0) }
        return names.joined(separator: ", ") + (info.labels.count > 12 ? ", ..." : "")
    }
}
