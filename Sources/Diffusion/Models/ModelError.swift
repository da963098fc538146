import Core
import Tensor

/// Why a model could not be built or run.
public struct ModelError: CodedError, Equatable {
    public enum Code: String, Sendable {
        /// A tensor the architecture needs is not in the weight files.
        case missingWeight = "missing_weight"
        /// A tensor exists but its shape does not fit the config.
        case weightShape = "weight_shape"
        /// The config asks for something this engine does not implement (or is inconsistent).
        case unsupportedConfig = "unsupported_config"
        /// The input tensors do not fit the model (shape, batch size, label range).
        case badInput = "bad_input"
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
}

extension Tensor {
    /// Whether this is `[B, channels, H, W]` with every side positive and H, W multiples of `multiple`: the input
    /// check of the autoencoders and the transformers (each names its own expectation in its error).
    func isImageBatch(channels: Int, multiple: Int = 1) -> Bool {
        shape.count == 4 && shape[1] == channels && shape[0] > 0 && shape[2] > 0 && shape[3] > 0
            && shape[2] % multiple == 0 && shape[3] % multiple == 0
    }
}
