// Failure codes and the failure value carried by `failed` events.
import Core

public enum FailureCode: String, Sendable, CaseIterable, Equatable {
    /// The job breaks a rule of the contract (types, ranges, unknown fields, ...).
    case invalidRequest = "invalid_request"
    /// Well-formed, but this worker cannot do it (model, sampler, size, contract version).
    case unsupported
    /// Bigger than the largest size class, or than the worker's memory budget.
    case tooLarge = "too_large"
    /// Not started before its `deadline` (or AMQP expiration).
    case expired
    /// Cancelled through `darkroom.control`.
    case cancelled
    /// The images were made but could not be put in the job's result store (`output.store` file or s3) after the
    /// retries; sending the job again may work.
    case storageFailed = "storage_failed"
    /// The worker failed; retrying may work.
    case `internal`
}

/// Why a job failed: a code for programs, a message for people, and whether sending the same
/// job again may succeed.
public struct JobFailure: CodedError, Equatable {
    public var code: FailureCode
    public var message: String
    public var retryable: Bool

    public init(_ code: FailureCode, _ message: String, retryable: Bool? = nil) {
        self.code = code
        self.message = message
        self.retryable = retryable ?? (code == .internal || code == .storageFailed)
    }
}

/// A job message that was refused while decoding.
public struct JobRejection: CodedError, Equatable {
    /// The id to put on the `failed` event: the body's `id` when it was valid, else the
    /// message_id when valid, else a generated one.
    public var jobID: String
    public var failure: JobFailure
    /// The body is not JSON or not a JSON object: answer `failed` where there is a reply_to,
    /// then dead-letter it to `darkroom.dead` with `failure.message` in header `darkroom-error`.
    public var isPoison: Bool

    public init(jobID: String, failure: JobFailure, isPoison: Bool = false) {
        self.jobID = jobID
        self.failure = failure
        self.isPoison = isPoison
    }

    public var code: FailureCode { failure.code }
    public var message: String { "job \(jobID): \(failure.message)\(isPoison ? " (poison message)" : "")" }
}
