//! Loan book, delinquency, NPA, IFRS 9 and portfolio metrics in PostgreSQL.
//!
//! # Layout
//! - [`service`]: the consumer loop (`credit-risk aggregate`).
//! - [`metrics`]: Prometheus metrics.
//!
//! The aggregator is the only writer of the book. Each batch's changes and the consumed offsets
//! commit in one PostgreSQL transaction; on assignment the consumer starts from the offsets in
//! PostgreSQL, and a message below the stored offset is skipped, so a crash at any point loses
//! nothing and applies nothing twice.

pub mod metrics;
pub mod service;
