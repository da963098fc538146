import Core

/// A delivery that did not happen: a webhook post or a result upload. `retryable` says whether trying the
/// same again later may work (a timeout, a 5xx, a refused connection) or not (a 4xx, a bad configuration).
public struct DeliveryError: CodedError, Equatable {
    public enum Code: String, Sendable {
        case transport        // no HTTP answer: refused, reset, timed out
        case tls              // the server's certificate was not accepted (untrusted CA, wrong host, expired)
        case http             // an HTTP answer that is not 2xx
        case storage          // the file store could not write
        case credentials      // a secret or key file cannot be read
        case config           // the request cannot be built from the configuration
    }
    public let code: Code
    public let message: String
    public let retryable: Bool

    public init(_ code: Code, _ message: String, retryable: Bool) {
        self.code = code
        self.message = message
        self.retryable = retryable
    }
}
