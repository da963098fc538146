// AWS Signature Version 4 for S3 requests, as the AWS documentation's "Signature Version 4 signing process"
// and "Authenticating Requests: Using the Authorization Header" (Amazon S3 API Reference) describe:
// canonical request -> string to sign -> signing key (HMAC chain over date, region, service) -> signature.
// Tested against the S3 reference's GET and PUT examples (DeliveryTests/SigV4Tests.swift).
import Foundation

public struct SigV4: Sendable {
    public var accessKeyID: String
    public var secretAccessKey: String
    public var region: String
    public var service: String

    public init(accessKeyID: String, secretAccessKey: String, region: String, service: String = "s3") {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.region = region
        self.service = service
    }

    /// `x-amz-date` form: 20130524T000000Z.
    public static func amzDate(_ date: Date) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return f.string(from: date)
    }

    /// S3's URI encoding: every byte but A-Z a-z 0-9 - . _ ~ as %XX (upper-case hex); "/" kept when `path`.
    public static func uriEncode(_ s: String, path: Bool) -> String {
        var out = ""
        for b in s.utf8 {
            let unreserved = (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39)
                || b == 0x2D || b == 0x2E || b == 0x5F || b == 0x7E      // - . _ ~
            if unreserved || (path && b == 0x2F) {
                out.unicodeScalars.append(Unicode.Scalar(b))
            } else {
                out += String(format: "%%%02X", b)
            }
        }
        return out
    }

    /// The canonical request. `path` is already URI-encoded (as it goes on the wire); `headers` lower-case names.
    public static func canonicalRequest(method: String, path: String, query: [(String, String)], headers: [String: String],
                                        payloadHash: String) -> (text: String, signedHeaders: String) {
        let encoded: [(String, String)] = query.map { pair in (uriEncode(pair.0, path: false), uriEncode(pair.1, path: false)) }
        let sortedQuery = encoded.sorted { a, b in a.0 == b.0 ? a.1 < b.1 : a.0 < b.0 }
        let q = sortedQuery.map { pair in pair.0 + "=" + pair.1 }.joined(separator: "&")
        var lowered: [String: String] = [:]
        for (name, value) in headers { lowered[name.lowercased()] = value }
        let names = lowered.keys.sorted()
        var canonicalHeaders = ""
        for name in names {
            let words = (lowered[name] ?? "").split(separator: " ", omittingEmptySubsequences: true)
            canonicalHeaders += name + ":" + words.joined(separator: " ") + "\n"
        }
        let signed = names.joined(separator: ";")
        return ([method, path.isEmpty ? "/" : path, q, canonicalHeaders, signed, payloadHash].joined(separator: "\n"), signed)
    }

    /// The `Authorization` header value for a request whose headers include `host` and `x-amz-date`.
    public func authorization(method: String, path: String, query: [(String, String)] = [], headers: [String: String],
                              payloadHash: String, date: Date) -> String {
        let amzDate = Self.amzDate(date)
        let day = String(amzDate.prefix(8))
        let (canonical, signed) = Self.canonicalRequest(method: method, path: path, query: query, headers: headers, payloadHash: payloadHash)
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let stringToSign = ["AWS4-HMAC-SHA256", amzDate, scope, Digest.hex(Digest.sha256(canonical))].joined(separator: "\n")
        var key = Digest.hmacSHA256(key: Array(("AWS4" + secretAccessKey).utf8), day)
        key = Digest.hmacSHA256(key: key, region)
        key = Digest.hmacSHA256(key: key, service)
        key = Digest.hmacSHA256(key: key, "aws4_request")
        let signature = Digest.hex(Digest.hmacSHA256(key: key, stringToSign))
        return "AWS4-HMAC-SHA256 Credential=\(accessKeyID)/\(scope), SignedHeaders=\(signed), Signature=\(signature)"
    }
}
