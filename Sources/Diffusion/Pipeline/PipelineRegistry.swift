// The pipeline registry: model_index.json's `_class_name` decides which pipeline runs a folder (diffusers
// `DiffusionPipeline.from_pretrained` dispatches the same way, pipeline_utils.py). Adding a family means adding its
// class here and its pipeline type beside it; callers only see `LoadedPipeline`.
import Foundation
import Weights

public enum LoadedPipeline: Sendable {
    /// DiTPipeline: class labels (and a null class for guidance).
    case classConditional(DiffusionPipeline)
    /// PixArtSigmaPipeline, PixArtAlphaPipeline, SanaPipeline, SanaSprintPipeline: prompts and negative prompts.
    case textToImage(TextToImagePipeline)

    /// Every `_class_name` this engine runs.
    public static let classNames = ["DiTPipeline"] + TextToImagePipeline.Family.allCases.map(\.rawValue)

    /// Loads a pipeline folder by its `_class_name`; anything else is refused with one line naming it.
    /// `precision` nil: the weights as stored; else converted to it at load.
    public static func load(_ url: URL, precision: WeightPrecision? = nil) throws -> LoadedPipeline {
        let folder = try PipelineFolder(url: url)
        switch folder.className {
        case "DiTPipeline":
            return .classConditional(try DiffusionPipeline.load(folder, precision: precision))
        case let name where TextToImagePipeline.Family(rawValue: name) != nil:
            return .textToImage(try TextToImagePipeline(folder: folder, precision: precision))
        case let name:
            throw PipelineError(.unsupportedComponent, "\(url.lastPathComponent): \(name.isEmpty ? "model_index.json has no _class_name" : "\(name) is not supported") (this engine runs \(classNames.joined(separator: ", ")))")
        }
    }

    /// Whether the pipeline reads text prompts (false: class labels).
    public var readsText: Bool { if case .textToImage = self { return true } else { return false } }
}
