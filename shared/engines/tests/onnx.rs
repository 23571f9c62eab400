//! Native ONNX evaluation against ONNX Runtime: every fixture model's every row gives ORT's
//! label and probabilities (or value) within 1e-6 (fixtures and the script that made them:
//! `samplekit/fixtures/onnx`), malformed files are refused with a precise error, and no byte
//! string makes the loader or the evaluator panic.

use prost::Message;
use puhui_engines::onnx::proto::{
    AttributeProto, Dimension, DimensionValue, ModelProto, NodeProto,
};
use puhui_engines::onnx::{OnnxError, OnnxKind, OnnxModel, Prediction};

// this test reads rows as f32s, not through the pandas-row reader
#[allow(dead_code)]
mod common;

const FIXTURES: common::Fixtures = common::Fixtures("onnx");
const TOLERANCE: f64 = 1e-6;

fn bytes(name: &str) -> Vec<u8> {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/onnx")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn load(name: &str) -> OnnxModel {
    OnnxModel::from_bytes(&bytes(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The scoring rows, row-major, as the f32s ORT scored.
fn rows() -> (usize, Vec<f32>) {
    let (header, records) = FIXTURES.csv("rows.csv");
    let width = header.len() - 1;
    let values = records
        .iter()
        .flat_map(|r| {
            r[1..].iter().map(|v| {
                v.parse::<f32>()
                    .unwrap_or_else(|e| panic!("rows.csv {v:?}: {e}"))
            })
        })
        .collect();
    (width, values)
}

fn num(v: &str) -> f64 {
    v.parse().unwrap_or_else(|e| panic!("{v:?}: {e}"))
}

/// Compares a model's predictions, one row at a time and as one batch, with ORT's; returns
/// the largest absolute difference seen.
fn compare(model_name: &str) -> f64 {
    let model = load(&format!("{model_name}.onnx"));
    let (width, rows) = rows();
    assert_eq!(model.input_width(), width, "{model_name}: width");
    let n = rows.len() / width;
    let mut batch = Vec::new();
    model.predict_batch(&rows, &mut batch);
    assert_eq!(batch.len(), n);
    let (header, expected) = FIXTURES.csv(&format!("{model_name}.expected.csv"));
    assert_eq!(expected.len(), n, "{model_name}: rows");
    let mut max_diff = 0.0f64;
    for (i, want) in expected.iter().enumerate() {
        let alone = model.predict(&rows[i * width..(i + 1) * width]);
        // Debug text, so NaN compares equal to NaN
        assert_eq!(
            format!("{alone:?}"),
            format!("{:?}", batch[i]),
            "{model_name} row {i}: batch and alone differ"
        );
        let got: &Prediction = &batch[i];
        let close = |g: f32, w: f64, scale: f64| {
            let g = f64::from(g);
            if g.is_nan() || w.is_nan() {
                assert!(
                    g.is_nan() && w.is_nan(),
                    "{model_name} row {i}: {g} vs ORT {w}"
                );
                return 0.0;
            }
            let d = (g - w).abs();
            assert!(
                d <= TOLERANCE * scale,
                "{model_name} row {i}: {g} vs ORT {w} (diff {d:e})"
            );
            d
        };
        match model.kind() {
            OnnxKind::Classifier { labels, .. } => {
                assert_eq!(
                    got.label,
                    Some(want[1].parse().expect("label")),
                    "{model_name} row {i}: label"
                );
                assert_eq!(
                    got.probabilities.len(),
                    header.len() - 2,
                    "{model_name}: classes"
                );
                for (k, label) in labels.iter().enumerate() {
                    let w = num(&want[2 + k]);
                    max_diff = max_diff.max(close(got.probabilities[k], w, 1.0));
                    let p = got.probability_of(*label).expect("probability by label");
                    assert_eq!(p.to_bits(), got.probabilities[k].to_bits());
                }
            }
            OnnxKind::Regressor => {
                let w = num(&want[1]);
                let v = got.value.expect("a regressor's value");
                max_diff = max_diff.max(close(v, w, w.abs().max(1.0)));
            }
        }
    }
    println!("{model_name}: {n} rows, max |diff| vs ORT {max_diff:e}");
    max_diff
}

#[test]
fn lightgbm_binary_50_trees_with_zipmap_matches_ort() {
    compare("lgb50");
}

#[test]
fn lightgbm_binary_200_trees_without_zipmap_matches_ort() {
    compare("lgb200");
}

#[test]
fn lightgbm_three_classes_matches_ort() {
    compare("lgb_3class");
}

#[test]
fn xgboost_binary_matches_ort() {
    compare("xgb50");
    compare("xgb200");
}

#[test]
fn random_forest_binary_matches_ort() {
    compare("rf");
}

#[test]
fn gradient_boosting_regressor_matches_ort() {
    compare("gbr");
}

#[test]
fn logistic_regression_with_and_without_zipmap_matches_ort() {
    compare("lr");
    compare("lr_zipmap");
    compare("lr_3class");
}

#[test]
fn linear_regression_matches_ort() {
    compare("linreg");
}

#[test]
fn kinds_labels_and_feature_names() {
    let lgb = load("lgb50.onnx");
    assert_eq!(
        lgb.kind(),
        OnnxKind::Classifier {
            labels: vec![0, 1],
            names: None
        }
    );
    assert_eq!(lgb.tree_count(), 50);
    let names = lgb.feature_names().expect("feature_names metadata");
    assert_eq!(names.len(), 8);
    assert_eq!(names[0], "age");
    assert_eq!(load("xgb50.onnx").feature_names(), None);
    assert_eq!(load("gbr.onnx").kind(), OnnxKind::Regressor);
    assert_eq!(
        load("lr_3class.onnx").kind(),
        OnnxKind::Classifier {
            labels: vec![0, 1, 2],
            names: None
        }
    );
    let p = lgb.predict(&[f32::NAN; 8]);
    assert!(p.probability_of(7).is_none());
    assert!((p.probabilities.iter().sum::<f32>() - 1.0).abs() < 1e-6);
}

// ---- refusals ----

fn decode(name: &str) -> ModelProto {
    ModelProto::decode(&bytes(name)[..]).expect("fixture decodes")
}

fn refuse(model: &ModelProto) -> OnnxError {
    match OnnxModel::from_bytes(&model.encode_to_vec()) {
        Ok(_) => panic!("malformed model accepted"),
        Err(e) => e,
    }
}

fn attr<'a>(node: &'a mut NodeProto, name: &str) -> &'a mut AttributeProto {
    node.attribute
        .iter_mut()
        .find(|a| a.name == name)
        .unwrap_or_else(|| panic!("no attribute {name}"))
}

/// lgb50 with its tree node changed by `f`.
fn lgb_with(f: impl FnOnce(&mut NodeProto)) -> OnnxError {
    let mut m = decode("lgb50.onnx");
    let graph = m.graph.as_mut().expect("graph");
    f(&mut graph.node[0]);
    refuse(&m)
}

#[test]
fn truncated_and_empty_files_are_refused() {
    let b = bytes("lgb50.onnx");
    for cut in [1, 10, b.len() / 3, b.len() - 1] {
        let e = OnnxModel::from_bytes(&b[..cut]).expect_err("truncated file accepted");
        assert!(matches!(e, OnnxError::Decode(_)), "cut at {cut}: {e}");
    }
    assert_eq!(
        OnnxModel::from_bytes(&[]).expect_err("empty"),
        OnnxError::NoGraph
    );
    assert_eq!(refuse(&ModelProto::default()), OnnxError::NoGraph);
}

#[test]
fn unsupported_operator_is_named() {
    let e = OnnxModel::from_bytes(&bytes("mlp_unsupported.onnx")).expect_err("MLP accepted");
    assert_eq!(
        e,
        OnnxError::UnsupportedOperator {
            op_type: "MatMul".into(),
            domain: "".into()
        }
    );
    assert!(e.to_string().contains("MatMul"), "{e}");
    let e = lgb_with(|n| n.domain = "com.example".into());
    assert_eq!(
        e,
        OnnxError::UnsupportedOperator {
            op_type: "TreeEnsembleClassifier".into(),
            domain: "com.example".into()
        }
    );
}

#[test]
fn inconsistent_attribute_lengths_are_refused() {
    let e = lgb_with(|n| {
        attr(n, "nodes_values").floats.pop();
    });
    assert!(
        matches!(&e, OnnxError::AttributeLength { name, .. } if name == "nodes_values"),
        "{e}"
    );
    let e = lgb_with(|n| {
        attr(n, "class_weights").floats.pop();
    });
    assert!(
        matches!(&e, OnnxError::AttributeLength { name, .. } if name == "class_weights"),
        "{e}"
    );
}

#[test]
fn dangling_duplicate_and_cyclic_nodes_are_refused() {
    let e = lgb_with(|n| attr(n, "nodes_truenodeids").ints[0] = 99_999);
    assert!(
        matches!(
            e,
            OnnxError::DanglingNode {
                tree: 0,
                node: 0,
                target: 99_999,
                ..
            }
        ),
        "{e}"
    );
    let e = lgb_with(|n| attr(n, "class_nodeids").ints[0] = 77_777);
    assert!(
        matches!(e, OnnxError::DanglingNode { target: 77_777, .. }),
        "{e}"
    );
    // node 1 (root's true child) points back to the root
    let e = lgb_with(|n| attr(n, "nodes_truenodeids").ints[1] = 0);
    assert!(matches!(e, OnnxError::Cycle { tree: 0, node: 0 }), "{e}");
    let e = lgb_with(|n| attr(n, "nodes_nodeids").ints[1] = 0);
    assert!(
        matches!(e, OnnxError::DuplicateNode { tree: 0, node: 0 }),
        "{e}"
    );
}

#[test]
fn nan_numbers_unknown_names_and_bad_features_are_refused() {
    let e = lgb_with(|n| attr(n, "class_weights").floats[3] = f32::NAN);
    assert!(
        matches!(&e, OnnxError::NonFinite { name, index: 3, .. } if name == "class_weights"),
        "{e}"
    );
    let e = lgb_with(|n| attr(n, "nodes_values").floats[0] = f32::NAN);
    assert!(
        matches!(&e, OnnxError::NonFinite { name, index: 0, .. } if name == "nodes_values"),
        "{e}"
    );
    let e = lgb_with(|n| attr(n, "post_transform").s = b"SQUASH".to_vec());
    assert_eq!(
        e,
        OnnxError::UnknownAttributeValue {
            op: "TreeEnsembleClassifier".into(),
            name: "post_transform".into(),
            value: "SQUASH".into()
        }
    );
    let e = lgb_with(|n| attr(n, "nodes_modes").strings[0] = b"BRANCH_SOMETIMES".to_vec());
    assert!(
        matches!(&e, OnnxError::UnknownAttributeValue { name, .. } if name == "nodes_modes"),
        "{e}"
    );
    let e = lgb_with(|n| attr(n, "nodes_featureids").ints[0] = 8);
    assert!(
        matches!(
            e,
            OnnxError::FeatureOutOfRange {
                feature: 8,
                width: 8,
                ..
            }
        ),
        "{e}"
    );
    let e = lgb_with(|n| attr(n, "class_ids").ints[0] = 5);
    assert!(
        matches!(
            e,
            OnnxError::TargetOutOfRange {
                id: 5,
                count: 2,
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn unknown_input_width_is_refused() {
    let mut m = decode("lr.onnx");
    let input = &mut m.graph.as_mut().expect("graph").input[0];
    let shape = input
        .r#type
        .as_mut()
        .and_then(|t| t.tensor_type.as_mut())
        .and_then(|t| t.shape.as_mut())
        .expect("shape");
    shape.dim[1] = Dimension {
        value: Some(DimensionValue::DimParam("n_features".into())),
    };
    assert_eq!(
        refuse(&m),
        OnnxError::UnknownInputWidth {
            name: "input".into()
        }
    );
    shape_less(&mut m);
    assert!(matches!(refuse(&m), OnnxError::UnknownInputWidth { .. }));
}

fn shape_less(m: &mut ModelProto) {
    let input = &mut m.graph.as_mut().expect("graph").input[0];
    if let Some(t) = input.r#type.as_mut().and_then(|t| t.tensor_type.as_mut()) {
        t.shape = None;
    }
}

#[test]
fn graphs_the_exporters_do_not_make_are_refused() {
    // an output nothing produces
    let mut m = decode("lr.onnx");
    m.graph.as_mut().expect("graph").output[0].name = "nowhere".into();
    assert!(matches!(refuse(&m), OnnxError::UnsupportedGraph(_)));
    // no model operator at all
    let mut m = decode("lr.onnx");
    m.graph.as_mut().expect("graph").node.clear();
    assert!(matches!(refuse(&m), OnnxError::UnsupportedGraph(_)));
}

// ---- no panics ----

mod no_panic {
    use super::*;
    use proptest::prelude::*;

    fn try_model(b: &[u8]) {
        if let Ok(m) = OnnxModel::from_bytes(b) {
            // whatever loads must also score without panicking or looping
            let mut row = vec![0.5f32; m.input_width()];
            let _ = m.predict(&row);
            row.iter_mut().for_each(|v| *v = f32::NAN);
            let _ = m.predict(&row);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn random_bytes(b in proptest::collection::vec(any::<u8>(), 0..512)) {
            try_model(&b);
        }

        #[test]
        fn truncations_of_a_real_model(cut in 0usize..=1) {
            let _ = cut;
            let b = bytes("rf.onnx");
            // every 97th cut point: a few hundred decodes of a 12 kB file
            for len in (0..b.len()).step_by(97) {
                try_model(&b[..len]);
            }
        }

        #[test]
        fn corrupted_bytes_of_a_real_model(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
            let mut b = bytes("rf.onnx");
            let n = b.len();
            for (at, v) in flips {
                b[at % n] = v;
            }
            try_model(&b);
        }
    }
}
