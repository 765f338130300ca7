//! Event contracts of the credit-risk pipeline.
//!
//! # Layout
//! - `avro/*.avsc`: the Avro schemas, one file per version (`<family>.v<N>.avsc`); never edit a
//!   published version, add the next one.
//! - [`types`]: the Rust types (serde) of the newest version of each family.
//! - [`codec`]: Avro binary in the single-object encoding, with writer → reader resolution.
//! - [`binary`]: direct encoders and decoders of the hot families (no `Value` tree).
//! - [`registry`]: every known version and its CRC-64-AVRO fingerprint.
//! - [`time`]: serde adapters for Avro's `date` and `timestamp-millis`.
//! - [`validate`]: value checks every consumer applies before using a message.
//!
//! No I/O and no domain logic live here.

pub mod binary;
pub mod codec;
pub mod registry;
pub mod time;
pub mod types;
pub mod validate;

pub use codec::{decode, encode, AvroMessage, DecodeError, EncodeError};
pub use types::*;
