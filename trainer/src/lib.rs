//! Training job: dataset extraction, XGBoost training (xgboost-rs), evaluation, registry.
//!
//! # Layout
//! - [`xgb`]: the only place that calls XGBoost's C API: matrices, training, model export.
//! - [`artifact`]: the model artifact with its expected distributions.
//! - [`generated`]: a labelled training set from the synthetic lender.
//! - [`quick`]: train a feature-set-v1 model on generated data end to end.

pub mod artifact;
pub mod generated;
pub mod quick;
pub mod xgb;
