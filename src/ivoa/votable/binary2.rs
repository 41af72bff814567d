//! The BINARY2 serialisation (VOTable 1.3 §5.5): each row is a bitmap of null flags (one bit
//! per column, most significant first) followed by the cells in big-endian binary —
//! variable-length arrays and strings prefixed by their element count — and the whole
//! stream is base64 text inside `<STREAM encoding="base64">`. Batches are encoded as they
//! come; the 0–2 bytes that do not fill a base64 quantum wait for the next batch.

use super::VoType;
use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{
    DataType, Field, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
};
use arrow::error::ArrowError;
use base64::Engine;
use std::sync::Arc;

/// Streams BINARY2 rows as base64 text.
pub struct Writer {
    types: Vec<VoType>,
    /// Encoded bytes not yet turned into base64 (fewer than 3).
    pending: Vec<u8>,
}

/// A column cast to what its VOTable type writes.
enum Col {
    Bool(ArrayRef),
    I16(ArrayRef),
    I32(ArrayRef),
    I64(ArrayRef),
    F32(ArrayRef),
    F64(ArrayRef),
    /// `char` (ASCII, others as `?`) or `unicodeChar` (UTF-16 code units).
    Text(ArrayRef, bool),
    /// A numeric array: its element column, and the fixed count (None: variable).
    List(ArrayRef, Box<Col>, Option<usize>),
}

fn cast(a: &ArrayRef, dt: DataType) -> Result<ArrayRef, ArrowError> {
    if a.data_type() == &dt {
        Ok(a.clone())
    } else {
        arrow::compute::cast(a, &dt)
    }
}

fn scalar(a: &ArrayRef, datatype: &str) -> Result<Col, ArrowError> {
    Ok(match datatype {
        "boolean" => Col::Bool(cast(a, DataType::Boolean)?),
        "short" => Col::I16(cast(a, DataType::Int16)?),
        "int" => Col::I32(cast(a, DataType::Int32)?),
        "long" => Col::I64(cast(a, DataType::Int64)?),
        "float" => Col::F32(cast(a, DataType::Float32)?),
        "double" => Col::F64(cast(a, DataType::Float64)?),
        "char" => Col::Text(cast(a, DataType::Utf8)?, true),
        _ => Col::Text(cast(a, DataType::Utf8)?, false),
    })
}

fn element_type(datatype: &str) -> DataType {
    match datatype {
        "boolean" => DataType::Boolean,
        "short" => DataType::Int16,
        "int" => DataType::Int32,
        "long" => DataType::Int64,
        "float" => DataType::Float32,
        _ => DataType::Float64,
    }
}

impl Col {
    fn new(a: &ArrayRef, t: &VoType) -> Result<Col, ArrowError> {
        let is_array = t.arraysize.is_some() && !matches!(t.datatype, "char" | "unicodeChar");
        if !is_array {
            return scalar(a, t.datatype);
        }
        let elem = element_type(t.datatype);
        let list = cast(a, DataType::List(Arc::new(Field::new("item", elem, true))))?;
        let values = list.as_list::<i32>().values().clone();
        let fixed = t.arraysize.and_then(|s| s.parse::<usize>().ok());
        Ok(Col::List(
            list,
            Box::new(scalar(&values, t.datatype)?),
            fixed,
        ))
    }

    fn is_null(&self, row: usize) -> bool {
        match self {
            Col::Bool(a) | Col::I16(a) | Col::I32(a) | Col::I64(a) | Col::F32(a) | Col::F64(a) => {
                a.is_null(row)
            }
            Col::Text(a, _) | Col::List(a, _, _) => a.is_null(row),
        }
    }

    /// Writes element `i` of a scalar column (a null as the type's filler).
    fn put(&self, i: usize, out: &mut Vec<u8>) {
        match self {
            Col::Bool(a) => {
                let a = a.as_boolean();
                out.push(if a.is_null(i) {
                    b'?'
                } else if a.value(i) {
                    b'T'
                } else {
                    b'F'
                });
            }
            Col::I16(a) => out.extend(a.as_primitive::<Int16Type>().value(i).to_be_bytes()),
            Col::I32(a) => out.extend(a.as_primitive::<Int32Type>().value(i).to_be_bytes()),
            Col::I64(a) => out.extend(a.as_primitive::<Int64Type>().value(i).to_be_bytes()),
            Col::F32(a) => {
                let a = a.as_primitive::<Float32Type>();
                let v = if a.is_null(i) { f32::NAN } else { a.value(i) };
                out.extend(v.to_be_bytes());
            }
            Col::F64(a) => {
                let a = a.as_primitive::<Float64Type>();
                let v = if a.is_null(i) { f64::NAN } else { a.value(i) };
                out.extend(v.to_be_bytes());
            }
            Col::Text(a, ascii) => {
                let s = if a.is_null(i) {
                    ""
                } else {
                    a.as_string::<i32>().value(i)
                };
                if *ascii {
                    out.extend((s.chars().count() as u32).to_be_bytes());
                    out.extend(s.chars().map(|c| if c.is_ascii() { c as u8 } else { b'?' }));
                } else {
                    let units: Vec<u16> = s.encode_utf16().collect();
                    out.extend((units.len() as u32).to_be_bytes());
                    for u in units {
                        out.extend(u.to_be_bytes());
                    }
                }
            }
            Col::List(list, values, fixed) => {
                let l = list.as_list::<i32>();
                let (start, end) = if l.is_null(i) {
                    (0, 0)
                } else {
                    let o = l.value_offsets();
                    (o[i] as usize, o[i + 1] as usize)
                };
                let n = end - start;
                match fixed {
                    Some(k) => {
                        for j in 0..*k {
                            if j < n {
                                values.put(start + j, out);
                            } else {
                                values.filler(out);
                            }
                        }
                    }
                    None => {
                        out.extend((n as u32).to_be_bytes());
                        for j in start..end {
                            values.put(j, out);
                        }
                    }
                }
            }
        }
    }

    /// The bytes of one missing element.
    fn filler(&self, out: &mut Vec<u8>) {
        match self {
            Col::Bool(_) => out.push(b'?'),
            Col::I16(_) => out.extend([0; 2]),
            Col::I32(_) => out.extend([0; 4]),
            Col::I64(_) => out.extend([0; 8]),
            Col::F32(_) => out.extend(f32::NAN.to_be_bytes()),
            Col::F64(_) => out.extend(f64::NAN.to_be_bytes()),
            Col::Text(..) | Col::List(..) => out.extend([0; 4]),
        }
    }
}

impl Writer {
    pub fn new(types: Vec<VoType>) -> Self {
        Writer {
            types,
            pending: Vec::new(),
        }
    }

    /// The base64 text of one batch's rows (whole quanta only).
    pub fn encode(&mut self, batch: &arrow::array::RecordBatch) -> Result<String, ArrowError> {
        let cols: Vec<Col> = batch
            .columns()
            .iter()
            .zip(&self.types)
            .map(|(a, t)| Col::new(a, t))
            .collect::<Result<_, _>>()?;
        let flag_bytes = cols.len().div_ceil(8);
        let mut bytes = std::mem::take(&mut self.pending);
        bytes.reserve(batch.num_rows() * (flag_bytes + 8 * cols.len()));
        for row in 0..batch.num_rows() {
            let at = bytes.len();
            bytes.resize(at + flag_bytes, 0);
            for (i, c) in cols.iter().enumerate() {
                if c.is_null(row) {
                    bytes[at + i / 8] |= 0x80 >> (i % 8);
                }
                c.put(row, &mut bytes);
            }
        }
        let whole = bytes.len() - bytes.len() % 3;
        self.pending = bytes[whole..].to_vec();
        let mut text = base64::engine::general_purpose::STANDARD.encode(&bytes[..whole]);
        if !text.is_empty() {
            text.push('\n');
        }
        Ok(text)
    }

    /// The last base64 text (the remaining bytes, padded).
    pub fn finish(self) -> String {
        if self.pending.is_empty() {
            return String::new();
        }
        base64::engine::general_purpose::STANDARD.encode(&self.pending) + "\n"
    }
}

#[cfg(test)]
mod tests {
    use super::super::read::{ReadLimits, read};
    use super::super::{Ending, Serialization, VotableEncoder};
    use arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    /// What the BINARY2 writer writes, our reader (tested on its own against hand-made
    /// streams) reads back, over several batches whose bytes do not fill base64 quanta.
    #[test]
    fn binary2_round_trips_through_the_reader() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("x", DataType::Float64, true),
            Field::new("s", DataType::Utf8, true),
        ]));
        let batch = |ids: Vec<Option<i64>>, xs: Vec<Option<f64>>, ss: Vec<Option<&str>>| {
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(Int64Array::from(ids)),
                    Arc::new(Float64Array::from(xs)),
                    Arc::new(StringArray::from(ss)),
                ],
            )
            .unwrap()
        };
        let (mut enc, mut doc) =
            VotableEncoder::with_serialization(&schema, &[], Serialization::Binary2);
        doc += &enc
            .encode(&batch(vec![Some(1)], vec![Some(0.5)], vec![Some("é")]))
            .unwrap();
        doc += &enc
            .encode(&batch(
                vec![None, Some(3)],
                vec![Some(-1.0), None],
                vec![Some("ab"), None],
            ))
            .unwrap();
        doc += &enc.finish(&Ending::Complete);
        assert!(doc.contains("<BINARY2><STREAM encoding=\"base64\">"));
        let back = read(doc.as_bytes(), &ReadLimits::default()).unwrap();
        assert_eq!(back.num_rows(), 3);
        let ids = back
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        assert_eq!(ids.iter().collect::<Vec<_>>(), vec![Some(1), None, Some(3)]);
        let xs = back
            .column(1)
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap();
        assert_eq!(
            xs.iter().collect::<Vec<_>>(),
            vec![Some(0.5), Some(-1.0), None]
        );
        let ss = back
            .column(2)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(
            ss.iter().collect::<Vec<_>>(),
            vec![Some("é"), Some("ab"), None]
        );
    }
}
