//! Shared plumbing for every stage of the pipeline.
//!
//! # Layout
//! - [`settings`]: typed layered settings (defaults < file < environment) and secrets.
//! - [`telemetry`]: tracing subscriber (text or JSON).
//! - [`shutdown`]: one cancellation token, tripped by SIGINT/SIGTERM.
//! - [`metrics`]: the Prometheus registry and the `/metrics` warp filter.
//! - [`infra`]: the configured servers (every stage), or embedded ones (`demo`, `infra`).
//! - [`kafka`]: client configuration builders and the embedded (mock) Kafka cluster.
//! - [`postgres`]: connection pools and the embedded private PostgreSQL cluster.
//!
//! Nothing here knows about credit risk; domain code lives in `risk-core`.

pub mod infra;
pub mod kafka;
pub mod metrics;
pub mod postgres;
pub mod settings;
pub mod shutdown;
pub mod telemetry;
