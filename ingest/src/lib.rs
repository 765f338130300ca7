//! Applications into Kafka: validation, normalisation, dead-letter, loaders, and the synthetic
//! lender that generates a loan history with known ground truth.
//!
//! # Layout
//! - [`generator`]: `credit-risk generate`.

pub mod generator;
