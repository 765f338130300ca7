//! The ensemble in a branch-light layout for fast scoring.
//!
//! Every tree is stored as a perfect binary tree of the ensemble's maximum depth `D`:
//! `2^D − 1` internal nodes then `2^D` leaves, children of node `i` at `2i+1` and `2i+2`. A
//! leaf above depth `D` is replicated into every slot below it, so every row takes exactly `D`
//! steps in every tree, and sixteen trees are walked in lockstep so their loads overlap. Results
//! are identical to [`Ensemble::margin`]: the same comparisons, the same summation order.

use super::ensemble::{Ensemble, Tree};

/// Deepest ensemble laid out perfectly (memory grows as 2^D); deeper ones walk pointers.
const MAX_PERFECT_DEPTH: usize = 10;
/// Trees walked together.
const LANES: usize = 16;
const DEFAULT_LEFT: u32 = 1 << 31;
/// A row is copied into a buffer of this many features (a power of two) and read through a
/// mask, so no step of a walk needs a bounds check; wider models read the row itself.
const ROW: usize = 64;

/// An internal node: threshold, feature index and the default-left bit.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Packed {
    threshold: f32,
    meta: u32,
}

/// A fast evaluator of an [`Ensemble`].
#[derive(Debug, Clone)]
pub struct FlatEnsemble {
    depth: usize,
    trees: usize,
    nodes: Vec<Packed>,
    leaves: Vec<f32>,
    /// Used instead when the ensemble is too deep to lay out.
    fallback: Option<Ensemble>,
    base_margin: f32,
    num_features: usize,
}

fn fill(
    tree: &Tree,
    node: usize,
    slot: usize,
    level: usize,
    depth: usize,
    nodes: &mut [Packed],
    leaves: &mut [f32],
) {
    let n = &tree.nodes[node];
    if level == depth {
        leaves[slot - ((1usize << depth) - 1)] = n.value;
        return;
    }
    let (next_left, next_right) = if n.is_leaf() {
        // Replicate: both children carry this leaf, so either direction gives its value.
        nodes[slot] = Packed {
            threshold: f32::INFINITY,
            meta: DEFAULT_LEFT,
        };
        (node, node)
    } else {
        nodes[slot] = Packed {
            threshold: n.value,
            meta: n.feature | if n.default_left { DEFAULT_LEFT } else { 0 },
        };
        (n.left as usize, n.right as usize)
    };
    fill(
        tree,
        next_left,
        2 * slot + 1,
        level + 1,
        depth,
        nodes,
        leaves,
    );
    fill(
        tree,
        next_right,
        2 * slot + 2,
        level + 1,
        depth,
        nodes,
        leaves,
    );
}

#[inline(always)]
fn step(node: Packed, x: &[f32], i: usize) -> usize {
    let feature = (node.meta & !DEFAULT_LEFT) as usize;
    let v = x[feature];
    descend(node, v, i)
}

/// [`step`] on a row in a [`ROW`]-wide buffer: the mask keeps the read in bounds (features of
/// such a model are all below `ROW`, so the mask never changes the index).
#[inline(always)]
fn step_masked(node: Packed, x: &[f32; ROW], i: usize) -> usize {
    let feature = (node.meta & !DEFAULT_LEFT) as usize & (ROW - 1);
    descend(node, x[feature], i)
}

/// [`step_masked`] for a row without missing values: the default direction never applies.
#[inline(always)]
fn step_present(node: Packed, x: &[f32; ROW], i: usize) -> usize {
    let feature = node.meta as usize & (ROW - 1);
    2 * i + 2 - usize::from(x[feature] < node.threshold)
}

#[inline(always)]
fn descend(node: Packed, v: f32, i: usize) -> usize {
    // Branch-free: bitwise, not short-circuit, so the compiler emits no jump.
    let left =
        usize::from(v < node.threshold) | (usize::from(v.is_nan()) & (node.meta >> 31) as usize);
    2 * i + 2 - left
}

impl FlatEnsemble {
    /// Lay out an ensemble.
    pub fn new(model: &Ensemble) -> Self {
        let depth = model.max_depth();
        let mut flat = Self {
            depth,
            trees: model.trees.len(),
            nodes: Vec::new(),
            leaves: Vec::new(),
            fallback: None,
            base_margin: model.base_margin,
            num_features: model.num_features,
        };
        if depth > MAX_PERFECT_DEPTH {
            flat.fallback = Some(model.clone());
            return flat;
        }
        let internal = (1usize << depth) - 1;
        let pass_through = Packed {
            threshold: f32::INFINITY,
            meta: DEFAULT_LEFT,
        };
        flat.nodes = vec![pass_through; internal * model.trees.len()];
        flat.leaves = vec![0.0; (internal + 1) * model.trees.len()];
        for (t, tree) in model.trees.iter().enumerate() {
            fill(
                tree,
                0,
                0,
                0,
                depth,
                &mut flat.nodes[t * internal..(t + 1) * internal],
                &mut flat.leaves[t * (internal + 1)..(t + 1) * (internal + 1)],
            );
        }
        flat
    }

    /// Margin for one row.
    #[inline]
    pub fn margin(&self, x: &[f32]) -> f32 {
        if let Some(model) = &self.fallback {
            return model.margin(x);
        }
        if x.len() < self.num_features {
            let mut padded = x.to_vec();
            padded.resize(self.num_features, f32::NAN);
            return self.margin(&padded);
        }
        if self.num_features <= ROW {
            let mut buf = [0.0; ROW];
            buf[..self.num_features].copy_from_slice(&x[..self.num_features]);
            return if x[..self.num_features].iter().any(|v| v.is_nan()) {
                self.walk(&buf, step_masked)
            } else {
                self.walk(&buf, step_present)
            };
        }
        self.walk(x, step)
    }

    /// Every tree's leaf for a row, summed in tree order (the order of [`Ensemble::margin`]).
    #[inline(always)]
    fn walk<X: ?Sized>(&self, x: &X, step: impl Fn(Packed, &X, usize) -> usize) -> f32 {
        // The common depths as constants, so that the compiler unrolls the walk completely.
        match self.depth {
            4 => self.walk_depth(x, step, 4),
            5 => self.walk_depth(x, step, 5),
            6 => self.walk_depth(x, step, 6),
            7 => self.walk_depth(x, step, 7),
            8 => self.walk_depth(x, step, 8),
            d => self.walk_depth(x, step, d),
        }
    }

    #[inline(always)]
    fn walk_depth<X: ?Sized>(
        &self,
        x: &X,
        step: impl Fn(Packed, &X, usize) -> usize,
        depth: usize,
    ) -> f32 {
        let internal = (1usize << depth) - 1;
        let width = internal + 1;
        let mut sum = self.base_margin;
        let mut t = 0;
        while t + LANES <= self.trees {
            let nodes = &self.nodes[t * internal..(t + LANES) * internal];
            let leaves = &self.leaves[t * width..(t + LANES) * width];
            let mut idx = [0usize; LANES];
            for _ in 0..depth {
                for (k, i) in idx.iter_mut().enumerate() {
                    *i = step(nodes[k * internal + *i], x, *i);
                }
            }
            for (k, i) in idx.iter().enumerate() {
                sum += leaves[k * width + *i - internal];
            }
            t += LANES;
        }
        while t < self.trees {
            let mut i = 0usize;
            for _ in 0..depth {
                i = step(self.nodes[t * internal + i], x, i);
            }
            sum += self.leaves[t * width + i - internal];
            t += 1;
        }
        sum
    }

    /// Probability of default for one row.
    #[inline]
    pub fn predict(&self, x: &[f32]) -> f32 {
        super::ensemble::sigmoid(self.margin(x))
    }
}
