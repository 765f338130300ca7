//! Where generated records go: files (JSON Lines or Avro object containers), Kafka, or memory.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use schemas::codec::AvroMessage;
use schemas::registry::Registry;
use schemas::{CustomerRegistered, Decision, LoanApplication, LoanEvent};
use serde::Serialize;

/// A write failed; generation stops (nothing is silently dropped).
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// File trouble.
    #[error("{path}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A record could not be written as JSON.
    #[error("encoding a record as JSON")]
    Json(#[from] serde_json::Error),
    /// A record could not be written as Avro.
    #[error("encoding a record as Avro")]
    Avro(#[source] Box<apache_avro::Error>),
    /// A record and its schema disagree (a defect).
    #[error("encoding: {0}")]
    Schema(String),
    /// Kafka refused or timed out.
    #[error("Kafka")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// Messages the brokers never acknowledged.
    #[error("{0} messages were not acknowledged")]
    Unacknowledged(u64),
    /// The consumer of the output asked to stop (Ctrl-C during a paced stream).
    #[error("stopped")]
    Stopped,
}

/// The truth about one application, never part of any event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TruthRow {
    /// Application.
    pub application_id: String,
    /// Customer.
    pub customer_id: String,
    /// Origination month, `YYYY-MM`.
    pub month: String,
    /// True 12-month PD at the terms applied for.
    pub true_pd: f64,
    /// Legacy decision.
    pub decision: String,
    /// Loan id when disbursed.
    pub loan_id: Option<String>,
}

/// Receives generated records in business-date order.
pub trait Sink {
    /// A new customer.
    fn customer(&mut self, c: &CustomerRegistered) -> Result<(), SinkError>;
    /// An application.
    fn application(&mut self, a: &LoanApplication) -> Result<(), SinkError>;
    /// The legacy decision on it.
    fn decision(&mut self, d: &Decision) -> Result<(), SinkError>;
    /// A loan event (including the day-end ticks).
    fn event(&mut self, e: &LoanEvent) -> Result<(), SinkError>;
    /// The ground truth of an application.
    fn truth(&mut self, t: &TruthRow) -> Result<(), SinkError>;
    /// Flush everything.
    fn finish(&mut self) -> Result<(), SinkError>;
}

/// Collects everything in memory (tests, small samples).
#[derive(Debug, Default)]
pub struct MemorySink {
    /// Customers.
    pub customers: Vec<CustomerRegistered>,
    /// Applications.
    pub applications: Vec<LoanApplication>,
    /// Decisions.
    pub decisions: Vec<Decision>,
    /// Events.
    pub events: Vec<LoanEvent>,
    /// Truth.
    pub truth: Vec<TruthRow>,
}

impl Sink for MemorySink {
    fn customer(&mut self, c: &CustomerRegistered) -> Result<(), SinkError> {
        self.customers.push(c.clone());
        Ok(())
    }
    fn application(&mut self, a: &LoanApplication) -> Result<(), SinkError> {
        self.applications.push(a.clone());
        Ok(())
    }
    fn decision(&mut self, d: &Decision) -> Result<(), SinkError> {
        self.decisions.push(d.clone());
        Ok(())
    }
    fn event(&mut self, e: &LoanEvent) -> Result<(), SinkError> {
        self.events.push(e.clone());
        Ok(())
    }
    fn truth(&mut self, t: &TruthRow) -> Result<(), SinkError> {
        self.truth.push(t.clone());
        Ok(())
    }
    fn finish(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

/// File formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    /// One JSON object per line.
    Jsonl,
    /// Avro object container files (the same schemas as the topics).
    Avro,
}

enum Out {
    Json(BufWriter<File>),
    Avro(Box<apache_avro::Writer<'static, BufWriter<File>>>),
}

struct Stream {
    path: PathBuf,
    /// The schema records are written with, looked up once.
    schema: &'static apache_avro::Schema,
    out: Out,
}

/// Avro's zig-zag variable-length `long`.
fn write_long(out: &mut impl Write, value: i64) -> std::io::Result<()> {
    let mut n = ((value << 1) ^ (value >> 63)) as u64;
    loop {
        let byte = (n & 0x7F) as u8;
        n >>= 7;
        if n == 0 {
            return out.write_all(&[byte]);
        }
        out.write_all(&[byte | 0x80])?;
    }
}

/// The object container header: magic, metadata (schema, codec) in a fixed order, sync marker.
fn write_container_header(
    out: &mut impl Write,
    schema: &str,
    marker: &[u8; 16],
) -> std::io::Result<()> {
    out.write_all(b"Obj\x01")?;
    let entries: [(&str, &[u8]); 2] = [("avro.schema", schema.as_bytes()), ("avro.codec", b"null")];
    write_long(out, entries.len() as i64)?;
    for (key, value) in entries {
        write_long(out, key.len() as i64)?;
        out.write_all(key.as_bytes())?;
        write_long(out, value.len() as i64)?;
        out.write_all(value)?;
    }
    write_long(out, 0)?;
    out.write_all(marker)
}

impl Stream {
    fn open(
        dir: &Path,
        name: &str,
        family: &'static str,
        format: FileFormat,
        seed: u64,
    ) -> Result<Self, SinkError> {
        let ext = match format {
            FileFormat::Jsonl => "jsonl",
            FileFormat::Avro => "avro",
        };
        let path = dir.join(format!("{name}.{ext}"));
        let file = File::create(&path).map_err(|source| SinkError::Io {
            path: path.clone(),
            source,
        })?;
        let buf = BufWriter::with_capacity(1 << 20, file);
        let version = Registry::global()
            .latest(family)
            .ok_or_else(|| SinkError::Schema(format!("no schema for {family}")))?;
        let out = match format {
            FileFormat::Jsonl => Out::Json(buf),
            FileFormat::Avro => {
                // A sync marker derived from the seed, and a header written in a fixed order,
                // keep output byte-identical across runs.
                let mut marker = [0u8; 16];
                marker[..8].copy_from_slice(&seed.to_le_bytes());
                marker[8..].copy_from_slice(&(name.len() as u64 ^ 0x5EED_CAFE).to_le_bytes());
                let mut buf = buf;
                write_container_header(&mut buf, version.text, &marker).map_err(|source| {
                    SinkError::Io {
                        path: path.clone(),
                        source,
                    }
                })?;
                Out::Avro(Box::new(
                    apache_avro::Writer::builder()
                        .schema(&version.schema)
                        .writer(buf)
                        .marker(marker)
                        .has_header(true)
                        .build(),
                ))
            }
        };
        Ok(Self {
            path,
            schema: &version.schema,
            out,
        })
    }

    fn write<T: AvroMessage + Serialize>(&mut self, record: &T) -> Result<(), SinkError> {
        let path = &self.path;
        let io = |source| SinkError::Io {
            path: path.clone(),
            source,
        };
        match &mut self.out {
            Out::Json(w) => {
                serde_json::to_writer(&mut *w, record)?;
                w.write_all(b"\n").map_err(io)
            }
            Out::Avro(w) => {
                let value = record.to_avro(self.schema).map_err(SinkError::Schema)?;
                w.append(value).map_err(|e| SinkError::Avro(Box::new(e)))?;
                Ok(())
            }
        }
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        let path = self.path.clone();
        match &mut self.out {
            Out::Json(w) => w.flush().map_err(|source| SinkError::Io { path, source }),
            Out::Avro(w) => {
                w.flush().map_err(|e| SinkError::Avro(Box::new(e)))?;
                w.get_mut()
                    .flush()
                    .map_err(|source| SinkError::Io { path, source })
            }
        }
    }
}

/// Writes the ground truth to `ground_truth.csv` (used alone when events go to Kafka).
pub struct TruthSink {
    out: BufWriter<File>,
    path: PathBuf,
}

impl TruthSink {
    /// Create `dir/ground_truth.csv` with its header.
    pub fn create(dir: &Path) -> Result<Self, SinkError> {
        std::fs::create_dir_all(dir).map_err(|source| SinkError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join("ground_truth.csv");
        let io = |source| SinkError::Io {
            path: dir.join("ground_truth.csv"),
            source,
        };
        let mut out = BufWriter::new(File::create(&path).map_err(io)?);
        out.write_all(b"application_id,customer_id,month,true_pd,decision,loan_id\n")
            .map_err(io)?;
        Ok(Self { out, path })
    }

    fn io(&self) -> impl FnOnce(std::io::Error) -> SinkError + '_ {
        move |source| SinkError::Io {
            path: self.path.clone(),
            source,
        }
    }
}

impl Sink for TruthSink {
    fn customer(&mut self, _: &CustomerRegistered) -> Result<(), SinkError> {
        Ok(())
    }
    fn application(&mut self, _: &LoanApplication) -> Result<(), SinkError> {
        Ok(())
    }
    fn decision(&mut self, _: &Decision) -> Result<(), SinkError> {
        Ok(())
    }
    fn event(&mut self, _: &LoanEvent) -> Result<(), SinkError> {
        Ok(())
    }
    fn truth(&mut self, t: &TruthRow) -> Result<(), SinkError> {
        let result = writeln!(
            self.out,
            "{},{},{},{:.8},{},{}",
            t.application_id,
            t.customer_id,
            t.month,
            t.true_pd,
            t.decision,
            t.loan_id.as_deref().unwrap_or("")
        );
        result.map_err(self.io())
    }
    fn finish(&mut self) -> Result<(), SinkError> {
        let result = self.out.flush();
        result.map_err(self.io())
    }
}

/// Writes one file per topic plus `ground_truth.csv` into a directory.
pub struct FileSink {
    customers: Stream,
    applications: Stream,
    decisions: Stream,
    events: Stream,
    truth: TruthSink,
}

impl FileSink {
    /// Create the directory and the files (existing files are replaced).
    pub fn create(dir: &Path, format: FileFormat, seed: u64) -> Result<Self, SinkError> {
        let truth = TruthSink::create(dir)?;
        Ok(Self {
            customers: Stream::open(dir, "customers", "CustomerRegistered", format, seed)?,
            applications: Stream::open(dir, "loan_applications", "LoanApplication", format, seed)?,
            decisions: Stream::open(dir, "loan_decisions", "Decision", format, seed)?,
            events: Stream::open(dir, "loan_events", "LoanEvent", format, seed)?,
            truth,
        })
    }
}

impl Sink for FileSink {
    fn customer(&mut self, c: &CustomerRegistered) -> Result<(), SinkError> {
        self.customers.write(c)
    }
    fn application(&mut self, a: &LoanApplication) -> Result<(), SinkError> {
        self.applications.write(a)
    }
    fn decision(&mut self, d: &Decision) -> Result<(), SinkError> {
        self.decisions.write(d)
    }
    fn event(&mut self, e: &LoanEvent) -> Result<(), SinkError> {
        self.events.write(e)
    }
    fn truth(&mut self, t: &TruthRow) -> Result<(), SinkError> {
        self.truth.truth(t)
    }
    fn finish(&mut self) -> Result<(), SinkError> {
        self.customers.finish()?;
        self.applications.finish()?;
        self.decisions.finish()?;
        self.events.finish()?;
        self.truth.finish()
    }
}

/// Passes on customers, applications and the ground truth only: a live stream of new
/// applications for the scorer, without the legacy decisions and loan events of the history.
pub struct ApplicationsOnly<S: Sink>(pub S);

impl<S: Sink> Sink for ApplicationsOnly<S> {
    fn customer(&mut self, c: &CustomerRegistered) -> Result<(), SinkError> {
        self.0.customer(c)
    }
    fn application(&mut self, a: &LoanApplication) -> Result<(), SinkError> {
        self.0.application(a)
    }
    fn decision(&mut self, _: &Decision) -> Result<(), SinkError> {
        Ok(())
    }
    fn event(&mut self, _: &LoanEvent) -> Result<(), SinkError> {
        Ok(())
    }
    fn truth(&mut self, t: &TruthRow) -> Result<(), SinkError> {
        self.0.truth(t)
    }
    fn finish(&mut self) -> Result<(), SinkError> {
        self.0.finish()
    }
}

impl<S: Sink + ?Sized> Sink for Box<S> {
    fn customer(&mut self, c: &CustomerRegistered) -> Result<(), SinkError> {
        (**self).customer(c)
    }
    fn application(&mut self, a: &LoanApplication) -> Result<(), SinkError> {
        (**self).application(a)
    }
    fn decision(&mut self, d: &Decision) -> Result<(), SinkError> {
        (**self).decision(d)
    }
    fn event(&mut self, e: &LoanEvent) -> Result<(), SinkError> {
        (**self).event(e)
    }
    fn truth(&mut self, t: &TruthRow) -> Result<(), SinkError> {
        (**self).truth(t)
    }
    fn finish(&mut self) -> Result<(), SinkError> {
        (**self).finish()
    }
}
