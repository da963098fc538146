// Systemd: the worker's side of running under systemd.
//   Notifier.swift          sd_notify messages (READY, STATUS, WATCHDOG, STOPPING, RELOADING, EXTEND_TIMEOUT_USEC), sent
//                           as one datagram to the NOTIFY_SOCKET of the environment the caller passes in.
//   WatchdogMonitor.swift   WATCHDOG=1 only while the engine and the I/O loop both make progress.
//   ServiceStatus.swift     the one-line STATUS= text (state, class, jobs done/failed, batch, cache hits).
//   JournalFields.swift     swift-log level -> PRIORITY, metadata -> DARKROOM_* fields.
//   JournalSender.swift     sending one entry through sd_journal_sendv, refusing when journald's socket is absent.
//   TextLogHandler.swift    readable lines on stderr (or any descriptor).
//   JournalLogHandler.swift swift-log handler writing to journald, falling back to text lines.
//   LoggingBootstrap.swift  choosing journal or text once at start-up.
//   InstanceName.swift      `<class>-<n>` instance names of darkroom@.service.
//   Systemctl.swift         listing running darkroom@ instances; darkroom-scale (ops/scale) to change them.
import CSystemd
