// The daemon's delivery side beyond the reply queue: each job's webhook (signed posts, in order, retried,
// off the engine thread) and its result store (file or S3, retried; a PNG that cannot be stored fails the
// job with `storage_failed`, never loses it). Outcomes are logged, and counted under the metric names
// listed in docs/operations.md.
import Config
import Delivery
import Foundation
import Jobs
import Logging

final class Deliveries: Sendable {
    let webhooks: WebhookDispatcher
    let stores: ResultStores
    let secretNames: Set<String>
    let fileStore: Bool
    let s3Store: Bool

    /// Reads the webhook secrets file: a missing or malformed one stops the worker at start with the key named.
    init(config: DarkroomConfig, logger: Logger) throws {
        let secrets = try config.webhook.secrets()
        secretNames = Set(secrets.keys)
        fileStore = config.output.dir != nil
        s3Store = config.output.s3 != nil
        stores = ResultStores(config: config)
        webhooks = WebhookDispatcher(settings: .init(config.webhook), secrets: secrets) { report in
            switch report {
            case .outcome(let outcome, let jobID, let event, let detail):
                DeliveryCounters.webhook(outcome)
                let meta: Logger.Metadata = ["job": "\(jobID)", "event": "webhook_\(outcome.rawValue)", "webhook_event": "\(event.rawValue)"]
                if outcome == .delivered {
                    logger.debug("webhook \(event.rawValue) delivered: \(detail)", metadata: meta)
                } else {
                    logger.warning("webhook \(event.rawValue) \(outcome.rawValue): \(detail)", metadata: meta)
                }
            case .retrying(let jobID, let event, let attempt, let delay, let error):
                DeliveryCounters.webhookRetry()
                logger.notice("webhook \(event.rawValue) attempt \(attempt) failed (\(error.message)); retrying in \(String(format: "%.1f", delay)) s",
                              metadata: ["job": "\(jobID)", "event": "webhook_retry"])
            }
        }
    }

    /// What job validation needs: the secrets' names, the stores configured, the class defaults.
    func catalog(_ config: DarkroomConfig) -> DeliveryCatalog {
        var classStores: [String: ResultStore] = [:]
        for c in config.classes {
            if let s = ResultStore(rawValue: config.defaultStore(forClass: c.name).rawValue), s != .inline { classStores[c.name] = s }
        }
        return DeliveryCatalog(webhookSecrets: secretNames, fileStore: fileStore, s3Store: s3Store, classStores: classStores)
    }
}

extension Daemon {
    /// The job's images into its store, then `image` events saying where, then the terminal event; on the
    /// tracked work (never the engine thread). A PNG that still cannot be stored after the retries ends the
    /// job with `failed`/`storage_failed` (retryable: sending it again may work).
    func deliverStored(_ p: Pending, images: [ImageEvent], completed: OutgoingEvent, meta: Logger.Metadata) async {
        let store = p.job.store
        for image in images {
            let result: StoredResult
            do {
                result = try await deliveries.stores.store(image.png, jobID: p.job.id, index: image.index, in: store) { [logger] error, attempt in
                    DeliveryCounters.storeRetry(store.rawValue)
                    logger.warning("storing image \(image.index) in \(store.rawValue) failed (attempt \(attempt)): \(error.message); retrying",
                                   metadata: meta.with("event", "store_retry"))
                }
            } catch {
                DeliveryCounters.stored(store.rawValue, ok: false)
                finishFailed(p, JobFailure(.storageFailed,
                    "image \(image.index) of \(p.job.count) could not be stored in the \(store.rawValue) store: \(error.message)"), meta)
                return
            }
            DeliveryCounters.stored(store.rawValue, ok: true)
            send(image.storing(result).encoded(), p.job)
        }
        logger.info("completed", metadata: meta.with("event", "completed"))
        terminal(completed, for: p.delivery, jobID: p.job.id, replyTo: p.job.replyTo, correlationID: p.job.correlationID,
                 labels: p.labels, failure: nil, webhook: p.job.webhook, metadata: meta)
    }
}
