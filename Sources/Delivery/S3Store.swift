// The `s3` result store: one PUT Object per PNG to an S3-compatible bucket (AWS, MinIO, Ceph, R2, moto),
// signed with Signature V4; the payload's SHA-256 goes in x-amz-content-sha256, so the server checks the
// bytes it stored against the hash the `image` event announces.
import Config
import Foundation

public final class S3Store: Sendable {
    public let config: DarkroomConfig.S3
    private let http: HTTPClient

    public init(config: DarkroomConfig.S3, timeout: Double = 60) {
        self.config = config
        http = HTTPClient(timeout: timeout)
    }

    /// `<prefix><job>/<index>.png`.
    public func key(jobID: String, index: Int) -> String {
        "\(config.prefix)\(jobID)/\(index).png"
    }

    /// The object's URL and the host and wire path of its PUT.
    func location(key: String) throws(DeliveryError) -> (url: URL, host: String, path: String) {
        guard let base = URLComponents(string: config.endpoint), let scheme = base.scheme, let endpointHost = base.host else {
            throw DeliveryError(.config, "output.s3.endpoint \"\(config.endpoint)\" is not a URL", retryable: false)
        }
        let encodedKey = SigV4.uriEncode(key, path: true)
        let host: String, path: String
        switch config.addressing {
        case .path: (host, path) = (endpointHost, "/\(config.bucket)/\(encodedKey)")
        case .virtual: (host, path) = ("\(config.bucket).\(endpointHost)", "/\(encodedKey)")
        }
        let defaultPort = scheme == "https" ? 443 : 80
        let hostHeader = base.port.map { $0 == defaultPort ? host : "\(host):\($0)" } ?? host
        guard let url = URL(string: "\(scheme)://\(hostHeader)\(path)") else {
            throw DeliveryError(.config, "cannot form the object URL for key \(key)", retryable: false)
        }
        return (url, hostHeader, path)
    }

    /// Uploads `png` under `key`; returns the object's URL.
    public func put(key: String, png: [UInt8], sha256: String, now: Date = Date()) async throws(DeliveryError) -> String {
        let (url, host, path) = try location(key: key)
        let keys: (accessKeyID: String, secretAccessKey: String)
        do {
            keys = try config.credentials()
        } catch {
            throw DeliveryError(.credentials, "\(error)", retryable: false)
        }
        let signer = SigV4(accessKeyID: keys.accessKeyID, secretAccessKey: keys.secretAccessKey, region: config.region)
        let amzDate = SigV4.amzDate(now)
        let signed = ["host": host, "x-amz-content-sha256": sha256, "x-amz-date": amzDate]
        let authorization = signer.authorization(method: "PUT", path: path, headers: signed, payloadHash: sha256, date: now)
        let response = try await http.send("PUT", url, headers: [
            ("Authorization", authorization), ("x-amz-content-sha256", sha256), ("x-amz-date", amzDate),
            ("Content-Type", "image/png"),
        ], body: png)
        guard (200..<300).contains(response.status) else {
            let detail = String(decoding: response.body.prefix(300), as: UTF8.self)
                .replacingOccurrences(of: "\n", with: " ")
            throw DeliveryError(.http, "PUT \(HTTPClient.shown(url)) answered HTTP \(response.status): \(detail)",
                                retryable: response.status >= 500 || response.status == 408 || response.status == 429)
        }
        return url.absoluteString
    }
}
