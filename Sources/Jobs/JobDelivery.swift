// Where a job's events and results go besides its reply queue: `webhook` (an HTTPS endpoint that
// receives the same events, signed) and `output` (where the PNGs go: inline in the `image` event, a
// shared folder, or an S3 bucket). The request side is parsed here; the checks that need the worker's
// configuration (which secrets and stores exist) run in JobValidation.swift against `DeliveryCatalog`.

import Foundation

/// Where a job's PNGs go.
public enum ResultStore: String, Equatable, Sendable, CaseIterable {
    /// In the `image` event's body (the default).
    case inline
    /// Written into the worker's `output.dir` (a shared filesystem); the event carries the path and SHA-256.
    case file
    /// Uploaded to the configured S3-compatible bucket; the event carries the object's URL, key and SHA-256.
    case s3
}

/// A job's webhook, as validated.
public struct Webhook: Equatable, Sendable {
    public var url: String
    /// The event kinds posted, in contract order.
    public var events: [EventKind]
    /// The name of the secret (in the worker's `webhook.secrets_file`) that signs the posts.
    public var secretRef: String

    public init(url: String, events: [EventKind], secretRef: String) {
        self.url = url
        self.events = events
        self.secretRef = secretRef
    }

    /// Posted when the job does not say: the results and the end, not the progress.
    public static let defaultEvents: [EventKind] = [.image, .completed, .failed]

    public func wants(_ kind: EventKind) -> Bool { events.contains(kind) }
}

/// What the worker offers for delivery, as far as validation needs it.
public struct DeliveryCatalog: Equatable, Sendable {
    /// Names of the webhook secrets the worker holds (never the secrets).
    public var webhookSecrets: Set<String>
    /// Whether `output.dir` is configured (the `file` store).
    public var fileStore: Bool
    /// Whether an S3 bucket is configured (the `s3` store).
    public var s3Store: Bool
    /// Store of jobs that name none, per size class (absent: inline).
    public var classStores: [String: ResultStore]

    public init(webhookSecrets: Set<String> = [], fileStore: Bool = false, s3Store: Bool = false,
                classStores: [String: ResultStore] = [:]) {
        self.webhookSecrets = webhookSecrets
        self.fileStore = fileStore
        self.s3Store = s3Store
        self.classStores = classStores
    }
}

/// The `webhook` field as sent.
public struct WebhookRequest: Equatable, Sendable {
    public var url: String?
    public var events: [String]?
    public var secretRef: String?

    public init(url: String? = nil, events: [String]? = nil, secretRef: String? = nil) {
        self.url = url
        self.events = events
        self.secretRef = secretRef
    }

    static let fieldNames = ["url", "events", "secret_ref"]

    init(_ value: JSONValue) throws(JobFailure) {
        let members = try nestedObject("webhook", value, fields: Self.fieldNames)
        for m in members where m.value != .null {
            switch m.key {
            case "url", "secret_ref":
                guard case .string(let s) = m.value else {
                    throw JobFailure(.invalidRequest, "field \"webhook.\(m.key)\" must be a string, got \(m.value.described)")
                }
                if m.key == "url" { url = s } else { secretRef = s }
            default:
                guard case .array(let items) = m.value else {
                    throw JobFailure(.invalidRequest,
                        "field \"webhook.events\" must be a list of event names, got \(m.value.described)")
                }
                var names: [String] = []
                for item in items {
                    guard case .string(let s) = item else {
                        throw JobFailure(.invalidRequest,
                            "field \"webhook.events\" must hold event names (strings), found \(item.described)")
                    }
                    names.append(s)
                }
                events = names
            }
        }
    }

    var json: JSONValue {
        var m: [JSONMember] = []
        if let url { m.append(JSONMember("url", .string(url))) }
        if let events { m.append(JSONMember("events", .array(events.map(JSONValue.string)))) }
        if let secretRef { m.append(JSONMember("secret_ref", .string(secretRef))) }
        return .object(m)
    }

    /// Checks the URL, the event names and the secret against what the worker holds.
    func resolve(_ delivery: DeliveryCatalog) throws(JobFailure) -> Webhook {
        guard let url else {
            throw JobFailure(.invalidRequest, "field \"webhook.url\" is required: the https:// address that receives the events")
        }
        try WebhookURL.check(url)
        var kinds: [EventKind] = Webhook.defaultEvents
        if let events {
            guard !events.isEmpty else {
                throw JobFailure(.invalidRequest, "field \"webhook.events\" is empty; name at least one of: "
                                 + EventKind.allCases.map(\.rawValue).joined(separator: ", ") + " (or leave it out for "
                                 + Webhook.defaultEvents.map(\.rawValue).joined(separator: ", ") + ")")
            }
            var wanted = Set<EventKind>()
            for name in events {
                guard let kind = EventKind(rawValue: name) else {
                    throw JobFailure(.invalidRequest, "field \"webhook.events\" names unknown event \(quoted(name)); the events are: "
                                     + EventKind.allCases.map(\.rawValue).joined(separator: ", "))
                }
                wanted.insert(kind)
            }
            kinds = EventKind.allCases.filter(wanted.contains)
        }
        guard let secretRef else {
            throw JobFailure(.invalidRequest,
                "field \"webhook.secret_ref\" is required: the name of a secret in the worker's webhook.secrets_file (secrets never travel in jobs)")
        }
        guard SeedName.isValid(secretRef), delivery.webhookSecrets.contains(secretRef) else {
            throw JobFailure(.invalidRequest,
                "field \"webhook.secret_ref\" names no secret this worker holds: \(quoted(secretRef)); ask the operator for a name from webhook.secrets_file")
        }
        return Webhook(url: url, events: kinds, secretRef: secretRef)
    }
}

/// The `output` field as sent.
public struct OutputRequest: Equatable, Sendable {
    public var store: String?

    public init(store: String? = nil) { self.store = store }

    init(_ value: JSONValue) throws(JobFailure) {
        let members = try nestedObject("output", value, fields: ["store"])
        for m in members where m.value != .null {
            guard case .string(let s) = m.value else {
                throw JobFailure(.invalidRequest, "field \"output.store\" must be a string, got \(m.value.described)")
            }
            store = s
        }
    }

    var json: JSONValue { .object(store.map { [JSONMember("store", .string($0))] } ?? []) }
}

extension OutputRequest? {
    /// The store of a job of `sizeClass`: the job's, else the class default, else inline; refused when the
    /// worker has no such store configured.
    func resolve(sizeClass: String, _ delivery: DeliveryCatalog) throws(JobFailure) -> ResultStore {
        let all = ResultStore.allCases.map(\.rawValue).joined(separator: ", ")
        var store = delivery.classStores[sizeClass] ?? .inline
        if let name = self?.store {
            guard let s = ResultStore(rawValue: name) else {
                throw JobFailure(.invalidRequest, "field \"output.store\" is \(quoted(name)), not a store; choose one of: \(all)")
            }
            store = s
        }
        switch store {
        case .inline: break
        case .file where !delivery.fileStore:
            throw JobFailure(.unsupported, "output store \"file\" is not configured on this worker (no output.dir); use \"inline\"")
        case .s3 where !delivery.s3Store:
            throw JobFailure(.unsupported, "output store \"s3\" is not configured on this worker (no output.s3.bucket); use \"inline\"")
        default: break
        }
        return store
    }
}

/// Webhook addresses: https, or http to a loopback host (tests, a local relay); a host; no credentials in
/// the URL (they would travel in logs); at most 2048 characters.
public enum WebhookURL {
    public static func check(_ url: String) throws(JobFailure) {
        guard url.utf8.count <= 2048 else {
            throw JobFailure(.invalidRequest, "field \"webhook.url\" has \(url.utf8.count) bytes; at most 2048 are allowed")
        }
        guard let c = URLComponents(string: url), let scheme = c.scheme?.lowercased(), let host = c.host, !host.isEmpty else {
            throw JobFailure(.invalidRequest, "field \"webhook.url\" must be an absolute https:// URL with a host, got \(quoted(url))")
        }
        guard c.user == nil, c.password == nil else {
            throw JobFailure(.invalidRequest, "field \"webhook.url\" must not carry credentials (user:password@); the posts are signed instead")
        }
        switch scheme {
        case "https": return
        case "http":
            guard isLoopback(host) else {
                throw JobFailure(.invalidRequest,
                    "field \"webhook.url\" must use https; plain http is allowed only to a loopback host (127.0.0.1, ::1, localhost), got host \(quoted(host))")
            }
        default:
            throw JobFailure(.invalidRequest, "field \"webhook.url\" must be an https:// URL, got scheme \(quoted(scheme))")
        }
    }

    /// 127.0.0.0/8, ::1, localhost.
    public static func isLoopback(_ host: String) -> Bool {
        let h = host.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        if h == "localhost" || h == "::1" { return true }
        let parts = h.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "127" else { return false }
        return parts.allSatisfy { p in UInt8(p) != nil && !p.isEmpty }
    }
}

/// A nested object field: an object whose members are all known and unique.
private func nestedObject(_ name: String, _ value: JSONValue, fields: [String]) throws(JobFailure) -> [JSONMember] {
    guard case .object(let members) = value else {
        throw JobFailure(.invalidRequest, "field \"\(name)\" must be an object, got \(value.described)")
    }
    var seen = Set<String>()
    for m in members {
        guard fields.contains(m.key) else {
            throw JobFailure(.invalidRequest, "unknown field \"\(name).\(m.key)\"; the fields of \"\(name)\" are: "
                             + fields.joined(separator: ", "))
        }
        guard seen.insert(m.key).inserted else {
            throw JobFailure(.invalidRequest, "field \"\(name).\(m.key)\" appears more than once")
        }
    }
    return members
}
