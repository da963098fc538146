// BrokerCredentials: puts the secret from broker.credentials_file into the broker URIs.
// The file holds `user:password`, or only the password (the URI's user is kept, `guest` if it has none).
// systemd passes it with LoadCredential=broker:/etc/darkroom/broker.secret, i.e. $CREDENTIALS_DIRECTORY/broker.
import Foundation

/// `scheme://[userinfo@]host[:port][/vhost]`, split just enough to swap the userinfo.
struct AMQPURIParts {
    var scheme: String
    var userinfo: Substring?
    var host: Substring
    var rest: Substring  // ":port/vhost..." after the host

    init?(_ uri: String) {
        guard let range = uri.range(of: "://") else { return nil }
        scheme = String(uri[..<range.lowerBound]).lowercased()
        guard scheme == "amqp" || scheme == "amqps" else { return nil }
        let afterScheme = uri[range.upperBound...]
        let authorityEnd = afterScheme.firstIndex { $0 == "/" || $0 == "?" } ?? afterScheme.endIndex
        let authority = afterScheme[..<authorityEnd]
        var hostPort = authority
        if let at = authority.lastIndex(of: "@") {
            userinfo = authority[..<at]
            hostPort = authority[authority.index(after: at)...]
        }
        let hostEnd = hostPort.hasPrefix("[") ? (hostPort.firstIndex(of: "]").map { hostPort.index(after: $0) } ?? hostPort.endIndex)
                                              : (hostPort.firstIndex(of: ":") ?? hostPort.endIndex)
        host = hostPort[..<hostEnd]
        rest = afterScheme[hostEnd...]
    }

    func with<S: StringProtocol>(userinfo info: S) -> String {
        "\(scheme)://\(info)@\(host)\(rest)"
    }

    /// Percent-encodes everything but RFC 3986 unreserved characters (rabbitmq-c decodes them).
    static func encode(_ s: Substring) -> String {
        var out = ""
        for byte in s.utf8 {
            let c = Character(Unicode.Scalar(byte))
            if c.isASCII && (c.isLetter || c.isNumber || "-._~".contains(c)) { out.append(c) }
            else { out += String(format: "%%%02X", byte) }
        }
        return out
    }
}

extension DarkroomConfig.Broker {
    /// The URIs to connect to, with the credentials file's secret put in (read at each call, so a rotated
    /// secret is picked up on reconnect). Without a credentials file, `urls` unchanged.
    public func urlsWithCredentials() throws -> [String] {
        guard let file = credentialsFile else { return urls }
        let source = ConfigSource.file(file)
        guard let data = FileManager.default.contents(atPath: file), let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(.notFound, key: "broker.credentials_file", source: source, "cannot read the credentials file")
        }
        let secret = text.trimmingCharacters(in: .newlines)
        guard !secret.isEmpty else {
            throw ConfigError(.invalid, key: "broker.credentials_file", source: source, "the credentials file is empty")
        }
        return try urls.map { url in
            guard let parts = AMQPURIParts(url) else {
                throw ConfigError(.invalid, key: "broker.urls", source: source, "\"\(DarkroomConfig.redacted(url))\" is not an AMQP URI")
            }
            let user: Substring, password: Substring
            if let colon = secret.firstIndex(of: ":") {
                user = secret[..<colon]
                password = secret[secret.index(after: colon)...]
            } else {
                let info = parts.userinfo ?? ""
                let name = info.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
                // The URI's user is already percent-encoded; keep it as written.
                return parts.with(userinfo: (name.isEmpty ? "guest" : name) + ":" + AMQPURIParts.encode(Substring(secret)))
            }
            return parts.with(userinfo: AMQPURIParts.encode(user) + ":" + AMQPURIParts.encode(password))
        }
    }
}
