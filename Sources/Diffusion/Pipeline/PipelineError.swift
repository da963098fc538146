import Core

/// Why a pipeline folder could not be loaded or run.
public struct PipelineError: CodedError, Equatable {
    public enum Code: String, Sendable {
        case notAFolder = "not_a_folder"                    // path missing or not a directory
        case badModelIndex = "bad_model_index"              // model_index.json missing / not JSON / malformed entry
        case badConfig = "bad_config"                       // a component config.json is missing, not JSON, or invalid
        case unsupportedComponent = "unsupported_component" // a component class we do not implement
        case missingWeights = "missing_weights"             // no safetensors weights in a component folder
        case badRequest = "bad_request"                     // sampler input outside what the model allows
        case cancelled                                      // every request was dropped by the callback
    }
    public let code: Code
    public let message: String
    public init(_ code: Code, _ message: String) { self.code = code; self.message = message }
}
