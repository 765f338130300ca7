//! The scorer benchmarks' input: generated applications, in memory or encoded beside an
//! embedded cluster with the scorer's topics.

use ingest::generator::sink::MemorySink;
use ingest::generator::{generate, GeneratorSettings};
use runtime::kafka::EmbeddedKafka;
use runtime::settings::Topics;
use schemas::LoanApplication;

/// `n` applications of the synthetic lender (six months of arrivals, no loan performance).
pub fn applications(n: u64, seed: u64) -> anyhow::Result<Vec<LoanApplication>> {
    let mut sink = MemorySink::default();
    let g = GeneratorSettings {
        applications: n,
        seed,
        months: 6,
        performance_months: 0,
        ..GeneratorSettings::default()
    };
    generate(&g, &Default::default(), &mut sink, &mut |_, _| {})?;
    Ok(sink.applications)
}

/// An embedded cluster with the scorer's topics, and `n` generated applications encoded for
/// them (key, bytes).
pub async fn cluster_with_applications(
    brokers: i32,
    topics: &Topics,
    n: u64,
    seed: u64,
) -> anyhow::Result<(EmbeddedKafka, Vec<(String, Vec<u8>)>)> {
    let kafka = EmbeddedKafka::start(
        brokers,
        &[
            (topics.applications.clone(), 6),
            (topics.decisions.clone(), 6),
            (topics.dlq(&topics.applications), 1),
            (topics.model_updates.clone(), 1),
        ],
    )?;
    let apps = tokio::task::spawn_blocking(move || applications(n, seed)).await??;
    let payloads = apps
        .iter()
        .map(|a| Ok((a.application_id.clone(), schemas::encode(a)?)))
        .collect::<anyhow::Result<_>>()?;
    Ok((kafka, payloads))
}
