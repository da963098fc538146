// sd_notify messages as a NOTIFY_SOCKET listener receives them: a real AF_UNIX datagram socket bound in
// a temporary folder, with NOTIFY_SOCKET set in this process (these tests run one at a time because
// they change the process environment) or passed explicitly.
import Glibc
import Systemd
import Testing

/// A bound AF_UNIX datagram socket in a fresh temporary folder; receives with a timeout.
/// Shared with JournalTests (journald's native protocol is datagrams on such a socket too).
final class SystemdTestListener {
    let directory: String
    let path: String
    private(set) var fd: Int32 = -1

    init(name: String = "sock") throws {
        var template = Array("/tmp/drsd-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw SystemdTestListenerError("mkdtemp failed: errno \(errno)")
        }
        directory = String(cString: made)
        path = directory + "/" + name
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw SystemdTestListenerError("socket failed: errno \(errno)") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in path.utf8.enumerated() { raw[i] = b }
        }
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard rc == 0 else { throw SystemdTestListenerError("bind \(path) failed: errno \(errno)") }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    /// One datagram, or nil when none arrives within `seconds`.
    func receive(seconds: Int = 5) -> [UInt8]? {
        var timeout = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var buffer = [UInt8](repeating: 0, count: 256 * 1024)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard n >= 0 else { return nil }
        return Array(buffer[0..<n])
    }

    /// One datagram as text.
    func receiveText(seconds: Int = 5) -> String? {
        receive(seconds: seconds).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Stops listening but leaves the socket file behind: sends to it are then refused.
    func closeKeepingFile() {
        if fd >= 0 { close(fd) }
        fd = -1
    }

    deinit {
        if fd >= 0 { close(fd) }
        unlink(path)
        rmdir(directory)
    }
}

struct SystemdTestListenerError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Sets environment variables for the duration of `body`, then restores what was there.
func withSystemdTestEnvironment<T>(_ values: [String: String?], _ body: () throws -> T) rethrows -> T {
    var saved: [String: String?] = [:]
    for (key, value) in values {
        saved[key] = getenv(key).map { String(cString: $0) }
        if let value { setenv(key, value, 1) } else { unsetenv(key) }
    }
    defer {
        for (key, value) in saved {
            if let value { setenv(key, value, 1) } else { unsetenv(key) }
        }
    }
    return try body()
}

/// Tests that change the process environment (NOTIFY_SOCKET, WATCHDOG_*, JOURNAL_STREAM,
/// DARKROOM_JOURNAL_SOCKET, DARKROOM_LOG_FORMAT) run one at a time inside this suite.
@Suite(.serialized)
struct SystemdProcessEnvironmentTests {}

extension SystemdProcessEnvironmentTests {
    @Suite("sd_notify")
    struct SystemdNotifyTests {
        @Test func notificationsFromTheEnvironmentReachTheListenerInOrder() throws {
            let listener = try SystemdTestListener(name: "notify")
            withSystemdTestEnvironment(["NOTIFY_SOCKET": listener.path]) {
                let notifier = Notifier()
                #expect(notifier.isEnabled)
                #expect(notifier.extendTimeout(usec: 30_000_000))
                #expect(listener.receiveText() == "EXTEND_TIMEOUT_USEC=30000000")
                #expect(notifier.ready(status: "ready: class small, 0 done"))
                #expect(listener.receiveText() == "READY=1\nSTATUS=ready: class small, 0 done")
                #expect(notifier.status("busy: batch 3 of 4\njobs done 7"))
                // A status is one line: a newline would start a new assignment.
                #expect(listener.receiveText() == "STATUS=busy: batch 3 of 4 jobs done 7")
                #expect(notifier.watchdog())
                #expect(listener.receiveText() == "WATCHDOG=1")
                #expect(notifier.reloading())
                #expect(listener.receiveText() == "RELOADING=1")
                #expect(notifier.stopping(status: "draining"))
                #expect(listener.receiveText() == "STOPPING=1\nSTATUS=draining")
            }
        }

        @Test func anExplicitSocketIgnoresTheEnvironment() throws {
            let listener = try SystemdTestListener(name: "explicit")
            withSystemdTestEnvironment(["NOTIFY_SOCKET": nil]) {
                let notifier = Notifier(socketPath: listener.path)
                #expect(notifier.ready())
                #expect(listener.receiveText() == "READY=1")
                #expect(notifier.extendTimeout(.seconds(90)))
                #expect(listener.receiveText() == "EXTEND_TIMEOUT_USEC=90000000")
                #expect(notifier.stopping())
                #expect(listener.receiveText() == "STOPPING=1")
            }
        }

        @Test func withoutNotifySocketEveryCallIsAQuickNoOp() {
            withSystemdTestEnvironment(["NOTIFY_SOCKET": nil]) {
                let notifier = Notifier()
                #expect(!notifier.isEnabled)
                let clock = ContinuousClock()
                let elapsed = clock.measure {
                    for _ in 0..<10_000 {
                        #expect(!notifier.watchdog())
                    }
                }
                #expect(!notifier.ready(status: "x"))
                #expect(!notifier.status("x"))
                #expect(!notifier.stopping())
                #expect(!notifier.extendTimeout(usec: 1))
                #expect(elapsed < .seconds(1))
            }
        }

        @Test func aListenerThatIsGoneIsReportedNotCrashed() throws {
            let listener = try SystemdTestListener(name: "gone")
            listener.closeKeepingFile()
            withSystemdTestEnvironment(["NOTIFY_SOCKET": listener.path]) {
                #expect(!Notifier().ready())
            }
            #expect(!Notifier(socketPath: listener.directory + "/missing").watchdog())
        }

        @Test func watchdogIntervalComesFromWatchdogUsecForThisProcessOnly() {
            withSystemdTestEnvironment(["WATCHDOG_USEC": "4000000", "WATCHDOG_PID": String(getpid())]) {
                #expect(Notifier().watchdogInterval() == .seconds(4))
                #expect(Notifier().watchdogPingInterval() == .seconds(2))
            }
            withSystemdTestEnvironment(["WATCHDOG_USEC": "4000000", "WATCHDOG_PID": String(getpid() + 1)]) {
                #expect(Notifier().watchdogInterval() == nil)
            }
            withSystemdTestEnvironment(["WATCHDOG_USEC": nil, "WATCHDOG_PID": nil]) {
                #expect(Notifier().watchdogInterval() == nil)
            }
        }
    
        @Test func watchdogPingsStopWhileABusyPartIsStuckAndResumeWhenItMoves() throws {
            let listener = try SystemdTestListener(name: "watchdog")
            let start = ContinuousClock.now
            let monitor = WatchdogMonitor(notifier: Notifier(socketPath: listener.path), parts: ["engine", "io"],
                                          staleAfter: .seconds(30), now: start)
            // Both idle: healthy.
            #expect(monitor.tick(now: start + .seconds(100)))
            #expect(listener.receiveText() == "WATCHDOG=1")
            // The engine starts a batch and steps; the I/O loop turns.
            monitor.setBusy("engine", true, now: start + .seconds(100))
            monitor.beat("engine", now: start + .seconds(120))
            monitor.setBusy("io", true, now: start + .seconds(100))
            monitor.beat("io", now: start + .seconds(125))
            #expect(monitor.tick(now: start + .seconds(140)))
            #expect(listener.receiveText() == "WATCHDOG=1")
            // The engine stops stepping while the I/O loop goes on: no ping.
            monitor.beat("io", now: start + .seconds(160))
            #expect(monitor.staleParts(now: start + .seconds(160)) == ["engine"])
            #expect(!monitor.tick(now: start + .seconds(160)))
            #expect(listener.receive(seconds: 1) == nil)
            // A step again: pings resume. Finishing the batch makes it idle: healthy however long.
            monitor.beat("engine", now: start + .seconds(161))
            #expect(monitor.tick(now: start + .seconds(162)))
            #expect(listener.receiveText() == "WATCHDOG=1")
            monitor.setBusy("engine", false, now: start + .seconds(162))
            monitor.beat("io", now: start + .seconds(990))
            #expect(monitor.tick(now: start + .seconds(1000)))
            #expect(listener.receiveText() == "WATCHDOG=1")
        }

        @Test func watchdogMonitorPingsAtHalfTheIntervalSystemdAsksFor() {
            withSystemdTestEnvironment(["WATCHDOG_USEC": "20000000", "WATCHDOG_PID": String(getpid())]) {
                let monitor = WatchdogMonitor(parts: ["engine"])
                #expect(monitor.pingInterval == .seconds(10))
                #expect(monitor.staleAfter == .seconds(20))
            }
            withSystemdTestEnvironment(["WATCHDOG_USEC": nil, "WATCHDOG_PID": nil]) {
                let monitor = WatchdogMonitor(parts: ["engine"])
                #expect(monitor.staleAfter == .seconds(60))
            }
        }
    
        @Test func statusLineShowsStateClassCountsBatchAndCache() throws {
            var status = ServiceStatus(state: .consuming, classes: ["small"], jobsDone: 12, jobsFailed: 1,
                                       batch: .init(id: "k3x9", jobs: 4, step: 12, steps: 30),
                                       scheduleCacheHits: 10, scheduleCacheMisses: 2)
            #expect(status.description
                == "consuming small: 12 done, 1 failed; batch k3x9 running (4 jobs, step 12/30); schedule cache 10 hits, 2 misses")
            status.batch = nil
            status.state = .loading
            status.note = "model tiny-shapes"
            #expect(status.description
                == "loading small (model tiny-shapes): 12 done, 1 failed; idle; schedule cache 10 hits, 2 misses")
            let listener = try SystemdTestListener(name: "status")
            #expect(Notifier(socketPath: listener.path).status(status.description))
            #expect(listener.receiveText() == "STATUS=" + status.description)
        }
    }
}
