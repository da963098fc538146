// A connectionless AF_UNIX datagram send, as sd_notify and journald's native protocol use.
// A path starting with "@" names a socket in the abstract namespace (Linux).
import Glibc

/// Why a datagram could not be sent: the errno of the failing call.
public struct DatagramError: Error, Equatable, CustomStringConvertible, Sendable {
    /// Short machine code, e.g. "socket_path_too_long", "send_failed".
    public let code: String
    public let errno: Int32
    public let path: String

    public var description: String {
        "\(code): cannot send to \(path): \(String(cString: strerror(errno))) (errno \(errno))"
    }
}

enum UnixDatagram {
    /// Sends `payload` as one datagram to the socket at `path`. Opens and closes its own socket,
    /// so it is safe from any thread.
    static func send(_ payload: [UInt8], to path: String) -> Result<Void, DatagramError> {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var pathBytes = Array(path.utf8)
        let abstract = pathBytes.first == UInt8(ascii: "@")
        if abstract { pathBytes[0] = 0 }
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard !pathBytes.isEmpty, pathBytes.count < capacity else {
            return .failure(DatagramError(code: "socket_path_too_long", errno: ENAMETOOLONG, path: path))
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in pathBytes.enumerated() { raw[i] = b }
        }
        let pathOffset = MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path) ?? 2
        // Abstract names are not NUL-terminated: the length says where they end.
        let length = socklen_t(pathOffset + pathBytes.count + (abstract ? 0 : 1))

        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else {
            return .failure(DatagramError(code: "socket_failed", errno: errno, path: path))
        }
        defer { close(fd) }
        let sent = payload.withUnsafeBytes { body in
            withUnsafePointer(to: &address) { ptr in
                ptr.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                    sendto(fd, body.baseAddress, body.count, Int32(MSG_NOSIGNAL), sa, length)
                }
            }
        }
        if sent < 0 {
            return .failure(DatagramError(code: "send_failed", errno: errno, path: path))
        }
        return .success(())
    }
}
