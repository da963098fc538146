// sd_notify messages as a NOTIFY_SOCKET listener receives them: a real AF_UNIX datagram socket bound in
// a temporary folder (or in the abstract namespace), named to the Notifier through the environment value the
// test passes (never this process's environment, so these tests run in parallel).
import Glibc
import Systemd
import TestSupport
import Testing

@Suite("sd_notify")
struct SystemdNotifyTests {
    @Test(arguments: [false, true])
    func notificationsReachTheListenerInOrder(abstract: Bool) throws {
        let listener = try SystemdTestListener(name: "notify", abstract: abstract)
        #expect(listener.path.hasPrefix(abstract ? "@" : "/"))
        do {
            let notifier = Notifier(environment: ["NOTIFY_SOCKET": listener.path])
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

    @Test func eachNotifierSendsToTheSocketItWasGivenAndDurationsBecomeMicroseconds() throws {
        let first = try SystemdTestListener(name: "first"), second = try SystemdTestListener(name: "second")
        let one = Notifier(environment: ["NOTIFY_SOCKET": first.path])
        let two = Notifier(environment: ["NOTIFY_SOCKET": second.path])
        #expect(one.ready())
        #expect(one.extendTimeout(.seconds(90)))
        #expect(two.stopping())
        #expect(first.receiveText() == "READY=1")
        #expect(first.receiveText() == "EXTEND_TIMEOUT_USEC=90000000")
        #expect(second.receiveText() == "STOPPING=1")
        #expect(first.receive(seconds: 1) == nil)
    }

    @Test func withoutNotifySocketEveryCallIsANoOp() {
        for environment in [[:], ["NOTIFY_SOCKET": ""]] as [[String: String]] {
            let notifier = Notifier(environment: environment)
            #expect(!notifier.isEnabled)
            #expect(notifier.socket == nil)
            #expect(!notifier.watchdog())
            #expect(!notifier.ready(status: "x"))
            #expect(!notifier.status("x"))
            #expect(!notifier.stopping())
            #expect(!notifier.reloading())
            #expect(!notifier.extendTimeout(usec: 1))
        }
    }

    @Test func aSilentNotifierSendsNothingAndAGivenOneSendsOnce() throws {
        let other = try SystemdTestListener(name: "given")
        let notifier = Notifier(environment: ["NOTIFY_SOCKET": other.path])
        #expect(notifier.ready())
        #expect(!Notifier.silent.isEnabled)
        #expect(!Notifier.silent.ready(status: "x"))
        #expect(Notifier.silent.watchdogInterval() == nil)
        #expect(other.receiveText() == "READY=1")
        #expect(other.receive(seconds: 1) == nil)
    }

    @Test(arguments: ["relative/notify.sock", "vsock:2:1234", "/" + String(repeating: "x", count: 200),
                      "@" + String(repeating: "y", count: 200)])
    func anUnusableSocketAddressIsAFailureNotACrash(address: String) {
        let notifier = Notifier(environment: ["NOTIFY_SOCKET": address])
        #expect(notifier.isEnabled)
        #expect(!notifier.ready())
    }

    @Test func aListenerThatIsGoneIsReportedNotCrashed() throws {
        let listener = try SystemdTestListener(name: "gone")
        listener.closeKeepingFile()
        #expect(!Notifier(environment: ["NOTIFY_SOCKET": listener.path]).ready())
        #expect(!Notifier(environment: ["NOTIFY_SOCKET": listener.directory + "/missing"]).watchdog())
        #expect(!Notifier(environment: ["NOTIFY_SOCKET": "@drsd-nobody-listens-\(getpid())"]).watchdog())
    }

    @Test func watchdogIntervalComesFromWatchdogUsecForThisProcessOnly() {
        let mine = Notifier(environment: ["WATCHDOG_USEC": "4000000", "WATCHDOG_PID": String(getpid())])
        #expect(mine.watchdogInterval() == .seconds(4))
        #expect(mine.watchdogPingInterval() == .seconds(2))
        #expect(Notifier(environment: ["WATCHDOG_USEC": "4000000"]).watchdogInterval() == .seconds(4))
        #expect(Notifier(environment: ["WATCHDOG_USEC": "4000000", "WATCHDOG_PID": "77"], pid: 77).watchdogInterval() == .seconds(4))
        #expect(Notifier(environment: ["WATCHDOG_USEC": "4000000", "WATCHDOG_PID": String(getpid() + 1)]).watchdogInterval() == nil)
        #expect(Notifier(environment: [:]).watchdogInterval() == nil)
        for bad in ["", "0", "-5", "4s", "99999999999999999999999"] {
            #expect(Notifier(environment: ["WATCHDOG_USEC": bad]).watchdogInterval() == nil, "\(bad)")
        }
    }
    
    @Test func watchdogPingsStopWhileABusyPartIsStuckAndResumeWhenItMoves() throws {
        let listener = try SystemdTestListener(name: "watchdog")
        try watchdogPings(listener)
    }

    func watchdogPings(_ listener: SystemdTestListener) throws {
        let start = ContinuousClock.now
        let monitor = WatchdogMonitor(notifier: Notifier(environment: ["NOTIFY_SOCKET": listener.path]), parts: ["engine", "io"],
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
        do {
            let notifier = Notifier(environment: ["WATCHDOG_USEC": "20000000", "WATCHDOG_PID": String(getpid())])
            let monitor = WatchdogMonitor(notifier: notifier, parts: ["engine"])
            #expect(monitor.pingInterval == .seconds(10))
            #expect(monitor.staleAfter == .seconds(20))
        }
        do {
            let monitor = WatchdogMonitor(notifier: Notifier(environment: [:]), parts: ["engine"])
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
        #expect(Notifier(environment: ["NOTIFY_SOCKET": listener.path]).status(status.description))
        #expect(listener.receiveText() == "STATUS=" + status.description)
    }
}
