//! Validation of an application before it is scored (the schemas crate's rule, which the book
//! and the ingest stage apply too).

pub use schemas::validate::{check, valid_id, MAX_ID_LEN};
