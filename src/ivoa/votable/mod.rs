//! VOTable 1.4 output, written batch by batch so results stream: the head (`RESOURCE
//! type="results"`, a `QUERY_STATUS` OK `INFO`, the ICRS `COOSYS` that position fields
//! reference, one `FIELD` per column with the column's `unit`, `ucd` and `description` from
//! the Arrow field metadata, under a readable unique name), then the rows as `TABLEDATA` or
//! `BINARY2` ([`binary2`]), then the tail, which may carry a second `QUERY_STATUS` —
//! `OVERFLOW` when the row limit cut the result, `ERROR` when execution failed mid-stream —
//! as DALI allows (clients such as pyvo take the last status). [`read`] parses uploads.
//!
//! Types: booleans → `boolean`; 8/16-bit integers → `short`; 32-bit → `int`; 64-bit (and
//! unsigned 32/64) → `long`; floats → `float`/`double` (NaN, `+Inf`, `-Inf`); strings →
//! `unicodeChar` with `arraysize="*"`, or `char` when the column is marked ASCII
//! ([`ASCII`]: identifiers, FITS header values); timestamps and dates → ISO 8601 `char` with
//! `xtype="timestamp"`; lists of numbers → variable-length arrays; DALI geometries (fields
//! whose [`XTYPE`] metadata says `point`, `circle`, `polygon`) → `double` arrays with that
//! xtype. A null is an empty `TD` (BINARY2: its null flag).

pub mod binary2;
pub mod read;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Field, Float32Type, Float64Type, Schema};
use arrow::error::ArrowError;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use std::fmt::Write;

/// Field metadata key saying a string column holds only ASCII (identifiers, FITS header
/// values): it is declared `char`; other strings are `unicodeChar`.
pub const ASCII: &str = "votable.ascii";
/// Field metadata key of a DALI extended type (`point`, `circle`, `polygon`, `timestamp`).
pub const XTYPE: &str = "xtype";
/// The `ID` of the document's ICRS coordinate system, referenced by position fields.
pub const COOSYS_ID: &str = "icrs";

/// Escapes text for XML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    escape_into(s, &mut out);
    out
}

/// [`escape`], appending to `out`.
pub fn escape_into(s: &str, out: &mut String) {
    // Most text (numbers, identifiers) needs nothing escaped: copied at once.
    if !s
        .bytes()
        .any(|b| matches!(b, b'&' | b'<' | b'>' | b'"' | b'\'') || b < 0x20)
    {
        out.push_str(s);
        return;
    }
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
}

/// How a column is declared: VOTable datatype, arraysize and xtype.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VoType {
    pub datatype: &'static str,
    pub arraysize: Option<&'static str>,
    pub xtype: Option<&'static str>,
}

/// The VOTable type of an Arrow field (its data type, plus the `xtype` and ASCII metadata).
pub fn votable_type(f: &Field) -> VoType {
    let md = f.metadata();
    let geometry = match md.get(XTYPE).map(String::as_str) {
        Some("point") => Some(("point", "2")),
        Some("circle") => Some(("circle", "3")),
        Some("polygon") => Some(("polygon", "*")),
        _ => None,
    };
    if let Some((x, n)) = geometry {
        return VoType {
            datatype: "double",
            arraysize: Some(n),
            xtype: Some(x),
        };
    }
    let ascii = md.get(ASCII).is_some_and(|v| v == "true");
    let t = |datatype, arraysize, xtype| VoType {
        datatype,
        arraysize,
        xtype,
    };
    match f.data_type() {
        DataType::Boolean => t("boolean", None, None),
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => t("short", None, None),
        DataType::Int32 | DataType::UInt16 => t("int", None, None),
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => t("long", None, None),
        DataType::Float16 | DataType::Float32 => t("float", None, None),
        DataType::Float64 | DataType::Decimal128(..) | DataType::Decimal256(..) => {
            t("double", None, None)
        }
        DataType::Timestamp(..) | DataType::Date32 | DataType::Date64 => {
            t("char", Some("*"), Some("timestamp"))
        }
        DataType::List(inner) | DataType::LargeList(inner) | DataType::FixedSizeList(inner, _) => {
            match votable_type(inner) {
                VoType {
                    datatype,
                    arraysize: None,
                    xtype: None,
                } => t(datatype, Some("*"), None),
                _ => t("unicodeChar", Some("*"), None),
            }
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            // Text that declares what it holds: an STC-S region, an ISO time (an upload's).
            let xtype = match md.get(XTYPE).map(String::as_str) {
                Some("adql:REGION") => Some("adql:REGION"),
                Some("timestamp") => Some("timestamp"),
                _ => None,
            };
            t(if ascii { "char" } else { "unicodeChar" }, Some("*"), xtype)
        }
        _ => t("unicodeChar", Some("*"), None),
    }
}

/// Whether a field is a sky position (its UCD says so, or it is a geometry): it references
/// the document's `COOSYS`.
fn positional(f: &Field, t: &VoType) -> bool {
    let ucd = f.metadata().get("ucd").map(String::as_str).unwrap_or("");
    ucd.starts_with("pos.eq")
        || ucd.starts_with("POS_EQ_")
        || matches!(t.xtype, Some("point" | "circle" | "polygon"))
}

/// Readable, unique column names: DataFusion names an unaliased expression after its text
/// (`sources.flux * Int64(2)`); qualifiers and literal type wrappers are dropped (`flux * 2`)
/// and repeats get `_2`, `_3`, ...
pub fn column_names(schema: &Schema) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    schema
        .fields()
        .iter()
        .map(|f| {
            let base = readable(f.name());
            let mut name = base.clone();
            let mut k = 2;
            while !seen.insert(name.to_ascii_lowercase()) {
                name = format!("{base}_{k}");
                k += 1;
            }
            name
        })
        .collect()
}

fn readable(name: &str) -> String {
    if name.chars().all(|c| c.is_alphanumeric() || c == '_') {
        return name.to_string();
    }
    let mut out = String::with_capacity(name.len());
    let chars: Vec<char> = name.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        // An identifier run: drop `qualifier.` prefixes and `Type(` literal wrappers.
        if chars[i].is_alphabetic() || chars[i] == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            if chars.get(i) == Some(&'.')
                && chars
                    .get(i + 1)
                    .is_some_and(|c| c.is_alphabetic() || *c == '_')
            {
                i += 1; // a qualifier
                continue;
            }
            let literal_types = [
                "Int8",
                "Int16",
                "Int32",
                "Int64",
                "UInt8",
                "UInt16",
                "UInt32",
                "UInt64",
                "Float32",
                "Float64",
                "Utf8",
                "Utf8View",
                "LargeUtf8",
                "Boolean",
                "Decimal128",
            ];
            if chars.get(i) == Some(&'(') && literal_types.contains(&word.as_str()) {
                // Copy the literal inside, then skip the closing parenthesis.
                let mut depth = 0;
                i += 1;
                let lit_start = i;
                while i < chars.len() && !(chars[i] == ')' && depth == 0) {
                    match chars[i] {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        _ => {}
                    }
                    i += 1;
                }
                let lit: String = chars[lit_start..i.min(chars.len())].iter().collect();
                if word.contains("Utf8") {
                    out.push('\'');
                    out.push_str(lit.trim_matches('"'));
                    out.push('\'');
                } else {
                    out.push_str(&lit);
                }
                i += 1;
                continue;
            }
            out.push_str(&word);
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    let out = out.trim().to_string();
    if out.is_empty() {
        name.to_string()
    } else {
        out
    }
}

/// The `FIELD` element of a column, named `name`.
fn field_xml(f: &Field, name: &str) -> String {
    let t = votable_type(f);
    let md = f.metadata();
    let mut s = format!(
        "<FIELD name=\"{}\" datatype=\"{}\"",
        escape(name),
        t.datatype
    );
    if let Some(a) = t.arraysize {
        let _ = write!(s, " arraysize=\"{a}\"");
    }
    if let Some(x) = t.xtype {
        let _ = write!(s, " xtype=\"{x}\"");
    }
    if positional(f, &t) {
        let _ = write!(s, " ref=\"{COOSYS_ID}\"");
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

/// The serialisation of the rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serialization {
    /// XML `TR`/`TD` rows.
    TableData,
    /// Base64 binary rows with null flags (VOTable 1.3+), several times smaller and faster.
    Binary2,
}

/// Streams one results table.
pub struct VotableEncoder {
    columns: usize,
    types: Vec<VoType>,
    binary: Option<binary2::Writer>,
}

impl VotableEncoder {
    /// Starts a TABLEDATA table of `schema`; `infos` are extra `INFO` name/value pairs.
    pub fn new(schema: &Schema, infos: &[(&str, String)]) -> (Self, String) {
        Self::with_serialization(schema, infos, Serialization::TableData)
    }

    /// Starts a table in the given serialisation.
    pub fn with_serialization(
        schema: &Schema,
        infos: &[(&str, String)],
        ser: Serialization,
    ) -> (Self, String) {
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
        let _ = writeln!(s, "<COOSYS ID=\"{COOSYS_ID}\" system=\"ICRS\"/>");
        s.push_str("<TABLE>\n");
        let names = column_names(schema);
        for (f, n) in schema.fields().iter().zip(&names) {
            s.push_str(&field_xml(f, n));
            s.push('\n');
        }
        let types: Vec<VoType> = schema.fields().iter().map(|f| votable_type(f)).collect();
        let binary = match ser {
            Serialization::TableData => {
                s.push_str("<DATA><TABLEDATA>\n");
                None
            }
            Serialization::Binary2 => {
                s.push_str("<DATA><BINARY2><STREAM encoding=\"base64\">\n");
                Some(binary2::Writer::new(types.clone()))
            }
        };
        (
            VotableEncoder {
                columns: schema.fields().len(),
                types,
                binary,
            },
            s,
        )
    }

    /// The rows of one batch.
    pub fn encode(&mut self, batch: &RecordBatch) -> Result<String, ArrowError> {
        if batch.num_columns() != self.columns {
            return Err(ArrowError::SchemaError(format!(
                "batch has {} columns, the table {}",
                batch.num_columns(),
                self.columns
            )));
        }
        if let Some(w) = &mut self.binary {
            return w.encode(batch);
        }
        let cells: Vec<Cells> = batch
            .columns()
            .iter()
            .zip(&self.types)
            .map(|(a, t)| Cells::new(a, t.datatype == "char"))
            .collect::<Result<_, _>>()?;
        let mut out = String::with_capacity(batch.num_rows() * self.columns * 24);
        let mut cell = String::new();
        for row in 0..batch.num_rows() {
            out.push_str("<TR>");
            for c in &cells {
                // Numbers are written in place (they need no escaping); other text through
                // one reused buffer, escaped as it is appended.
                let text = if c.is_numeric() {
                    &mut out
                } else {
                    cell.clear();
                    &mut cell
                };
                let start = text.len();
                if c.is_numeric() {
                    text.push_str("<TD>");
                }
                let before = text.len();
                c.write(row, text)?;
                let empty = text.len() == before;
                if c.is_numeric() {
                    if empty {
                        out.truncate(start);
                        out.push_str("<TD/>");
                    } else {
                        out.push_str("</TD>");
                    }
                } else if empty {
                    out.push_str("<TD/>");
                } else {
                    out.push_str("<TD>");
                    escape_into(&cell, &mut out);
                    out.push_str("</TD>");
                }
            }
            out.push_str("</TR>\n");
        }
        Ok(out)
    }

    /// Closes the table, adding the final status when it is not plain success.
    pub fn finish(self, ending: &Ending) -> String {
        let mut s = match self.binary {
            Some(w) => w.finish() + "</STREAM></BINARY2></DATA>\n</TABLE>\n",
            None => String::from("</TABLEDATA></DATA>\n</TABLE>\n"),
        };
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
    /// Declared `char`: anything beyond ASCII is written as `?`.
    Ascii(&'a ArrayRef, ArrayFormatter<'a>),
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
    fn new(a: &'a ArrayRef, ascii: bool) -> Result<Self, ArrowError> {
        Ok(match a.data_type() {
            DataType::Float64 => Cells::F64(a.as_primitive()),
            DataType::Float32 => Cells::F32(a.as_primitive()),
            DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..) => {
                Cells::List(a)
            }
            _ if ascii => Cells::Ascii(a, ArrayFormatter::try_new(a.as_ref(), &OPTIONS)?),
            _ => Cells::Other(a, ArrayFormatter::try_new(a.as_ref(), &OPTIONS)?),
        })
    }

    /// Whether the cells are numbers only (nothing in them to escape).
    fn is_numeric(&self) -> bool {
        match self {
            Cells::F64(_) | Cells::F32(_) => true,
            Cells::Other(a, _) => a.data_type().is_integer(),
            _ => false,
        }
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
                    // The shortest f32 text, so 0.1f32 reads back as 0.1 (the same text as
                    // the f64 nearest that decimal would print).
                    let v = a.value(row);
                    if v.is_finite() {
                        let _ = write!(out, "{v:?}");
                    } else {
                        write_float(f64::from(v), out);
                    }
                }
            }
            Cells::List(a) => {
                if a.is_valid(row) {
                    let values = match a.data_type() {
                        DataType::List(_) => a.as_list::<i32>().value(row),
                        DataType::LargeList(_) => a.as_list::<i64>().value(row),
                        _ => a.as_fixed_size_list().value(row),
                    };
                    let inner = Cells::new(&values, false)?;
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
            Cells::Ascii(a, f) => {
                if a.is_valid(row) {
                    let text = f.value(row).to_string();
                    out.extend(text.chars().map(|c| if c.is_ascii() { c } else { '?' }));
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
            "<FIELD name=\"ra\" datatype=\"double\" ref=\"icrs\" unit=\"deg\" ucd=\"pos.eq.ra;meta.main\"/>"
        ));
        assert!(head.contains("<FIELD name=\"id\" datatype=\"unicodeChar\" arraysize=\"*\"/>"));
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

    /// Single-precision cells read back as the decimals they were (0.1, not
    /// 0.10000000149011612), in the same text a double of that value gets; not-finite ones
    /// as VOTable spells them.
    #[test]
    fn float32_cells_are_their_shortest_text() {
        let schema = Arc::new(Schema::new(vec![Field::new("m", DataType::Float32, true)]));
        let values = [
            Some(0.1f32),
            Some(21.25),
            Some(1e-7),
            Some(3.4e38),
            Some(f32::NEG_INFINITY),
            None,
        ];
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(arrow::array::Float32Array::from(values.to_vec()))],
        )
        .unwrap();
        let (mut enc, _) = VotableEncoder::new(&schema, &[]);
        let rows = enc.encode(&batch).unwrap();
        let mut want = String::new();
        for v in values {
            match v {
                Some(v) if v.is_finite() => {
                    let text = format!("{v:?}");
                    let back: f64 = text.parse().unwrap();
                    assert_eq!(format!("{back:?}"), text);
                    want += &format!("<TR><TD>{text}</TD></TR>\n");
                }
                Some(_) => want += "<TR><TD>-Inf</TD></TR>\n",
                None => want += "<TR><TD/></TR>\n",
            }
        }
        assert_eq!(rows, want);
        assert!(
            rows.starts_with("<TR><TD>0.1</TD></TR>\n<TR><TD>21.25</TD></TR>\n<TR><TD>1e-7</TD>")
        );
    }
}
