/// Why a pipeline folder could not be loaded or run. `description` is one line a person can act on.
public struct PipelineError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case notAFolder          // path missing or not a directory
        case badModelIndex       // model_index.json missing / not JSON / malformed component entry
        case badConfig           // a component config.json is missing, not JSON, or has invalid values
        case unsupportedComponent // a component class we do not implement
        case missingWeights      // no safetensors weights in a component folder
        case badRequest          // sampler input outside what the model allows (size, label, noise shape)
        case cancelled           // every request was dropped by the callback
    }
    public let code: Code
    public let message: String
    public init(_ code: Code, _ message: String) { self.code = code; self.message = message }
    public var description: String { "\(message) (\(code.rawValue))" }
}
