//! Reading a VOTable (what TAP clients upload, DALI/TAP 1.1 §3.3.9): the first `TABLE` of the
//! document, its `FIELD`s typed into Arrow columns, its rows from `TABLEDATA`, `BINARY` or
//! `BINARY2` (base64 `STREAM`s inline; `href` streams and the `FITS` serialisation are
//! refused). Everything is bounded before it is built: the document's bytes (checked by the
//! caller), the number of columns, rows and cells, and each value's length.
//!
//! Types: `boolean` → Boolean; `bit` (one) → Boolean; `unsignedByte`, `short` → Int16;
//! `int` → Int32; `long` → Int64; `float` → Float32; `double` → Float64; `char` and
//! `unicodeChar` (any length) → Utf8; numeric arrays → lists of their element type.
//! Complex numbers and bit arrays are refused with the column's name. An empty cell, a
//! `VALUES null` match, a NaN float or a BINARY2 null flag is NULL.

use arrow::array::{
    ArrayRef, BooleanBuilder, Float32Builder, Float64Builder, Int16Builder, Int32Builder,
    Int64Builder, ListBuilder, RecordBatch, StringBuilder,
};
use arrow::datatypes::{DataType, Field, Schema};
use base64::Engine;
use quick_xml::events::{BytesStart, Event};
use std::collections::HashMap;
use std::sync::Arc;

/// What an uploaded table may hold.
#[derive(Debug, Clone, Copy)]
pub struct ReadLimits {
    pub max_columns: usize,
    pub max_rows: usize,
    /// Elements of one array cell, characters of one string cell.
    pub max_cell: usize,
}

impl Default for ReadLimits {
    fn default() -> Self {
        ReadLimits {
            max_columns: 1000,
            max_rows: 10_000_000,
            max_cell: 1 << 20,
        }
    }
}

/// Why a VOTable could not be read.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ReadError {
    #[error("not a well-formed VOTable: {0}")]
    Xml(String),
    #[error("the VOTable has no TABLE")]
    NoTable,
    #[error("the VOTable's TABLE has no FIELD")]
    NoFields,
    #[error("column {name:?}: {why}")]
    Column { name: String, why: String },
    #[error("the {0} serialisation is not supported: send TABLEDATA, BINARY or BINARY2")]
    Serialisation(&'static str),
    #[error("a STREAM with href is not read: put the data inline (base64)")]
    Href,
    #[error("the table has more than {0} columns")]
    TooManyColumns(usize),
    #[error("the table has more than {0} rows")]
    TooManyRows(usize),
    #[error("row {row}: {why}")]
    Row { row: usize, why: String },
}

/// The element type of a FIELD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prim {
    Boolean,
    Bit,
    UByte,
    Short,
    Int,
    Long,
    Char,
    UnicodeChar,
    Float,
    Double,
}

impl Prim {
    fn parse(s: &str) -> Option<Prim> {
        Some(match s {
            "boolean" => Prim::Boolean,
            "bit" => Prim::Bit,
            "unsignedByte" => Prim::UByte,
            "short" => Prim::Short,
            "int" => Prim::Int,
            "long" => Prim::Long,
            "char" => Prim::Char,
            "unicodeChar" => Prim::UnicodeChar,
            "float" => Prim::Float,
            "double" => Prim::Double,
            _ => return None,
        })
    }
    /// Bytes per element in the binary serialisations.
    fn width(self) -> usize {
        match self {
            Prim::Boolean | Prim::Bit | Prim::UByte | Prim::Char => 1,
            Prim::Short | Prim::UnicodeChar => 2,
            Prim::Int | Prim::Float => 4,
            Prim::Long | Prim::Double => 8,
        }
    }
    fn arrow(self) -> DataType {
        match self {
            Prim::Boolean | Prim::Bit => DataType::Boolean,
            Prim::UByte | Prim::Short => DataType::Int16,
            Prim::Int => DataType::Int32,
            Prim::Long => DataType::Int64,
            Prim::Float => DataType::Float32,
            Prim::Double => DataType::Float64,
            Prim::Char | Prim::UnicodeChar => DataType::Utf8,
        }
    }
}

/// How many elements a cell holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Size {
    /// Exactly n (`arraysize="n"`, or none: 1).
    Fixed(usize),
    /// Any number (`*`, `n*`; in binary a leading 4-byte count).
    Variable,
}

#[derive(Debug, Clone)]
struct Col {
    name: String,
    prim: Prim,
    size: Size,
    /// The `VALUES null` sentinel, for integers.
    null: Option<String>,
    unit: Option<String>,
    ucd: Option<String>,
    xtype: Option<String>,
    description: Option<String>,
}

impl Col {
    /// Strings are one value; other arrays are lists.
    fn is_list(&self) -> bool {
        !matches!(self.prim, Prim::Char | Prim::UnicodeChar) && self.size != Size::Fixed(1)
    }
    fn field(&self) -> Field {
        let dt = if self.is_list() {
            DataType::List(Arc::new(Field::new("item", self.prim.arrow(), true)))
        } else {
            self.prim.arrow()
        };
        let mut md = HashMap::new();
        for (k, v) in [
            ("unit", &self.unit),
            ("ucd", &self.ucd),
            ("xtype", &self.xtype),
            ("description", &self.description),
        ] {
            if let Some(v) = v.as_ref().filter(|v| !v.is_empty()) {
                md.insert(k.to_string(), v.clone());
            }
        }
        // Text declared `char` is written back as `char` (what was uploaded comes back typed
        // as it went in).
        if self.prim == Prim::Char {
            md.insert(super::ASCII.to_string(), "true".to_string());
        }
        Field::new(&self.name, dt, true).with_metadata(md)
    }
}

/// One column being built.
enum Builder {
    Bool(BooleanBuilder),
    I16(Int16Builder),
    I32(Int32Builder),
    I64(Int64Builder),
    F32(Float32Builder),
    F64(Float64Builder),
    Str(StringBuilder),
    List(ListBuilder<Box<dyn arrow::array::ArrayBuilder>>, Prim),
}

/// One decoded element.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
}

impl Builder {
    fn new(c: &Col) -> Builder {
        if c.is_list() {
            let inner: Box<dyn arrow::array::ArrayBuilder> = match c.prim.arrow() {
                DataType::Boolean => Box::new(BooleanBuilder::new()),
                DataType::Int16 => Box::new(Int16Builder::new()),
                DataType::Int32 => Box::new(Int32Builder::new()),
                DataType::Int64 => Box::new(Int64Builder::new()),
                DataType::Float32 => Box::new(Float32Builder::new()),
                _ => Box::new(Float64Builder::new()),
            };
            return Builder::List(ListBuilder::new(inner), c.prim);
        }
        match c.prim.arrow() {
            DataType::Boolean => Builder::Bool(BooleanBuilder::new()),
            DataType::Int16 => Builder::I16(Int16Builder::new()),
            DataType::Int32 => Builder::I32(Int32Builder::new()),
            DataType::Int64 => Builder::I64(Int64Builder::new()),
            DataType::Float32 => Builder::F32(Float32Builder::new()),
            DataType::Float64 => Builder::F64(Float64Builder::new()),
            _ => Builder::Str(StringBuilder::new()),
        }
    }

    fn push_null(&mut self) {
        match self {
            Builder::Bool(b) => b.append_null(),
            Builder::I16(b) => b.append_null(),
            Builder::I32(b) => b.append_null(),
            Builder::I64(b) => b.append_null(),
            Builder::F32(b) => b.append_null(),
            Builder::F64(b) => b.append_null(),
            Builder::Str(b) => b.append_null(),
            Builder::List(b, _) => b.append(false),
        }
    }

    fn push_str(&mut self, s: &str) {
        if let Builder::Str(b) = self {
            b.append_value(s);
        }
    }

    /// Pushes a scalar cell (the value is of the builder's kind, or Null).
    fn push(&mut self, v: Value) {
        match (self, v) {
            (b, Value::Null) => b.push_null(),
            (Builder::Bool(b), Value::Bool(x)) => b.append_value(x),
            (Builder::I16(b), Value::Int(x)) => b.append_value(x as i16),
            (Builder::I32(b), Value::Int(x)) => b.append_value(x as i32),
            (Builder::I64(b), Value::Int(x)) => b.append_value(x),
            (Builder::F32(b), Value::Float(x)) => {
                b.append_option((!x.is_nan()).then_some(x as f32))
            }
            (Builder::F64(b), Value::Float(x)) => b.append_option((!x.is_nan()).then_some(x)),
            (b, _) => b.push_null(),
        }
    }

    /// Pushes an array cell.
    fn push_list(&mut self, values: &[Value]) {
        let Builder::List(b, prim) = self else {
            return;
        };
        let inner = b.values();
        for v in values {
            match (prim.arrow(), v) {
                (DataType::Boolean, Value::Bool(x)) => {
                    downcast::<BooleanBuilder>(inner).append_value(*x)
                }
                (DataType::Boolean, _) => downcast::<BooleanBuilder>(inner).append_null(),
                (DataType::Int16, Value::Int(x)) => {
                    downcast::<Int16Builder>(inner).append_value(*x as i16)
                }
                (DataType::Int16, _) => downcast::<Int16Builder>(inner).append_null(),
                (DataType::Int32, Value::Int(x)) => {
                    downcast::<Int32Builder>(inner).append_value(*x as i32)
                }
                (DataType::Int32, _) => downcast::<Int32Builder>(inner).append_null(),
                (DataType::Int64, Value::Int(x)) => {
                    downcast::<Int64Builder>(inner).append_value(*x)
                }
                (DataType::Int64, _) => downcast::<Int64Builder>(inner).append_null(),
                (DataType::Float32, Value::Float(x)) => {
                    downcast::<Float32Builder>(inner).append_value(*x as f32)
                }
                (DataType::Float32, _) => downcast::<Float32Builder>(inner).append_null(),
                (_, Value::Float(x)) => downcast::<Float64Builder>(inner).append_value(*x),
                (_, _) => downcast::<Float64Builder>(inner).append_null(),
            }
        }
        b.append(true);
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Bool(b) => Arc::new(b.finish()),
            Builder::I16(b) => Arc::new(b.finish()),
            Builder::I32(b) => Arc::new(b.finish()),
            Builder::I64(b) => Arc::new(b.finish()),
            Builder::F32(b) => Arc::new(b.finish()),
            Builder::F64(b) => Arc::new(b.finish()),
            Builder::Str(b) => Arc::new(b.finish()),
            Builder::List(b, _) => Arc::new(b.finish()),
        }
    }
}

fn downcast<T: 'static>(b: &mut Box<dyn arrow::array::ArrayBuilder>) -> &mut T {
    b.as_any_mut()
        .downcast_mut::<T>()
        .expect("the list builder was made for this element type")
}

fn attr(e: &BytesStart, name: &str) -> Result<Option<String>, ReadError> {
    match e.try_get_attribute(name) {
        Ok(Some(a)) => Ok(Some(
            a.unescape_value()
                .map_err(|x| ReadError::Xml(x.to_string()))?
                .into_owned(),
        )),
        Ok(None) => Ok(None),
        Err(x) => Err(ReadError::Xml(x.to_string())),
    }
}

fn column(e: &BytesStart, limits: &ReadLimits) -> Result<Col, ReadError> {
    let name = attr(e, "name")?
        .or(attr(e, "ID")?)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ReadError::Column {
            name: String::new(),
            why: "a FIELD has no name".into(),
        })?;
    let bad = |why: String| ReadError::Column {
        name: name.clone(),
        why,
    };
    let datatype = attr(e, "datatype")?.unwrap_or_default();
    let prim = Prim::parse(&datatype).ok_or_else(|| {
        bad(format!(
            "datatype {datatype:?} is not supported (boolean, bit, unsignedByte, short, int, long, char, unicodeChar, float, double)"
        ))
    })?;
    let size = match attr(e, "arraysize")?.as_deref().map(str::trim) {
        None | Some("") => Size::Fixed(1),
        Some(a) if a.ends_with('*') => Size::Variable,
        Some(a) if a.contains('x') => {
            return Err(bad(format!(
                "multidimensional arrays (arraysize={a}) are not supported"
            )));
        }
        Some(a) => match a.parse::<usize>() {
            Ok(n) if n >= 1 && n <= limits.max_cell => Size::Fixed(n),
            _ => {
                return Err(bad(format!(
                    "arraysize={a} is not a size up to {}",
                    limits.max_cell
                )));
            }
        },
    };
    if prim == Prim::Bit && size != Size::Fixed(1) {
        return Err(bad("bit arrays are not supported".into()));
    }
    Ok(Col {
        name,
        prim,
        size,
        null: None,
        unit: attr(e, "unit")?,
        ucd: attr(e, "ucd")?,
        xtype: attr(e, "xtype")?,
        description: None,
    })
}

/// Parses the text of a TABLEDATA cell.
fn parse_text(c: &Col, text: &str, row: usize) -> Result<Vec<Value>, ReadError> {
    let bad = |why: String| ReadError::Row { row, why };
    let one = |s: &str| -> Result<Value, ReadError> {
        if c.null.as_deref() == Some(s) {
            return Ok(Value::Null);
        }
        Ok(match c.prim {
            Prim::Boolean | Prim::Bit => match s {
                "T" | "t" | "1" | "true" | "TRUE" | "True" => Value::Bool(true),
                "F" | "f" | "0" | "false" | "FALSE" | "False" => Value::Bool(false),
                "?" | "" => Value::Null,
                _ => return Err(bad(format!("{}: {s:?} is not a boolean", c.name))),
            },
            Prim::UByte | Prim::Short | Prim::Int | Prim::Long => {
                let v = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
                    i64::from_str_radix(h, 16).ok()
                } else {
                    s.parse::<i64>().ok()
                };
                let v = v.ok_or_else(|| bad(format!("{}: {s:?} is not an integer", c.name)))?;
                let (lo, hi) = match c.prim {
                    Prim::UByte => (0, 255),
                    Prim::Short => (i16::MIN as i64, i16::MAX as i64),
                    Prim::Int => (i32::MIN as i64, i32::MAX as i64),
                    _ => (i64::MIN, i64::MAX),
                };
                if !(lo..=hi).contains(&v) {
                    return Err(bad(format!("{}: {v} is out of range for its type", c.name)));
                }
                Value::Int(v)
            }
            Prim::Float | Prim::Double => match s {
                "NaN" | "nan" => Value::Null,
                "+Inf" | "Inf" | "inf" | "+inf" | "Infinity" => Value::Float(f64::INFINITY),
                "-Inf" | "-inf" | "-Infinity" => Value::Float(f64::NEG_INFINITY),
                _ => Value::Float(
                    s.parse::<f64>()
                        .map_err(|_| bad(format!("{}: {s:?} is not a number", c.name)))?,
                ),
            },
            Prim::Char | Prim::UnicodeChar => Value::Null,
        })
    };
    let text = text.trim();
    if text.is_empty() {
        return Ok(vec![Value::Null]);
    }
    if !c.is_list() {
        return Ok(vec![one(text)?]);
    }
    let items: Vec<&str> = text.split_whitespace().collect();
    if let Size::Fixed(n) = c.size
        && items.len() != n
    {
        return Err(bad(format!(
            "{}: {} values where arraysize is {n}",
            c.name,
            items.len()
        )));
    }
    items.into_iter().map(one).collect()
}

/// A cursor over the bytes of a binary stream.
struct Bytes<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Bytes<'a> {
    fn take(&mut self, n: usize, row: usize) -> Result<&'a [u8], ReadError> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.data.len());
        let Some(end) = end else {
            return Err(ReadError::Row {
                row,
                why: "the binary stream ends inside the row".into(),
            });
        };
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn done(&self) -> bool {
        self.pos >= self.data.len()
    }
}

/// Decodes one element of a binary cell.
fn binary_value(c: &Col, b: &[u8]) -> Value {
    let null_is = |v: i64| c.null.as_deref().and_then(|n| n.parse::<i64>().ok()) == Some(v);
    let int = |v: i64| {
        if null_is(v) {
            Value::Null
        } else {
            Value::Int(v)
        }
    };
    match c.prim {
        Prim::Boolean => match b[0] {
            b'T' | b't' | b'1' => Value::Bool(true),
            b'F' | b'f' | b'0' => Value::Bool(false),
            _ => Value::Null,
        },
        Prim::Bit => Value::Bool(b[0] & 0x80 != 0),
        Prim::UByte => int(b[0] as i64),
        Prim::Short => int(i16::from_be_bytes([b[0], b[1]]) as i64),
        Prim::Int => int(i32::from_be_bytes(b.try_into().expect("4 bytes")) as i64),
        Prim::Long => int(i64::from_be_bytes(b.try_into().expect("8 bytes"))),
        Prim::Float => Value::Float(f32::from_be_bytes(b.try_into().expect("4 bytes")) as f64),
        Prim::Double => Value::Float(f64::from_be_bytes(b.try_into().expect("8 bytes"))),
        Prim::Char | Prim::UnicodeChar => Value::Null,
    }
}

/// Reads the rows of a decoded BINARY (`flags = false`) or BINARY2 stream.
fn read_binary(
    cols: &[Col],
    builders: &mut [Builder],
    data: &[u8],
    binary2: bool,
    limits: &ReadLimits,
) -> Result<usize, ReadError> {
    let mut s = Bytes { data, pos: 0 };
    let mut rows = 0usize;
    let flag_bytes = cols.len().div_ceil(8);
    while !s.done() {
        if rows >= limits.max_rows {
            return Err(ReadError::TooManyRows(limits.max_rows));
        }
        let flags = if binary2 {
            s.take(flag_bytes, rows)?.to_vec()
        } else {
            Vec::new()
        };
        for (i, (c, b)) in cols.iter().zip(builders.iter_mut()).enumerate() {
            let n = match c.size {
                Size::Fixed(n) => n,
                Size::Variable => {
                    let n =
                        u32::from_be_bytes(s.take(4, rows)?.try_into().expect("4 bytes")) as usize;
                    if n > limits.max_cell {
                        return Err(ReadError::Row {
                            row: rows,
                            why: format!("{}: a cell of {n} elements", c.name),
                        });
                    }
                    n
                }
            };
            let w = c.prim.width();
            let raw = s.take(n * w, rows)?;
            let is_null = binary2 && flags[i / 8] & (0x80 >> (i % 8)) != 0;
            if is_null {
                b.push_null();
                continue;
            }
            match c.prim {
                Prim::Char => {
                    let text: String = raw
                        .iter()
                        .take_while(|&&x| x != 0)
                        .map(|&x| x as char)
                        .collect();
                    b.push_str(text.trim_end());
                }
                Prim::UnicodeChar => {
                    let units: Vec<u16> = raw
                        .chunks_exact(2)
                        .map(|p| u16::from_be_bytes([p[0], p[1]]))
                        .take_while(|&u| u != 0)
                        .collect();
                    b.push_str(String::from_utf16_lossy(&units).trim_end());
                }
                _ if c.is_list() => {
                    let vals: Vec<Value> =
                        raw.chunks_exact(w).map(|e| binary_value(c, e)).collect();
                    b.push_list(&vals);
                }
                _ => b.push(binary_value(c, raw)),
            }
        }
        rows += 1;
    }
    Ok(rows)
}

/// Text of an element, entities resolved, up to its end tag.
fn text_until_end(
    r: &mut quick_xml::Reader<&[u8]>,
    max: usize,
    what: &str,
) -> Result<String, ReadError> {
    let mut out = String::new();
    loop {
        match r.read_event() {
            Ok(Event::Text(t)) => {
                out.push_str(&t.decode().map_err(|e| ReadError::Xml(e.to_string()))?)
            }
            Ok(Event::CData(t)) => out.push_str(&String::from_utf8_lossy(&t)),
            Ok(Event::GeneralRef(g)) => {
                let name = g.decode().map_err(|e| ReadError::Xml(e.to_string()))?;
                match g.resolve_char_ref() {
                    Ok(Some(c)) => out.push(c),
                    _ => match quick_xml::escape::resolve_predefined_entity(&name) {
                        Some(s) => out.push_str(s),
                        None => return Err(ReadError::Xml(format!("unknown entity &{name};"))),
                    },
                }
            }
            Ok(Event::End(_)) => return Ok(out),
            Ok(Event::Eof) => return Err(ReadError::Xml(format!("{what} is never closed"))),
            Ok(Event::Start(_)) => {
                return Err(ReadError::Xml(format!("{what} holds an element")));
            }
            Ok(_) => {}
            Err(e) => return Err(ReadError::Xml(e.to_string())),
        }
        if out.len() > max {
            return Err(ReadError::Xml(format!("{what} is longer than {max} bytes")));
        }
    }
}

/// Reads the first table of a VOTable document.
pub fn read(xml: &[u8], limits: &ReadLimits) -> Result<RecordBatch, ReadError> {
    let mut r = quick_xml::Reader::from_reader(xml);
    r.config_mut().trim_text(false);
    let mut cols: Vec<Col> = Vec::new();
    let mut in_table = false;
    let mut fields_done = false;
    let mut builders: Vec<Builder> = Vec::new();
    // Inside a FIELD: its index, for VALUES and DESCRIPTION.
    let mut in_field: Option<usize> = None;
    let mut saw_table = false;
    loop {
        let ev = r.read_event().map_err(|e| ReadError::Xml(e.to_string()))?;
        let (e, empty) = match ev {
            Event::Eof => break,
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            Event::End(e) => {
                match e.local_name().as_ref() {
                    b"FIELD" => in_field = None,
                    b"TABLE" if in_table => break,
                    _ => {}
                }
                continue;
            }
            _ => continue,
        };
        if saw_table && !in_table {
            continue;
        }
        let name = e.local_name();
        match name.as_ref() {
            b"TABLE" if !saw_table => {
                saw_table = true;
                in_table = !empty;
            }
            b"FIELD" if in_table && !fields_done => {
                if cols.len() >= limits.max_columns {
                    return Err(ReadError::TooManyColumns(limits.max_columns));
                }
                cols.push(column(&e, limits)?);
                in_field = (!empty).then_some(cols.len() - 1);
            }
            b"VALUES" if in_field.is_some() => {
                if let Some(n) = attr(&e, "null")? {
                    cols[in_field.expect("checked")].null = Some(n.trim().to_string());
                }
            }
            b"DESCRIPTION" if in_field.is_some() && !empty => {
                let d = text_until_end(&mut r, 64 << 10, "DESCRIPTION")?;
                cols[in_field.expect("checked")].description = Some(d.trim().to_string());
            }
            b"DATA" if in_table => {
                if cols.is_empty() {
                    return Err(ReadError::NoFields);
                }
                fields_done = true;
                builders = cols.iter().map(Builder::new).collect();
            }
            b"TABLEDATA" if fields_done && !empty => {
                read_tabledata(&mut r, &cols, &mut builders, limits)?;
            }
            b"BINARY" | b"BINARY2" if fields_done && !empty => {
                let binary2 = name.as_ref() == b"BINARY2";
                let data = read_stream(&mut r)?;
                read_binary(&cols, &mut builders, &data, binary2, limits)?;
            }
            b"FITS" if fields_done => return Err(ReadError::Serialisation("FITS")),
            _ => {}
        }
    }
    if !saw_table {
        return Err(ReadError::NoTable);
    }
    if cols.is_empty() {
        return Err(ReadError::NoFields);
    }
    if builders.is_empty() {
        builders = cols.iter().map(Builder::new).collect();
    }
    let schema = Arc::new(Schema::new(cols.iter().map(Col::field).collect::<Vec<_>>()));
    let arrays: Vec<ArrayRef> = builders.iter_mut().map(Builder::finish).collect();
    RecordBatch::try_new(schema, arrays).map_err(|e| ReadError::Xml(e.to_string()))
}

/// Reads `<TR><TD>..</TD>..</TR>..` up to `</TABLEDATA>`.
fn read_tabledata(
    r: &mut quick_xml::Reader<&[u8]>,
    cols: &[Col],
    builders: &mut [Builder],
    limits: &ReadLimits,
) -> Result<usize, ReadError> {
    let mut rows = 0usize;
    let mut cell = 0usize;
    loop {
        match r.read_event().map_err(|e| ReadError::Xml(e.to_string()))? {
            Event::Start(e) if e.local_name().as_ref() == b"TR" => {
                if rows >= limits.max_rows {
                    return Err(ReadError::TooManyRows(limits.max_rows));
                }
                cell = 0;
            }
            Event::Empty(e) if e.local_name().as_ref() == b"TD" => {
                push_cell(cols, builders, cell, "", rows)?;
                cell += 1;
            }
            Event::Start(e) if e.local_name().as_ref() == b"TD" => {
                let max = limits.max_cell.saturating_mul(32);
                let text = text_until_end(r, max, "TD")?;
                push_cell(cols, builders, cell, &text, rows)?;
                cell += 1;
            }
            Event::End(e) if e.local_name().as_ref() == b"TR" => {
                if cell != cols.len() {
                    return Err(ReadError::Row {
                        row: rows,
                        why: format!("{cell} cells where the table has {} columns", cols.len()),
                    });
                }
                rows += 1;
            }
            Event::End(e) if e.local_name().as_ref() == b"TABLEDATA" => return Ok(rows),
            Event::Eof => return Err(ReadError::Xml("TABLEDATA is never closed".into())),
            _ => {}
        }
    }
}

fn push_cell(
    cols: &[Col],
    builders: &mut [Builder],
    i: usize,
    text: &str,
    row: usize,
) -> Result<(), ReadError> {
    let Some(c) = cols.get(i) else {
        return Err(ReadError::Row {
            row,
            why: format!("more cells than the table's {} columns", cols.len()),
        });
    };
    let b = &mut builders[i];
    match c.prim {
        Prim::Char | Prim::UnicodeChar => {
            if text.is_empty() || c.null.as_deref() == Some(text) {
                b.push_null();
            } else {
                b.push_str(text);
            }
        }
        _ if c.is_list() => {
            let vals = parse_text(c, text, row)?;
            if vals == [Value::Null] {
                b.push_null();
            } else {
                b.push_list(&vals);
            }
        }
        _ => {
            let v = parse_text(c, text, row)?.pop().unwrap_or(Value::Null);
            b.push(v);
        }
    }
    Ok(())
}

/// The decoded bytes of a `<STREAM encoding="base64">`, up to the end of BINARY/BINARY2.
fn read_stream(r: &mut quick_xml::Reader<&[u8]>) -> Result<Vec<u8>, ReadError> {
    let mut data = Vec::new();
    loop {
        match r.read_event().map_err(|e| ReadError::Xml(e.to_string()))? {
            Event::Start(e) | Event::Empty(e) if e.local_name().as_ref() == b"STREAM" => {
                if attr(&e, "href")?.is_some() {
                    return Err(ReadError::Href);
                }
                let enc = attr(&e, "encoding")?.unwrap_or_default();
                if !enc.eq_ignore_ascii_case("base64") {
                    return Err(ReadError::Xml(format!(
                        "STREAM encoding {enc:?}: only base64 is read"
                    )));
                }
                let text = text_until_end(r, usize::MAX, "STREAM")?;
                let clean: String = text.chars().filter(|c| !c.is_whitespace()).collect();
                data = base64::engine::general_purpose::STANDARD
                    .decode(clean.as_bytes())
                    .map_err(|e| ReadError::Xml(format!("STREAM is not base64: {e}")))?;
            }
            Event::End(e) if matches!(e.local_name().as_ref(), b"BINARY" | b"BINARY2") => {
                return Ok(data);
            }
            Event::Eof => return Err(ReadError::Xml("BINARY is never closed".into())),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray, Float64Array};
    use arrow::datatypes::{Float64Type, Int32Type};

    const TD: &str = r#"<?xml version="1.0"?>
<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">
<RESOURCE type="results"><TABLE name="mine">
<FIELD name="id" datatype="int"><VALUES null="-1"/></FIELD>
<FIELD name="ra" datatype="double" unit="deg" ucd="pos.eq.ra"><DESCRIPTION>RA &amp; more</DESCRIPTION></FIELD>
<FIELD name="name" datatype="char" arraysize="*"/>
<FIELD name="v" datatype="float" arraysize="2"/>
<FIELD name="ok" datatype="boolean"/>
<DATA><TABLEDATA>
<TR><TD>1</TD><TD>10.5</TD><TD>a&lt;b</TD><TD>1 2</TD><TD>T</TD></TR>
<TR><TD>-1</TD><TD/><TD></TD><TD/><TD>?</TD></TR>
</TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>"#;

    #[test]
    fn tabledata_with_nulls_units_and_arrays() {
        let b = read(TD.as_bytes(), &ReadLimits::default()).unwrap();
        assert_eq!(b.num_rows(), 2);
        let id = b.column(0).as_primitive::<Int32Type>();
        assert_eq!((id.value(0), id.is_null(1)), (1, true));
        let ra = b.column(1).as_primitive::<Float64Type>();
        assert_eq!((ra.value(0), ra.is_null(1)), (10.5, true));
        assert_eq!(b.column(2).as_string::<i32>().value(0), "a<b");
        assert!(b.column(2).is_null(1));
        assert_eq!(b.column(3).as_list::<i32>().value(0).len(), 2);
        assert!(b.column(4).as_boolean().value(0) && b.column(4).is_null(1));
        let f = b.schema().field(1).clone();
        assert_eq!(f.metadata()["unit"], "deg");
        assert_eq!(f.metadata()["description"], "RA & more");
    }

    fn binary_doc(tag: &str, rows: &[u8]) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(rows);
        format!(
            r#"<VOTABLE><RESOURCE><TABLE><FIELD name="x" datatype="double"/><FIELD name="s" datatype="char" arraysize="*"/><DATA><{tag}><STREAM encoding="base64">{b64}</STREAM></{tag}></DATA></TABLE></RESOURCE></VOTABLE>"#
        )
    }

    #[test]
    fn binary_and_binary2_streams() {
        let mut rows = Vec::new();
        rows.extend(1.25f64.to_be_bytes());
        rows.extend(2u32.to_be_bytes());
        rows.extend(b"hi");
        let b = read(
            binary_doc("BINARY", &rows).as_bytes(),
            &ReadLimits::default(),
        )
        .unwrap();
        assert_eq!(b.num_rows(), 1);
        assert_eq!(
            b.column(0)
                .as_any()
                .downcast_ref::<Float64Array>()
                .unwrap()
                .value(0),
            1.25
        );
        assert_eq!(b.column(1).as_string::<i32>().value(0), "hi");
        // BINARY2: a flag byte first; the second row's x is null.
        let mut rows2 = vec![0u8];
        rows2.extend(&rows);
        rows2.push(0x80);
        rows2.extend(0f64.to_be_bytes());
        rows2.extend(0u32.to_be_bytes());
        let b = read(
            binary_doc("BINARY2", &rows2).as_bytes(),
            &ReadLimits::default(),
        )
        .unwrap();
        assert_eq!(b.num_rows(), 2);
        assert!(b.column(0).is_null(1));
        // A stream cut inside a row.
        let e = read(
            binary_doc("BINARY", &rows[..5]).as_bytes(),
            &ReadLimits::default(),
        );
        assert!(matches!(e, Err(ReadError::Row { .. })), "{e:?}");
    }

    #[test]
    fn limits_and_refusals() {
        let small = ReadLimits {
            max_rows: 1,
            ..ReadLimits::default()
        };
        assert_eq!(read(TD.as_bytes(), &small), Err(ReadError::TooManyRows(1)));
        let few = ReadLimits {
            max_columns: 2,
            ..ReadLimits::default()
        };
        assert_eq!(read(TD.as_bytes(), &few), Err(ReadError::TooManyColumns(2)));
        assert_eq!(
            read(b"<VOTABLE/>", &ReadLimits::default()),
            Err(ReadError::NoTable)
        );
        let complex = TD.replace("datatype=\"float\"", "datatype=\"floatComplex\"");
        assert!(matches!(
            read(complex.as_bytes(), &ReadLimits::default()),
            Err(ReadError::Column { .. })
        ));
        assert!(read(b"<VOTABLE><RESOURCE><TABLE><FIELD", &ReadLimits::default()).is_err());
    }
}
