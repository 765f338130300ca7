//! Exact path-dependent TreeSHAP, as XGBoost computes its `pred_contribs`: per-feature
//! contributions in log-odds that, with the bias (base margin plus each tree's cover-weighted
//! mean), sum to the margin.
//!
//! # How it is computed
//! A leaf `l` with value `v` whose root path tests the distinct features `P` (`d = |P|`) gives
//! feature `i ∈ P`
//!
//! ```text
//! φ_i += v · (o_i − z_i) · Σ_{S ⊆ P∖{i}} |S|!(d−1−|S|)!/d! · Π_{j∈S} o_j · Π_{j∈P∖S∖{i}} z_j
//! ```
//!
//! where `z_j` is the share of training cover that follows the path at `j`'s splits and `o_j`
//! is 1 when the row follows the path at every split on `j`, else 0 (Lundberg, Erion & Lee 2018).
//! Because every `o_j` is 0 or 1, a leaf's contributions depend only on which of its `d`
//! features the row follows: one of `2^d` patterns. [`Explainer::new`] evaluates the sum for
//! every pattern of every leaf once (the idea of Fast TreeSHAP v2, Yang 2021); explaining a row
//! is then one pass over each tree's nodes to find each leaf's pattern, and one table row per
//! leaf. A tree whose paths test more than [`MAX_TABLE_FEATURES`] distinct features is
//! explained by the recursive algorithm (Algorithm 2 of the paper, as in XGBoost) instead.
//!
//! # Layout
//! - `mod.rs`: [`Explainer`], the public API: preparation, single rows, batches.
//! - `recursive.rs`: the recursive algorithm and the trees' mean values.
//! - `tables.rs`: the pattern tables and each tree's layout for the lookup, built once.
//! - `kernels.rs`: the lookup: a row's table rows per tree and their sums, one row or
//!   [`LANES`] rows at a time.
//!
//! `mod.rs` uses the other three; `kernels.rs` uses `tables.rs`; nothing else uses a sibling.

mod kernels;
mod recursive;
mod tables;

pub use kernels::LANES;
pub use tables::MAX_TABLE_FEATURES;

use super::ensemble::Ensemble;
use kernels::BANKS;
use recursive::{mean_value, recurse, PathElement};
use tables::{table_tree, TableTree, SLOTS};

#[derive(Debug, Clone)]
enum TreeExplainer {
    Table(TableTree),
    /// Index of the tree in the ensemble, explained recursively.
    Recursive(usize),
}

/// Precomputed per-model data for explanations.
#[derive(Debug, Clone)]
pub struct Explainer {
    /// Expected value of the margin: base margin + Σ tree means. The bias of every explanation.
    pub bias: f64,
    buffer_len: usize,
    trees: Vec<TreeExplainer>,
    table: Vec<f32>,
    max_nodes: usize,
    /// Most direction-bit words of any tree.
    max_words: usize,
    /// Units of all trees.
    units: usize,
}

impl Explainer {
    /// Prepare explanations for an ensemble.
    pub fn new(model: &Ensemble) -> Self {
        let bias = f64::from(model.base_margin)
            + model.trees.iter().map(|t| mean_value(t, 0)).sum::<f64>();
        let d = model.max_depth() + 4;
        let max_nodes = model.trees.iter().map(|t| t.nodes.len()).max().unwrap_or(0);
        let mut table = Vec::new();
        let trees: Vec<TreeExplainer> = model
            .trees
            .iter()
            .enumerate()
            .map(
                |(k, t)| match table_tree(t, model.num_features, max_nodes, &mut table) {
                    Some(walk) => TreeExplainer::Table(walk),
                    None => TreeExplainer::Recursive(k),
                },
            )
            .collect();
        table.shrink_to_fit();
        let max_words = trees
            .iter()
            .map(|t| match t {
                TreeExplainer::Table(walk) => walk.words,
                TreeExplainer::Recursive(_) => 0,
            })
            .max()
            .unwrap_or(0);
        let units = trees
            .iter()
            .map(|t| match t {
                TreeExplainer::Table(walk) => walk.units.len(),
                TreeExplainer::Recursive(_) => 0,
            })
            .sum();
        Self {
            bias,
            buffer_len: d * (d + 1) / 2,
            trees,
            table,
            max_nodes,
            max_words,
            units,
        }
    }

    /// Read the first and last value of each table row at `rows`: loads that depend on nothing
    /// else, so the processor has many of them under way at once.
    fn touch(&self, rows: &[u32]) -> u32 {
        let mut acc = 0;
        let mut next = 0;
        for tree in &self.trees {
            if let TreeExplainer::Table(walk) = tree {
                let end = next + walk.units.len();
                let last = walk.width.saturating_sub(1);
                for r in rows.get(next..end).unwrap_or_default() {
                    let r = *r as usize;
                    let first = self.table.get(r).map_or(0, |v| v.to_bits());
                    let end = self.table.get(r + last).map_or(0, |v| v.to_bits());
                    acc ^= first ^ end;
                }
                next = end;
            }
        }
        acc
    }

    /// Bytes held by the precomputed tables.
    pub fn table_bytes(&self) -> usize {
        self.table.len() * std::mem::size_of::<f32>()
    }

    /// SHAP contributions of each feature to the margin of `x` (log-odds). With
    /// [`Explainer::bias`] they sum to the margin.
    pub fn contributions(&self, model: &Ensemble, x: &[f32]) -> Vec<f64> {
        if x.len() < model.num_features {
            // Features past the row's end are missing.
            let mut padded = x.to_vec();
            padded.resize(model.num_features, f32::NAN);
            return self.contributions(model, &padded);
        }
        let mut phi = vec![0.0; model.num_features];
        let mut banks = Box::new([[0.0; SLOTS]; BANKS]);
        // One slot past the nodes stays zero for units' unused direction slots.
        // First every table row the row needs, then one light pass that reads each (so that
        // many are fetched from memory at once), then the sums.
        let mut state = vec![0u32; self.max_nodes + 1];
        let mut dirs = vec![0u64; self.max_words];
        let mut rows = Vec::with_capacity(self.units);
        let clean = !x.iter().any(|v| v.is_nan());
        // Table trees only exist for models whose features fit the slots: read without checks.
        let mut values = [f32::NAN; SLOTS];
        for (slot, v) in values.iter_mut().zip(x) {
            *slot = *v;
        }
        for tree in &self.trees {
            if let TreeExplainer::Table(walk) = tree {
                if clean {
                    walk.rows::<true>(&values, &mut state, &mut dirs, &mut rows);
                } else {
                    walk.rows::<false>(&values, &mut state, &mut dirs, &mut rows);
                }
            }
        }
        std::hint::black_box(self.touch(&rows));
        let mut buffer = Vec::new();
        let mut next = 0;
        for tree in &self.trees {
            match tree {
                TreeExplainer::Table(walk) => {
                    let end = next + walk.units.len();
                    walk.add(&self.table, &rows[next..end], &mut banks);
                    next = end;
                }
                TreeExplainer::Recursive(k) => {
                    if buffer.is_empty() {
                        buffer = vec![PathElement::default(); self.buffer_len];
                    }
                    recurse(
                        &model.trees[*k],
                        x,
                        &mut phi,
                        0,
                        0,
                        &mut buffer,
                        0,
                        1.0,
                        1.0,
                        -1,
                    );
                }
            }
        }
        for bank in banks.iter() {
            for (p, b) in phi.iter_mut().zip(bank) {
                *p += b;
            }
        }
        phi
    }

    /// [`Explainer::contributions`] of many rows, bit for bit, [`LANES`] rows at a time: each
    /// tree's nodes and tables are visited once per group of rows rather than once per row,
    /// from the cache rather than from memory.
    pub fn contributions_batch(&self, model: &Ensemble, rows: &[&[f32]]) -> Vec<Vec<f64>> {
        if rows.len() < LANES / 3 {
            return rows.iter().map(|x| self.contributions(model, x)).collect();
        }
        let width = model.num_features;
        let stride = width + MAX_TABLE_FEATURES;
        let mut out = Vec::with_capacity(rows.len());
        let mut xt = vec![[f32::NAN; LANES]; width];
        let mut banks = vec![[0.0f64; LANES]; BANKS * stride];
        let mut state = vec![[0u32; LANES]; self.max_nodes + 1];
        let mut buffer = Vec::new();
        for group in rows.chunks(LANES) {
            if group.len() < LANES / 3 {
                // Too few rows to fill the lanes' work: row by row costs less.
                out.extend(group.iter().map(|x| self.contributions(model, x)));
                continue;
            }
            for (f, lanes) in xt.iter_mut().enumerate() {
                for (k, lane) in lanes.iter_mut().enumerate() {
                    *lane = group
                        .get(k)
                        .and_then(|x| x.get(f))
                        .copied()
                        .unwrap_or(f32::NAN);
                }
            }
            banks.iter_mut().for_each(|b| *b = [0.0; LANES]);
            let mut phi = vec![vec![0.0; width]; group.len()];
            for tree in &self.trees {
                match tree {
                    TreeExplainer::Table(walk) => {
                        walk.add_lanes(&self.table, &xt, &mut banks, stride, &mut state);
                    }
                    TreeExplainer::Recursive(t) => {
                        if buffer.is_empty() {
                            buffer = vec![PathElement::default(); self.buffer_len];
                        }
                        for (k, p) in phi.iter_mut().enumerate() {
                            let x: Vec<f32> = xt.iter().map(|lanes| lanes[k]).collect();
                            recurse(&model.trees[*t], &x, p, 0, 0, &mut buffer, 0, 1.0, 1.0, -1);
                        }
                    }
                }
            }
            for (k, p) in phi.iter_mut().enumerate() {
                for bank in banks.chunks(stride) {
                    for (value, slot) in p.iter_mut().zip(bank) {
                        *value += slot[k];
                    }
                }
            }
            out.extend(phi);
        }
        out
    }

    /// The same contributions by the recursive algorithm for every tree (a reference for tests).
    pub fn contributions_recursive(&self, model: &Ensemble, x: &[f32]) -> Vec<f64> {
        let mut phi = vec![0.0; model.num_features];
        let mut buffer = vec![PathElement::default(); self.buffer_len];
        for tree in &model.trees {
            recurse(tree, x, &mut phi, 0, 0, &mut buffer, 0, 1.0, 1.0, -1);
        }
        phi
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ensemble::{Node, Tree};

    fn split(feature: u32, threshold: f32, left: i32, right: i32, cover: f32) -> Node {
        Node {
            left,
            right,
            feature,
            value: threshold,
            default_left: feature.is_multiple_of(2),
            cover,
        }
    }

    fn leaf(value: f32, cover: f32) -> Node {
        Node {
            left: -1,
            right: -1,
            feature: 0,
            value,
            default_left: false,
            cover,
        }
    }

    /// A chain testing `features` distinct features, one per level, with a leaf beside each.
    fn chain(features: u32) -> Tree {
        let mut nodes = Vec::new();
        let mut cover = 1000.0;
        for f in 0..features {
            let i = nodes.len() as i32;
            nodes.push(split(f, 0.5, i + 1, i + 2, cover));
            nodes.push(leaf(0.1 * (f as f32 + 1.0), cover * 0.4));
            cover *= 0.6;
        }
        nodes.push(leaf(-0.3, cover));
        Tree { nodes }
    }

    /// A tree that tests feature 1 twice on one path.
    fn repeated() -> Tree {
        Tree {
            nodes: vec![
                split(1, 0.0, 1, 2, 100.0),
                split(2, 1.0, 3, 4, 60.0),
                split(1, -1.0, 5, 6, 40.0),
                leaf(0.4, 25.0),
                leaf(-0.2, 35.0),
                leaf(0.7, 10.0),
                leaf(-0.5, 30.0),
            ],
        }
    }

    #[test]
    fn tables_agree_with_the_recursion_and_deep_paths_fall_back() {
        let model = Ensemble {
            trees: vec![repeated(), chain(3), chain(MAX_TABLE_FEATURES as u32 + 2)],
            base_margin: -1.0,
            num_features: 12,
        };
        let explainer = Explainer::new(&model);
        assert!(matches!(explainer.trees[0], TreeExplainer::Table(_)));
        assert!(matches!(explainer.trees[2], TreeExplainer::Recursive(2)));
        let rows: [[f32; 12]; 4] = [
            [0.0; 12],
            [1.0; 12],
            [f32::NAN; 12],
            [
                -2.0,
                -0.5,
                3.0,
                f32::NAN,
                0.2,
                0.9,
                f32::NAN,
                0.0,
                1.0,
                0.4,
                0.6,
                -1.0,
            ],
        ];
        for x in &rows {
            let fast = explainer.contributions(&model, x);
            let reference = explainer.contributions_recursive(&model, x);
            for (a, b) in fast.iter().zip(&reference) {
                assert!((a - b).abs() < 1e-6, "{fast:?} vs {reference:?}");
            }
            let total: f64 = fast.iter().sum::<f64>() + explainer.bias;
            assert!((total - f64::from(model.margin(x))).abs() < 1e-5);
        }
        // Batches give the single-row results bit for bit, in full groups of lanes and not.
        for size in [LANES + 3, LANES / 2] {
            let many: Vec<&[f32]> = (0..size).map(|i| &rows[i % rows.len()][..]).collect();
            let batch = explainer.contributions_batch(&model, &many);
            assert_eq!(batch.len(), many.len());
            for (x, phi) in many.iter().zip(&batch) {
                let single = explainer.contributions(&model, x);
                assert_eq!(
                    phi.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    single.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
                );
            }
        }
    }
}
