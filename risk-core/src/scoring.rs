//! Score scaling (points to double the odds) and risk grades.

use serde::{Deserialize, Serialize};

/// PDO score scaling. Odds are good:bad, `(1 − PD) / PD`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScoreScaling {
    /// Score at `base_odds` (600): the industry's customary anchor.
    pub base_score: f64,
    /// Good:bad odds that score `base_score` (30:1).
    pub base_odds: f64,
    /// Points to double the odds (40).
    pub pdo: f64,
    /// Lowest reported score (300).
    pub min_score: i32,
    /// Highest reported score (850).
    pub max_score: i32,
}

impl Default for ScoreScaling {
    fn default() -> Self {
        Self {
            base_score: 600.0,
            base_odds: 30.0,
            pdo: 40.0,
            min_score: 300,
            max_score: 850,
        }
    }
}

/// A scaled score.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// Reported score, rounded and clamped.
    pub value: i32,
    /// Whether the clamp changed it.
    pub clamped: bool,
}

impl ScoreScaling {
    /// `factor = PDO / ln 2`.
    pub fn factor(&self) -> f64 {
        self.pdo / std::f64::consts::LN_2
    }

    /// `offset = base_score − factor · ln(base_odds)`.
    pub fn offset(&self) -> f64 {
        self.base_score - self.factor() * self.base_odds.ln()
    }

    /// Unclamped score for good:bad `odds`.
    pub fn raw_from_odds(&self, odds: f64) -> f64 {
        self.offset() + self.factor() * odds.ln()
    }

    /// Unclamped score for a PD; PD is kept inside (0, 1) so the log-odds are finite.
    pub fn raw(&self, pd: f64) -> f64 {
        let pd = pd.clamp(1e-12, 1.0 - 1e-12);
        self.raw_from_odds((1.0 - pd) / pd)
    }

    /// The reported score: rounded, clamped to `[min_score, max_score]`, and whether it was clamped.
    pub fn score(&self, pd: f64) -> Score {
        let raw = self.raw(pd).round();
        let lo = f64::from(self.min_score);
        let hi = f64::from(self.max_score);
        let clamped = raw < lo || raw > hi;
        Score {
            value: raw.clamp(lo, hi) as i32,
            clamped,
        }
    }

    /// Score points of a log-odds (bad) contribution φ: `−factor · φ`.
    pub fn points(&self, contribution: f64) -> f64 {
        -self.factor() * contribution
    }
}

/// Risk grades by PD: upper bounds (exclusive) of A, B, C and D; E above.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GradeBands {
    /// Upper PD bounds of grades A-D, ascending (1%, 3%, 8%, 20%).
    pub upper_bounds: [f64; 4],
}

impl Default for GradeBands {
    fn default() -> Self {
        Self {
            upper_bounds: [0.01, 0.03, 0.08, 0.20],
        }
    }
}

impl GradeBands {
    /// Grade letter A-E for a PD.
    pub fn grade(&self, pd: f64) -> &'static str {
        const LETTERS: [&str; 5] = ["A", "B", "C", "D", "E"];
        let index = self
            .upper_bounds
            .iter()
            .position(|bound| pd < *bound)
            .unwrap_or(4);
        LETTERS[index]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_odds_score_the_base_score() {
        let s = ScoreScaling::default();
        assert!((s.raw(1.0 / 31.0) - 600.0).abs() < 1e-9);
        assert_eq!(
            s.score(1.0 / 31.0),
            Score {
                value: 600,
                clamped: false
            }
        );
    }

    #[test]
    fn a_near_certain_default_is_clamped_to_three_hundred() {
        let s = ScoreScaling::default().score(0.999_999);
        assert_eq!(
            s,
            Score {
                value: 300,
                clamped: true
            }
        );
    }

    #[test]
    fn grades_follow_the_pd_bands() {
        let g = GradeBands::default();
        assert_eq!(g.grade(0.005), "A");
        assert_eq!(g.grade(0.01), "B");
        assert_eq!(g.grade(0.05), "C");
        assert_eq!(g.grade(0.10), "D");
        assert_eq!(g.grade(0.20), "E");
    }
}
