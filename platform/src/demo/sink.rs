//! The demo's publisher of the synthetic world: the history as it happened, then the live days
//! at a pace, with the scorer's decisions replacing the legacy lender's.

use std::collections::{HashMap, HashSet};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use edge::decisions::{DecisionWaiter, Wait};
use ingest::generator::kafka::KafkaSink;
use ingest::generator::sink::{Sink, SinkError, TruthRow, TruthSink};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use schemas::{CustomerRegistered, Decision, LoanApplication, LoanEvent, LoanEventBody, Outcome};
use tokio_util::sync::CancellationToken;

/// Commit `group`'s offsets at the end of `topic`, so a scorer joining it decides only what
/// arrives from now on (the history's applications were decided by the legacy lender).
pub(super) fn start_group_at_end(brokers: &str, group: &str, topic: &str) -> anyhow::Result<()> {
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()?;
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let mut tpl = TopicPartitionList::new();
    for t in metadata.topics() {
        for p in t.partitions() {
            let (_, high) = consumer.fetch_watermarks(topic, p.id(), Duration::from_secs(10))?;
            tpl.add_partition_offset(topic, p.id(), Offset::Offset(high))?;
        }
    }
    consumer.commit(&tpl, CommitMode::Sync)?;
    Ok(())
}

/// Publishes the synthetic world: the history as it happened, then (after the handshake) the
/// live days at a pace, with the scorer's decisions replacing the legacy lender's.
pub(super) struct DemoSink {
    pub(super) inner: KafkaSink<TruthSink>,
    pub(super) last_history_day: NaiveDate,
    pub(super) live: bool,
    pub(super) history_done: Option<tokio::sync::oneshot::Sender<()>>,
    pub(super) go: mpsc::Receiver<bool>,
    pub(super) waiter: DecisionWaiter,
    pub(super) pending: HashMap<String, (NaiveDate, Wait)>,
    pub(super) dropped: HashSet<String>,
    pub(super) day: Duration,
    pub(super) next_tick: Instant,
    pub(super) shutdown: CancellationToken,
    pub(super) handle: tokio::runtime::Handle,
    pub(super) retrain: tokio::sync::mpsc::UnboundedSender<NaiveDate>,
    pub(super) retrain_every: u32,
    pub(super) live_days: u32,
    pub(super) exit_after: Option<u32>,
}

impl DemoSink {
    fn check(&self) -> Result<(), SinkError> {
        if self.shutdown.is_cancelled() {
            Err(SinkError::Stopped)
        } else {
            Ok(())
        }
    }
}

impl Sink for DemoSink {
    fn customer(&mut self, c: &CustomerRegistered) -> Result<(), SinkError> {
        self.check()?;
        self.inner.customer(c)
    }

    fn application(&mut self, a: &LoanApplication) -> Result<(), SinkError> {
        self.check()?;
        if self.live {
            let day = a.submitted_at.date_naive();
            self.pending.insert(
                a.application_id.clone(),
                (day, self.waiter.wait(&a.application_id)),
            );
        }
        self.inner.application(a)
    }

    fn decision(&mut self, d: &Decision) -> Result<(), SinkError> {
        if self.live {
            // Live, the scorer decides; the legacy lender's decision is not published.
            Ok(())
        } else {
            self.inner.decision(d)
        }
    }

    fn event(&mut self, e: &LoanEvent) -> Result<(), SinkError> {
        self.check()?;
        match &e.body {
            LoanEventBody::LoanDisbursed(d) if self.live => {
                if let Some((_, wait)) = self.pending.remove(&d.application_id) {
                    let decided = self.handle.block_on(wait.within(Duration::from_secs(10)));
                    if !decided.is_some_and(|x| x.decision == Outcome::Approve) {
                        self.dropped.insert(d.loan_id.clone());
                        return Ok(());
                    }
                }
                self.inner.event(e)
            }
            LoanEventBody::BusinessDayClosed(t) => {
                if self.live {
                    let now = Instant::now();
                    if self.next_tick > now {
                        std::thread::sleep(self.next_tick - now);
                    }
                    self.check()?;
                    self.next_tick = Instant::now().max(self.next_tick) + self.day;
                    self.inner.event(e)?;
                    self.live_days += 1;
                    let horizon = t.business_date - chrono::Duration::days(10);
                    self.pending.retain(|_, (day, _)| *day >= horizon);
                    if self.retrain_every > 0 && self.live_days.is_multiple_of(self.retrain_every) {
                        let _ = self.retrain.send(t.business_date);
                    }
                    if self.exit_after.is_some_and(|n| self.live_days >= n) {
                        return Err(SinkError::Stopped);
                    }
                    return Ok(());
                }
                self.inner.event(e)?;
                if t.business_date >= self.last_history_day {
                    if let Some(tx) = self.history_done.take() {
                        let _ = tx.send(());
                    }
                    // Wait for the book to catch up, the first model and the scorer.
                    if !self.go.recv().unwrap_or(false) {
                        return Err(SinkError::Stopped);
                    }
                    self.live = true;
                    self.next_tick = Instant::now();
                }
                Ok(())
            }
            body => {
                if body.loan_id().is_some_and(|id| self.dropped.contains(id)) {
                    return Ok(());
                }
                self.inner.event(e)
            }
        }
    }

    fn truth(&mut self, t: &TruthRow) -> Result<(), SinkError> {
        self.inner.truth(t)
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        self.inner.finish()
    }
}
