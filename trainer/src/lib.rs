//! Training job: dataset extraction, XGBoost training (xgboost-rs), evaluation, registry.
//!
//! # Layout
//! - [`xgb`]: the only place that calls XGBoost's C API: matrices, training, model export.
//! - [`artifact`]: the model artifact with its expected distributions.
//! - [`matured`]: training data from the loan book (matured loans and their labels).
//! - [`evaluation`]: the out-of-time split, discrimination and calibration, PSI.
//! - [`promotion`]: when a challenger may replace the champion.
//! - [`from_book`]: the whole training from the book, to the registry (`train --from-db`).
//! - [`generated`]: a labelled training set from the synthetic lender.
//! - [`tabular`]: any CSV with a binary target, categorical text encoded, missing kept.
//! - [`cv`]: stratified k-fold cross-validation and its report.
//! - [`quick`]: train a feature-set-v1 model on generated data end to end.
//! - [`error`]: why a training could not be done.

pub mod artifact;
pub mod cv;
pub mod error;
pub mod evaluation;
pub mod from_book;
pub mod generated;
pub mod matured;
pub mod promotion;
pub mod quick;
pub mod tabular;
pub mod xgb;

pub use error::TrainError;
