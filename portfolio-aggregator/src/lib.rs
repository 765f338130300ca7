//! Loan book, delinquency, NPA, IFRS 9 and portfolio metrics in PostgreSQL.
//!
//! # Layout
//! - [`db`]: the migrations (the tables of the book) and connection helpers.
//! - [`message`]: what the aggregator consumes, decoded and validated.
//! - [`apply`]: one batch of messages applied in one transaction with its offsets.
//! - [`dayend`]: the set-based day-end: DPD, IRAC classes, IFRS 9 stages, provisions, ECL,
//!   status history and the portfolio snapshot.
//! - [`queries`]: the read side the HTTP edge calls (portfolio summary and analyses, as of any
//!   closed business date).
//! - [`service`]: the consumer loop (`credit-risk aggregate`).
//! - [`metrics`]: Prometheus metrics.
//!
//! The aggregator is the only writer of the book. Each batch's changes and the consumed offsets
//! commit in one PostgreSQL transaction; on assignment the consumer starts from the offsets in
//! PostgreSQL, and a message below the stored offset is skipped, so a crash at any point loses
//! nothing and applies nothing twice.

pub mod apply;
pub mod dayend;
pub mod db;
pub mod message;
pub mod metrics;
pub mod queries;
pub mod service;
