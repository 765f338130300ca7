//! Applications into Kafka: validation, normalisation, dead-letter, loaders, and the synthetic
//! lender that generates a loan history with known ground truth.
//!
//! # Layout
//! - [`generator`]: `credit-risk generate`.
//! - [`raw`]: `credit-risk ingest`: JSON applications from the raw topic or files, checked, to
//!   the Avro topic; the rest dead-lettered.

pub mod generator;
pub mod raw;
