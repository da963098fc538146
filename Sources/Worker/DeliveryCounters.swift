// Counters of webhook posts and result uploads, through swift-metrics (whatever backend darkroomd bootstraps;
// no-ops without one). Names and labels: docs/operations.md, "Metrics".
import Delivery
import Metrics

enum DeliveryCounters {
    /// darkroom_webhook_deliveries_total{outcome="delivered"|"failed"|"dropped"}: one per event meant for a webhook.
    static func webhook(_ outcome: WebhookOutcome) {
        Counter(label: "darkroom_webhook_deliveries_total", dimensions: [("outcome", outcome.rawValue)]).increment()
    }

    /// darkroom_webhook_retries_total: failed attempts that were tried again.
    static func webhookRetry() {
        Counter(label: "darkroom_webhook_retries_total").increment()
    }

    /// darkroom_result_uploads_total{store="file"|"s3", outcome="stored"|"failed"}: one per PNG (failed = after the retries).
    static func stored(_ store: String, ok: Bool) {
        Counter(label: "darkroom_result_uploads_total", dimensions: [("store", store), ("outcome", ok ? "stored" : "failed")]).increment()
    }

    /// darkroom_result_upload_retries_total{store}: failed attempts that were tried again.
    static func storeRetry(_ store: String) {
        Counter(label: "darkroom_result_upload_retries_total", dimensions: [("store", store)]).increment()
    }
}
