// SHA-256 and HMAC-SHA256 through OpenSSL's libcrypto (CCrypto): the webhook signatures, the stored results'
// checksums and AWS Signature V4 all need them. libcrypto is already on every machine that runs the worker
// (rabbitmq-c links it for amqps), and its code is the audited one; a hand-written SHA-256 in Swift would be
// one more thing to trust, and slow in a debug build.
import CCrypto

public enum Digest {
    /// SHA-256 of `data` (FIPS 180-4).
    public static func sha256(_ data: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        data.withUnsafeBufferPointer { d in
            out.withUnsafeMutableBufferPointer { o in
                _ = SHA256(d.baseAddress, d.count, o.baseAddress)
            }
        }
        return out
    }

    public static func sha256(_ text: String) -> [UInt8] { sha256(Array(text.utf8)) }

    /// HMAC-SHA256 of `data` under `key` (RFC 2104, RFC 4231).
    public static func hmacSHA256(key: [UInt8], _ data: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        // An empty array may have no storage: give OpenSSL a valid pointer either way.
        let k = key.isEmpty ? [0] : key, d = data.isEmpty ? [0] : data
        let ok = k.withUnsafeBufferPointer { kp in
            d.withUnsafeBufferPointer { dp in
                out.withUnsafeMutableBufferPointer { o in
                    darkroom_hmac_sha256(kp.baseAddress, Int32(key.count), dp.baseAddress, data.count, o.baseAddress)
                }
            }
        }
        precondition(ok == 1, "HMAC-SHA256 failed inside libcrypto")   // only on allocation failure
        return out
    }

    public static func hmacSHA256(key: [UInt8], _ text: String) -> [UInt8] { hmacSHA256(key: key, Array(text.utf8)) }

    /// Lower-case hex.
    public static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
