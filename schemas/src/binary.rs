//! Avro binary bodies written and read directly for the hot messages of this build's schema
//! version (applications in, decisions out), without building an Avro `Value` tree.
//!
//! The bytes are exactly those of the generic path (`apache_avro::to_avro_datum` of the same
//! schema); `tests/codec.rs` holds the two to each other on generated messages, and rejects
//! the same malformed bodies. Other versions and families go through the generic path.

use chrono::{DateTime, Utc};

use crate::types::{
    Applicant, Bureau, Challenger, Decision, EmploymentType, LoanApplication, LoanTerms, Outcome,
    Purpose, Reason, Residence,
};

/// Why a body could not be read directly.
#[derive(Debug, Clone, PartialEq)]
pub enum ReadError {
    /// The body ends before the schema does.
    Truncated,
    /// A value the schema does not allow (bad union or enum index, bad UTF-8, bad boolean).
    Invalid(String),
    /// Bytes left over after the body.
    Trailing(usize),
    /// Decoded, but not a value of the Rust type (a timestamp out of range).
    Unrepresentable(String),
}

/// Appends Avro binary values.
struct Writer<'a>(&'a mut Vec<u8>);

impl Writer<'_> {
    fn long(&mut self, n: i64) {
        let mut z = ((n << 1) ^ (n >> 63)) as u64;
        loop {
            if z < 0x80 {
                self.0.push(z as u8);
                return;
            }
            self.0.push((z as u8 & 0x7f) | 0x80);
            z >>= 7;
        }
    }

    fn int(&mut self, n: i32) {
        self.long(i64::from(n));
    }

    fn string(&mut self, s: &str) {
        self.long(s.len() as i64);
        self.0.extend_from_slice(s.as_bytes());
    }

    fn double(&mut self, x: f64) {
        self.0.extend_from_slice(&x.to_le_bytes());
    }

    fn float(&mut self, x: f32) {
        self.0.extend_from_slice(&x.to_le_bytes());
    }

    fn boolean(&mut self, b: bool) {
        self.0.push(u8::from(b));
    }

    fn optional_double(&mut self, x: Option<f64>) {
        match x {
            None => self.long(0),
            Some(v) => {
                self.long(1);
                self.double(v);
            }
        }
    }

    fn optional_long(&mut self, x: Option<i64>) {
        match x {
            None => self.long(0),
            Some(v) => {
                self.long(1);
                self.long(v);
            }
        }
    }

    /// An array as one block: its count, the items, then the closing zero.
    fn array<T>(&mut self, items: &[T], mut item: impl FnMut(&mut Self, &T)) {
        if !items.is_empty() {
            self.long(items.len() as i64);
            for i in items {
                item(self, i);
            }
        }
        self.long(0);
    }
}

/// Reads Avro binary values from a body.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ReadError> {
        if self.rest.len() < n {
            return Err(ReadError::Truncated);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn long(&mut self) -> Result<i64, ReadError> {
        let mut z: u64 = 0;
        for shift in (0..70).step_by(7) {
            let [b] = self.take(1)? else {
                return Err(ReadError::Truncated);
            };
            z |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok((z >> 1) as i64 ^ -((z & 1) as i64));
            }
        }
        Err(ReadError::Invalid("varint longer than 10 bytes".into()))
    }

    fn int(&mut self) -> Result<i32, ReadError> {
        let n = self.long()?;
        i32::try_from(n).map_err(|_| ReadError::Invalid(format!("int out of range: {n}")))
    }

    fn len(&mut self) -> Result<usize, ReadError> {
        let n = self.long()?;
        usize::try_from(n).map_err(|_| ReadError::Invalid(format!("negative length {n}")))
    }

    fn string(&mut self) -> Result<String, ReadError> {
        let n = self.len()?;
        let bytes = self.take(n)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|e| ReadError::Invalid(format!("string is not UTF-8: {e}")))
    }

    fn double(&mut self) -> Result<f64, ReadError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_le_bytes(a))
    }

    fn float(&mut self) -> Result<f32, ReadError> {
        let b = self.take(4)?;
        let mut a = [0u8; 4];
        a.copy_from_slice(b);
        Ok(f32::from_le_bytes(a))
    }

    fn boolean(&mut self) -> Result<bool, ReadError> {
        match self.take(1)? {
            [0] => Ok(false),
            [1] => Ok(true),
            other => Err(ReadError::Invalid(format!("boolean byte {other:?}"))),
        }
    }

    /// A union or enum index below `n`.
    fn index(&mut self, n: usize, what: &str) -> Result<usize, ReadError> {
        let i = self.long()?;
        usize::try_from(i)
            .ok()
            .filter(|i| *i < n)
            .ok_or_else(|| ReadError::Invalid(format!("{what} index {i} out of range")))
    }

    fn enumerated<T: Copy>(&mut self, symbols: &[T], what: &str) -> Result<T, ReadError> {
        Ok(symbols[self.index(symbols.len(), what)?])
    }

    fn optional<T>(
        &mut self,
        value: impl FnOnce(&mut Self) -> Result<T, ReadError>,
    ) -> Result<Option<T>, ReadError> {
        match self.index(2, "union")? {
            0 => Ok(None),
            _ => value(self).map(Some),
        }
    }

    /// An array in blocks (a negative count is followed by the block's size in bytes).
    fn array<T>(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Result<T, ReadError>,
    ) -> Result<Vec<T>, ReadError> {
        let mut out = Vec::new();
        loop {
            let count = self.long()?;
            if count == 0 {
                return Ok(out);
            }
            if count < 0 {
                self.long()?;
            }
            let count = usize::try_from(count.unsigned_abs())
                .map_err(|_| ReadError::Invalid("array block too large".into()))?;
            if count > self.rest.len() {
                // Every item takes at least one byte.
                return Err(ReadError::Truncated);
            }
            for _ in 0..count {
                out.push(item(self)?);
            }
        }
    }

    fn timestamp(&mut self) -> Result<DateTime<Utc>, ReadError> {
        let ms = self.long()?;
        DateTime::from_timestamp_millis(ms)
            .ok_or_else(|| ReadError::Unrepresentable(format!("timestamp out of range: {ms}")))
    }

    fn finish(self) -> Result<(), ReadError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(ReadError::Trailing(self.rest.len()))
        }
    }
}

const OUTCOMES: [Outcome; 3] = [Outcome::Approve, Outcome::Refer, Outcome::Decline];

fn outcome_index(o: Outcome) -> i32 {
    match o {
        Outcome::Approve => 0,
        Outcome::Refer => 1,
        Outcome::Decline => 2,
    }
}

fn symbol_index<T: PartialEq>(symbols: &[T], value: &T) -> i32 {
    symbols.iter().position(|s| s == value).unwrap_or(0) as i32
}

/// A message whose current-version body is written and read directly.
pub trait Direct: Sized {
    /// The schema version the direct code is written for.
    const VERSION: u32;
    /// Append the body.
    fn write(&self, out: &mut Vec<u8>);
    /// Read a whole body.
    fn read(body: &[u8]) -> Result<Self, ReadError>;
}

impl Direct for LoanApplication {
    const VERSION: u32 = 1;

    fn write(&self, out: &mut Vec<u8>) {
        let mut w = Writer(out);
        w.string(&self.application_id);
        w.string(&self.customer_id);
        w.long(self.submitted_at.timestamp_millis());
        w.string(&self.channel);
        let a = &self.applicant;
        w.int(a.age);
        w.int(symbol_index(&EmploymentType::ALL, &a.employment_type));
        w.float(a.years_employed);
        w.long(a.monthly_income);
        w.long(a.existing_emi);
        w.int(a.dependents);
        w.int(symbol_index(&Residence::ALL, &a.residence));
        match &self.bureau {
            None => w.long(0),
            Some(b) => {
                w.long(1);
                for v in [
                    b.bureau_score,
                    b.history_months,
                    b.delinquencies_24m,
                    b.inquiries_6m,
                    b.revolving_utilisation_bps,
                    b.open_accounts,
                ] {
                    w.int(v);
                }
            }
        }
        let l = &self.loan;
        w.long(l.amount);
        w.int(l.tenure_months);
        w.int(l.interest_rate_bps);
        w.int(symbol_index(&Purpose::ALL, &l.purpose));
        w.optional_long(l.collateral_value);
        w.string(&self.currency);
    }

    fn read(body: &[u8]) -> Result<Self, ReadError> {
        let mut r = Reader { rest: body };
        let application_id = r.string()?;
        let customer_id = r.string()?;
        let submitted_at = r.timestamp()?;
        let channel = r.string()?;
        let applicant = Applicant {
            age: r.int()?,
            employment_type: r.enumerated(&EmploymentType::ALL, "EmploymentType")?,
            years_employed: r.float()?,
            monthly_income: r.long()?,
            existing_emi: r.long()?,
            dependents: r.int()?,
            residence: r.enumerated(&Residence::ALL, "Residence")?,
        };
        let bureau = r.optional(|r| {
            Ok(Bureau {
                bureau_score: r.int()?,
                history_months: r.int()?,
                delinquencies_24m: r.int()?,
                inquiries_6m: r.int()?,
                revolving_utilisation_bps: r.int()?,
                open_accounts: r.int()?,
            })
        })?;
        let loan = LoanTerms {
            amount: r.long()?,
            tenure_months: r.int()?,
            interest_rate_bps: r.int()?,
            purpose: r.enumerated(&Purpose::ALL, "Purpose")?,
            collateral_value: r.optional(Reader::long)?,
        };
        let currency = r.string()?;
        r.finish()?;
        Ok(LoanApplication {
            application_id,
            customer_id,
            submitted_at,
            channel,
            applicant,
            bureau,
            loan,
            currency,
        })
    }
}

impl Direct for Decision {
    const VERSION: u32 = 1;

    fn write(&self, out: &mut Vec<u8>) {
        let mut w = Writer(out);
        w.string(&self.application_id);
        w.string(&self.customer_id);
        w.long(self.decided_at.timestamp_millis());
        w.string(&self.model_version);
        w.string(&self.feature_set_version);
        w.double(self.pd);
        w.int(self.score);
        w.boolean(self.score_clamped);
        w.string(&self.grade);
        w.int(outcome_index(self.decision));
        w.array(&self.reasons, |w, r| {
            w.string(&r.code);
            w.string(&r.feature);
            w.optional_double(r.value);
            w.double(r.points);
        });
        w.array(&self.rule_hits, |w, s| w.string(s));
        w.long(self.emi);
        w.double(self.foir);
        w.optional_double(self.ltv);
        match &self.challenger {
            None => w.long(0),
            Some(c) => {
                w.long(1);
                w.string(&c.model_version);
                w.double(c.pd);
            }
        }
    }

    fn read(body: &[u8]) -> Result<Self, ReadError> {
        let mut r = Reader { rest: body };
        let decision = Decision {
            application_id: r.string()?,
            customer_id: r.string()?,
            decided_at: r.timestamp()?,
            model_version: r.string()?,
            feature_set_version: r.string()?,
            pd: r.double()?,
            score: r.int()?,
            score_clamped: r.boolean()?,
            grade: r.string()?,
            decision: r.enumerated(&OUTCOMES, "Outcome")?,
            reasons: r.array(|r| {
                Ok(Reason {
                    code: r.string()?,
                    feature: r.string()?,
                    value: r.optional(Reader::double)?,
                    points: r.double()?,
                })
            })?,
            rule_hits: r.array(Reader::string)?,
            emi: r.long()?,
            foir: r.double()?,
            ltv: r.optional(Reader::double)?,
            challenger: r.optional(|r| {
                Ok(Challenger {
                    model_version: r.string()?,
                    pd: r.double()?,
                })
            })?,
        };
        r.finish()?;
        Ok(decision)
    }
}
