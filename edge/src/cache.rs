//! Portfolio answers kept in memory. The figures change only when the book closes a business
//! day, so an answer is fresh for a second; after that the first caller refreshes it while every
//! other caller is still served the previous answer (stale-while-revalidate), so a read costs
//! what serving bytes costs and an expiry never sends a burst of callers to the database.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;

struct Entry {
    at: Instant,
    bytes: Bytes,
    refreshing: bool,
}

/// What the cache has for a key.
pub enum Lookup {
    /// Fresh: serve it.
    Fresh(Bytes),
    /// Expired, and another caller is refreshing it: serve it.
    Stale(Bytes),
    /// Expired (or absent) and this caller must compute it; `Some` holds the previous answer
    /// to serve if computing fails.
    Compute(Option<Bytes>),
}

/// Rendered JSON answers by key.
#[derive(Clone)]
pub struct ReadCache {
    ttl: Duration,
    entries: Arc<RwLock<HashMap<String, Entry>>>,
}

impl ReadCache {
    /// A cache keeping answers fresh for `ttl` (zero disables it).
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Arc::default(),
        }
    }

    /// Look `key` up; an expired entry is handed to exactly one caller to refresh.
    pub fn lookup(&self, key: &str) -> Lookup {
        if self.ttl.is_zero() {
            return Lookup::Compute(None);
        }
        if let Ok(entries) = self.entries.read() {
            match entries.get(key) {
                None => return Lookup::Compute(None),
                Some(e) if e.at.elapsed() < self.ttl => return Lookup::Fresh(e.bytes.clone()),
                Some(e) if e.refreshing => return Lookup::Stale(e.bytes.clone()),
                Some(_) => {}
            }
        }
        let Ok(mut entries) = self.entries.write() else {
            return Lookup::Compute(None);
        };
        match entries.get_mut(key) {
            None => Lookup::Compute(None),
            Some(e) if e.at.elapsed() < self.ttl => Lookup::Fresh(e.bytes.clone()),
            Some(e) if e.refreshing => Lookup::Stale(e.bytes.clone()),
            Some(e) => {
                e.refreshing = true;
                Lookup::Compute(Some(e.bytes.clone()))
            }
        }
    }

    /// Keep `bytes` as the answer for `key`.
    pub fn put(&self, key: String, bytes: Bytes) {
        if self.ttl.is_zero() {
            return;
        }
        if let Ok(mut entries) = self.entries.write() {
            if entries.len() > 1_000 {
                let ttl = self.ttl * 10;
                entries.retain(|_, e| e.at.elapsed() < ttl);
            }
            entries.insert(
                key,
                Entry {
                    at: Instant::now(),
                    bytes,
                    refreshing: false,
                },
            );
        }
    }

    /// A refresh of `key` failed: let the next caller try again.
    pub fn release(&self, key: &str) {
        if let Ok(mut entries) = self.entries.write() {
            if let Some(e) = entries.get_mut(key) {
                e.refreshing = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expired_answer_is_refreshed_by_one_caller_while_the_others_get_it_stale() {
        let c = ReadCache::new(Duration::from_millis(20));
        assert!(matches!(c.lookup("k"), Lookup::Compute(None)));
        c.put("k".into(), Bytes::from_static(b"1"));
        assert!(matches!(c.lookup("k"), Lookup::Fresh(b) if &b[..] == b"1"));
        std::thread::sleep(Duration::from_millis(30));
        assert!(matches!(c.lookup("k"), Lookup::Compute(Some(b)) if &b[..] == b"1"));
        assert!(matches!(c.lookup("k"), Lookup::Stale(b) if &b[..] == b"1"));
        c.release("k");
        assert!(matches!(c.lookup("k"), Lookup::Compute(Some(_))));
        c.put("k".into(), Bytes::from_static(b"2"));
        assert!(matches!(c.lookup("k"), Lookup::Fresh(b) if &b[..] == b"2"));
    }

    #[test]
    fn a_zero_ttl_keeps_nothing() {
        let off = ReadCache::new(Duration::ZERO);
        off.put("k".into(), Bytes::from_static(b"{}"));
        assert!(matches!(off.lookup("k"), Lookup::Compute(None)));
    }
}
