//! `edge_*` metrics. Labels are bounded: the route template (never a path with ids), the
//! method and the status class.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

/// The edge's metrics.
#[derive(Clone)]
pub struct Metrics {
    /// Requests by route template, method and status class.
    pub requests: IntCounterVec,
    /// Request latency by route template.
    pub latency: HistogramVec,
    /// Applications published, by how they were answered (decided, pending).
    pub applications: IntCounterVec,
}

impl Metrics {
    /// Register on `registry`.
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let requests = IntCounterVec::new(
            Opts::new("edge_http_requests_total", "HTTP requests answered."),
            &["route", "method", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "edge_http_request_duration_seconds",
                "Time to answer an HTTP request.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
            &["route"],
        )?;
        let applications = IntCounterVec::new(
            Opts::new(
                "edge_applications_total",
                "Applications published through the API, by how they were answered.",
            ),
            &["answer"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(applications.clone()))?;
        Ok(Self {
            requests,
            latency,
            applications,
        })
    }
}
