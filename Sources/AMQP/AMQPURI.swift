// Broker URIs: amqp://user:pass@host:port/vhost?heartbeat=..&frame_max=..&connection_timeout=..
// Follows https://www.rabbitmq.com/docs/uri-spec and uri-query-parameters, with two deliberate choices:
// an empty path or a lone "/" means the default vhost "/", and unknown query keys are errors (typos).

/// One parsed broker URI.
public struct AMQPURI: Sendable, Equatable, CustomStringConvertible {
    public var tls: Bool
    public var host: String
    public var port: Int
    public var user: String
    public var password: String
    public var vhost: String
    /// Heartbeat interval proposed to the broker, seconds (0 disables; the lower non-zero value wins).
    public var heartbeat: Int
    /// Largest frame proposed to the broker, bytes.
    public var frameMax: Int
    /// Most channels proposed to the broker.
    public var channelMax: Int
    /// TCP connect + handshake timeout, milliseconds.
    public var connectionTimeoutMs: Int
    /// amqps only: CA bundle (PEM) to verify the broker, client certificate and key, and whether to verify.
    public var caCertFile: String?
    public var certFile: String?
    public var keyFile: String?
    public var verifyPeer: Bool
    /// How to log in: SASL PLAIN with user and password, or EXTERNAL (amqps with a client certificate; the
    /// broker takes the user from the certificate). Query parameter `auth_mechanism=plain|external`.
    public var authMechanism: AuthMechanism

    public enum AuthMechanism: String, Sendable, Equatable {
        case plain, external
    }

    public static let defaultPort = 5672
    public static let defaultTLSPort = 5671

    public init(tls: Bool = false, host: String = "localhost", port: Int? = nil, user: String = "guest",
                password: String = "guest", vhost: String = "/", heartbeat: Int = 60, frameMax: Int = 131_072,
                channelMax: Int = 2047, connectionTimeoutMs: Int = 10_000, caCertFile: String? = nil,
                certFile: String? = nil, keyFile: String? = nil, verifyPeer: Bool = true,
                authMechanism: AuthMechanism = .plain) {
        self.tls = tls
        self.host = host
        self.port = port ?? (tls ? Self.defaultTLSPort : Self.defaultPort)
        self.user = user
        self.password = password
        self.vhost = vhost
        self.heartbeat = heartbeat
        self.frameMax = frameMax
        self.channelMax = channelMax
        self.connectionTimeoutMs = connectionTimeoutMs
        self.caCertFile = caCertFile
        self.certFile = certFile
        self.keyFile = keyFile
        self.verifyPeer = verifyPeer
        self.authMechanism = authMechanism
    }

    /// Parses one URI; throws `AMQPError.invalidURI` naming what is wrong (the password is masked).
    public init(_ text: String) throws {
        let shown = AMQPURI.masked(text)
        func bad(_ reason: String) -> AMQPError { .invalidURI(uri: shown, reason: reason) }

        let trimmed = text.trimmingSpaces()
        let lower = trimmed.lowercased()
        let rest: Substring
        if lower.hasPrefix("amqps://") {
            self.init(tls: true)
            rest = trimmed.dropFirst(8)
        } else if lower.hasPrefix("amqp://") {
            self.init(tls: false)
            rest = trimmed.dropFirst(7)
        } else {
            throw bad("the scheme must be amqp:// or amqps://")
        }
        if rest.contains("#") { throw bad("a fragment ('#') is not allowed") }

        var beforeQuery = rest
        var query: Substring = ""
        if let q = rest.firstIndex(of: "?") {
            beforeQuery = rest[..<q]
            query = rest[rest.index(after: q)...]
        }
        var authority = beforeQuery
        var path: Substring = ""
        if let slash = beforeQuery.firstIndex(of: "/") {
            authority = beforeQuery[..<slash]
            path = beforeQuery[beforeQuery.index(after: slash)...]
        }

        var hostPort = authority
        if let at = authority.lastIndex(of: "@") {
            let userInfo = authority[..<at]
            hostPort = authority[authority.index(after: at)...]
            if let colon = userInfo.firstIndex(of: ":") {
                user = try AMQPURI.percentDecode(userInfo[..<colon], what: "user name", bad)
                password = try AMQPURI.percentDecode(userInfo[userInfo.index(after: colon)...], what: "password", bad)
            } else {
                user = try AMQPURI.percentDecode(userInfo, what: "user name", bad)
                password = ""
            }
            if user.isEmpty { throw bad("the user name before '@' is empty") }
        }

        var portText: Substring?
        if hostPort.hasPrefix("[") {
            guard let close = hostPort.firstIndex(of: "]") else { throw bad("an IPv6 host must end with ']'") }
            host = String(hostPort[hostPort.index(after: hostPort.startIndex)..<close])
            let after = hostPort[hostPort.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw bad("unexpected text '\(after)' after the IPv6 host") }
                portText = after.dropFirst()
            }
        } else {
            let parts = hostPort.split(separator: ":", omittingEmptySubsequences: false)
            if parts.count > 2 { throw bad("the host may contain at most one ':' (write IPv6 hosts as [::1])") }
            host = try AMQPURI.percentDecode(parts[0], what: "host", bad)
            if parts.count == 2 { portText = parts[1] }
        }
        if host.isEmpty { host = "localhost" }
        if let portText {
            guard let p = Int(portText), (1...65535).contains(p) else {
                throw bad("the port '\(portText)' is not a number from 1 to 65535")
            }
            port = p
        }

        if path.isEmpty {
            vhost = "/"
        } else {
            if path.contains("/") { throw bad("the vhost must be one path segment; write a '/' inside it as %2F") }
            vhost = try AMQPURI.percentDecode(path, what: "vhost", bad)
        }

        for item in query.split(separator: "&") where !item.isEmpty {
            let kv = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = String(kv[0])
            let value = kv.count == 2 ? try AMQPURI.percentDecode(kv[1], what: key, bad) : ""
            func int(_ range: ClosedRange<Int>) throws -> Int {
                guard let v = Int(value), range.contains(v) else {
                    throw bad("\(key)=\(value) is not a whole number from \(range.lowerBound) to \(range.upperBound)")
                }
                return v
            }
            switch key {
            case "heartbeat": heartbeat = try int(0...65535)
            case "frame_max":
                frameMax = try int(0...Int(Int32.max))
                if frameMax != 0 && frameMax < 4096 { throw bad("frame_max=\(value) is below the protocol minimum 4096") }
            case "channel_max": channelMax = try int(0...65535)
            case "connection_timeout": connectionTimeoutMs = try int(1...3_600_000)
            case "cacertfile": caCertFile = value
            case "certfile": certFile = value
            case "keyfile": keyFile = value
            case "verify":
                switch value {
                case "verify_peer": verifyPeer = true
                case "verify_none": verifyPeer = false
                default: throw bad("verify=\(value) must be verify_peer or verify_none")
                }
            case "auth_mechanism":
                guard let m = AuthMechanism(rawValue: value.lowercased()) else {
                    throw bad("auth_mechanism=\(value) must be plain or external")
                }
                authMechanism = m
            default:
                throw bad("unknown query parameter '\(key)' (known: heartbeat, frame_max, channel_max, "
                    + "connection_timeout, cacertfile, certfile, keyfile, verify, auth_mechanism)")
            }
        }
        if !tls && (caCertFile != nil || certFile != nil || keyFile != nil) {
            throw bad("cacertfile/certfile/keyfile need an amqps:// URI")
        }
        if (certFile == nil) != (keyFile == nil) { throw bad("certfile and keyfile must be given together") }
        if authMechanism == .external && certFile == nil {
            throw bad("auth_mechanism=external logs in with a client certificate: give an amqps:// URI with certfile and keyfile")
        }
    }

    /// Parses a list of URIs separated by commas, semicolons or white space (e.g. DARKROOM_BROKER_URLS),
    /// to be tried in order.
    public static func parseList(_ text: String) throws -> [AMQPURI] {
        let items = text.split(whereSeparator: { $0 == "," || $0 == ";" || $0 == " " || $0 == "\n" || $0 == "\t" })
        if items.isEmpty { throw AMQPError.invalidURI(uri: text, reason: "no broker URI given") }
        return try items.map { try AMQPURI(String($0)) }
    }

    /// "host:port" as shown in messages.
    public var server: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// The URI with the password masked; safe to log.
    public var description: String {
        let vh = vhost == "/" ? "" : AMQPURI.percentEncode(vhost)
        return "\(tls ? "amqps" : "amqp")://\(AMQPURI.percentEncode(user)):***@\(server)/\(vh)"
    }

    // MARK: - helpers

    /// Masks the password of a URI text that failed to parse, so that errors can be logged.
    static func masked(_ text: String) -> String {
        guard let scheme = text.range(of: "://") else { return text }
        let afterScheme = text[scheme.upperBound...]
        let authorityEnd = afterScheme.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? afterScheme.endIndex
        let authority = afterScheme[..<authorityEnd]
        guard let at = authority.lastIndex(of: "@"), let colon = authority[..<at].firstIndex(of: ":") else { return text }
        return String(text[..<authority.index(after: colon)]) + "***" + String(text[at...])
    }

    static func percentDecode(_ s: Substring, what: String, _ bad: (String) -> AMQPError) throws -> String {
        guard s.contains("%") else { return String(s) }
        var out: [UInt8] = []
        let bytes = Array(s.utf8)
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "%") {
                guard i + 2 < bytes.count, let hi = hex(bytes[i + 1]), let lo = hex(bytes[i + 2]) else {
                    throw bad("the \(what) has a '%' not followed by two hex digits")
                }
                out.append(hi << 4 | lo)
                i += 3
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        guard let decoded = String(validating: out, as: UTF8.self) else {
            throw bad("the \(what) is not valid UTF-8 after percent-decoding")
        }
        return decoded
    }

    private static func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    static func percentEncode(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            let c = Character(Unicode.Scalar(b))
            if b < 0x80 && (c.isLetter || c.isNumber || "-._~".contains(c)) {
                out.append(c)
            } else {
                out += "%" + String(b, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return out
    }
}

extension String {
    fileprivate func trimmingSpaces() -> String {
        String(drop(while: { $0.isWhitespace }).reversed().drop(while: { $0.isWhitespace }).reversed())
    }

    fileprivate func leftPadded(to n: Int) -> String { count >= n ? self : String(repeating: "0", count: n - count) + self }
}
