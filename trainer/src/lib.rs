//! Training job: dataset extraction, XGBoost training (xgboost-rs), evaluation, registry.
//!
//! # Layout
//! - [`xgb`]: the only place that calls XGBoost's C API: matrices, training, model export.
//! - [`artifact`]: the model artifact with its expected distributions.
//! - [`book`]: training data from the loan book, out-of-time evaluation, registry, promotion.
//! - [`generated`]: a labelled training set from the synthetic lender.
//! - [`tabular`]: any CSV with a binary target, categorical text encoded, missing kept.
//! - [`cv`]: stratified k-fold cross-validation and its report.
//! - [`quick`]: train a feature-set-v1 model on generated data end to end.

pub mod artifact;
pub mod book;
pub mod cv;
pub mod generated;
pub mod quick;
pub mod tabular;
pub mod xgb;
