//! The one codec: Avro binary in the single-object encoding.
//!
//! A message is `C3 01`, the 8-byte little-endian CRC-64-AVRO fingerprint of the writer's schema,
//! then the Avro binary body. Decoding looks the fingerprint up among every known version,
//! decodes with that writer schema and resolves to this build's (the reader's) version.

use apache_avro::types::Value;
use apache_avro::Schema;
use thiserror::Error;

use crate::binary::{Direct, ReadError};
use crate::registry::{Registry, SchemaVersion};
use crate::types::{
    CustomerRegistered, CustomerUpdated, Decision, LoanApplication, LoanEvent, LoanEventBody,
    ModelPromoted,
};

/// The two marker bytes of the Avro single-object encoding.
pub const MAGIC: [u8; 2] = [0xC3, 0x01];
/// Length of the header: magic plus fingerprint.
pub const HEADER_LEN: usize = 10;

/// Why a message could not be decoded. Every variant is bad data: dead-letter it and move on.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum DecodeError {
    /// Shorter than the 10-byte header.
    #[error("message of {len} bytes is shorter than the 10-byte single-object header")]
    TooShort {
        /// Bytes received.
        len: usize,
    },
    /// Does not start with `C3 01`.
    #[error(
        "message does not start with the Avro single-object marker C3 01 (found {found:02X?})"
    )]
    BadMagic {
        /// The first two bytes.
        found: [u8; 2],
    },
    /// The fingerprint names no schema this build knows.
    #[error("unknown schema fingerprint {fingerprint}")]
    UnknownFingerprint {
        /// Hex of the 8 fingerprint bytes.
        fingerprint: String,
    },
    /// A known schema, but of another message type.
    #[error("expected a {expected} message, found {found} v{version}")]
    WrongType {
        /// Family the caller asked for.
        expected: &'static str,
        /// Family the message is.
        found: &'static str,
        /// Its version.
        version: u32,
    },
    /// The body does not decode with the writer schema (truncated or garbage).
    #[error("{family} v{version} body does not decode: {message}")]
    Body {
        /// Family.
        family: &'static str,
        /// Writer version.
        version: u32,
        /// Decoder's message.
        message: String,
    },
    /// Bytes left over after the body.
    #[error("{family} message has {count} trailing bytes after the body")]
    TrailingBytes {
        /// Family.
        family: &'static str,
        /// Bytes left.
        count: usize,
    },
    /// Decoded, but the value cannot be resolved to this build's type.
    #[error("{family} v{version} cannot be read as the current version: {message}")]
    Resolve {
        /// Family.
        family: &'static str,
        /// Writer version.
        version: u32,
        /// Why.
        message: String,
    },
}

impl DecodeError {
    /// A short, bounded class name for metrics labels and dead-letter headers.
    pub fn class(&self) -> &'static str {
        match self {
            Self::TooShort { .. } => "too_short",
            Self::BadMagic { .. } => "bad_magic",
            Self::UnknownFingerprint { .. } => "unknown_fingerprint",
            Self::WrongType { .. } => "wrong_type",
            Self::Body { .. } => "bad_body",
            Self::TrailingBytes { .. } => "trailing_bytes",
            Self::Resolve { .. } => "unresolvable",
        }
    }
}

/// Why a value could not be encoded (a programming error: the types and schemas disagree).
#[derive(Debug, Error)]
#[error("cannot encode {family}: {message}")]
pub struct EncodeError {
    family: &'static str,
    message: String,
}

/// A type carried on a topic in the single-object encoding.
pub trait AvroMessage: Sized {
    /// Avro record name of the family.
    const FAMILY: &'static str;

    /// Build the Avro value of `self` for `schema` (this build's version).
    fn to_avro(&self, schema: &Schema) -> Result<Value, String>;

    /// Read a value decoded with `writer`, resolving it to `reader` (this build's version).
    fn from_avro(value: Value, writer: &Schema, reader: &Schema) -> Result<Self, String>;

    /// Append the body for `version` directly ([`crate::binary`]) when this type has a direct
    /// codec for that version; `false` leaves `out` untouched for the generic path.
    fn write_direct(&self, _version: &SchemaVersion, _out: &mut Vec<u8>) -> bool {
        false
    }

    /// Read a body written with `writer` directly when this type has a direct codec for it
    /// and it is also this build's version; `None` for the generic path.
    fn read_direct(
        _writer: &SchemaVersion,
        _reader: &SchemaVersion,
        _body: &[u8],
    ) -> Option<Result<Self, ReadError>> {
        None
    }
}

/// The serde conversion of a record whose unions are only `["null", T]` to its Avro value.
fn serde_to_avro<T: serde::Serialize>(message: &T, schema: &Schema) -> Result<Value, String> {
    apache_avro::to_value(message)
        .and_then(|v| v.resolve(schema))
        .map_err(|e| e.to_string())
}

/// The serde conversion back, resolving the decoded value to this build's schema.
fn serde_from_avro<T: serde::de::DeserializeOwned>(
    value: Value,
    reader: &Schema,
) -> Result<T, String> {
    let value = value.resolve(reader).map_err(|e| e.to_string())?;
    apache_avro::from_value(&value).map_err(|e| e.to_string())
}

/// Default conversions through serde for records whose unions are only `["null", T]`.
macro_rules! serde_message {
    ($ty:ty, $family:literal) => {
        impl AvroMessage for $ty {
            const FAMILY: &'static str = $family;

            fn to_avro(&self, schema: &Schema) -> Result<Value, String> {
                serde_to_avro(self, schema)
            }

            fn from_avro(value: Value, _writer: &Schema, reader: &Schema) -> Result<Self, String> {
                serde_from_avro(value, reader)
            }
        }
    };
}

/// Serde conversions plus the direct codec of [`crate::binary`] for its version.
macro_rules! direct_message {
    ($ty:ty, $family:literal) => {
        impl AvroMessage for $ty {
            const FAMILY: &'static str = $family;

            fn to_avro(&self, schema: &Schema) -> Result<Value, String> {
                serde_to_avro(self, schema)
            }

            fn from_avro(value: Value, _writer: &Schema, reader: &Schema) -> Result<Self, String> {
                serde_from_avro(value, reader)
            }

            fn write_direct(&self, version: &SchemaVersion, out: &mut Vec<u8>) -> bool {
                if version.family != $family || version.version != <$ty as Direct>::VERSION {
                    return false;
                }
                Direct::write(self, out);
                true
            }

            fn read_direct(
                writer: &SchemaVersion,
                reader: &SchemaVersion,
                body: &[u8],
            ) -> Option<Result<Self, ReadError>> {
                let version = <$ty as Direct>::VERSION;
                (writer.family == $family && writer.version == version && reader.version == version)
                    .then(|| <$ty as Direct>::read(body))
            }
        }
    };
}

direct_message!(LoanApplication, "LoanApplication");
direct_message!(Decision, "Decision");
serde_message!(ModelPromoted, "ModelPromoted");
serde_message!(CustomerRegistered, "CustomerRegistered");
serde_message!(CustomerUpdated, "CustomerUpdated");

/// The schema of each branch of the record field `field`, a union of named records.
fn union_branches<'a>(record: &'a Schema, field: &str) -> Result<&'a [Schema], String> {
    let Schema::Record(r) = record else {
        return Err("not a record schema".into());
    };
    let index = r
        .lookup
        .get(field)
        .ok_or_else(|| format!("no field {field}"))?;
    match r.fields.get(*index).map(|f| &f.schema) {
        Some(Schema::Union(u)) => Ok(u.variants()),
        _ => Err(format!("field {field} is not a union")),
    }
}

fn branch_name(schema: &Schema) -> Option<&str> {
    match schema {
        Schema::Record(r) => Some(r.name.name.as_str()),
        _ => None,
    }
}

fn take_field(fields: &mut Vec<(String, Value)>, name: &str) -> Result<Value, String> {
    let pos = fields
        .iter()
        .position(|(n, _)| n == name)
        .ok_or_else(|| format!("missing field {name}"))?;
    Ok(fields.swap_remove(pos).1)
}

// LoanEvent's body is a union of records, two of which (LoanWrittenOff, LoanMarkedLoss) have the
// same shape. Avro resolves union branches of named types by name; structural matching would
// confuse those two, so the body is resolved here by branch name.
impl AvroMessage for LoanEvent {
    const FAMILY: &'static str = "LoanEvent";

    fn to_avro(&self, schema: &Schema) -> Result<Value, String> {
        let branches = union_branches(schema, "body")?;
        let name = self.body.name();
        let (index, branch) = branches
            .iter()
            .enumerate()
            .find(|(_, b)| branch_name(b) == Some(name))
            .ok_or_else(|| format!("schema has no branch {name}"))?;
        let inner = match &self.body {
            LoanEventBody::LoanDisbursed(e) => apache_avro::to_value(e),
            LoanEventBody::PaymentReceived(e) => apache_avro::to_value(e),
            LoanEventBody::LoanWrittenOff(e) | LoanEventBody::LoanMarkedLoss(e) => {
                apache_avro::to_value(e)
            }
            LoanEventBody::BusinessDayClosed(e) => apache_avro::to_value(e),
        }
        .and_then(|v| v.resolve(branch))
        .map_err(|e| e.to_string())?;
        let index = u32::try_from(index).map_err(|e| e.to_string())?;
        Ok(Value::Record(vec![
            ("event_id".into(), Value::String(self.event_id.clone())),
            (
                "occurred_at".into(),
                Value::TimestampMillis(self.occurred_at.timestamp_millis()),
            ),
            ("body".into(), Value::Union(index, Box::new(inner))),
        ]))
    }

    fn from_avro(value: Value, writer: &Schema, reader: &Schema) -> Result<Self, String> {
        let Value::Record(mut fields) = value else {
            return Err("LoanEvent is not a record".into());
        };
        let event_id = match take_field(&mut fields, "event_id")? {
            Value::String(s) => s,
            other => return Err(format!("event_id is {other:?}")),
        };
        let occurred_at = match take_field(&mut fields, "occurred_at")? {
            Value::TimestampMillis(ms) | Value::Long(ms) => {
                chrono::DateTime::from_timestamp_millis(ms)
                    .ok_or_else(|| format!("occurred_at out of range: {ms}"))?
            }
            other => return Err(format!("occurred_at is {other:?}")),
        };
        let Value::Union(index, inner) = take_field(&mut fields, "body")? else {
            return Err("body is not a union".into());
        };
        let writer_branch = union_branches(writer, "body")?
            .get(index as usize)
            .and_then(branch_name)
            .ok_or_else(|| format!("body branch {index} is not a named record"))?;
        let reader_branch = union_branches(reader, "body")?
            .iter()
            .find(|b| branch_name(b) == Some(writer_branch))
            .ok_or_else(|| format!("this version has no LoanEvent branch {writer_branch}"))?;
        let inner = inner.resolve(reader_branch).map_err(|e| e.to_string())?;
        fn read<T: serde::de::DeserializeOwned>(v: &Value) -> Result<T, String> {
            apache_avro::from_value(v).map_err(|e| e.to_string())
        }
        let body = match writer_branch {
            "LoanDisbursed" => LoanEventBody::LoanDisbursed(read(&inner)?),
            "PaymentReceived" => LoanEventBody::PaymentReceived(read(&inner)?),
            "LoanWrittenOff" => LoanEventBody::LoanWrittenOff(read(&inner)?),
            "LoanMarkedLoss" => LoanEventBody::LoanMarkedLoss(read(&inner)?),
            "BusinessDayClosed" => LoanEventBody::BusinessDayClosed(read(&inner)?),
            other => return Err(format!("unknown LoanEvent branch {other}")),
        };
        Ok(LoanEvent {
            event_id,
            occurred_at,
            body,
        })
    }
}

fn latest(family: &'static str) -> Result<&'static SchemaVersion, String> {
    Registry::global()
        .latest(family)
        .ok_or_else(|| format!("no schema registered for {family}"))
}

/// Encode a message with this build's schema version, in the single-object encoding.
pub fn encode<T: AvroMessage>(message: &T) -> Result<Vec<u8>, EncodeError> {
    let err = |message: String| EncodeError {
        family: T::FAMILY,
        message,
    };
    let version = latest(T::FAMILY).map_err(err)?;
    encode_with(message, version)
}

/// Encode a message with a given schema version (used by compatibility tests and replays).
/// Types with a direct codec for that version ([`crate::binary`]) skip the `Value` tree.
pub fn encode_with<T: AvroMessage>(
    message: &T,
    version: &SchemaVersion,
) -> Result<Vec<u8>, EncodeError> {
    let err = |message: String| EncodeError {
        family: T::FAMILY,
        message,
    };
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&version.fingerprint);
    if message.write_direct(version, &mut out) {
        return Ok(out);
    }
    let value = message.to_avro(&version.schema).map_err(err)?;
    let body =
        apache_avro::to_avro_datum(&version.schema, value).map_err(|e| err(e.to_string()))?;
    out.extend_from_slice(&body);
    Ok(out)
}

/// The writer schema version a message names, after checking its header.
pub fn writer_version(bytes: &[u8]) -> Result<&'static SchemaVersion, DecodeError> {
    let Some((header, _)) = bytes.split_first_chunk::<HEADER_LEN>() else {
        return Err(DecodeError::TooShort { len: bytes.len() });
    };
    let (magic, fingerprint) = header.split_at(2);
    if magic != MAGIC {
        return Err(DecodeError::BadMagic {
            found: [magic[0], magic[1]],
        });
    }
    let mut fp = [0u8; 8];
    fp.copy_from_slice(fingerprint);
    Registry::global()
        .by_fingerprint(&fp)
        .ok_or_else(|| DecodeError::UnknownFingerprint {
            fingerprint: fp.iter().map(|b| format!("{b:02x}")).collect(),
        })
}

/// A byte-slice reader that remembers whether the decoder asked for bytes past the end.
struct EofGuard<'a> {
    rest: &'a [u8],
    hit_eof: bool,
}

impl std::io::Read for EofGuard<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if !buf.is_empty() && self.rest.len() < buf.len() {
            self.hit_eof = true;
        }
        self.rest.read(buf)
    }
}

/// Decode a message of type `T`, resolving any known writer version to this build's version.
pub fn decode<T: AvroMessage>(bytes: &[u8]) -> Result<T, DecodeError> {
    let writer = writer_version(bytes)?;
    if writer.family != T::FAMILY {
        return Err(DecodeError::WrongType {
            expected: T::FAMILY,
            found: writer.family,
            version: writer.version,
        });
    }
    let reader = latest(T::FAMILY).map_err(|message| DecodeError::Resolve {
        family: T::FAMILY,
        version: writer.version,
        message,
    })?;
    if let Some(direct) = T::read_direct(writer, reader, &bytes[HEADER_LEN..]) {
        return direct.map_err(|e| match e {
            ReadError::Truncated => DecodeError::Body {
                family: T::FAMILY,
                version: writer.version,
                message: "truncated: the body ends before the schema does".into(),
            },
            ReadError::Invalid(message) => DecodeError::Body {
                family: T::FAMILY,
                version: writer.version,
                message,
            },
            ReadError::Trailing(count) => DecodeError::TrailingBytes {
                family: T::FAMILY,
                count,
            },
            ReadError::Unrepresentable(message) => DecodeError::Resolve {
                family: T::FAMILY,
                version: writer.version,
                message,
            },
        });
    }
    let mut body = EofGuard {
        rest: &bytes[HEADER_LEN..],
        hit_eof: false,
    };
    let decoded = apache_avro::from_avro_datum(&writer.schema, &mut body, None);
    if body.hit_eof {
        // apache-avro reads a union index cut off by the end of input as null; a message that
        // ran out of bytes anywhere is truncated, whatever the decoder made of it.
        return Err(DecodeError::Body {
            family: T::FAMILY,
            version: writer.version,
            message: "truncated: the body ends before the schema does".into(),
        });
    }
    let value = decoded.map_err(|e| DecodeError::Body {
        family: T::FAMILY,
        version: writer.version,
        message: e.to_string(),
    })?;
    if !body.rest.is_empty() {
        return Err(DecodeError::TrailingBytes {
            family: T::FAMILY,
            count: body.rest.len(),
        });
    }
    T::from_avro(value, &writer.schema, &reader.schema).map_err(|message| DecodeError::Resolve {
        family: T::FAMILY,
        version: writer.version,
        message,
    })
}
