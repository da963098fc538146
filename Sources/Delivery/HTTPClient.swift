// A minimal HTTP client over FoundationNetworking's URLSession (libcurl inside the toolchain: TLS, proxies,
// IPv6 for free, no new package). Redirects are never followed: a webhook or an S3 PUT that answers 3xx has
// failed, and following it would send the signed body somewhere nobody configured.
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

public struct HTTPResponse: Sendable {
    public var status: Int
    public var body: [UInt8]
}

public final class HTTPClient: Sendable {
    private let session: URLSession

    /// - timeout: seconds a request may take, from connect to the last byte.
    public init(timeout: Double) {
        let c = URLSessionConfiguration.ephemeral
        c.timeoutIntervalForRequest = timeout
        c.timeoutIntervalForResource = timeout
        c.httpShouldSetCookies = false
        c.httpCookieAcceptPolicy = .never
        c.urlCache = nil
        c.requestCachePolicy = .reloadIgnoringLocalCacheData
        session = URLSession(configuration: c, delegate: NoRedirects(), delegateQueue: nil)
    }

    deinit { session.finishTasksAndInvalidate() }

    /// Sends one request. Throws `transport` when no HTTP answer came; any answer, 2xx or not, is returned.
    public func send(_ method: String, _ url: URL, headers: [(String, String)], body: [UInt8]) async throws(DeliveryError) -> HTTPResponse {
        var request = URLRequest(url: url)
        request.httpMethod = method
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        request.httpBody = Data(body)
        do {
            let (data, response) = try await session.data(for: request)
            guard let http = response as? HTTPURLResponse else {
                throw DeliveryError(.transport, "\(method) \(Self.shown(url)): not an HTTP response", retryable: true)
            }
            return HTTPResponse(status: http.statusCode, body: [UInt8](data))
        } catch let e as DeliveryError {
            throw e
        } catch where Self.isCertificateRefusal(error) {
            // Not retried: a certificate the machine does not trust stays untrusted for the next attempt too.
            throw DeliveryError(.tls, "\(method) \(Self.shown(url)): the TLS handshake failed verifying the server's certificate "
                                + "(\(error.localizedDescription)); the server must present a certificate for "
                                + "\(url.host ?? "its host") from a CA this machine trusts (the system store, /etc/ssl/certs; add a "
                                + "private CA there with update-ca-certificates)", retryable: false)
        } catch {
            let ns = error as NSError
            throw DeliveryError(.transport, "\(method) \(Self.shown(url)): \(error.localizedDescription) (\(ns.domain) \(ns.code))", retryable: true)
        }
    }

    /// Whether URLSession refused the server's certificate. On Linux, swift-corelibs-foundation maps libcurl's
    /// CURLE_PEER_FAILED_VERIFICATION to NSURLErrorUnknown and keeps only libcurl's text, so the text is what tells:
    /// libcurl's OpenSSL backend says "SSL certificate problem: <reason>" (unknown CA, expired, self-signed) or
    /// "SSL: no alternative certificate subject name matches ..." / "SSL: certificate subject name ... does not
    /// match ..." (wrong host). The URLError codes of Apple's Foundation are accepted too.
    static func isCertificateRefusal(_ error: any Error) -> Bool {
        let e = error as NSError
        guard e.domain == NSURLErrorDomain else { return false }
        let codes = [NSURLErrorServerCertificateUntrusted, NSURLErrorServerCertificateHasUnknownRoot, NSURLErrorServerCertificateHasBadDate,
                     NSURLErrorServerCertificateNotYetValid]
        if codes.contains(e.code) { return true }
        let text = error.localizedDescription
        return text.hasPrefix("SSL certificate problem") || text.hasPrefix("SSL: no alternative certificate subject name")
            || (text.hasPrefix("SSL: certificate subject name") && text.contains("does not match"))
    }

    /// The URL without its query (which may carry tokens), for messages.
    public static func shown(_ url: URL) -> String {
        guard var c = URLComponents(url: url, resolvingAgainstBaseURL: false) else { return "(url)" }
        c.query = nil
        c.user = nil
        c.password = nil
        return c.string ?? "(url)"
    }
}

/// Refuses every redirect: the 3xx answer itself comes back.
private final class NoRedirects: NSObject, URLSessionTaskDelegate, Sendable {
    func urlSession(_ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
                    newRequest request: URLRequest, completionHandler: @escaping @Sendable (URLRequest?) -> Void) {
        completionHandler(nil)
    }
}
