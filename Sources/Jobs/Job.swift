// A fully resolved job: every default filled in, the class id resolved, its size class chosen.

import Foundation

/// The AMQP properties of a job message that the contract reads.
public struct JobProperties: Equatable, Sendable {
    public var messageID: String?
    public var replyTo: String?
    public var correlationID: String?
    public var priority: UInt8?
    /// AMQP per-message TTL in milliseconds, as the decimal string AMQP carries.
    public var expiration: String?

    public init(messageID: String? = nil, replyTo: String? = nil, correlationID: String? = nil,
                priority: UInt8? = nil, expiration: String? = nil) {
        self.messageID = messageID
        self.replyTo = replyTo
        self.correlationID = correlationID
        self.priority = priority
        self.expiration = expiration
    }
}

public struct Job: Equatable, Sendable {
    public enum Conditioning: Equatable, Sendable {
        /// Class-conditional models: the class id, and the label given as `prompt` if any.
        case classLabel(id: Int, label: String?)
        /// Text models.
        case text(prompt: String, negativePrompt: String)
    }

    public enum SeedSource: Equatable, Sendable {
        /// A seed: given in the job, or chosen by the worker (`generated`, then below 2^53 so
        /// that every JSON reader keeps it exact).
        case value(UInt64, generated: Bool)
        /// A stored good seed (`seed_ref`): its initial noise and seed come from the store.
        case stored(name: String)
    }

    public var id: String
    public var model: String
    public var conditioning: Conditioning
    public var width: Int
    public var height: Int
    public var steps: Int
    public var guidance: Double
    /// Step caching (FirstBlockCache): skip the transformer blocks after the first at a step when block 0's
    /// residual changed relatively by no more than this since the last full step; 0 = off.
    public var cacheThreshold: Double = 0
    public var sampler: String
    public var seed: SeedSource
    public var count: Int
    public var preview: Bool
    public var progressEvery: Int
    public var saveSeedAs: String?
    public var deadline: Date?
    /// Where the events are also posted, signed (nil: the reply queue only).
    public var webhook: Webhook? = nil
    /// Where the PNGs go.
    public var store: ResultStore = .inline
    /// The size class whose queue this job belongs on (smallest budget that fits).
    public var sizeClass: String
    public var replyTo: String?
    public var correlationID: String?
    public var priority: UInt8?
    /// AMQP expiration in milliseconds, when the message had a valid one.
    public var expirationMs: UInt64?
    /// Text models: whether the image is generated at the model's aspect-ratio bin and resized back (the job's
    /// `use_resolution_binning`, else the model's default); nil for class-conditional models.
    public var useResolutionBinning: Bool? = nil

    /// Classifier-free guidance runs when guidance > 1 (as in diffusers' `do_classifier_free_guidance`).
    public var usesGuidance: Bool { guidance > 1 }

    public var pixels: Int { width * height }

    /// The seeds of the job's images given its base seed: image i uses seed + i (wrapping
    /// modulo 2^64).
    public func seeds(base: UInt64) -> [UInt64] {
        (0..<count).map { base &+ UInt64($0) }
    }

    /// `failed/expired` when the deadline has passed at `now`, else nil.
    public func deadlineFailure(now: Date) -> JobFailure? {
        guard let deadline, now > deadline else { return nil }
        return JobFailure(.expired,
            "the job's deadline \(RFC3339.format(deadline)) passed before it started (now \(RFC3339.format(now)))")
    }

    /// The text of the PNG `parameters` chunk for image `index`, in the common
    /// "prompt / Negative prompt: / key: value, ..." form.
    public func parametersText(index: Int, seed: UInt64) -> String {
        var lines: [String] = []
        var fields: [String] = []
        switch conditioning {
        case .classLabel(let classID, let label):
            lines.append(label ?? "class \(classID)")
            fields.append("Class id: \(classID)")
        case .text(let prompt, let negative):
            lines.append(prompt)
            if !negative.isEmpty { lines.append("Negative prompt: \(negative)") }
        }
        if let useResolutionBinning { fields.append("Resolution binning: \(useResolutionBinning)") }
        if cacheThreshold > 0 { fields.append("Cache threshold: \(cacheThreshold)") }
        fields = ["Steps: \(steps)", "Sampler: \(sampler)", "CFG scale: \(guidance)", "Seed: \(seed)",
                  "Size: \(width)x\(height)", "Model: \(model)"] + fields + ["Job: \(id)", "Index: \(index)"]
        lines.append(fields.joined(separator: ", "))
        return lines.joined(separator: "\n")
    }
}
