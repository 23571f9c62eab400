//! Typed, checked access to a node's attributes.

use super::OnnxError;
use super::proto::{AttributeProto, NodeProto, TensorProto, data_type};

/// A node's attributes with its op type, for error messages.
pub(crate) struct Attrs<'a> {
    op: &'a str,
    list: &'a [AttributeProto],
}

impl<'a> Attrs<'a> {
    pub(crate) fn of(node: &'a NodeProto) -> Self {
        Attrs {
            op: &node.op_type,
            list: &node.attribute,
        }
    }

    pub(crate) fn op(&self) -> &'a str {
        self.op
    }

    fn get(&self, name: &str) -> Option<&'a AttributeProto> {
        self.list.iter().find(|a| a.name == name)
    }

    /// Integers (empty when absent).
    pub(crate) fn ints(&self, name: &str) -> &'a [i64] {
        self.get(name).map_or(&[], |a| a.ints.as_slice())
    }

    /// An integer, or `default` when absent.
    pub(crate) fn int(&self, name: &str, default: i64) -> i64 {
        self.get(name).map_or(default, |a| a.i)
    }

    /// Floats (empty when absent).
    pub(crate) fn floats(&self, name: &str) -> &'a [f32] {
        self.get(name).map_or(&[], |a| a.floats.as_slice())
    }

    fn utf8(&self, name: &str, bytes: &[u8]) -> Result<String, OnnxError> {
        String::from_utf8(bytes.to_vec()).map_err(|_| OnnxError::UnknownAttributeValue {
            op: self.op.into(),
            name: name.into(),
            value: String::from_utf8_lossy(bytes).into_owned(),
        })
    }

    /// A string, `None` when absent.
    pub(crate) fn string(&self, name: &str) -> Result<Option<String>, OnnxError> {
        self.get(name).map(|a| self.utf8(name, &a.s)).transpose()
    }

    /// Strings (empty when absent).
    pub(crate) fn strings(&self, name: &str) -> Result<Vec<String>, OnnxError> {
        self.get(name)
            .map_or(&[][..], |a| a.strings.as_slice())
            .iter()
            .map(|s| self.utf8(name, s))
            .collect()
    }

    /// The values of `name` (floats) or of `name_as_tensor` (a float or double tensor), as
    /// f64; both present is refused, as ORT does.
    pub(crate) fn values_or_tensor(&self, name: &str) -> Result<Vec<f64>, OnnxError> {
        let floats = self.floats(name);
        let tensor_name = format!("{name}_as_tensor");
        match self.get(&tensor_name).and_then(|a| a.t.as_ref()) {
            Some(t) => {
                if !floats.is_empty() {
                    return Err(OnnxError::ConflictingAttributes {
                        op: self.op.into(),
                        name: name.into(),
                        other: tensor_name,
                    });
                }
                tensor_values(t).map_err(|why| OnnxError::BadTensor {
                    name: format!("{}.{tensor_name}", self.op),
                    why,
                })
            }
            None => Ok(floats.iter().map(|&v| f64::from(v)).collect()),
        }
    }

    /// Whether `name_as_tensor` holds doubles (then ORT computes the ensemble in double).
    pub(crate) fn has_double_tensor(&self, name: &str) -> bool {
        self.get(&format!("{name}_as_tensor"))
            .and_then(|a| a.t.as_ref())
            .is_some_and(|t| t.data_type == data_type::DOUBLE)
    }

    /// Refuses a list whose length is not `expected`.
    pub(crate) fn expect_len(
        &self,
        name: &str,
        found: usize,
        expected: usize,
    ) -> Result<(), OnnxError> {
        if found == expected {
            Ok(())
        } else {
            Err(OnnxError::AttributeLength {
                op: self.op.into(),
                name: name.into(),
                expected: expected.to_string(),
                found,
            })
        }
    }

    /// Refuses NaN and infinities.
    pub(crate) fn finite(&self, name: &str, index: usize, v: f64) -> Result<(), OnnxError> {
        if v.is_finite() {
            Ok(())
        } else {
            Err(self.non_finite(name, index, v))
        }
    }

    /// Refuses NaN (an infinite threshold is a valid, if odd, split).
    pub(crate) fn finite_or_inf(&self, name: &str, index: usize, v: f64) -> Result<(), OnnxError> {
        if v.is_nan() {
            Err(self.non_finite(name, index, v))
        } else {
            Ok(())
        }
    }

    fn non_finite(&self, name: &str, index: usize, v: f64) -> OnnxError {
        OnnxError::NonFinite {
            op: self.op.into(),
            name: name.into(),
            index,
            value: v.to_string(),
        }
    }
}

/// A float or double tensor's values as f64 (typed fields or little-endian `raw_data`).
pub(crate) fn tensor_values(t: &TensorProto) -> Result<Vec<f64>, String> {
    if t.data_location == 1 {
        return Err("external data is not supported".into());
    }
    match t.data_type {
        data_type::FLOAT => {
            if t.raw_data.is_empty() {
                Ok(t.float_data.iter().map(|&v| f64::from(v)).collect())
            } else if !t.raw_data.len().is_multiple_of(4) {
                Err(format!(
                    "raw_data of {} bytes is not whole floats",
                    t.raw_data.len()
                ))
            } else {
                Ok(t.raw_data
                    .chunks_exact(4)
                    .map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                    .collect())
            }
        }
        data_type::DOUBLE => {
            if t.raw_data.is_empty() {
                Ok(t.double_data.clone())
            } else if !t.raw_data.len().is_multiple_of(8) {
                Err(format!(
                    "raw_data of {} bytes is not whole doubles",
                    t.raw_data.len()
                ))
            } else {
                Ok(t.raw_data
                    .chunks_exact(8)
                    .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                    .collect())
            }
        }
        other => Err(format!("element type {other} is not float or double")),
    }
}
