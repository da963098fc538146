// The job flags `generate` and `submit` share: one name and one meaning each, the contract field in brackets.
import ArgumentParser
import Jobs

struct JobOptions: ParsableArguments {
    @Option(help: "Prompt; for class-conditional models a class label such as \"red circle\" (see `darkroom models inspect`). [prompt]")
    var prompt: String?
    @Option(name: .customLong("class-id"), help: "Class id of a class-conditional model, instead of --prompt. [class_id]")
    var classID: Int64?
    @Option(name: .customLong("negative-prompt"), help: "Negative prompt of a text model (used with guidance > 1). [negative_prompt]")
    var negativePrompt: String?
    @Flag(inversion: .prefixedNo, help: "Text models: generate at the model's aspect-ratio bin and resize back (--no-binning: at exactly the requested size; default: the model's). [use_resolution_binning]")
    var binning: Bool?
    @Option(help: "Width in pixels. [width]") var width: Int64?
    @Option(help: "Height in pixels. [height]") var height: Int64?
    @Option(help: "Denoising steps. [steps]") var steps: Int64?
    @Option(help: "Classifier-free guidance scale (<= 1 turns it off). [guidance]") var guidance: Double?
    @Option(name: .customLong("cache-threshold"),
            help: "Step caching: skip the transformer blocks after the first when the first block's residual changed relatively by at most this since the last full step (0 = off; e.g. 0.05-0.2: fewer transformer calls, small image changes). [cache_threshold]")
    var cacheThreshold: Double?
    @Option(help: "Sampler: ddim, dpmpp_2m, euler (DDPM-family models) or flow_euler (flow models). [sampler]")
    var sampler: String?
    @Option(help: "Seed (uint64; default: random). [seed]") var seed: UInt64?
    @Option(name: .customLong("seed-ref"), help: "Reuse the initial noise stored under this name. [seed_ref]")
    var seedRef: String?
    @Option(help: "Number of images; image i uses seed + i. [count]") var count: Int64?
    @Option(name: .customLong("save-seed-as"), help: "Store this job's initial noise under that name. [save_seed_as]")
    var saveSeedAs: String?

    /// Sets the request's fields for the flags given; the others keep their values.
    func apply(to r: inout JobRequest) {
        if let prompt { r.prompt = prompt }
        if let classID { r.classID = classID }
        if let negativePrompt { r.negativePrompt = negativePrompt }
        if let binning { r.useResolutionBinning = binning }
        if let width { r.width = width }
        if let height { r.height = height }
        if let steps { r.steps = steps }
        if let guidance { r.guidance = guidance }
        if let cacheThreshold { r.cacheThreshold = cacheThreshold }
        if let sampler { r.sampler = sampler }
        if let seed { r.seed = seed }
        if let seedRef { r.seedRef = seedRef }
        if let count { r.count = count }
        if let saveSeedAs { r.saveSeedAs = saveSeedAs }
    }

    /// The contract's field names in a message turned into these flags (`field "class_id"` -> `--class-id`).
    static func flagNames(in message: String) -> String {
        var message = message
        for (field, flag) in [("class_id", "class-id"), ("negative_prompt", "negative-prompt"), ("seed_ref", "seed-ref"), ("cache_threshold", "cache-threshold"),
                              ("use_resolution_binning", "[no-]binning"),
                              ("save_seed_as", "save-seed-as")]
            + ["width", "height", "steps", "guidance", "count", "prompt", "sampler", "seed"].map({ ($0, $0) }) {
            message = message.replacingOccurrences(of: "field \"\(field)\"", with: "--\(flag)")
        }
        return message
    }
}
