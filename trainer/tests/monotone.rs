//! The monotone constraints declared with the feature set hold in a trained model: PD never
//! falls as FOIR (or loan-to-income, delinquencies) rises with everything else fixed, and the
//! artifact reloads and predicts identically.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use risk_core::features;
use risk_core::model::Artifact;
use trainer::xgb::XgbParams;

#[test]
fn pd_never_falls_as_foir_rises_and_the_artifact_reloads_identically() {
    let params = XgbParams {
        rounds: 80,
        max_depth: 5,
        ..XgbParams::default()
    };
    let artifact = trainer::quick::train_on_generated("mono", 8_000, 3, &params).unwrap();
    let bytes = serde_json::to_vec(&artifact).unwrap();
    let names = features::names();
    let loaded = Artifact::load(&bytes, features::VERSION, &names).unwrap();
    let again = Artifact::load(
        &serde_json::to_vec(&artifact).unwrap(),
        features::VERSION,
        &names,
    )
    .unwrap();

    let settings = ingest::generator::GeneratorSettings {
        applications: 300,
        seed: 9,
        performance_months: 0,
        ..Default::default()
    };
    let mut sink = ingest::generator::sink::MemorySink::default();
    ingest::generator::generate(&settings, &Default::default(), &mut sink, &mut |_, _| {}).unwrap();
    for name in ["foir", "loan_to_income", "delinquencies_24m"] {
        let j = names.iter().position(|n| *n == name).unwrap();
        let grid: Vec<f32> = (0..60)
            .map(|k| {
                k as f32
                    * 0.05
                    * if name == "delinquencies_24m" {
                        20.0
                    } else {
                        1.0
                    }
            })
            .collect();
        for app in &sink.applications {
            let mut x = features::compute(app);
            let mut last = f32::NEG_INFINITY;
            for v in &grid {
                x[j] = *v;
                let pd = loaded.flat.predict(&x);
                assert!(
                    pd >= last - 1e-7,
                    "{name}: PD fell from {last} to {pd} at {v}"
                );
                last = pd;
                assert_eq!(pd.to_bits(), again.flat.predict(&x).to_bits());
                assert_eq!(pd.to_bits(), loaded.ensemble.predict(&x).to_bits());
            }
        }
    }
}
