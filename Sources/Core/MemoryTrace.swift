// Where a process's memory goes, phase by phase: with DARKROOM_MEMORY_TRACE=1 in the environment, each
// `MemoryTrace.mark(label)` writes one line to stderr with the resident set now (anonymous and file-backed pages,
// /proc/self/status RssAnon / RssFile) and its peak since the previous mark (VmHWM, which the mark then resets
// through /proc/self/clear_refs, Linux ≥ 4.0). Without the variable a mark costs one load of a Bool.
// A traced run's wait4 peak (ru_maxrss) is only the last interval's: the trace lines carry the run's peak instead.
import Glibc

public enum MemoryTrace {
    /// DARKROOM_MEMORY_TRACE=1 (read once).
    public static let enabled: Bool = {
        guard let v = getenv("DARKROOM_MEMORY_TRACE") else { return false }
        return String(cString: v) == "1"
    }()

    private static let peak = Locked(0)

    /// One line `memory <label>: rss R MiB (anon A, file F), peak since the last mark P MiB, run peak Q MiB`.
    public static func mark(_ label: @autoclosure () -> String) {
        guard enabled, let status = readStatus() else { return }
        let runPeak = peak.withLock { p -> Int in
            p = max(p, status.hwm)
            return p
        }
        let line = "memory \(label()): rss \(mib(status.rss)) MiB (anon \(mib(status.anon)), file \(mib(status.file))), "
            + "peak since the last mark \(mib(status.hwm)) MiB, run peak \(mib(runPeak)) MiB\n"
        let bytes = Array(line.utf8)
        _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        resetPeak()
    }

    private struct Status { var rss = 0, hwm = 0, anon = 0, file = 0 }

    /// VmRSS, VmHWM, RssAnon, RssFile in KiB.
    private static func readStatus() -> Status? {
        let fd = open("/proc/self/status", O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            bytes += chunk[0..<n]
        }
        var s = Status()
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 2, let kib = Int(fields[1]) else { continue }
            switch fields[0] {
            case "VmRSS:": s.rss = kib
            case "VmHWM:": s.hwm = kib
            case "RssAnon:": s.anon = kib
            case "RssFile:": s.file = kib
            default: break
            }
        }
        return s
    }

    /// VmHWM := VmRSS (writing "5" to /proc/self/clear_refs).
    private static func resetPeak() {
        let fd = open("/proc/self/clear_refs", O_WRONLY)
        guard fd >= 0 else { return }
        _ = write(fd, "5", 1)
        close(fd)
    }

    private static func mib(_ kib: Int) -> Int { (kib + 512) / 1024 }
}
