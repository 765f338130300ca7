//! A tree ensemble read from XGBoost's JSON model, evaluated in Rust.
//!
//! Evaluation mirrors XGBoost 1.6 exactly: a row goes left when `value < split_condition`,
//! a missing value (NaN) follows the node's default direction, leaf values are summed in `f32`
//! in tree order onto the base margin, and the logistic is taken in `f32`.

use serde_json::Value;

/// One node of a tree, flattened.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Node {
    /// Left child index, or -1 for a leaf.
    pub left: i32,
    /// Right child index.
    pub right: i32,
    /// Feature tested.
    pub feature: u32,
    /// Threshold (internal) or leaf value (leaf).
    pub value: f32,
    /// Missing values go left.
    pub default_left: bool,
    /// Sum of hessians of the training rows reaching the node (TreeSHAP weights).
    pub cover: f32,
}

impl Node {
    /// Whether the node is a leaf.
    pub fn is_leaf(&self) -> bool {
        self.left < 0
    }

    /// The child `x` goes to.
    #[inline]
    pub fn next(&self, x: &[f32]) -> usize {
        let v = x.get(self.feature as usize).copied().unwrap_or(f32::NAN);
        let left = if v.is_nan() {
            self.default_left
        } else {
            v < self.value
        };
        if left {
            self.left as usize
        } else {
            self.right as usize
        }
    }
}

/// One regression tree; node 0 is the root.
#[derive(Debug, Clone, PartialEq)]
pub struct Tree {
    /// Nodes.
    pub nodes: Vec<Node>,
}

impl Tree {
    /// Leaf value for a row.
    #[inline]
    pub fn leaf_value(&self, x: &[f32]) -> f32 {
        let mut i = 0usize;
        loop {
            let node = &self.nodes[i];
            if node.is_leaf() {
                return node.value;
            }
            i = node.next(x);
        }
    }

    /// Depth of the deepest leaf.
    pub fn depth(&self) -> usize {
        fn walk(t: &Tree, i: usize) -> usize {
            let n = &t.nodes[i];
            if n.is_leaf() {
                0
            } else {
                1 + walk(t, n.left as usize).max(walk(t, n.right as usize))
            }
        }
        walk(self, 0)
    }
}

/// A binary-logistic tree ensemble.
#[derive(Debug, Clone, PartialEq)]
pub struct Ensemble {
    /// Trees in XGBoost's order.
    pub trees: Vec<Tree>,
    /// Margin added before the trees (logit of `base_score`).
    pub base_margin: f32,
    /// Features the model expects.
    pub num_features: usize,
}

/// Why a model document could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("XGBoost model: {0}")]
pub struct ModelError(pub String);

fn err(message: impl Into<String>) -> ModelError {
    ModelError(message.into())
}

fn num_str(v: &Value, what: &str) -> Result<f64, ModelError> {
    match v {
        Value::String(s) => s
            .parse::<f64>()
            .map_err(|_| err(format!("{what} is not a number"))),
        Value::Number(n) => n
            .as_f64()
            .ok_or_else(|| err(format!("{what} is not a number"))),
        _ => Err(err(format!("{what} is missing"))),
    }
}

fn array<'a>(tree: &'a Value, key: &str) -> Result<&'a Vec<Value>, ModelError> {
    tree.get(key)
        .and_then(Value::as_array)
        .ok_or_else(|| err(format!("tree has no array {key}")))
}

/// The trees of an XGBoost JSON model document.
fn tree_documents(doc: &Value) -> Result<&Vec<Value>, ModelError> {
    doc.pointer("/learner/gradient_booster/model/trees")
        .and_then(Value::as_array)
        .ok_or_else(|| err("no trees"))
}

/// Gain importance: the loss reductions of every split on each of `num_features` features,
/// summed over the trees of an XGBoost JSON model document.
pub fn gain_by_feature(doc: &Value, num_features: usize) -> Result<Vec<f64>, ModelError> {
    let mut gain = vec![0.0f64; num_features];
    for t in tree_documents(doc)? {
        let left = array(t, "left_children")?;
        let split = array(t, "split_indices")?;
        let loss = array(t, "loss_changes")?;
        if left.len() != split.len() || left.len() != loss.len() {
            return Err(err("tree arrays differ in length"));
        }
        for ((l, j), g) in left.iter().zip(split).zip(loss) {
            // Leaves have no left child (-1) and carry no gain.
            if l.as_i64().unwrap_or(-1) < 0 {
                continue;
            }
            let j = j.as_u64().ok_or_else(|| err("bad split index"))? as usize;
            let g = g.as_f64().ok_or_else(|| err("bad loss change"))?;
            *gain
                .get_mut(j)
                .ok_or_else(|| err("a split uses a feature beyond num_feature"))? += g;
        }
    }
    Ok(gain)
}

fn parse_tree(t: &Value) -> Result<Tree, ModelError> {
    let left = array(t, "left_children")?;
    let right = array(t, "right_children")?;
    let split = array(t, "split_indices")?;
    let cond = array(t, "split_conditions")?;
    let default_left = array(t, "default_left")?;
    let hess = array(t, "sum_hessian")?;
    let n = left.len();
    if [
        right.len(),
        split.len(),
        cond.len(),
        default_left.len(),
        hess.len(),
    ]
    .iter()
    .any(|l| *l != n)
        || n == 0
    {
        return Err(err("tree arrays differ in length"));
    }
    if let Some(types) = t.get("split_type").and_then(Value::as_array) {
        if types.iter().any(|v| v.as_i64().unwrap_or(0) != 0) {
            return Err(err("categorical splits are not supported"));
        }
    }
    let mut nodes = Vec::with_capacity(n);
    for i in 0..n {
        let l = left[i].as_i64().ok_or_else(|| err("bad left child"))?;
        let r = right[i].as_i64().ok_or_else(|| err("bad right child"))?;
        let check = |c: i64| c == -1 || (c > i as i64 && (c as usize) < n);
        if !check(l) || !check(r) || ((l == -1) != (r == -1)) {
            return Err(err(format!("node {i} has invalid children")));
        }
        nodes.push(Node {
            left: l as i32,
            right: r as i32,
            feature: u32::try_from(split[i].as_u64().ok_or_else(|| err("bad split index"))?)
                .map_err(|_| err("bad split index"))?,
            value: cond[i].as_f64().ok_or_else(|| err("bad split condition"))? as f32,
            default_left: default_left[i].as_i64().unwrap_or(0) != 0
                || default_left[i].as_bool().unwrap_or(false),
            cover: hess[i].as_f64().ok_or_else(|| err("bad sum_hessian"))? as f32,
        });
    }
    Ok(Tree { nodes })
}

impl Ensemble {
    /// Read XGBoost's JSON model document (`Booster::save` to `*.json`, version 1.x or 2.x).
    pub fn from_xgboost_json(doc: &Value) -> Result<Self, ModelError> {
        let learner = doc.get("learner").ok_or_else(|| err("no learner"))?;
        let objective = learner
            .pointer("/objective/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        if objective != "binary:logistic" {
            return Err(err(format!(
                "objective {objective:?} is not binary:logistic"
            )));
        }
        let params = learner
            .get("learner_model_param")
            .ok_or_else(|| err("no learner_model_param"))?;
        let base_score = num_str(
            params.get("base_score").unwrap_or(&Value::Null),
            "base_score",
        )?;
        if !(0.0..1.0).contains(&base_score) || base_score == 0.0 {
            return Err(err(format!("base_score {base_score} is not a probability")));
        }
        let num_features = num_str(
            params.get("num_feature").unwrap_or(&Value::Null),
            "num_feature",
        )? as usize;
        let booster = learner
            .get("gradient_booster")
            .ok_or_else(|| err("no gradient_booster"))?;
        let name = booster.get("name").and_then(Value::as_str).unwrap_or("");
        if name != "gbtree" {
            return Err(err(format!("booster {name:?} is not gbtree")));
        }
        let trees = tree_documents(doc)?
            .iter()
            .map(parse_tree)
            .collect::<Result<Vec<_>, _>>()?;
        for t in &trees {
            if t.nodes
                .iter()
                .any(|n| !n.is_leaf() && n.feature as usize >= num_features)
            {
                return Err(err("a split uses a feature beyond num_feature"));
            }
        }
        // binary:logistic keeps base_score as a probability; the margin is its logit.
        let p = base_score as f32;
        let base_margin = -(1.0f32 / p - 1.0).ln();
        Ok(Self {
            trees,
            base_margin,
            num_features,
        })
    }

    /// Margin (log-odds of default) for one row.
    #[inline]
    pub fn margin(&self, x: &[f32]) -> f32 {
        // XGBoost starts from the base margin and adds tree by tree, in f32.
        let mut sum = self.base_margin;
        for t in &self.trees {
            sum += t.leaf_value(x);
        }
        sum
    }

    /// Probability of default for one row.
    #[inline]
    pub fn predict(&self, x: &[f32]) -> f32 {
        sigmoid(self.margin(x))
    }

    /// Deepest tree.
    pub fn max_depth(&self) -> usize {
        self.trees.iter().map(Tree::depth).max().unwrap_or(0)
    }
}

/// XGBoost's logistic, in `f32`.
#[inline]
pub fn sigmoid(margin: f32) -> f32 {
    1.0 / (1.0 + (-margin).exp())
}
