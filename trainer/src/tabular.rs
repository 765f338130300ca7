//! Any tabular CSV with a binary target column, for benchmarks on public credit data.
//!
//! A column is numeric when every non-empty value parses as a number; otherwise it is
//! categorical and encoded as the rank of its value among the column's sorted distinct values
//! (deterministic). Empty cells, `NA`, `NaN` and `?` are missing and stay missing (NaN) for
//! XGBoost to route.

use crate::error::TrainError;
use std::path::Path;

use risk_core::features::prohibited_in;

/// A loaded dataset.
#[derive(Debug, Clone)]
pub struct Table {
    /// Feature column names, in column order.
    pub columns: Vec<String>,
    /// Row-major values.
    pub rows: Vec<f32>,
    /// 0/1 labels.
    pub labels: Vec<f32>,
    /// Columns encoded as categories.
    pub categorical: Vec<String>,
}

impl Table {
    /// Rows.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

fn missing(cell: &str) -> bool {
    matches!(cell.trim(), "" | "NA" | "NaN" | "nan" | "?" | "null")
}

/// Read `path`, taking `target` as the label and dropping `drop`. Refuses a missing target
/// column, a non-binary target, an empty or single-class dataset and prohibited attributes.
pub fn load(path: &Path, target: &str, drop: &[String]) -> Result<Table, TrainError> {
    let csv = |source| TrainError::Csv {
        path: path.to_path_buf(),
        source,
    };
    let table = |message: String| TrainError::Table {
        path: path.to_path_buf(),
        message,
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(path)
        .map_err(csv)?;
    let headers: Vec<String> = reader
        .headers()
        .map_err(csv)?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let target_at = headers
        .iter()
        .position(|h| h == target)
        .ok_or_else(|| table(format!("no target column {target:?}")))?;
    for d in drop {
        if !headers.contains(d) {
            return Err(table(format!("--drop names {d:?}, which it does not have")));
        }
    }
    let keep: Vec<usize> = (0..headers.len())
        .filter(|i| *i != target_at && !drop.contains(&headers[*i]))
        .collect();
    let columns: Vec<String> = keep.iter().map(|i| headers[*i].clone()).collect();
    let banned = prohibited_in(columns.iter().map(String::as_str));
    if !banned.is_empty() {
        return Err(table(format!(
            "refusing prohibited attributes as features: {} (drop them with --drop)",
            banned.join(", ")
        )));
    }
    let mut cells: Vec<Vec<String>> = vec![Vec::new(); keep.len()];
    let mut labels = Vec::new();
    for (line, record) in reader.records().enumerate() {
        let record = record.map_err(csv)?;
        let y = record.get(target_at).unwrap_or("").trim();
        labels.push(match y {
            "1" | "1.0" => 1.0,
            "0" | "0.0" => 0.0,
            other => {
                return Err(table(format!(
                    "row {}: target {other:?} is not 0 or 1",
                    line + 2
                )))
            }
        });
        for (slot, i) in keep.iter().enumerate() {
            cells[slot].push(record.get(*i).unwrap_or("").to_string());
        }
    }
    if labels.is_empty() {
        return Err(table("no rows".into()));
    }
    let bads = labels.iter().filter(|y| **y > 0.5).count();
    if bads == 0 || bads == labels.len() {
        return Err(TrainError::OneClass(path.display().to_string()));
    }
    let n = labels.len();
    let mut by_column: Vec<Vec<f32>> = Vec::with_capacity(keep.len());
    let mut categorical = Vec::new();
    for (slot, column) in cells.iter().enumerate() {
        let numeric = column
            .iter()
            .all(|c| missing(c) || c.trim().parse::<f64>().is_ok());
        if numeric {
            by_column.push(
                column
                    .iter()
                    .map(|c| {
                        if missing(c) {
                            f32::NAN
                        } else {
                            c.trim().parse::<f64>().map_or(f32::NAN, |v| v as f32)
                        }
                    })
                    .collect(),
            );
        } else {
            let mut levels: Vec<&str> = column
                .iter()
                .map(|c| c.trim())
                .filter(|c| !missing(c))
                .collect();
            levels.sort_unstable();
            levels.dedup();
            by_column.push(
                column
                    .iter()
                    .map(|c| {
                        if missing(c) {
                            f32::NAN
                        } else {
                            levels
                                .binary_search(&c.trim())
                                .map_or(f32::NAN, |i| i as f32)
                        }
                    })
                    .collect(),
            );
            categorical.push(columns[slot].clone());
        }
    }
    let mut rows = Vec::with_capacity(n * columns.len());
    for r in 0..n {
        for col in &by_column {
            rows.push(col[r]);
        }
    }
    Ok(Table {
        columns,
        rows,
        labels,
        categorical,
    })
}
