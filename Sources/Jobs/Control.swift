// Control messages on `darkroom.control`: `{"v": 1, "cancel": "<job id>"}`.

import Core

public enum ControlMessage: Equatable, Sendable {
    case cancel(jobID: String)

    /// A control message that does not follow the contract.
    public struct DecodeError: CodedError, Equatable {
        public enum Code: String, Sendable { case badControl = "bad_control" }
        public var code: Code { .badControl }
        public var message: String
    }

    /// Decodes a control body; unknown fields, another `v` or a bad job id are errors.
    public static func decode(_ body: [UInt8]) throws(DecodeError) -> ControlMessage {
        let root: JSONValue
        do {
            root = try JSONParser.parse(body)
        } catch {
            throw DecodeError(message: "control message is not JSON: \(error.message) at byte \(error.offset)")
        }
        guard case .object(let members) = root else {
            throw DecodeError(message: "control message must be a JSON object, got \(root.typeName)")
        }
        var cancel: String?
        for m in members {
            switch m.key {
            case "v":
                guard m.value.isIntegerLiteral, m.value.int64 == 1 else {
                    throw DecodeError(message: "control message field \"v\" must be 1, got \(m.value.described)")
                }
            case "cancel":
                guard case .string(let id) = m.value, JobID.isValid(id) else {
                    throw DecodeError(message: "control message field \"cancel\" must be a job id (\(JobID.rule)), got \(m.value.described)")
                }
                cancel = id
            default:
                throw DecodeError(message: "control message has unknown field \(quoted(m.key)); v1 knows \"v\" and \"cancel\"")
            }
        }
        guard let cancel else { throw DecodeError(message: "control message has no \"cancel\" field") }
        return .cancel(jobID: cancel)
    }

    public func encodedBody() -> [UInt8] {
        switch self {
        case .cancel(let id):
            return JSONWriter.write(.object([JSONMember("v", .int(1)), JSONMember("cancel", .string(id))]))
        }
    }
}
