import Core

/// Why a tokenizer or text encoder could not be loaded or run. The message is one line naming the file (when
/// there is one), what is wrong and what to do.
public struct TextError: CodedError, Equatable {
    public enum Code: String, Sendable {
        case unreadable                      // the file cannot be read
        case badJSON = "bad_json"            // not JSON, or truncated
        case badTokenizer = "bad_tokenizer"  // tokenizer.json parses but a field is missing or has a bad value
        case unsupported                     // a component type this module does not implement
        case badConfig = "bad_config"        // config.json of a text encoder is missing a key or has a bad value
        case badWeights = "bad_weights"      // a weight is missing or has the wrong shape
        case badInput = "bad_input"          // ids out of range, lengths that disagree, an empty batch
    }

    public let code: Code
    /// The file concerned (last path component), or "" when the error is about arguments.
    public let file: String
    /// The problem, without the file name.
    public let problem: String

    public init(_ code: Code, file: String = "", _ problem: String) {
        self.code = code
        self.file = file
        self.problem = problem
    }

    public var message: String { file.isEmpty ? problem : "\(file): \(problem)" }
}
