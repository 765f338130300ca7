//! The portfolio aggregator: the consumer that feeds the loan book (`credit-risk aggregate`).
//!
//! # Layout
//! - [`service`]: the consumer loop: batches, the day barrier, commits with their dead letters.
//! - [`metrics`]: Prometheus metrics.
//!
//! It is the only writer of the loans and their figures; what it writes, and how, is the `book`
//! crate's (`book::write`, `book::dayend`). Each batch's changes and the consumed offsets commit
//! in one PostgreSQL transaction; on assignment the consumer starts from the offsets stored with
//! the book, and a message below them is skipped, so a crash at any point loses nothing and
//! applies nothing twice.

pub mod metrics;
pub mod service;
