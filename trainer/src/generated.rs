//! A training set from the synthetic lender: feature set v1 of every generated application,
//! labelled by a draw from its true PD (the generator's own outcome model), so a model can be
//! trained without a loan book (benchmarks, tests, first start).

use crate::error::TrainError;
use ingest::generator::sink::MemorySink;
use ingest::generator::{generate, GeneratorSettings};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use risk_core::features;
use risk_core::settings::DomainSettings;
use schemas::LoanApplication;

/// Rows, labels and the applications they came from.
pub struct Dataset {
    /// Row-major features.
    pub rows: Vec<f32>,
    /// 1 = default.
    pub labels: Vec<f32>,
    /// Applications, in row order.
    pub applications: Vec<LoanApplication>,
    /// True PD per row.
    pub true_pd: Vec<f64>,
}

/// Generate `settings.applications` applications and label them.
pub fn dataset(
    settings: &GeneratorSettings,
    domain: &DomainSettings,
) -> Result<Dataset, TrainError> {
    let mut sink = MemorySink::default();
    generate(settings, domain, &mut sink, &mut |_, _| {})?;
    let mut rng = ChaCha8Rng::seed_from_u64(settings.seed ^ 0x1abe1);
    let mut rows = Vec::with_capacity(sink.applications.len() * features::LEN);
    let mut labels = Vec::with_capacity(sink.applications.len());
    let mut true_pd = Vec::with_capacity(sink.applications.len());
    for (app, truth) in sink.applications.iter().zip(&sink.truth) {
        rows.extend(features::compute(app));
        labels.push(if rng.gen::<f64>() < truth.true_pd {
            1.0
        } else {
            0.0
        });
        true_pd.push(truth.true_pd);
    }
    Ok(Dataset {
        rows,
        labels,
        applications: sink.applications,
        true_pd,
    })
}
