//! The pattern tables: every leaf's contributions for each pattern of the path features a row
//! follows, summed per unit of up to four leaves, and the per-tree layout the lookup walks.

use crate::model::ensemble::{Node, Tree};

/// Deepest distinct-feature count per path explained from tables (each leaf holds
/// `2^d · d` values).
pub const MAX_TABLE_FEATURES: usize = 8;

/// An internal node as the table walk needs it.
#[derive(Debug, Clone, Copy)]
pub(super) struct WalkNode {
    pub(super) threshold: f32,
    pub(super) feature: u16,
    pub(super) id: u16,
    pub(super) left: u16,
    pub(super) right: u16,
    /// Position of this node's feature among the distinct features of its root path.
    pub(super) pos: u8,
    pub(super) default_left: bool,
}

/// What one table row is looked up for: the leaves of a subtree of height at most two.
///
/// A leaf's row is chosen by its pattern (the bits of its path positions the row follows).
/// The leaves below a node share that node's pattern and differ only in the directions taken
/// at the node and its children, so their contributions are stored summed, chosen by the
/// anchor's pattern and those directions: one lookup for up to four leaves.
#[derive(Debug, Clone, Copy)]
pub(super) struct Unit {
    /// The subtree's root (a leaf on its own is its own anchor).
    pub(super) anchor: u32,
    /// Bits of the anchor's path positions.
    pub(super) mask: u32,
    /// Nodes whose direction is part of the index, the anchor first; unused slots point to a
    /// node state that is always zero.
    pub(super) directions: [u32; MAX_DIRECTIONS],
    /// How many of `directions` are used.
    pub(super) used: u32,
    /// Bit of the anchor's direction in [`TableTree::rows`]'s direction bits; the other
    /// directions follow it, in the same word.
    pub(super) first: u32,
    /// Features of the row's columns; padding column `k` points to slot `num_features + k`.
    pub(super) features: [u8; MAX_TABLE_FEATURES],
    pub(super) offset: u32,
}

/// Accumulator slots: features and padding columns of models explained from tables.
pub(super) const SLOTS: usize = 256;

/// Direction bits in a unit's index: its anchor and the anchor's two children.
const MAX_DIRECTIONS: usize = 3;

/// A node whose direction indexes a unit's rows, as the single-row walk needs it.
#[derive(Debug, Clone, Copy)]
pub(super) struct TurnNode {
    pub(super) threshold: f32,
    pub(super) feature: u8,
    pub(super) default_left: bool,
    /// Position in the direction bits (units' nodes in order; a unit's never straddle words).
    pub(super) bit: u16,
}

/// One tree explained by pattern lookup.
#[derive(Debug, Clone)]
pub(super) struct TableTree {
    /// Internal nodes, parents before children.
    pub(super) nodes: Vec<WalkNode>,
    /// The internal nodes above the units' anchors, parents before children: the single-row
    /// walk carries path patterns through these only.
    pub(super) upper: Vec<WalkNode>,
    /// The units' direction nodes: the single-row walk only records which way the row goes.
    pub(super) turns: Vec<TurnNode>,
    /// 64-bit words of direction bits.
    pub(super) words: usize,
    pub(super) units: Vec<Unit>,
    /// Columns per row (the most distinct features of any path), at most [`MAX_TABLE_FEATURES`].
    pub(super) width: usize,
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
    fn child(&self, node: &Node, pos: usize, share: f64) -> Path {
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
pub(super) fn table_tree(
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
