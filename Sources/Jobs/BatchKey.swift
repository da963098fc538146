// The batching compatibility key: jobs with equal keys can run as one engine batch.
//
// Included: model, width, height, steps, sampler, whether classifier-free guidance runs, and (text models)
// whether resolution binning is on: binned and exact-size jobs run their transformer at different sizes.
// Not included: the guidance value itself. The engine applies guidance per row
// (uncond + g_i * (cond - uncond) with each job's own g_i), so jobs with guidance 4 and 7 share
// a batch and each still gets exactly the image it would get alone; but a guided job runs two
// rows (conditional and null class / negative prompt) and an unguided one a single row, so
// guidance on and off do not mix. Seeds, labels, prompts, count, previews, seed_ref and cache_threshold
// do not matter for batching either: they are per row (step caching decides per image, its guidance rows
// together, and runs the later blocks on the rows that need them).

public struct BatchKey: Hashable, Sendable, CustomStringConvertible {
    public var model: String
    public var width: Int
    public var height: Int
    public var steps: Int
    public var sampler: String
    public var guided: Bool
    /// Text models' resolution binning; nil for class-conditional models.
    public var binning: Bool?

    public init(model: String, width: Int, height: Int, steps: Int, sampler: String, guided: Bool, binning: Bool? = nil) {
        self.binning = binning
        self.model = model
        self.width = width
        self.height = height
        self.steps = steps
        self.sampler = sampler
        self.guided = guided
    }

    public var description: String {
        "\(model) \(width)x\(height) \(steps) steps \(sampler) \(guided ? "cfg" : "no-cfg")"
            + (binning.map { $0 ? " binned" : " exact-size" } ?? "")
    }
}

extension Job {
    public var batchKey: BatchKey {
        BatchKey(model: model, width: width, height: height, steps: steps, sampler: sampler, guided: usesGuidance,
                 binning: useResolutionBinning)
    }
}
