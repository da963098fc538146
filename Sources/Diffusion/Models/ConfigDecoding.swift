// Reading diffusers config.json fields with the class defaults of `__init__`.

extension KeyedDecodingContainer {
    /// The value at `key`; `fallback` when the key is absent or null.
    func value<T: Decodable>(_ key: Key, default fallback: T) throws -> T {
        try decodeIfPresent(T.self, forKey: key) ?? fallback
    }

    /// An optional argument: `fallback` when the key is absent, nil when it is null, else its value.
    func nullable<T: Decodable>(_ key: Key, default fallback: T?) throws -> T? {
        contains(key) ? try decodeIfPresent(T.self, forKey: key) : fallback
    }
}
