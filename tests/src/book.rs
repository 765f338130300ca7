//! A generated history applied to a book as the aggregator would: applications and decisions
//! in batches, loan events a business day per transaction.

use book::message::{Incoming, Payload, Source};
use book::write::{apply_batch, ApplyContext};
use ingest::generator::sink::MemorySink;
use ingest::generator::{generate, GeneratorSettings};
use risk_core::settings::DomainSettings;
use schemas::LoanEventBody;
use sqlx::PgPool;

/// Generate `settings`' history and apply it to the (migrated) book on `pool`.
pub async fn load_generated(pool: &PgPool, settings: &GeneratorSettings) -> anyhow::Result<()> {
    let mut sink = MemorySink::default();
    generate(
        settings,
        &DomainSettings::default(),
        &mut sink,
        &mut |_, _| {},
    )?;
    let ctx = ApplyContext {
        group: "generated".into(),
        event_partitions: 1,
        domain: DomainSettings::default(),
    };
    let apply = |batch: Vec<Incoming>| {
        let ctx = &ctx;
        async move {
            let mut tx = pool.begin().await?;
            apply_batch(&mut tx, ctx, &batch).await?;
            tx.commit().await?;
            anyhow::Ok(())
        }
    };
    let mut batch = Vec::new();
    let mut offset = 0;
    for a in &sink.applications {
        batch.push(Incoming::decoded(
            Source::Applications,
            offset,
            Payload::Application(Box::new(a.clone())),
        ));
        offset += 1;
    }
    for d in &sink.decisions {
        batch.push(Incoming::decoded(
            Source::Decisions,
            offset,
            Payload::Decision(Box::new(d.clone())),
        ));
        offset += 1;
    }
    for chunk in batch.chunks(5_000) {
        apply(chunk.to_vec()).await?;
    }
    let mut day = Vec::new();
    for (i, e) in sink.events.iter().enumerate() {
        let tick = matches!(e.body, LoanEventBody::BusinessDayClosed(_));
        day.push(Incoming::decoded(
            Source::Events,
            i as i64,
            Payload::Event(Box::new(e.clone())),
        ));
        if tick {
            apply(std::mem::take(&mut day)).await?;
        }
    }
    Ok(())
}
