//! The recursive algorithm (Algorithm 2 of Lundberg, Erion & Lee 2018, as in XGBoost): the
//! reference for every tree, and the explanation of trees too deep for tables; and the
//! cover-weighted mean of a tree, its share of the bias.

use crate::model::ensemble::Tree;

#[derive(Debug, Clone, Copy, Default)]
pub(super) struct PathElement {
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
pub(super) fn recurse(
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
pub(super) fn mean_value(tree: &Tree, node: usize) -> f64 {
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
