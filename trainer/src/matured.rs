//! Training data from the loan book: matured loans with the application as submitted.
//!
//! A loan is matured when its performance window (default 12 months) has elapsed by the last
//! closed business date; its label is 1 when it was ever more than 90 days past due within the
//! window. Features are `risk_core::features` of the stored application: the scorer's code.

use book::training;
use chrono::{Datelike, Months, NaiveDate};
use futures::TryStreamExt;
use risk_core::features;
use schemas::LoanApplication;
use sqlx::PgPool;

use crate::error::TrainError;

/// Matured loans as a training set, in origination order.
#[derive(Debug, Default)]
pub struct BookData {
    /// Row-major features.
    pub rows: Vec<f32>,
    /// 1 = bad (DPD > 90 within the window).
    pub labels: Vec<f32>,
    /// Origination month of each row (year × 12 + month − 1).
    pub months: Vec<i32>,
    /// First and last disbursal dates.
    pub window: Option<(NaiveDate, NaiveDate)>,
    /// Last closed business date the labels are read at.
    pub as_of: Option<NaiveDate>,
    /// FNV-1a hash of rows and labels.
    pub data_hash: String,
    /// Application id of each row (to join outside knowledge, such as a generator's truth).
    pub application_ids: Vec<String>,
}

impl BookData {
    /// Rows.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

fn fnv(hash: &mut u64, bytes: &[u8]) {
    for b in bytes {
        *hash ^= u64::from(*b);
        *hash = hash.wrapping_mul(0x100_0000_01b3);
    }
}

/// Read the matured loans (streaming: only the feature matrix is kept). `progress` gets the
/// rows read so far.
pub async fn load_matured(
    pool: &PgPool,
    window_months: u32,
    mut progress: impl FnMut(u64),
) -> Result<BookData, TrainError> {
    let Some(as_of) = training::labels_as_of(pool).await? else {
        return Err(TrainError::NothingMatured);
    };
    let cutoff = as_of
        .checked_sub_months(Months::new(window_months))
        .ok_or(TrainError::Window(window_months))?;
    let mut data = BookData {
        as_of: Some(as_of),
        ..BookData::default()
    };
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    let mut stream = training::matured(
        pool,
        cutoff,
        i32::try_from(window_months).map_err(|_| TrainError::Window(window_months))?,
    );
    // Rows are parsed and their features computed on blocking threads, a chunk at a time, while
    // the next rows stream in; chunks are absorbed in order, so the result is deterministic.
    const CHUNK: usize = 8_192;
    let mut chunk: Vec<(String, NaiveDate, bool)> = Vec::with_capacity(CHUNK);
    let mut inflight: std::collections::VecDeque<
        tokio::task::JoinHandle<Result<Parsed, TrainError>>,
    > = std::collections::VecDeque::new();
    let mut absorb = |parsed: Parsed, data: &mut BookData, hash: &mut u64| {
        for (k, x) in parsed.rows.chunks(features::LEN).enumerate() {
            for v in x {
                fnv(hash, &v.to_le_bytes());
            }
            fnv(hash, &[u8::from(parsed.labels[k] > 0.5)]);
        }
        data.rows.extend_from_slice(&parsed.rows);
        data.labels.extend_from_slice(&parsed.labels);
        data.months.extend_from_slice(&parsed.months);
        data.application_ids.extend(parsed.ids);
        if let Some((first, last)) = parsed.window {
            data.window = Some(match data.window {
                None => (first, last),
                Some((f, _)) => (f, last),
            });
        }
        progress(data.labels.len() as u64);
    };
    loop {
        let row = stream.try_next().await?;
        let done = row.is_none();
        if let Some(row) = row {
            chunk.push((row.payload, row.disbursed_on, row.defaulted));
        }
        if chunk.len() == CHUNK || (done && !chunk.is_empty()) {
            let work = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
            inflight.push_back(tokio::task::spawn_blocking(move || parse_chunk(work)));
        }
        while inflight.len() > 2 || (done && !inflight.is_empty()) {
            let Some(handle) = inflight.pop_front() else {
                break;
            };
            let parsed = handle.await??;
            absorb(parsed, &mut data, &mut hash);
        }
        if done {
            break;
        }
    }
    data.data_hash = format!("fnv1a64:{hash:016x}");
    Ok(data)
}

/// One chunk of rows, parsed.
struct Parsed {
    rows: Vec<f32>,
    labels: Vec<f32>,
    months: Vec<i32>,
    ids: Vec<String>,
    window: Option<(NaiveDate, NaiveDate)>,
}

fn parse_chunk(chunk: Vec<(String, NaiveDate, bool)>) -> Result<Parsed, TrainError> {
    let mut p = Parsed {
        rows: Vec::with_capacity(chunk.len() * features::LEN),
        labels: Vec::with_capacity(chunk.len()),
        months: Vec::with_capacity(chunk.len()),
        ids: Vec::with_capacity(chunk.len()),
        window: None,
    };
    for (payload, disbursed, bad) in chunk {
        let app: LoanApplication =
            serde_json::from_str(&payload).map_err(TrainError::StoredApplication)?;
        p.rows.extend_from_slice(&features::compute(&app));
        p.labels.push(if bad { 1.0 } else { 0.0 });
        p.months
            .push(disbursed.year() * 12 + i32::try_from(disbursed.month0()).unwrap_or(0));
        p.ids.push(app.application_id);
        p.window = Some(match p.window {
            None => (disbursed, disbursed),
            Some((first, _)) => (first, disbursed),
        });
    }
    Ok(p)
}
