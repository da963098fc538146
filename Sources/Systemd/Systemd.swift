// Systemd: the worker's side of running under systemd.
//   Notifier.swift          sd_notify messages (READY, STATUS, WATCHDOG, STOPPING, RELOADING, EXTEND_TIMEOUT_USEC).
//   WatchdogMonitor.swift   WATCHDOG=1 only while the engine and the I/O loop both make progress.
//   ServiceStatus.swift     the one-line STATUS= text (state, class, jobs done/failed, batch, cache hits).
//   UnixDatagram.swift      a small AF_UNIX datagram sender shared by the notifier and the journal sender.
//   JournalFields.swift     swift-log level -> PRIORITY, metadata -> DARKROOM_* fields, the native wire form.
//   JournalSender.swift     sending one entry: sd_journal_sendv on the real socket, the native protocol elsewhere.
//   TextLogHandler.swift    readable lines on stderr (or any descriptor).
//   JournalLogHandler.swift swift-log handler writing to journald, falling back to text lines.
//   LoggingBootstrap.swift  choosing journal or text once at start-up.
//   InstanceName.swift      `<class>-<n>` instance names of darkroom@.service.
//   Systemctl.swift         listing running darkroom@ instances; darkroom-scale (ops/scale) to change them.
import CSystemd
