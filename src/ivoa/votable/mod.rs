//! VOTable 1.4 output (TABLEDATA serialisation), written batch by batch so results stream:
//! the head (`RESOURCE type="results"`, a `QUERY_STATUS` OK `INFO`, one `FIELD` per column with
//! the column's `unit`, `ucd` and `description` from the Arrow field metadata), then `TR` rows,
//! then the tail, which may carry a second `QUERY_STATUS` — `OVERFLOW` when the row limit cut
//! the result, `ERROR` when execution failed mid-stream — as DALI allows (clients such as pyvo
//! take the last status).
//!
//! Types: booleans → `boolean`; 8/16-bit integers → `short`; 32-bit → `int`; 64-bit (and
//! unsigned 32/64) → `long`; floats → `float`/`double` (NaN, `+Inf`, `-Inf`); strings →
//! `char` with `arraysize="*"`; timestamps and dates → ISO 8601 `char` with
//! `xtype="timestamp"`; lists of numbers → variable-length arrays. A null is an empty `TD`.

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Field, Float32Type, Float64Type, Schema};
use arrow::error::ArrowError;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use std::fmt::Write;

/// Escapes text for XML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 cannot carry at all.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

/// The VOTable datatype, arraysize and xtype of an Arrow type.
pub fn votable_type(dt: &DataType) -> (&'static str, Option<&'static str>, Option<&'static str>) {
    match dt {
        DataType::Boolean => ("boolean", None, None),
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => ("short", None, None),
        DataType::Int32 | DataType::UInt16 => ("int", None, None),
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => ("long", None, None),
        DataType::Float16 | DataType::Float32 => ("float", None, None),
        DataType::Float64 | DataType::Decimal128(..) | DataType::Decimal256(..) => {
            ("double", None, None)
        }
        DataType::Timestamp(..) | DataType::Date32 | DataType::Date64 => {
            ("char", Some("*"), Some("timestamp"))
        }
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            match votable_type(f.data_type()) {
                (t, None, None) => (t, Some("*"), None),
                _ => ("char", Some("*"), None),
            }
        }
        _ => ("char", Some("*"), None),
    }
}

/// The `FIELD` element of a column.
fn field_xml(f: &Field) -> String {
    let (datatype, arraysize, xtype) = votable_type(f.data_type());
    let md = f.metadata();
    let mut s = format!(
        "<FIELD name=\"{}\" datatype=\"{datatype}\"",
        escape(f.name())
    );
    if let Some(a) = arraysize {
        let _ = write!(s, " arraysize=\"{a}\"");
    }
    if let Some(x) = xtype {
        let _ = write!(s, " xtype=\"{x}\"");
    }
    for key in ["unit", "ucd", "utype"] {
        if let Some(v) = md.get(key).filter(|v| !v.is_empty()) {
            let _ = write!(s, " {key}=\"{}\"", escape(v));
        }
    }
    match md.get("description").filter(|v| !v.is_empty()) {
        Some(d) => {
            let _ = write!(s, "><DESCRIPTION>{}</DESCRIPTION></FIELD>", escape(d));
        }
        None => s.push_str("/>"),
    }
    s
}

const PROLOGUE: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<VOTABLE version=\"1.4\" xmlns=\"http://www.ivoa.net/xml/VOTable/v1.3\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\n<RESOURCE type=\"results\">\n";

/// A VOTable document carrying only an error status (DALI error document).
pub fn error_document(message: &str) -> String {
    format!(
        "{PROLOGUE}<INFO name=\"QUERY_STATUS\" value=\"ERROR\">{}</INFO>\n</RESOURCE>\n</VOTABLE>\n",
        escape(message)
    )
}

/// How a result ended, for the tail's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    Complete,
    Overflow,
    Error(String),
}

/// Streams one results table.
pub struct VotableEncoder {
    columns: usize,
}

impl VotableEncoder {
    /// Starts a table of `schema`; `infos` are extra `INFO` name/value pairs for the head.
    pub fn new(schema: &Schema, infos: &[(&str, String)]) -> (Self, String) {
        let mut s = String::from(PROLOGUE);
        s.push_str("<INFO name=\"QUERY_STATUS\" value=\"OK\"/>\n");
        for (name, value) in infos {
            let _ = writeln!(
                s,
                "<INFO name=\"{}\" value=\"{}\"/>",
                escape(name),
                escape(value)
            );
        }
        s.push_str("<TABLE>\n");
        for f in schema.fields() {
            s.push_str(&field_xml(f));
            s.push('\n');
        }
        s.push_str("<DATA><TABLEDATA>\n");
        (
            VotableEncoder {
                columns: schema.fields().len(),
            },
            s,
        )
    }

    /// The `TR` rows of one batch.
    pub fn encode(&mut self, batch: &RecordBatch) -> Result<String, ArrowError> {
        if batch.num_columns() != self.columns {
            return Err(ArrowError::SchemaError(format!(
                "batch has {} columns, the table {}",
                batch.num_columns(),
                self.columns
            )));
        }
        let cells: Vec<Cells> = batch
            .columns()
            .iter()
            .map(Cells::new)
            .collect::<Result<_, _>>()?;
        let mut out = String::with_capacity(batch.num_rows() * self.columns * 16);
        let mut cell = String::new();
        for row in 0..batch.num_rows() {
            out.push_str("<TR>");
            for c in &cells {
                cell.clear();
                c.write(row, &mut cell)?;
                if cell.is_empty() {
                    out.push_str("<TD/>");
                } else {
                    out.push_str("<TD>");
                    out.push_str(&escape(&cell));
                    out.push_str("</TD>");
                }
            }
            out.push_str("</TR>\n");
        }
        Ok(out)
    }

    /// Closes the table, adding the final status when it is not plain success.
    pub fn finish(self, ending: &Ending) -> String {
        let mut s = String::from("</TABLEDATA></DATA>\n</TABLE>\n");
        match ending {
            Ending::Complete => {}
            Ending::Overflow => s.push_str(
                "<INFO name=\"QUERY_STATUS\" value=\"OVERFLOW\">the result was cut at the row limit (MAXREC)</INFO>\n",
            ),
            Ending::Error(m) => {
                let _ = writeln!(
                    s,
                    "<INFO name=\"QUERY_STATUS\" value=\"ERROR\">{}</INFO>",
                    escape(m)
                );
            }
        }
        s.push_str("</RESOURCE>\n</VOTABLE>\n");
        s
    }
}

/// One column's cell writer.
enum Cells<'a> {
    F64(&'a arrow::array::PrimitiveArray<Float64Type>),
    F32(&'a arrow::array::PrimitiveArray<Float32Type>),
    List(&'a ArrayRef),
    Other(&'a ArrayRef, ArrayFormatter<'a>),
}

const OPTIONS: FormatOptions<'static> = FormatOptions::new().with_null("");

fn write_float(v: f64, out: &mut String) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(out, "{v:?}");
    }
}

impl<'a> Cells<'a> {
    fn new(a: &'a ArrayRef) -> Result<Self, ArrowError> {
        Ok(match a.data_type() {
            DataType::Float64 => Cells::F64(a.as_primitive()),
            DataType::Float32 => Cells::F32(a.as_primitive()),
            DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..) => {
                Cells::List(a)
            }
            _ => Cells::Other(a, ArrayFormatter::try_new(a.as_ref(), &OPTIONS)?),
        })
    }

    fn write(&self, row: usize, out: &mut String) -> Result<(), ArrowError> {
        match self {
            Cells::F64(a) => {
                if a.is_valid(row) {
                    write_float(a.value(row), out);
                }
            }
            Cells::F32(a) => {
                if a.is_valid(row) {
                    // Through the shortest f32 text, so 0.1f32 reads back as 0.1.
                    let v: f64 = format!("{:?}", a.value(row)).parse().unwrap_or(f64::NAN);
                    write_float(v, out);
                }
            }
            Cells::List(a) => {
                if a.is_valid(row) {
                    let values = match a.data_type() {
                        DataType::List(_) => a.as_list::<i32>().value(row),
                        DataType::LargeList(_) => a.as_list::<i64>().value(row),
                        _ => a.as_fixed_size_list().value(row),
                    };
                    let inner = Cells::new(&values)?;
                    for i in 0..values.len() {
                        if i > 0 {
                            out.push(' ');
                        }
                        let before = out.len();
                        inner.write(i, out)?;
                        if out.len() == before {
                            out.push_str("NaN");
                        }
                    }
                }
            }
            Cells::Other(a, f) => {
                if a.is_valid(row) {
                    write!(out, "{}", f.value(row))
                        .map_err(|e| ArrowError::ExternalError(Box::new(e)))?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, Int64Array, ListArray, StringArray};
    use arrow::datatypes::Float64Type;
    use std::collections::HashMap;
    use std::sync::Arc;

    #[test]
    fn rows_nulls_units_and_statuses() {
        let ra = Field::new("ra", DataType::Float64, true).with_metadata(HashMap::from([
            ("unit".to_string(), "deg".to_string()),
            ("ucd".to_string(), "pos.eq.ra;meta.main".to_string()),
        ]));
        let schema = Arc::new(Schema::new(vec![
            ra,
            Field::new("id", DataType::Utf8, false),
            Field::new("n", DataType::Int64, true),
            Field::new(
                "radii",
                DataType::List(Arc::new(Field::new("item", DataType::Float64, true))),
                true,
            ),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Float64Array::from(vec![Some(1.5), None, Some(f64::NAN)])),
                Arc::new(StringArray::from(vec!["a<b", "c&d", "e"])),
                Arc::new(Int64Array::from(vec![Some(1), Some(2), None])),
                Arc::new(ListArray::from_iter_primitive::<Float64Type, _, _>(vec![
                    Some(vec![Some(1.0), Some(2.5)]),
                    None,
                    Some(vec![]),
                ])),
            ],
        )
        .unwrap();
        let (mut enc, head) = VotableEncoder::new(&schema, &[("QUERY", "SELECT 1".into())]);
        assert!(head.contains(
            "<FIELD name=\"ra\" datatype=\"double\" unit=\"deg\" ucd=\"pos.eq.ra;meta.main\"/>"
        ));
        assert!(head.contains("<FIELD name=\"id\" datatype=\"char\" arraysize=\"*\"/>"));
        assert!(head.contains("<FIELD name=\"radii\" datatype=\"double\" arraysize=\"*\"/>"));
        let rows = enc.encode(&batch).unwrap();
        assert_eq!(
            rows,
            "<TR><TD>1.5</TD><TD>a&lt;b</TD><TD>1</TD><TD>1.0 2.5</TD></TR>\n\
             <TR><TD/><TD>c&amp;d</TD><TD>2</TD><TD/></TR>\n\
             <TR><TD>NaN</TD><TD>e</TD><TD/><TD/></TR>\n"
        );
        assert!(enc.finish(&Ending::Overflow).contains("value=\"OVERFLOW\""));
        assert!(error_document("bad <query>").contains("value=\"ERROR\">bad &lt;query&gt;<"));
    }
}
