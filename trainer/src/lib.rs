//! Training job: dataset extraction, XGBoost training (xgboost-rs), evaluation, registry.
//!
//! # Layout
//! - [`xgb`]: the only place that calls XGBoost's C API: matrices, training, model export.

pub mod xgb;
