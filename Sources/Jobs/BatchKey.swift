// The batching compatibility key: jobs with equal keys can run as one engine batch.
//
// Included: model, width, height, steps, sampler, and whether classifier-free guidance runs.
// Not included: the guidance value itself. The engine applies guidance per row
// (uncond + g_i * (cond - uncond) with each job's own g_i), so jobs with guidance 4 and 7 share
// a batch and each still gets exactly the image it would get alone; but a guided job runs two
// rows (conditional and null class / negative prompt) and an unguided one a single row, so
// guidance on and off do not mix. Seeds, labels, prompts, count, previews and seed_ref do not
// matter for batching either: they are per row.

public struct BatchKey: Hashable, Sendable, CustomStringConvertible {
    public var model: String
    public var width: Int
    public var height: Int
    public var steps: Int
    public var sampler: String
    public var guided: Bool

    public init(model: String, width: Int, height: Int, steps: Int, sampler: String, guided: Bool) {
        self.model = model
        self.width = width
        self.height = height
        self.steps = steps
        self.sampler = sampler
        self.guided = guided
    }

    public var description: String {
        "\(model) \(width)x\(height) \(steps) steps \(sampler) \(guided ? "cfg" : "no-cfg")"
    }
}

extension Job {
    public var batchKey: BatchKey {
        BatchKey(model: model, width: width, height: height, steps: steps, sampler: sampler, guided: usesGuidance)
    }
}
