//! The scorer: applications from Kafka → features → model → policy → decisions, explained.
//!
//! # Layout
//! - [`decide`]: one application → one decision (pure).
//! - [`catalogue`]: reason codes.
//! - [`validate`]: what makes an application scoreable.
//! - [`models`]: champion and challenger, loaded from artifacts, swapped on promotion.
//! - [`pipeline`]: the consumer loop, offsets, dead letters, transactions.
//! - [`psi`]: feature drift over a sliding window.
//! - [`service`]: settings and wiring of `credit-risk score`.
//! - [`metrics`]: every metric of the scorer.
//! - [`error`]: fatal errors.

pub mod catalogue;
pub mod decide;
pub mod error;
pub mod metrics;
pub mod models;
pub mod pipeline;
pub mod psi;
pub mod service;
pub mod validate;
