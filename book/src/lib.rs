//! The loan book in PostgreSQL: its tables (the migrations), its compile-checked queries
//! (`.sqlx`), and every statement any stage runs against them. Other crates call these typed
//! functions; none of them writes SQL against the book.
//!
//! # Layout
//! - [`db`]: the migrations and the schema check at start-up.
//! - [`message`]: what the book accepts from the topics, decoded and validated.
//! - [`write`]: one batch of messages applied in one transaction with its offsets (customers,
//!   applications and decisions, disbursals, payments, write-offs, day-end ticks).
//! - [`dayend`]: the set-based day-end: DPD, IRAC classes, IFRS 9 stages, provisions, ECL,
//!   status history and the portfolio snapshot.
//! - [`queries`]: the portfolio read side (summary and analyses, as of any closed business date).
//! - [`registry`]: the model registry, registration and promotion by alias.
//! - [`audit`]: the append-only audit log.
//! - [`keys`]: API keys (stored hashed), created and revoked with their audit rows.
//! - [`customers`]: customers as the edge reads them, their changes, and who registered whom.
//! - [`applications`]: applications, their decisions and reasons, as the edge reads them.
//! - [`loans`]: loans with their current status, and one loan whole.
//! - [`stress`]: the book under PD and LGD shocks (stages, ECL, projected NPA).
//! - [`health`]: whether the database answers.
//! - [`training`]: matured loans with their labels, for the training job.
//! - `synthetic` (feature `synthetic`, for `credit-risk-bench` only): synthetic books and
//!   readings for the benchmarks.
//!
//! The aggregator is the only writer of the loan tables. Each batch's changes and the consumed
//! offsets commit in one PostgreSQL transaction, so a crash at any point loses nothing and
//! applies nothing twice.

pub mod applications;
pub mod audit;
pub mod customers;
pub mod dayend;
pub mod db;
pub mod health;
pub mod keys;
pub mod loans;
pub mod message;
pub mod queries;
pub mod registry;
pub mod stress;
#[cfg(feature = "synthetic")]
pub mod synthetic;
pub mod training;
pub mod write;
