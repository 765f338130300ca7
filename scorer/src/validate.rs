//! Validation of an application before it is scored (shared with the aggregator).

pub use schemas::validate::{check, valid_id, MAX_ID_LEN};
