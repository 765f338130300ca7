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

use super::ensemble::{Ensemble, Tree};

#[derive(Debug, Clone, Copy, Default)]
struct PathElement {
    feature: i64,
    zero_fraction: f64,
    one_fraction: f64,
    pweight: f64,
}

fn extend_path(path: &mut [PathElement], depth: usize, zero: f64, one: f64, feature: i64) {
    path[depth] = PathElement {
        feature,
        zero_fraction: zero,
        one_fraction: one,
        pweight: if depth == 0 { 1.0 } else { 0.0 },
    };
    let d = depth as f64;
    for i in (0..depth).rev() {
        path[i + 1].pweight += one * path[i].pweight * (i as f64 + 1.0) / (d + 1.0);
        path[i].pweight = zero * path[i].pweight * (d - i as f64) / (d + 1.0);
    }
}

fn unwind_path(path: &mut [PathElement], depth: usize, index: usize) {
    let one = path[index].one_fraction;
    let zero = path[index].zero_fraction;
    let d = depth as f64;
    let mut next_one_portion = path[depth].pweight;
    for i in (0..depth).rev() {
        if one != 0.0 {
            let tmp = path[i].pweight;
            path[i].pweight = next_one_portion * (d + 1.0) / ((i as f64 + 1.0) * one);
            next_one_portion = tmp - path[i].pweight * zero * (d - i as f64) / (d + 1.0);
        } else {
            path[i].pweight = path[i].pweight * (d + 1.0) / (zero * (d - i as f64));
        }
    }
    for i in index..depth {
        path[i].feature = path[i + 1].feature;
        path[i].zero_fraction = path[i + 1].zero_fraction;
        path[i].one_fraction = path[i + 1].one_fraction;
    }
}

fn unwound_path_sum(path: &[PathElement], depth: usize, index: usize) -> f64 {
    let one = path[index].one_fraction;
    let zero = path[index].zero_fraction;
    let d = depth as f64;
    let mut next_one_portion = path[depth].pweight;
    let mut total = 0.0;
    for i in (0..depth).rev() {
        if one != 0.0 {
            let tmp = next_one_portion * (d + 1.0) / ((i as f64 + 1.0) * one);
            total += tmp;
            next_one_portion = path[i].pweight - tmp * zero * ((d - i as f64) / (d + 1.0));
        } else if zero != 0.0 {
            total += (path[i].pweight / zero) / ((d - i as f64) / (d + 1.0));
        }
    }
    total
}

/// One level of the recursion. The path of this level is a copy of the parent's, stored right
/// after it in `buffer` (XGBoost's layout), so no allocation happens per node.
#[allow(clippy::too_many_arguments)]
fn recurse(
    tree: &Tree,
    x: &[f32],
    phi: &mut [f64],
    node: usize,
    depth: usize,
    buffer: &mut [PathElement],
    parent_offset: usize,
    zero: f64,
    one: f64,
    feature: i64,
) {
    let offset = parent_offset + depth + 1;
    buffer.copy_within(parent_offset..parent_offset + depth + 1, offset);
    let path = &mut buffer[offset..offset + depth + 1];
    extend_path(path, depth, zero, one, feature);
    let n = &tree.nodes[node];
    if n.is_leaf() {
        for i in 1..=depth {
            let w = unwound_path_sum(path, depth, i);
            let e = path[i];
            if let Ok(f) = usize::try_from(e.feature) {
                phi[f] += w * (e.one_fraction - e.zero_fraction) * f64::from(n.value);
            }
        }
        return;
    }
    let hot = n.next(x);
    let cold = if hot == n.left as usize {
        n.right as usize
    } else {
        n.left as usize
    };
    let cover = f64::from(n.cover);
    let hot_zero = f64::from(tree.nodes[hot].cover) / cover;
    let cold_zero = f64::from(tree.nodes[cold].cover) / cover;
    let mut incoming_zero = 1.0;
    let mut incoming_one = 1.0;
    let mut depth = depth;
    let split = i64::from(n.feature);
    // Already split on this feature higher up: undo that split so it can be redone here.
    if let Some(k) = (0..=depth).find(|k| path[*k].feature == split) {
        incoming_zero = path[k].zero_fraction;
        incoming_one = path[k].one_fraction;
        unwind_path(path, depth, k);
        depth -= 1;
    }
    recurse(
        tree,
        x,
        phi,
        hot,
        depth + 1,
        buffer,
        offset,
        hot_zero * incoming_zero,
        incoming_one,
        split,
    );
    recurse(
        tree,
        x,
        phi,
        cold,
        depth + 1,
        buffer,
        offset,
        cold_zero * incoming_zero,
        0.0,
        split,
    );
}

/// Cover-weighted mean leaf value of the subtree at `node` (XGBoost's node mean value).
fn mean_value(tree: &Tree, node: usize) -> f64 {
    let n = &tree.nodes[node];
    if n.is_leaf() {
        return f64::from(n.value);
    }
    let l = &tree.nodes[n.left as usize];
    let r = &tree.nodes[n.right as usize];
    (mean_value(tree, n.left as usize) * f64::from(l.cover)
        + mean_value(tree, n.right as usize) * f64::from(r.cover))
        / f64::from(n.cover)
}

/// Deepest distinct-feature count per path explained from tables (each leaf holds
/// `2^d · d` values).
pub const MAX_TABLE_FEATURES: usize = 8;

/// An internal node as the table walk needs it.
#[derive(Debug, Clone, Copy)]
struct WalkNode {
    threshold: f32,
    feature: u16,
    id: u16,
    left: u16,
    right: u16,
    /// Position of this node's feature among the distinct features of its root path.
    pos: u8,
    default_left: bool,
}

/// What one table row is looked up for: the leaves of a subtree of height at most two.
///
/// A leaf's row is chosen by its pattern (the bits of its path positions the row follows).
/// The leaves below a node share that node's pattern and differ only in the directions taken
/// at the node and its children, so their contributions are stored summed, chosen by the
/// anchor's pattern and those directions: one lookup for up to four leaves.
#[derive(Debug, Clone, Copy)]
struct Unit {
    /// The subtree's root (a leaf on its own is its own anchor).
    anchor: u32,
    /// Bits of the anchor's path positions.
    mask: u32,
    /// Nodes whose direction is part of the index, the anchor first; unused slots point to a
    /// node state that is always zero.
    directions: [u32; MAX_DIRECTIONS],
    /// How many of `directions` are used.
    used: u32,
    /// Bit of the anchor's direction in [`TableTree::rows`]'s direction bits; the other
    /// directions follow it, in the same word.
    first: u32,
    /// Features of the row's columns; padding column `k` points to slot `num_features + k`.
    features: [u8; MAX_TABLE_FEATURES],
    offset: u32,
}

/// Accumulator slots: features and padding columns of models explained from tables.
const SLOTS: usize = 256;

/// One accumulator of [`TableTree::add`].
type Bank = [f64; SLOTS];

/// Direction bits in a unit's index: its anchor and the anchor's two children.
const MAX_DIRECTIONS: usize = 3;

/// A node whose direction indexes a unit's rows, as the single-row walk needs it.
#[derive(Debug, Clone, Copy)]
struct TurnNode {
    threshold: f32,
    feature: u8,
    default_left: bool,
    /// Position in the direction bits (units' nodes in order; a unit's never straddle words).
    bit: u16,
}

/// One tree explained by pattern lookup.
#[derive(Debug, Clone)]
struct TableTree {
    /// Internal nodes, parents before children.
    nodes: Vec<WalkNode>,
    /// The internal nodes above the units' anchors, parents before children: the single-row
    /// walk carries path patterns through these only.
    upper: Vec<WalkNode>,
    /// The units' direction nodes: the single-row walk only records which way the row goes.
    turns: Vec<TurnNode>,
    /// 64-bit words of direction bits.
    words: usize,
    units: Vec<Unit>,
    /// Columns per row (the most distinct features of any path), at most [`MAX_TABLE_FEATURES`].
    width: usize,
}

#[derive(Debug, Clone)]
enum TreeExplainer {
    Table(TableTree),
    /// Index of the tree in the ensemble, explained recursively.
    Recursive(usize),
}

/// `s! (d−1−s)! / d!` for `s < d`.
fn shapley_weight(s: usize, d: usize) -> f64 {
    let fact = |n: usize| (1..=n).map(|k| k as f64).product::<f64>();
    fact(s) * fact(d - 1 - s) / fact(d)
}

/// Contributions of one leaf for every pattern: `2^d` rows of `d` values.
fn leaf_table(value: f64, z: &[f64]) -> Vec<f64> {
    let d = z.len();
    let weights: Vec<f64> = (0..d).map(|s| shapley_weight(s, d)).collect();
    let mut out = Vec::with_capacity((1 << d) * d);
    for pattern in 0usize..(1 << d) {
        for i in 0..d {
            let o = if pattern & (1 << i) != 0 { 1.0 } else { 0.0 };
            let others = pattern & !(1 << i);
            // Σ over S ⊆ others of w(|S|) · Π_{j ∉ S, j ≠ i} z_j, by submask enumeration.
            let mut total = 0.0;
            let mut s = others;
            loop {
                let mut product = 1.0;
                for (j, zj) in z.iter().enumerate() {
                    if j != i && s & (1 << j) == 0 {
                        product *= zj;
                    }
                }
                total += weights[s.count_ones() as usize] * product;
                if s == 0 {
                    break;
                }
                s = (s - 1) & others;
            }
            out.push(value * (o - z[i]) * total);
        }
    }
    out
}

/// A node's root path: its distinct features and the cover share of each.
#[derive(Debug, Clone, Default)]
struct Path {
    features: Vec<u32>,
    z: Vec<f64>,
}

impl Path {
    /// The path to a child of `node` (position `pos`) taking a cover share `share`.
    fn child(&self, node: &super::ensemble::Node, pos: usize, share: f64) -> Path {
        let mut next = self.clone();
        if pos == next.features.len() {
            next.features.push(node.feature);
            next.z.push(share);
        } else {
            next.z[pos] *= share;
        }
        next
    }
}

/// Build a tree's tables, or `None` when a path has too many distinct features.
/// `zero_state` is a state slot no tree writes (units' unused direction slots read it).
fn table_tree(
    tree: &Tree,
    num_features: usize,
    zero_state: usize,
    table: &mut Vec<f32>,
) -> Option<TableTree> {
    let n = tree.nodes.len();
    let mut paths: Vec<Path> = vec![Path::default(); n];
    let mut pos = vec![0usize; n];
    let mut nodes = Vec::new();
    // Node ids grow from parent to child: one forward pass sees every parent first.
    for i in 0..n {
        let node = &tree.nodes[i];
        if node.is_leaf() {
            continue;
        }
        let path = &paths[i];
        pos[i] = path
            .features
            .iter()
            .position(|f| *f == node.feature)
            .unwrap_or(path.features.len());
        if pos[i] >= MAX_TABLE_FEATURES {
            return None;
        }
        let cover = f64::from(node.cover);
        for child in [node.left as usize, node.right as usize] {
            let share = f64::from(tree.nodes[child].cover) / cover;
            paths[child] = paths[i].child(node, pos[i], share);
        }
        nodes.push(WalkNode {
            threshold: node.value,
            feature: u16::try_from(node.feature).ok()?,
            id: u16::try_from(i).ok()?,
            left: u16::try_from(node.left).ok()?,
            right: u16::try_from(node.right).ok()?,
            pos: pos[i] as u8,
            default_left: node.default_left,
        });
    }
    let width = paths.iter().map(|p| p.features.len()).max().unwrap_or(0);
    if num_features + MAX_TABLE_FEATURES > SLOTS {
        return None;
    }
    let mut padding = [0u8; MAX_TABLE_FEATURES];
    for (k, slot) in padding.iter_mut().enumerate() {
        *slot = u8::try_from(num_features + k).ok()?;
    }
    let zero_state = u32::try_from(zero_state).ok()?;
    let start = table.len();
    let mut units = Vec::new();
    let mut turns = Vec::new();
    let mut above = vec![false; n];
    let mut bits = 0usize;
    let mut pending = vec![0usize];
    while let Some(anchor) = pending.pop() {
        match subtree_unit(tree, &paths, &pos, anchor, width) {
            Some(unit) => {
                let mut features = padding;
                for (slot, f) in features.iter_mut().zip(&unit.columns) {
                    *slot = u8::try_from(*f).ok()?;
                }
                let mut directions = [zero_state; MAX_DIRECTIONS];
                for (slot, d) in directions.iter_mut().zip(&unit.directions) {
                    *slot = u32::try_from(*d).ok()?;
                }
                let used = unit.directions.len();
                if bits % 64 + used > 64 {
                    bits = bits.next_multiple_of(64);
                }
                let first = u32::try_from(bits).ok()?;
                for d in &unit.directions {
                    let node = &tree.nodes[*d];
                    turns.push(TurnNode {
                        threshold: node.value,
                        feature: u8::try_from(node.feature).ok()?,
                        default_left: node.default_left,
                        bit: u16::try_from(bits).ok()?,
                    });
                    bits += 1;
                }
                let offset = u32::try_from(table.len()).ok()?;
                for row in unit.rows {
                    table.extend(row.iter().map(|v| *v as f32));
                    table.extend(std::iter::repeat_n(0.0, width - row.len()));
                }
                units.push(Unit {
                    anchor: u32::try_from(anchor).ok()?,
                    mask: (1u32 << paths[anchor].features.len()) - 1,
                    directions,
                    used: used as u32,
                    first,
                    features,
                    offset,
                });
            }
            None => {
                let node = &tree.nodes[anchor];
                above[anchor] = true;
                pending.push(node.right as usize);
                pending.push(node.left as usize);
            }
        }
    }
    if n == 1 {
        // A single leaf contributes to the bias only.
        table.truncate(start);
        units.clear();
    }
    let upper = nodes
        .iter()
        .filter(|w| above[usize::from(w.id)])
        .copied()
        .collect();
    Some(TableTree {
        nodes,
        upper,
        turns,
        words: bits.div_ceil(64),
        units,
        width,
    })
}

/// A unit's contents before it is packed.
struct SubtreeUnit {
    directions: Vec<usize>,
    columns: Vec<u32>,
    rows: Vec<Vec<f64>>,
}

/// The unit for the subtree at `anchor` when it has height at most two and its features fit
/// in `width` columns, else `None` (its children are tried instead).
fn subtree_unit(
    tree: &Tree,
    paths: &[Path],
    pos: &[usize],
    anchor: usize,
    width: usize,
) -> Option<SubtreeUnit> {
    let root = &tree.nodes[anchor];
    let mut directions = Vec::new();
    // Each leaf with its route from the anchor: (node, went left) per split.
    let mut leaves: Vec<(usize, Vec<(usize, bool)>)> = Vec::new();
    if root.is_leaf() {
        leaves.push((anchor, Vec::new()));
    } else {
        directions.push(anchor);
        for (child, went_left) in [(root.left as usize, true), (root.right as usize, false)] {
            let c = &tree.nodes[child];
            if c.is_leaf() {
                leaves.push((child, vec![(anchor, went_left)]));
                continue;
            }
            let (l, r) = (&tree.nodes[c.left as usize], &tree.nodes[c.right as usize]);
            if !l.is_leaf() || !r.is_leaf() {
                return None;
            }
            directions.push(child);
            leaves.push((c.left as usize, vec![(anchor, went_left), (child, true)]));
            leaves.push((c.right as usize, vec![(anchor, went_left), (child, false)]));
        }
    }
    let mut columns = paths[anchor].features.clone();
    for (leaf, _) in &leaves {
        for f in &paths[*leaf].features {
            if !columns.contains(f) {
                columns.push(*f);
            }
        }
    }
    if columns.len() > width {
        return None;
    }
    let bits = paths[anchor].features.len();
    let tables: Vec<Vec<f64>> = leaves
        .iter()
        .map(|(leaf, _)| leaf_table(f64::from(tree.nodes[*leaf].value), &paths[*leaf].z))
        .collect();
    let mut rows = Vec::with_capacity(1 << (bits + directions.len()));
    for index in 0usize..(1 << (bits + directions.len())) {
        let pattern = index >> directions.len();
        let mut row = vec![0.0; columns.len()];
        for ((leaf, route), values) in leaves.iter().zip(&tables) {
            // The leaf's pattern: the anchor's, then each split on the way down.
            let mut p = pattern;
            let mut known = bits;
            for (node, went_left) in route {
                let k = directions.iter().position(|d| d == node).unwrap_or(0);
                let goes_left = index >> k & 1 == 1;
                let follows = goes_left == *went_left;
                let at = pos[*node];
                if at == known {
                    p |= usize::from(follows) << at;
                    known += 1;
                } else if !follows {
                    p &= !(1 << at);
                }
            }
            let d = paths[*leaf].features.len();
            for (c, f) in paths[*leaf].features.iter().enumerate() {
                let column = columns.iter().position(|x| x == f).unwrap_or(0);
                row[column] += values[p * d + c];
            }
        }
        rows.push(row);
    }
    Some(SubtreeUnit {
        directions,
        columns,
        rows,
    })
}

/// Accumulators used in turn by successive table rows.
const BANKS: usize = 4;

/// Rows explained together by [`Explainer::contributions_batch`].
pub const LANES: usize = 32;

/// One value per row of a group of [`LANES`] rows.
type Lanes<T> = [T; LANES];

/// Whether a row with value `v` goes left at a split; `CLEAN`: `v` is known not to be missing.
#[inline(always)]
fn goes_left<const CLEAN: bool>(v: f32, threshold: f32, default_left: bool) -> bool {
    if CLEAN {
        v < threshold
    } else {
        (v < threshold) | (v.is_nan() & default_left)
    }
}

/// The high bit of a node's state: the row goes left at that node.
const LEFT_BIT: u32 = 1 << 31;

impl TableTree {
    /// Append the table row that each of this tree's units gives `x` to `rows` (its offset in
    /// the table). `state` is scratch of the tree's size, `dirs` of [`TableTree::words`].
    /// `CLEAN`: `x` has no missing value.
    #[inline]
    fn rows<const CLEAN: bool>(
        &self,
        x: &[f32; SLOTS],
        state: &mut [u32],
        dirs: &mut [u64],
        rows: &mut Vec<u32>,
    ) {
        // Per anchor: the path positions where the row has left the path.
        state[0] = 0;
        for n in &self.upper {
            let v = x[usize::from(n.feature) % SLOTS];
            let left = goes_left::<CLEAN>(v, n.threshold, n.default_left);
            let bit = 1u32 << n.pos;
            let here = state[usize::from(n.id)];
            // The direction is data: a select, not a branch the predictor would miss.
            let (off_left, off_right) = std::hint::select_unpredictable(left, (0, bit), (bit, 0));
            state[usize::from(n.left)] = here | off_left;
            state[usize::from(n.right)] = here | off_right;
        }
        // Per direction node: whether the row goes left (gathered in a register, word by word).
        let dirs = &mut dirs[..self.words];
        let (mut word, mut at) = (0u64, 0usize);
        for t in &self.turns {
            let w = usize::from(t.bit / 64);
            if w != at {
                if let Some(slot) = dirs.get_mut(at) {
                    *slot = word;
                }
                (word, at) = (0, w);
            }
            let left = goes_left::<CLEAN>(x[usize::from(t.feature)], t.threshold, t.default_left);
            word |= std::hint::select_unpredictable(left, 1u64, 0) << (t.bit % 64);
        }
        if let Some(slot) = dirs.get_mut(at) {
            *slot = word;
        }
        let width = self.width as u32;
        rows.extend(self.units.iter().map(|unit| {
            let pattern = unit.mask & !state[unit.anchor as usize];
            let word = dirs.get(unit.first as usize / 64).copied().unwrap_or(0);
            let turns = (word >> (unit.first % 64)) as u32 & ((1u32 << unit.used) - 1);
            unit.offset + ((pattern << unit.used) | turns) * width
        }));
    }

    /// Add the table rows [`TableTree::rows`] chose to `banks`: [`BANKS`] accumulators (the
    /// features, then one padding slot per column), used in turn so that successive additions
    /// to the same feature do not wait on each other.
    #[inline]
    fn add(&self, table: &[f32], rows: &[u32], banks: &mut [Bank; BANKS]) {
        match self.width {
            1 => self.add_rows::<1>(table, rows, banks),
            2 => self.add_rows::<2>(table, rows, banks),
            3 => self.add_rows::<3>(table, rows, banks),
            4 => self.add_rows::<4>(table, rows, banks),
            5 => self.add_rows::<5>(table, rows, banks),
            6 => self.add_rows::<6>(table, rows, banks),
            7 => self.add_rows::<7>(table, rows, banks),
            _ => self.add_rows::<MAX_TABLE_FEATURES>(table, rows, banks),
        }
    }

    /// [`TableTree::add`] with `W` columns per row.
    #[inline]
    fn add_rows<const W: usize>(&self, table: &[f32], rows: &[u32], banks: &mut [Bank; BANKS]) {
        for (j, (unit, row)) in self.units.iter().zip(rows).enumerate() {
            let row = *row as usize;
            let Some(values) = table.get(row..row + W) else {
                continue;
            };
            let bank = &mut banks[j % BANKS];
            for k in 0..W {
                bank[usize::from(unit.features[k])] += f64::from(values[k]);
            }
        }
    }

    /// [`TableTree::add`] for [`LANES`] rows at once: `xt` holds each feature's values of the
    /// rows, `banks` each accumulator's slots of the rows. Every row's sums are formed in the
    /// same order as [`TableTree::add`] forms them, so the results are bit-identical.
    #[inline]
    fn add_lanes(
        &self,
        table: &[f32],
        xt: &[Lanes<f32>],
        banks: &mut [Lanes<f64>],
        stride: usize,
        state: &mut [Lanes<u32>],
    ) {
        state[0] = [0; LANES];
        for n in &self.nodes {
            let v = &xt[usize::from(n.feature)];
            let bit = 1u32 << n.pos;
            let here = state[usize::from(n.id)];
            let (mut left, mut right, mut turn) = ([0u32; LANES], [0u32; LANES], [0u32; LANES]);
            for k in 0..LANES {
                let goes_left = (v[k] < n.threshold) | (v[k].is_nan() & n.default_left);
                let left_bits = u32::from(goes_left).wrapping_neg();
                left[k] = here[k] | (bit & !left_bits);
                right[k] = here[k] | (bit & left_bits);
                turn[k] = here[k] | (LEFT_BIT & left_bits);
            }
            state[usize::from(n.left)] = left;
            state[usize::from(n.right)] = right;
            state[usize::from(n.id)] = turn;
        }
        match self.width {
            1 => self.add_units_lanes::<1>(table, banks, stride, state),
            2 => self.add_units_lanes::<2>(table, banks, stride, state),
            3 => self.add_units_lanes::<3>(table, banks, stride, state),
            4 => self.add_units_lanes::<4>(table, banks, stride, state),
            5 => self.add_units_lanes::<5>(table, banks, stride, state),
            6 => self.add_units_lanes::<6>(table, banks, stride, state),
            7 => self.add_units_lanes::<7>(table, banks, stride, state),
            _ => self.add_units_lanes::<MAX_TABLE_FEATURES>(table, banks, stride, state),
        }
    }

    #[inline]
    fn add_units_lanes<const W: usize>(
        &self,
        table: &[f32],
        banks: &mut [Lanes<f64>],
        stride: usize,
        state: &[Lanes<u32>],
    ) {
        for (j, unit) in self.units.iter().enumerate() {
            let anchor = &state[unit.anchor as usize];
            let [a, b, c] = unit.directions.map(|d| &state[d as usize]);
            let mut rows = [0usize; LANES];
            for k in 0..LANES {
                let pattern = unit.mask & !anchor[k];
                let turns = (a[k] >> 31) | ((b[k] >> 31) << 1) | ((c[k] >> 31) << 2);
                let index = (pattern << unit.used) | turns;
                rows[k] = unit.offset as usize + index as usize * W;
            }
            let Some(last) = rows.iter().max() else {
                continue;
            };
            if last + W > table.len() {
                continue;
            }
            let bank = (j % BANKS) * stride;
            for (column, feature) in unit.features[..W].iter().enumerate() {
                let slot = &mut banks[bank + usize::from(*feature)];
                for k in 0..LANES {
                    slot[k] += f64::from(table[rows[k] + column]);
                }
            }
        }
    }
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
    use crate::model::ensemble::Node;

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
