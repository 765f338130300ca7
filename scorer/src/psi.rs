//! Population stability of each feature over a sliding window of recent applications, against
//! the training distribution stored in the model artifact.

use std::collections::VecDeque;

use risk_core::model::artifact::Distribution;

/// PSI of a window's counts per bin against the training shares (missing is a bin): 0 for an
/// empty window.
pub fn psi(expected: &[f64], actual_counts: &[u64]) -> f64 {
    if actual_counts.iter().all(|c| *c == 0) {
        return 0.0;
    }
    risk_core::metrics::psi(expected, &risk_core::metrics::shares(actual_counts))
}

struct Feature {
    name: String,
    edges: Vec<f64>,
    /// Expected shares: bins then missing.
    expected: Vec<f64>,
    counts: Vec<u64>,
}

impl Feature {
    fn bin(&self, v: f32) -> usize {
        if v.is_nan() {
            return self.edges.len() + 1;
        }
        let v = f64::from(v);
        self.edges
            .iter()
            .position(|e| v <= *e)
            .unwrap_or(self.edges.len())
    }
}

/// Bin counts over the last `capacity` applications.
pub struct PsiWindow {
    features: Vec<Feature>,
    recent: VecDeque<Vec<u16>>,
    capacity: usize,
}

impl PsiWindow {
    /// A window over the features whose distributions the artifact carries.
    pub fn new(distributions: &[Distribution], capacity: usize) -> Self {
        let features = distributions
            .iter()
            .map(|d| {
                let mut expected = d.shares.clone();
                let observed: f64 = 1.0 - d.missing;
                for e in &mut expected {
                    *e *= observed;
                }
                expected.push(d.missing);
                Feature {
                    name: d.name.clone(),
                    edges: d.edges.clone(),
                    counts: vec![0; expected.len()],
                    expected,
                }
            })
            .collect();
        Self {
            features,
            recent: VecDeque::with_capacity(capacity),
            capacity: capacity.max(1),
        }
    }

    /// Count one application's features (in feature-set order).
    pub fn observe(&mut self, x: &[f32]) {
        if self.features.is_empty() {
            return;
        }
        let bins: Vec<u16> = self
            .features
            .iter_mut()
            .zip(x)
            .map(|(f, v)| {
                let b = f.bin(*v);
                f.counts[b] += 1;
                u16::try_from(b).unwrap_or(u16::MAX)
            })
            .collect();
        self.recent.push_back(bins);
        if self.recent.len() > self.capacity {
            if let Some(old) = self.recent.pop_front() {
                for (f, b) in self.features.iter_mut().zip(old) {
                    if let Some(c) = f.counts.get_mut(usize::from(b)) {
                        *c -= 1;
                    }
                }
            }
        }
    }

    /// PSI of each feature now.
    pub fn current(&self) -> Vec<(&str, f64)> {
        self.features
            .iter()
            .map(|f| (f.name.as_str(), psi(&f.expected, &f.counts)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unchanged_population_has_a_psi_near_zero_and_a_shifted_one_does_not() {
        assert!(psi(&[0.5, 0.5], &[500, 500]).abs() < 1e-12);
        assert!(psi(&[0.5, 0.5], &[900, 100]) > 0.25);
    }

    #[test]
    fn the_window_forgets_old_applications() {
        let d = Distribution {
            name: "f".into(),
            edges: vec![0.0],
            shares: vec![0.5, 0.5],
            missing: 0.0,
        };
        let mut w = PsiWindow::new(&[d], 10);
        for _ in 0..10 {
            w.observe(&[-1.0]);
        }
        assert!(w.current()[0].1 > 1.0);
        for i in 0..10 {
            w.observe(&[if i % 2 == 0 { -1.0 } else { 1.0 }]);
        }
        assert!(w.current()[0].1 < 0.01);
    }
}
