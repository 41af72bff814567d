//! Result encodings, batch by batch, so results stream instead of being collected:
//! JSON (an array of row objects), NDJSON, CSV, Arrow IPC stream, Parquet, VOTable
//! ([`crate::ivoa::votable`]), and a text table for the terminal.

use crate::catalog::writer::SharedBuf;
use crate::ivoa::votable::{Ending, Serialization, VotableEncoder};
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Ndjson,
    Csv,
    ArrowIpc,
    Parquet,
    /// VOTable 1.4 (TABLEDATA), the IVOA format.
    VOTable,
    /// VOTable 1.4 with BINARY2 rows (base64), smaller and several times faster to write
    /// and parse.
    VOTableBinary2,
    /// A text table (CLI only; needs every batch before printing).
    Table,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Ndjson => "application/x-ndjson",
            Format::Csv => "text/csv; charset=utf-8",
            Format::ArrowIpc => "application/vnd.apache.arrow.stream",
            Format::Parquet => "application/vnd.apache.parquet",
            Format::VOTable => "application/x-votable+xml",
            Format::VOTableBinary2 => "application/x-votable+xml;serialization=BINARY2",
            Format::Table => "text/plain; charset=utf-8",
        }
    }

    /// Format by short name (`?format=`, `--format`).
    pub fn from_name(name: &str) -> Option<Format> {
        Some(match name.to_ascii_lowercase().as_str() {
            "json" => Format::Json,
            "ndjson" | "jsonl" => Format::Ndjson,
            "csv" => Format::Csv,
            "arrow" | "ipc" | "arrow-ipc" => Format::ArrowIpc,
            "parquet" => Format::Parquet,
            "votable" | "vot" | "votable/td" => Format::VOTable,
            "votable/b2" | "votable-binary2" | "binary2" => Format::VOTableBinary2,
            "table" | "text" => Format::Table,
            _ => return None,
        })
    }

    /// Format by media type (no parameters), for HTTP content negotiation.
    pub fn from_media_type(mt: &str) -> Option<Format> {
        Some(match mt {
            "application/json" => Format::Json,
            "application/x-ndjson" | "application/jsonl" | "application/ndjson" => Format::Ndjson,
            "text/csv" => Format::Csv,
            "application/vnd.apache.arrow.stream" => Format::ArrowIpc,
            "application/vnd.apache.parquet" | "application/parquet" => Format::Parquet,
            "application/x-votable+xml" | "text/xml" | "application/xml" => Format::VOTable,
            _ => return None,
        })
    }
}

enum State {
    Json { rows: usize },
    Ndjson,
    Csv { header_done: bool },
    Ipc(Box<arrow::ipc::writer::StreamWriter<SharedBuf>>, SharedBuf),
    Parquet(Box<parquet::arrow::ArrowWriter<SharedBuf>>, SharedBuf),
    Table(Vec<RecordBatch>),
    VOTable(VotableEncoder),
}

/// Encodes a stream of batches of one schema.
pub struct BatchEncoder {
    state: State,
}

impl BatchEncoder {
    /// Starts an encoding; the returned bytes (possibly empty) come first.
    pub fn new(format: Format, schema: &SchemaRef) -> Result<(Self, Vec<u8>), ArrowError> {
        let (state, head) = match format {
            Format::Json => (State::Json { rows: 0 }, b"[".to_vec()),
            Format::Ndjson => (State::Ndjson, Vec::new()),
            Format::Csv => (State::Csv { header_done: false }, Vec::new()),
            Format::ArrowIpc => {
                let buf = SharedBuf::default();
                let w = arrow::ipc::writer::StreamWriter::try_new(buf.clone(), schema)?;
                let head = buf.take();
                (State::Ipc(Box::new(w), buf), head)
            }
            Format::Parquet => {
                let buf = SharedBuf::default();
                let props = parquet::file::properties::WriterProperties::builder()
                    .set_compression(parquet::basic::Compression::SNAPPY)
                    .build();
                let w =
                    parquet::arrow::ArrowWriter::try_new(buf.clone(), schema.clone(), Some(props))
                        .map_err(|e| ArrowError::ExternalError(Box::new(e)))?;
                let head = buf.take();
                (State::Parquet(Box::new(w), buf), head)
            }
            Format::Table => (State::Table(Vec::new()), Vec::new()),
            Format::VOTable | Format::VOTableBinary2 => {
                let ser = if format == Format::VOTableBinary2 {
                    Serialization::Binary2
                } else {
                    Serialization::TableData
                };
                let (enc, head) = VotableEncoder::with_serialization(schema, &[], ser);
                (State::VOTable(enc), head.into_bytes())
            }
        };
        Ok((BatchEncoder { state }, head))
    }

    /// Encodes one batch, returning the bytes to send now.
    pub fn encode(&mut self, batch: &RecordBatch) -> Result<Vec<u8>, ArrowError> {
        match &mut self.state {
            State::Json { rows } => {
                let lines = ndjson(batch)?;
                let mut out = Vec::with_capacity(lines.len() + 1);
                for line in lines.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                    if *rows > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(line);
                    *rows += 1;
                }
                Ok(out)
            }
            State::Ndjson => ndjson(batch),
            State::Csv { header_done } => {
                let mut out = Vec::new();
                {
                    let mut w = arrow::csv::WriterBuilder::new()
                        .with_header(!*header_done)
                        .build(&mut out);
                    w.write(batch)?;
                }
                *header_done = true;
                Ok(out)
            }
            State::Ipc(w, buf) => {
                w.write(batch)?;
                Ok(buf.take())
            }
            State::Parquet(w, buf) => {
                w.write(batch)
                    .map_err(|e| ArrowError::ExternalError(Box::new(e)))?;
                if w.in_progress_rows() >= 65_536 || w.in_progress_size() >= 32 << 20 {
                    w.flush()
                        .map_err(|e| ArrowError::ExternalError(Box::new(e)))?;
                }
                Ok(buf.take())
            }
            State::Table(batches) => {
                batches.push(batch.clone());
                Ok(Vec::new())
            }
            State::VOTable(enc) => Ok(enc.encode(batch)?.into_bytes()),
        }
    }

    /// Bytes encoded but not yet returned (a Parquet row group in progress).
    pub fn pending_bytes(&self) -> usize {
        match &self.state {
            State::Parquet(w, _) => w.in_progress_size(),
            _ => 0,
        }
    }

    /// Whether errors after the head can still be reported inside the document.
    pub fn reports_errors_in_band(&self) -> bool {
        matches!(self.state, State::VOTable(_))
    }

    /// Ends a document whose query failed mid-stream: the closing bytes carrying the error
    /// (VOTable `QUERY_STATUS` ERROR), or nothing for formats that cannot say it.
    pub fn fail(self, message: &str) -> Vec<u8> {
        match self.state {
            State::VOTable(enc) => enc.finish(&Ending::Error(message.into())).into_bytes(),
            _ => Vec::new(),
        }
    }

    /// Ends the encoding saying whether the row limit cut the result (VOTable says it with
    /// `QUERY_STATUS` OVERFLOW; other formats only through the HTTP trailer).
    pub fn finish_with(self, truncated: bool) -> Result<Vec<u8>, ArrowError> {
        match self.state {
            State::VOTable(enc) => Ok(enc
                .finish(if truncated {
                    &Ending::Overflow
                } else {
                    &Ending::Complete
                })
                .into_bytes()),
            _ => self.finish(),
        }
    }

    /// Ends the encoding, returning the last bytes.
    pub fn finish(self) -> Result<Vec<u8>, ArrowError> {
        match self.state {
            State::Json { .. } => Ok(b"]".to_vec()),
            State::Ndjson | State::Csv { .. } => Ok(Vec::new()),
            State::Ipc(mut w, buf) => {
                w.finish()?;
                Ok(buf.take())
            }
            State::Parquet(mut w, buf) => {
                w.finish()
                    .map_err(|e| ArrowError::ExternalError(Box::new(e)))?;
                Ok(buf.take())
            }
            State::Table(batches) => {
                let mut s = arrow::util::pretty::pretty_format_batches(&batches)?.to_string();
                s.push('\n');
                Ok(s.into_bytes())
            }
            State::VOTable(enc) => Ok(enc.finish(&Ending::Complete).into_bytes()),
        }
    }
}

fn ndjson(batch: &RecordBatch) -> Result<Vec<u8>, ArrowError> {
    let mut out = Vec::new();
    {
        let mut w = arrow::json::WriterBuilder::new()
            .with_explicit_nulls(true)
            .build::<_, arrow::json::writer::LineDelimited>(&mut out);
        w.write(batch)?;
        w.finish()?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, Int64Array};
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    fn batch(a: Vec<i64>) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("v", DataType::Float64, true),
        ]));
        let n = a.len();
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(a)),
                Arc::new(Float64Array::from(vec![Some(1.5); n])),
            ],
        )
        .unwrap()
    }

    fn encode_all(f: Format, batches: &[RecordBatch]) -> Vec<u8> {
        let (mut e, mut out) = BatchEncoder::new(f, &batches[0].schema()).unwrap();
        for b in batches {
            out.extend(e.encode(b).unwrap());
        }
        out.extend(e.finish().unwrap());
        out
    }

    #[test]
    fn json_array_spans_batches() {
        let out = encode_all(
            Format::Json,
            &[batch(vec![1, 2]), batch(vec![]), batch(vec![3])],
        );
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 3);
        assert_eq!(v[2]["id"], 3);
        let empty = encode_all(Format::Json, &[batch(vec![])]);
        assert_eq!(empty, b"[]");
    }

    #[test]
    fn csv_has_one_header() {
        let out =
            String::from_utf8(encode_all(Format::Csv, &[batch(vec![1]), batch(vec![2])])).unwrap();
        assert_eq!(out, "id,v\n1,1.5\n2,1.5\n");
    }

    #[test]
    fn arrow_ipc_round_trips() {
        let out = encode_all(Format::ArrowIpc, &[batch(vec![1, 2]), batch(vec![3])]);
        let r = arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(out), None).unwrap();
        let n: usize = r.map(|b| b.unwrap().num_rows()).sum();
        assert_eq!(n, 3);
    }

    #[test]
    fn parquet_round_trips() {
        let out = encode_all(Format::Parquet, &[batch(vec![1, 2]), batch(vec![3])]);
        let r = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            bytes::Bytes::from(out),
        )
        .unwrap()
        .build()
        .unwrap();
        let n: usize = r.map(|b| b.unwrap().num_rows()).sum();
        assert_eq!(n, 3);
    }
}
