// PNGError: what the PNG encoder and decoder throw.
import Core

/// A PNG could not be written or read. `code` is short and machine-readable;
/// `message` says what went wrong (libpng's own message where libpng failed).
public struct PNGError: CodedError, Equatable {
    public enum Code: String, Sendable {
        /// The caller's arguments are inconsistent (pixel count, text keyword, ...).
        case invalidArgument = "invalid_argument"
        /// libpng refused; `message` is libpng's message.
        case libpng
        /// The bytes are not a well-formed PNG stream.
        case malformed
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = "png: " + message
    }
}
