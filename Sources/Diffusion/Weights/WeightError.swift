/// Why a weight file or index could not be used. `description` is one line naming the file and the problem.
public struct WeightError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case unreadable          // cannot open / stat / map the file
        case truncated           // shorter than its header says
        case corruptHeader       // header length, UTF-8 or JSON is invalid
        case badEntry            // a tensor entry lacks dtype/shape/data_offsets or has bad values
        case unknownDType        // a dtype the reader does not know
        case badOffsets          // data_offsets do not tile the buffer / disagree with shape·dtype
        case trailingBytes       // file is longer than the header accounts for
        case notFloat            // asked as float32, but the tensor holds integers/bools
        case missingTensor       // no tensor of that name
        case badIndex            // sharded index JSON is malformed or points at missing shards/tensors
        case writeFailed         // writer could not produce the file
    }

    public let code: Code
    /// The file concerned (last path component is enough to act on).
    public let file: String
    public let message: String

    public init(_ code: Code, file: String, _ message: String) {
        self.code = code
        self.file = file
        self.message = message
    }

    public var description: String { "\(file): \(message) (\(code.rawValue))" }
}
