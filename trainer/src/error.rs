//! Why a training could not be done.

use std::path::PathBuf;

use thiserror::Error;

use crate::xgb::XgbError;

/// Every failure of the training job, with its cause kept as the error's source.
#[derive(Debug, Error)]
pub enum TrainError {
    /// XGBoost failed or was given inconsistent data.
    #[error(transparent)]
    Xgb(#[from] XgbError),
    /// A model document is not a tree ensemble this build can serve.
    #[error(transparent)]
    Model(#[from] risk_core::model::ModelError),
    /// The book could not be read.
    #[error("reading the loan book")]
    Book(#[from] sqlx::Error),
    /// The registry could not be read or written.
    #[error(transparent)]
    Registry(#[from] book::registry::RegistryError),
    /// No business day has closed, so no loan has a label.
    #[error("the book has no closed business day: nothing has matured")]
    NothingMatured,
    /// No loan was disbursed a whole performance window before the last closed day.
    #[error("no matured loans: none was disbursed {0} months before the last closed business day")]
    NoMaturedLoans(u32),
    /// The performance window reaches before the calendar.
    #[error("a performance window of {0} months is too long")]
    Window(u32),
    /// A stored application is not a `LoanApplication`.
    #[error("a stored application does not parse")]
    StoredApplication(#[source] serde_json::Error),
    /// The out-of-time split needs two origination months.
    #[error(
        "an out-of-time evaluation needs at least two origination months; the matured book has {0}"
    )]
    OneMonth(usize),
    /// Only one class in a set that needs both.
    #[error("{0} has a single class: nothing to learn or to evaluate")]
    OneClass(String),
    /// A CSV could not be read.
    #[error("{path}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: csv::Error,
    },
    /// A CSV's contents cannot be trained on (named column missing, bad target, prohibited
    /// attributes, …).
    #[error("{path}: {message}")]
    Table {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A number in a file does not parse.
    #[error("{path}: {what} is not a number")]
    Number {
        /// The file.
        path: PathBuf,
        /// Which value.
        what: String,
        /// Why.
        #[source]
        source: std::num::ParseFloatError,
    },
    /// Cross-validation needs two folds.
    #[error("cross-validation needs at least 2 folds, not {0}")]
    Folds(usize),
    /// The synthetic lender refused its settings.
    #[error("generating the training set")]
    Generate(#[from] ingest::generator::GenerateError),
    /// XGBoost's model document or the artifact could not be read or written.
    #[error("the model document")]
    ModelJson(#[source] serde_json::Error),
    /// The artifact could not be written.
    #[error("writing {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A worker thread failed.
    #[error("a training worker stopped")]
    Worker(#[from] tokio::task::JoinError),
}
