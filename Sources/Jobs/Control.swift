// Control messages on `darkroom.control` (fanout: every worker gets each one):
//   `{"v": 1, "cancel": "<job id>"}`  stop the job wherever it is;
//   `{"v": 1, "status": true}`         every worker answers a WorkerStatusReport to the message's reply_to,
//                                      with its correlation_id (what `darkroom status` sends).

import Core

public enum ControlMessage: Equatable, Sendable {
    case cancel(jobID: String)
    /// Asks each worker for a `WorkerStatusReport` (sent to the message's AMQP reply_to).
    case status

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
        var status = false
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
            case "status":
                guard case .bool(true) = m.value else {
                    throw DecodeError(message: "control message field \"status\" must be true, got \(m.value.described)")
                }
                status = true
            default:
                throw DecodeError(message: "control message has unknown field \(quoted(m.key)); v1 knows \"v\", \"cancel\" and \"status\"")
            }
        }
        switch (cancel, status) {
        case (let id?, false): return .cancel(jobID: id)
        case (nil, true): return .status
        case (_?, true): throw DecodeError(message: "control message has both \"cancel\" and \"status\"; send one per message")
        case (nil, false): throw DecodeError(message: "control message has neither \"cancel\" nor \"status\"")
        }
    }

    public func encodedBody() -> [UInt8] {
        switch self {
        case .cancel(let id):
            return JSONWriter.write(.object([JSONMember("v", .int(1)), JSONMember("cancel", .string(id))]))
        case .status:
            return JSONWriter.write(.object([JSONMember("v", .int(1)), JSONMember("status", .bool(true))]))
        }
    }
}
