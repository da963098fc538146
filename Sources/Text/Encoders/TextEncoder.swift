// A diffusers `text_encoder/` folder: config.json (`architectures` / `model_type`) picks Gemma2Model or
// T5EncoderModel; weights from model.safetensors or a sharded model.safetensors.index.json.
import Foundation
import Tensor
import Weights

public final class TextEncoder: @unchecked Sendable {
    public enum Model: @unchecked Sendable {
        case gemma2(Gemma2Model)
        case t5(T5EncoderModel)
    }

    public let model: Model
    public let folder: URL
    /// "Gemma2Model" or "T5EncoderModel".
    public let architecture: String
    /// The checkpoint's dtype as stored (of the embedding), e.g. "BF16".
    public let storedDType: String
    /// The opened weight files (single or sharded).
    public let weights: any WeightStore

    /// `precision` nil: the weights as stored; else converted at load (`PrecisionWeights`).
    public init(folder: URL, precision: WeightPrecision? = nil) throws {
        self.folder = folder
        let config = try readJSONObject(folder.appendingPathComponent("config.json"))
        let arch = config["architectures"]?.arrayValue?.first?.stringValue
        let type = config["model_type"]?.stringValue
        switch (arch, type) {
        case ("Gemma2Model", _), ("Gemma2ForCausalLM", _), (nil, "gemma2"):
            let parsed = try Gemma2Model.Config(json: config, file: "config.json")
            weights = PrecisionWeights.wrap(try openTextEncoderWeights(folder), precision)
            model = .gemma2(try Gemma2Model(config: parsed, weights: weights))
            architecture = "Gemma2Model"
            storedDType = weights.dtype("embed_tokens.weight") ?? weights.dtype("model.embed_tokens.weight") ?? "?"
        case ("T5EncoderModel", _), (nil, "t5"):
            let parsed = try T5EncoderModel.Config(json: config, file: "config.json")
            weights = PrecisionWeights.wrap(try openTextEncoderWeights(folder), precision)
            model = .t5(try T5EncoderModel(config: parsed, weights: weights))
            architecture = "T5EncoderModel"
            storedDType = weights.dtype("shared.weight") ?? weights.dtype("encoder.embed_tokens.weight") ?? "?"
        default:
            throw TextError(.unsupported, file: "config.json",
                            "text encoder \(arch ?? type ?? "(no architectures or model_type)") is not supported (Gemma2Model, T5EncoderModel)")
        }
    }

    /// Hidden size of the output.
    public var hiddenSize: Int {
        switch model {
        case .gemma2(let g): return g.config.hiddenSize
        case .t5(let t): return t.config.dModel
        }
    }

    /// Bytes of the weights as stored.
    public var weightBytes: Int {
        switch model {
        case .gemma2(let g): return g.weightBytes
        case .t5(let t): return t.weightBytes
        }
    }

    /// Last hidden state `[B, N, H]` for a padded batch (`TokenBatch` from `Tokenizer.encode`).
    public func encode(_ batch: TokenBatch, threads: Int = kernelThreads) throws -> Tensor {
        switch model {
        case .gemma2(let g): return try g(ids: batch.ids, mask: batch.mask, threads: threads)
        case .t5(let t): return try t(ids: batch.ids, mask: batch.mask, threads: threads)
        }
    }
}
