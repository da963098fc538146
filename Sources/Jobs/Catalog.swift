// What a worker serves: models with their defaults and limits, and the size classes.
// Validation of a job needs this context (JobValidation.swift).

import Foundation

/// A named pixel budget, e.g. `small` = 256*256, optionally with per-side limits. A job goes
/// to the smallest class whose budget (and side limits) hold its size.
public struct SizeClass: Equatable, Sendable {
    public var name: String
    /// width * height budget.
    public var maxPixels: Int
    /// Optional per-side limits; nil: only the pixel budget counts.
    public var maxWidth: Int?
    public var maxHeight: Int?

    public init(name: String, maxPixels: Int, maxWidth: Int? = nil, maxHeight: Int? = nil) {
        self.name = name
        self.maxPixels = maxPixels
        self.maxWidth = maxWidth
        self.maxHeight = maxHeight
    }

    public func admits(width: Int, height: Int) -> Bool {
        width * height <= maxPixels && width <= (maxWidth ?? Int.max) && height <= (maxHeight ?? Int.max)
    }
}

public struct ImageSize: Hashable, Sendable, CustomStringConvertible {
    public var width: Int
    public var height: Int

    public init(width: Int, height: Int) {
        self.width = width
        self.height = height
    }

    public var description: String { "\(width)x\(height)" }
}

/// One model a worker serves, as far as the contract needs to know it.
public struct ModelInfo: Equatable, Sendable {
    public enum Kind: String, Equatable, Sendable {
        /// Conditioned on a class id (DiT); `prompt` is a class label name.
        case classConditional = "class_conditional"
        /// Conditioned on text; `prompt` and `negative_prompt` are free text.
        case text
    }

    public var name: String
    public var kind: Kind
    /// Class names by class id (`labels[i]` names class i). An entry may hold several
    /// comma-separated synonyms, as diffusers' id2label does ("tench, Tinca tinca"); each
    /// synonym matches, case-insensitively.
    public var labels: [String]
    public var numClasses: Int
    /// Width and height must be multiples of this (e.g. VAE factor * patch size).
    public var granularity: Int
    public var defaultWidth: Int
    public var defaultHeight: Int
    public var defaultSteps: Int
    public var defaultGuidance: Double
    public var defaultSampler: String
    public var samplers: [String]
    /// The sizes the model serves; empty means any multiple of `granularity` within budget.
    public var sizes: [ImageSize]
    /// Text models: resolution binning when a job does not say (the folder's darkroom.json `call`, else on).
    public var defaultBinning: Bool? = nil

    private let labelIndex: [String: Int]

    public init(name: String, kind: Kind, labels: [String] = [], numClasses: Int = 0, granularity: Int,
                defaultWidth: Int, defaultHeight: Int, defaultSteps: Int, defaultGuidance: Double,
                defaultSampler: String, samplers: [String], sizes: [ImageSize] = []) {
        self.name = name
        self.kind = kind
        self.labels = labels
        self.numClasses = numClasses
        self.granularity = max(granularity, 1)
        self.defaultWidth = defaultWidth
        self.defaultHeight = defaultHeight
        self.defaultSteps = defaultSteps
        self.defaultGuidance = defaultGuidance
        self.defaultSampler = defaultSampler
        self.samplers = samplers
        self.sizes = sizes
        var index: [String: Int] = [:]
        for (id, entry) in labels.enumerated() {
            for synonym in entry.split(separator: ",") {
                let key = ModelInfo.labelKey(String(synonym))
                if !key.isEmpty, index[key] == nil { index[key] = id }
            }
        }
        labelIndex = index
    }

    static func labelKey(_ s: String) -> String {
        s.trimmingCharacters(in: .whitespaces).lowercased()
    }

    /// The class id a label names (case-insensitive, surrounding spaces ignored).
    public func classID(forLabel label: String) -> Int? {
        labelIndex[ModelInfo.labelKey(label)]
    }

    /// The first synonym of a class's label, if it has one.
    public func label(forClass id: Int) -> String? {
        guard labels.indices.contains(id) else { return nil }
        return labels[id].split(separator: ",").first.map { String($0).trimmingCharacters(in: .whitespaces) }
    }
}

/// Everything a worker serves.
public struct Catalog: Equatable, Sendable {
    public var models: [ModelInfo]
    /// Used when a job names no model; nil means jobs must name one.
    public var defaultModel: String?
    public var sizeClasses: [SizeClass]
    /// Webhook secrets and result stores the worker has.
    public var delivery: DeliveryCatalog

    public init(models: [ModelInfo], defaultModel: String?, sizeClasses: [SizeClass], delivery: DeliveryCatalog = DeliveryCatalog()) {
        self.models = models
        self.defaultModel = defaultModel
        self.sizeClasses = sizeClasses
        self.delivery = delivery
    }

    public func model(named name: String) -> ModelInfo? {
        models.first { $0.name == name }
    }

    /// The smallest class whose budget holds `pixels` (the first such in config order on a tie).
    public func sizeClass(forPixels pixels: Int) -> SizeClass? {
        sizeClass(where: { $0.maxPixels >= pixels })
    }

    /// The smallest class that admits width x height (budget and side limits).
    public func sizeClass(width: Int, height: Int) -> SizeClass? {
        sizeClass(where: { $0.admits(width: width, height: height) })
    }

    private func sizeClass(where admits: (SizeClass) -> Bool) -> SizeClass? {
        var best: SizeClass?
        for c in sizeClasses where admits(c) {
            if let b = best, b.maxPixels <= c.maxPixels { continue }
            best = c
        }
        return best
    }

    public func sizeClass(named name: String) -> SizeClass? {
        sizeClasses.first { $0.name == name }
    }

    /// The class with the largest budget.
    public var largestClass: SizeClass? {
        sizeClasses.max { $0.maxPixels < $1.maxPixels }
    }
}
