//! The scorer's metrics, all in one place. Names: `scorer_<what>_<unit>`, counters `_total`,
//! labels bounded (outcome, error class, feature name, model version).

use prometheus::{
    exponential_buckets, linear_buckets, GaugeVec, Histogram, HistogramOpts, HistogramVec,
    IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

/// Every metric of the scorer.
#[derive(Clone)]
pub struct Metrics {
    /// Messages consumed from the applications topic.
    pub consumed: IntCounter,
    /// Decisions produced and acknowledged.
    pub produced: IntCounter,
    /// Messages dead-lettered, by error class.
    pub dead_lettered: IntCounterVec,
    /// Decisions by outcome.
    pub decisions: IntCounterVec,
    /// Scoring time per batch, seconds.
    pub scoring_seconds: Histogram,
    /// From the application's broker timestamp to its decision's acknowledgement, seconds.
    pub end_to_end_seconds: Histogram,
    /// Consumer lag (messages) summed over assigned partitions.
    pub consumer_lag: IntGauge,
    /// Model in use (value 1 on the current version's label).
    pub model_info: IntGaugeVec,
    /// PD and score distributions.
    pub pd: Histogram,
    /// Scores.
    pub score: HistogramVec,
    /// PSI per feature over the sliding window, against the training distribution.
    pub psi: GaugeVec,
    /// Model swaps.
    pub model_swaps: IntCounter,
}

impl Metrics {
    /// Create and register on `registry`.
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let m = Self {
            consumed: IntCounter::new("scorer_messages_consumed_total", "Applications consumed.")?,
            produced: IntCounter::new(
                "scorer_decisions_produced_total",
                "Decisions acknowledged by the broker.",
            )?,
            dead_lettered: IntCounterVec::new(
                Opts::new(
                    "scorer_messages_dead_lettered_total",
                    "Messages sent to the dead-letter topic.",
                ),
                &["class"],
            )?,
            decisions: IntCounterVec::new(
                Opts::new("scorer_decisions_total", "Decisions by outcome."),
                &["outcome"],
            )?,
            scoring_seconds: Histogram::with_opts(
                HistogramOpts::new("scorer_batch_scoring_seconds", "CPU time to score a batch.")
                    .buckets(exponential_buckets(1e-5, 3.0, 12)?),
            )?,
            end_to_end_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "scorer_end_to_end_seconds",
                    "Application appended to decision acknowledged.",
                )
                .buckets(exponential_buckets(5e-4, 2.0, 16)?),
            )?,
            consumer_lag: IntGauge::new(
                "scorer_consumer_lag_messages",
                "Messages behind the high watermark.",
            )?,
            model_info: IntGaugeVec::new(
                Opts::new("scorer_model_info", "Model version in use (1) by role."),
                &["role", "version"],
            )?,
            pd: Histogram::with_opts(
                HistogramOpts::new("scorer_pd_ratio", "Champion PD of decided applications.")
                    .buckets(vec![
                        0.005, 0.01, 0.02, 0.03, 0.05, 0.08, 0.12, 0.2, 0.25, 0.35, 0.5, 0.75,
                    ]),
            )?,
            score: HistogramVec::new(
                HistogramOpts::new("scorer_score_points", "Scores of decided applications.")
                    .buckets(linear_buckets(300.0, 50.0, 12)?),
                &["grade"],
            )?,
            psi: GaugeVec::new(
                Opts::new(
                    "scorer_feature_psi_ratio",
                    "PSI of each feature over the recent window.",
                ),
                &["feature"],
            )?,
            model_swaps: IntCounter::new(
                "scorer_model_swaps_total",
                "Champion or challenger swaps.",
            )?,
        };
        registry.register(Box::new(m.consumed.clone()))?;
        registry.register(Box::new(m.produced.clone()))?;
        registry.register(Box::new(m.dead_lettered.clone()))?;
        registry.register(Box::new(m.decisions.clone()))?;
        registry.register(Box::new(m.scoring_seconds.clone()))?;
        registry.register(Box::new(m.end_to_end_seconds.clone()))?;
        registry.register(Box::new(m.consumer_lag.clone()))?;
        registry.register(Box::new(m.model_info.clone()))?;
        registry.register(Box::new(m.pd.clone()))?;
        registry.register(Box::new(m.score.clone()))?;
        registry.register(Box::new(m.psi.clone()))?;
        registry.register(Box::new(m.model_swaps.clone()))?;
        Ok(m)
    }
}
