//! The lookup kernels: the walk that finds a row's table rows in one tree, and the sums of
//! those rows into per-feature accumulators, for one row or [`LANES`] rows at once.

use super::tables::{TableTree, MAX_TABLE_FEATURES, SLOTS};

/// Accumulators used in turn by successive table rows.
pub(super) const BANKS: usize = 4;

/// One accumulator of [`TableTree::add`].
type Bank = [f64; SLOTS];

/// Rows explained together by [`Explainer::contributions_batch`].
///
/// [`Explainer::contributions_batch`]: super::Explainer::contributions_batch
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
    pub(super) fn rows<const CLEAN: bool>(
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
    pub(super) fn add(&self, table: &[f32], rows: &[u32], banks: &mut [Bank; BANKS]) {
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
    pub(super) fn add_lanes(
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
