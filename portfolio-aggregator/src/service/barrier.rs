//! The day barrier: events partitions held at a day-end tick until the day is closed, then
//! resumed with their held messages first.

use chrono::NaiveDate;
use rdkafka::consumer::Consumer;
use rdkafka::TopicPartitionList;

use super::error::AggregatorError;
use super::state::Loop;

impl Loop {
    /// Resume the events partitions whose day has closed, from the offsets in the book.
    pub(super) fn release_closed_days(&mut self) -> Result<(), AggregatorError> {
        let dates: Vec<NaiveDate> = self.waiting.values().copied().collect();
        let closed = match self
            .handle
            .block_on(book::write::offsets::closed_days(&self.pool, &dates))
        {
            Ok(closed) => closed,
            Err(error) => {
                // The held partitions stay paused; the next poll asks again.
                self.metrics.database_errors.inc();
                tracing::warn!(%error, "Cannot read which business days are closed");
                return Ok(());
            }
        };
        if closed.is_empty() {
            return Ok(());
        }
        let ready: Vec<i32> = self
            .waiting
            .iter()
            .filter(|(_, d)| closed.contains(d))
            .map(|(p, _)| *p)
            .collect();
        self.resume_from_book(&ready)
    }

    /// Resume waiting partitions: their held messages are delivered first, in order.
    pub(super) fn resume_from_book(&mut self, partitions: &[i32]) -> Result<(), AggregatorError> {
        if partitions.is_empty() {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        for p in partitions {
            tpl.add_partition(&self.svc.topics.events, *p);
            self.waiting.remove(p);
            if let Some(held) = self.held.remove(p) {
                self.replay.extend(held);
            }
        }
        self.consumer.resume(&tpl).map_err(AggregatorError::Kafka)
    }

    /// Make the consumer's pause state match the loop's: waiting events partitions paused,
    /// every other assigned partition fetching (a rebalance or a failed call can leave them
    /// otherwise).
    pub(super) fn reconcile_pauses(&mut self) {
        let Ok(assignment) = self.consumer.assignment() else {
            return;
        };
        let events = &self.svc.topics.events;
        let mut pause = TopicPartitionList::new();
        let mut resume = TopicPartitionList::new();
        for e in assignment.elements() {
            if e.topic() == events && self.waiting.contains_key(&e.partition()) {
                pause.add_partition(e.topic(), e.partition());
            } else {
                resume.add_partition(e.topic(), e.partition());
            }
        }
        if pause.count() > 0 {
            let _ = self.consumer.pause(&pause);
        }
        if resume.count() > 0 {
            let _ = self.consumer.resume(&resume);
        }
    }

    /// Whether every events partition assigned to this consumer waits at a day-end tick.
    pub(super) fn all_at_barrier(&self) -> bool {
        let Ok(assignment) = self.consumer.assignment() else {
            return false;
        };
        let events = &self.svc.topics.events;
        let mut any = false;
        for e in assignment.elements() {
            if e.topic() == events {
                any = true;
                if !self.waiting.contains_key(&e.partition()) {
                    return false;
                }
            }
        }
        any
    }

    pub(super) fn pause_waiting(&mut self, partition: i32, date: NaiveDate) {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&self.svc.topics.events, partition);
        if let Err(error) = self.consumer.pause(&tpl) {
            tracing::warn!(%error, "Cannot pause a partition at the day-end tick");
        }
        self.waiting.insert(partition, date);
    }
}
