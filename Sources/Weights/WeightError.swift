import Core

/// Why a weight file or index could not be used. The message names the file and the problem.
public struct WeightError: CodedError, Equatable {
    public enum Code: String, Sendable {
        case unreadable                       // cannot open / stat / map the file
        case truncated                        // shorter than its header says
        case corruptHeader = "corrupt_header" // header length, UTF-8 or JSON is invalid
        case badEntry = "bad_entry"           // a tensor entry lacks dtype/shape/data_offsets or has bad values
        case unknownDType = "unknown_dtype"   // a dtype the reader does not know
        case badOffsets = "bad_offsets"       // data_offsets do not tile the buffer / disagree with shape·dtype
        case trailingBytes = "trailing_bytes" // file is longer than the header accounts for
        case notFloat = "not_float"           // asked as float32, but the tensor holds integers/bools
        case missingTensor = "missing_tensor" // no tensor of that name
        case badIndex = "bad_index"           // sharded index JSON is malformed or points at missing shards/tensors
        case writeFailed = "write_failed"     // writer could not produce the file
    }

    public let code: Code
    /// The file concerned (last path component is enough to act on).
    public let file: String
    /// The problem, without the file name.
    public let problem: String

    public init(_ code: Code, file: String, _ problem: String) {
        self.code = code
        self.file = file
        self.problem = problem
    }

    public var message: String { "\(file): \(problem)" }
}
