// sd_notify messages as a NOTIFY_SOCKET listener receives them: a real AF_UNIX datagram socket bound in
// a temporary folder, with NOTIFY_SOCKET set in this process (these tests run one at a time because
// they change the process environment) or passed explicitly.
import Glibc
import Systemd
import TestSupport
import Testing

/// Tests that change the process environment (NOTIFY_SOCKET, WATCHDOG_*, JOURNAL_STREAM, DARKROOM_LOG_FORMAT)
/// run one at a time inside this suite.
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

        @Test func theSocketIsReadAtEveryCallAndDurationsBecomeMicroseconds() throws {
            let first = try SystemdTestListener(name: "first"), second = try SystemdTestListener(name: "second")
            let notifier = Notifier()
            withSystemdTestEnvironment(["NOTIFY_SOCKET": first.path]) {
                #expect(notifier.ready())
                #expect(notifier.extendTimeout(.seconds(90)))
            }
            withSystemdTestEnvironment(["NOTIFY_SOCKET": second.path]) {
                #expect(notifier.stopping())
            }
            #expect(first.receiveText() == "READY=1")
            #expect(first.receiveText() == "EXTEND_TIMEOUT_USEC=90000000")
            #expect(second.receiveText() == "STOPPING=1")
            #expect(first.receive(seconds: 1) == nil)
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

        @Test func aSilentNotifierIgnoresTheEnvironment() throws {
            let listener = try SystemdTestListener(name: "silent")
            withSystemdTestEnvironment(["NOTIFY_SOCKET": listener.path, "WATCHDOG_USEC": "4000000",
                                        "WATCHDOG_PID": String(getpid())]) {
                #expect(!Notifier.silent.isEnabled)
                #expect(!Notifier.silent.ready(status: "x"))
                #expect(Notifier.silent.watchdogInterval() == nil)
            }
            #expect(listener.receive(seconds: 1) == nil)
        }

        @Test func aListenerThatIsGoneIsReportedNotCrashed() throws {
            let listener = try SystemdTestListener(name: "gone")
            listener.closeKeepingFile()
            withSystemdTestEnvironment(["NOTIFY_SOCKET": listener.path]) {
                #expect(!Notifier().ready())
            }
            withSystemdTestEnvironment(["NOTIFY_SOCKET": listener.directory + "/missing"]) {
                #expect(!Notifier().watchdog())
            }
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
            try withSystemdTestEnvironment(["NOTIFY_SOCKET": listener.path, "WATCHDOG_USEC": nil]) {
                try watchdogPings(listener)
            }
        }

        func watchdogPings(_ listener: SystemdTestListener) throws {
            let start = ContinuousClock.now
            let monitor = WatchdogMonitor(notifier: Notifier(), parts: ["engine", "io"],
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
            withSystemdTestEnvironment(["NOTIFY_SOCKET": listener.path]) {
                #expect(Notifier().status(status.description))
            }
            #expect(listener.receiveText() == "STATUS=" + status.description)
        }
    }
}
