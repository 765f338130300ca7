//! The known schema versions of every message family, and their fingerprints.

use std::collections::HashMap;
use std::sync::OnceLock;

use apache_avro::rabin::Rabin;
use apache_avro::Schema;

/// Largest allocation the decoder may make for one string, bytes or array.
///
/// Messages are a few hundred bytes; a length prefix beyond this is garbage, refused before
/// any memory is reserved for it.
pub const MAX_ALLOCATION_BYTES: usize = 4 * 1024 * 1024;

/// A family of schema versions (oldest first) under one Avro record name.
#[derive(Debug)]
pub struct Family {
    /// Record name, e.g. `LoanApplication`.
    pub name: &'static str,
    /// Schema texts, version 1 first.
    pub versions: &'static [&'static str],
}

/// Every family the codec knows, with every version ever published.
pub const FAMILIES: &[Family] = &[
    Family {
        name: "LoanApplication",
        versions: &[include_str!("../avro/loan_application.v1.avsc")],
    },
    Family {
        name: "Decision",
        versions: &[include_str!("../avro/decision.v1.avsc")],
    },
    Family {
        name: "LoanEvent",
        versions: &[include_str!("../avro/loan_event.v1.avsc")],
    },
    Family {
        name: "ModelPromoted",
        versions: &[include_str!("../avro/model_promoted.v1.avsc")],
    },
    Family {
        name: "CustomerRegistered",
        versions: &[include_str!("../avro/customer_registered.v1.avsc")],
    },
    Family {
        name: "CustomerUpdated",
        versions: &[include_str!("../avro/customer_updated.v1.avsc")],
    },
];

/// One parsed schema version.
#[derive(Debug)]
pub struct SchemaVersion {
    /// Family record name.
    pub family: &'static str,
    /// 1-based version number.
    pub version: u32,
    /// Parsed schema.
    pub schema: Schema,
    /// The schema text as published.
    pub text: &'static str,
    /// CRC-64-AVRO fingerprint of the parsing canonical form, little-endian.
    pub fingerprint: [u8; 8],
}

/// All parsed versions, indexed by family and by fingerprint.
#[derive(Debug)]
pub struct Registry {
    by_family: HashMap<&'static str, Vec<SchemaVersion>>,
    by_fingerprint: HashMap<[u8; 8], (&'static str, usize)>,
}

/// Why a set of schema families is not a registry.
#[derive(Debug, thiserror::Error)]
pub enum SchemaSetError {
    /// A schema does not parse.
    #[error("{family} v{version} does not parse")]
    Parse {
        /// Family.
        family: &'static str,
        /// Version (from 1).
        version: usize,
        /// Why.
        #[source]
        source: Box<apache_avro::Error>,
    },
    /// A schema parses but breaks a rule of the set (not a record, misnamed, duplicated).
    #[error("{0}")]
    Invalid(String),
}

impl Registry {
    /// The process-wide registry, parsed once.
    ///
    /// The schema texts are compiled into the binary and checked by this crate's tests, so a
    /// parse failure here is a build defect, reported at first use.
    pub fn global() -> &'static Registry {
        static REGISTRY: OnceLock<Registry> = OnceLock::new();
        REGISTRY.get_or_init(|| {
            apache_avro::util::max_allocation_bytes(MAX_ALLOCATION_BYTES);
            #[allow(clippy::expect_used)]
            Registry::build(FAMILIES).expect("embedded Avro schemas parse")
        })
    }

    /// Parse a set of families.
    pub fn build(families: &[Family]) -> Result<Registry, SchemaSetError> {
        let mut by_family = HashMap::new();
        let mut by_fingerprint = HashMap::new();
        for family in families {
            let mut versions = Vec::new();
            for (i, text) in family.versions.iter().enumerate() {
                let schema = Schema::parse_str(text).map_err(|source| SchemaSetError::Parse {
                    family: family.name,
                    version: i + 1,
                    source: Box::new(source),
                })?;
                let name = match &schema {
                    Schema::Record(r) => r.name.name.clone(),
                    _ => {
                        return Err(SchemaSetError::Invalid(format!(
                            "{} v{} is not a record",
                            family.name,
                            i + 1
                        )))
                    }
                };
                if name != family.name {
                    return Err(SchemaSetError::Invalid(format!(
                        "{} v{} names record {name}",
                        family.name,
                        i + 1
                    )));
                }
                let mut fingerprint = [0u8; 8];
                let fp = schema.fingerprint::<Rabin>();
                fingerprint.copy_from_slice(&fp.bytes[..8]);
                if by_fingerprint
                    .insert(fingerprint, (family.name, i))
                    .is_some()
                {
                    return Err(SchemaSetError::Invalid(format!(
                        "{} v{} duplicates a fingerprint",
                        family.name,
                        i + 1
                    )));
                }
                versions.push(SchemaVersion {
                    family: family.name,
                    version: u32::try_from(i + 1).unwrap_or(u32::MAX),
                    schema,
                    text,
                    fingerprint,
                });
            }
            by_family.insert(family.name, versions);
        }
        Ok(Registry {
            by_family,
            by_fingerprint,
        })
    }

    /// Every version of a family, oldest first.
    pub fn versions(&self, family: &str) -> &[SchemaVersion] {
        self.by_family.get(family).map_or(&[], Vec::as_slice)
    }

    /// The newest version of a family: what this build writes and reads into.
    pub fn latest(&self, family: &str) -> Option<&SchemaVersion> {
        self.versions(family).last()
    }

    /// The version with this fingerprint.
    pub fn by_fingerprint(&self, fingerprint: &[u8; 8]) -> Option<&SchemaVersion> {
        let (family, index) = self.by_fingerprint.get(fingerprint)?;
        self.by_family.get(family)?.get(*index)
    }
}
