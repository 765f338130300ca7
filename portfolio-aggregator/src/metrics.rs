//! The aggregator's metrics. Names: `aggregator_<what>_<unit>`, counters `_total`, labels
//! bounded (source topic kind, error class).

use prometheus::{
    exponential_buckets, Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge,
    Opts, Registry,
};

/// Day-end buckets, seconds: fine around the 30 s budget, so a p90 near it reads true.
pub const DAY_END_BUCKETS: [f64; 16] = [
    0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 35.0, 40.0, 50.0, 60.0, 90.0, 180.0,
];

/// Every metric of the aggregator.
#[derive(Clone)]
pub struct Metrics {
    /// Messages applied to the book, by source.
    pub applied: IntCounterVec,
    /// Messages skipped as already applied (below the stored offsets) or duplicate event ids.
    pub skipped: IntCounter,
    /// Messages dead-lettered, by error class.
    pub dead_lettered: IntCounterVec,
    /// Messages per committed batch.
    pub batch_size: Histogram,
    /// Time to apply and commit a batch, seconds.
    pub batch_seconds: Histogram,
    /// Day-end duration, seconds.
    pub day_end_seconds: Histogram,
    /// Last closed business date, as days since 1970-01-01.
    pub last_business_day: IntGauge,
    /// Loan events dated on or before the last closed business date.
    pub late_events: IntCounter,
    /// Consumer lag summed over assigned partitions.
    pub consumer_lag: IntGauge,
    /// Gross NPA ratio after the last day-end.
    pub npa_ratio: Gauge,
    /// Failed attempts to commit a batch (the database unreachable), retried with backoff.
    pub retries: IntCounter,
    /// Reads of the book outside a batch that failed (stored offsets, closed days); each is
    /// retried at the next poll.
    pub database_errors: IntCounter,
}

impl Metrics {
    /// Create and register on `registry`.
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let m = Self {
            applied: IntCounterVec::new(
                Opts::new(
                    "aggregator_messages_applied_total",
                    "Messages applied to the book.",
                ),
                &["source"],
            )?,
            skipped: IntCounter::new(
                "aggregator_messages_skipped_total",
                "Messages already applied (redelivered or duplicate event ids).",
            )?,
            dead_lettered: IntCounterVec::new(
                Opts::new(
                    "aggregator_messages_dead_lettered_total",
                    "Messages sent to the dead-letter topic.",
                ),
                &["class"],
            )?,
            batch_size: Histogram::with_opts(
                HistogramOpts::new("aggregator_batch_messages", "Messages per committed batch.")
                    .buckets(exponential_buckets(1.0, 4.0, 9)?),
            )?,
            batch_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "aggregator_batch_seconds",
                    "Time to apply and commit a batch.",
                )
                .buckets(exponential_buckets(1e-3, 3.0, 10)?),
            )?,
            day_end_seconds: Histogram::with_opts(
                HistogramOpts::new("aggregator_day_end_seconds", "Day-end duration.")
                    .buckets(DAY_END_BUCKETS.to_vec()),
            )?,
            last_business_day: IntGauge::new(
                "aggregator_last_business_day_days",
                "Last closed business date (days since 1970-01-01).",
            )?,
            late_events: IntCounter::new(
                "aggregator_late_events_total",
                "Loan events dated on or before the last closed business date.",
            )?,
            consumer_lag: IntGauge::new(
                "aggregator_consumer_lag_messages",
                "Consumer lag summed over assigned partitions.",
            )?,
            npa_ratio: Gauge::new(
                "aggregator_npa_ratio",
                "Gross NPA ratio after the last day-end.",
            )?,
            retries: IntCounter::new(
                "aggregator_batch_retries_total",
                "Failed attempts to commit a batch, retried with backoff.",
            )?,
            database_errors: IntCounter::new(
                "aggregator_database_read_errors_total",
                "Reads of the book outside a batch that failed (retried at the next poll).",
            )?,
        };
        registry.register(Box::new(m.applied.clone()))?;
        registry.register(Box::new(m.skipped.clone()))?;
        registry.register(Box::new(m.dead_lettered.clone()))?;
        registry.register(Box::new(m.batch_size.clone()))?;
        registry.register(Box::new(m.batch_seconds.clone()))?;
        registry.register(Box::new(m.day_end_seconds.clone()))?;
        registry.register(Box::new(m.last_business_day.clone()))?;
        registry.register(Box::new(m.late_events.clone()))?;
        registry.register(Box::new(m.consumer_lag.clone()))?;
        registry.register(Box::new(m.npa_ratio.clone()))?;
        registry.register(Box::new(m.retries.clone()))?;
        registry.register(Box::new(m.database_errors.clone()))?;
        Ok(m)
    }
}
