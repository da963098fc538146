import Core

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
