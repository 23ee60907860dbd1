//! JSON Lines points: one object per line,
//! `{"id": 7 | "doc-7", "vector": [0.1, ...], "payload": {...}, "encoder_version": "minilm@1"}`.
//!
//! `payload` and `encoder_version` are optional; blank lines are skipped. Every error names
//! the file and the 1-based line number, so a bad record in a million-line file can be found.

use anyhow::{bail, Context, Result};
use paradox_engine::{NewPoint, Payload, Point, PointId};
use serde::Deserialize;
use serde_json::Value;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    id: Value,
    vector: Vec<f32>,
    #[serde(default)]
    payload: Option<Payload>,
    #[serde(default)]
    encoder_version: Option<String>,
}

/// One parsed line: the point and the line it came from (for error messages downstream).
#[derive(Debug)]
pub struct JsonlPoint {
    /// 1-based line number.
    pub line: usize,
    /// The point to upsert.
    pub point: NewPoint,
}

/// Streams points from a JSON Lines file.
#[derive(Debug)]
pub struct JsonlReader {
    path: PathBuf,
    reader: BufReader<File>,
    line_no: usize,
    line: String,
}

impl JsonlReader {
    /// Opens `path` for reading.
    pub fn open(path: &Path) -> Result<JsonlReader> {
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        Ok(JsonlReader {
            path: path.to_path_buf(),
            reader: BufReader::with_capacity(1 << 20, file),
            line_no: 0,
            line: String::new(),
        })
    }

    /// Reads up to `max` points; an empty vector means the end of the file.
    pub fn read_batch(&mut self, max: usize) -> Result<Vec<JsonlPoint>> {
        let mut out = Vec::with_capacity(max.min(4096));
        while out.len() < max {
            self.line.clear();
            let n = self
                .reader
                .read_line(&mut self.line)
                .with_context(|| format!("{}:{}", self.path.display(), self.line_no + 1))?;
            if n == 0 {
                break;
            }
            self.line_no += 1;
            if self.line.trim().is_empty() {
                continue;
            }
            let point = parse_line(&self.line)
                .with_context(|| format!("{} line {}", self.path.display(), self.line_no))?;
            out.push(JsonlPoint {
                line: self.line_no,
                point,
            });
        }
        Ok(out)
    }
}

fn parse_line(line: &str) -> Result<NewPoint> {
    let record: Record = serde_json::from_str(line)?;
    let id = point_id_from_json(&record.id)?;
    let mut point = NewPoint::new(id, record.vector);
    if let Some(payload) = record.payload {
        point = point.with_payload(payload);
    }
    point.encoder_version = record.encoder_version;
    Ok(point)
}

/// A JSON `id`: a non-negative integer becomes a numeric id, a string a string id.
pub fn point_id_from_json(id: &Value) -> Result<PointId> {
    match id {
        Value::Number(n) => match n.as_u64() {
            Some(n) => Ok(PointId::from(n)),
            None => bail!("`id` must be a non-negative integer or a string, got {n}"),
        },
        Value::String(s) => Ok(PointId::from(s.as_str())),
        other => bail!("`id` must be a non-negative integer or a string, got {other}"),
    }
}

/// The JSON form of an id: numbers stay numbers, strings stay strings.
pub fn point_id_to_json(id: &PointId) -> Value {
    match id {
        PointId::Num(n) => Value::from(*n),
        PointId::Str(s) => Value::from(s.as_str()),
    }
}

/// Writes one point as a JSON line in the format [`JsonlReader`] reads.
pub fn write_point(out: &mut impl Write, point: &Point) -> Result<()> {
    let mut record = serde_json::Map::new();
    record.insert("id".into(), point_id_to_json(&point.id));
    record.insert("vector".into(), Value::from(point.vector.clone()));
    record.insert("payload".into(), Value::Object(point.payload.clone()));
    if let Some(version) = &point.encoder_version {
        record.insert("encoder_version".into(), Value::from(version.as_str()));
    }
    serde_json::to_writer(&mut *out, &record)?;
    out.write_all(b"\n")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader_for(text: &str) -> (tempfile::TempDir, JsonlReader) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("points.jsonl");
        std::fs::write(&path, text).unwrap();
        let reader = JsonlReader::open(&path).unwrap();
        (dir, reader)
    }

    #[test]
    fn parses_numeric_and_string_ids_payloads_and_blank_lines() {
        let (_dir, mut reader) = reader_for(
            "{\"id\": 1, \"vector\": [1.0, 2.0], \"payload\": {\"a\": 1}}\n\n\
             {\"id\": \"doc-2\", \"vector\": [3, 4], \"encoder_version\": \"m@1\"}\n",
        );
        let batch = reader.read_batch(10).unwrap();
        assert_eq!(batch.len(), 2);
        assert_eq!((batch[0].line, batch[1].line), (1, 3));
        assert_eq!(batch[0].point.id, PointId::from(1));
        assert_eq!(batch[0].point.payload["a"], Value::from(1));
        assert_eq!(batch[1].point.id, PointId::from("doc-2"));
        assert_eq!(batch[1].point.vector, vec![3.0, 4.0]);
        assert_eq!(batch[1].point.encoder_version.as_deref(), Some("m@1"));
        assert!(reader.read_batch(10).unwrap().is_empty());
    }

    #[test]
    fn errors_name_the_line() {
        let (_dir, mut reader) =
            reader_for("{\"id\": 1, \"vector\": [1.0]}\n{\"id\": 2, \"vectr\": [1.0]}\n");
        let err = format!("{:#}", reader.read_batch(10).unwrap_err());
        assert!(err.contains("line 2") && err.contains("vectr"), "{err}");

        let (_dir, mut reader) = reader_for("{\"id\": -3, \"vector\": [1.0]}\n");
        let err = format!("{:#}", reader.read_batch(10).unwrap_err());
        assert!(
            err.contains("line 1") && err.contains("non-negative"),
            "{err}"
        );

        let (_dir, mut reader) = reader_for("{\"id\": 1, \"vector\": [1.0\n");
        let err = format!("{:#}", reader.read_batch(10).unwrap_err());
        assert!(err.contains("line 1"), "{err}");
    }

    #[test]
    fn write_then_read_round_trips() {
        let mut payload = Payload::new();
        payload.insert("title".into(), Value::from("hello"));
        let points = [
            Point {
                id: PointId::from(42),
                vector: vec![0.5, -1.0],
                payload: payload.clone(),
                encoder_version: Some("m@2".into()),
                provenance: None,
                created_at: 0,
                updated_at: 0,
            },
            Point {
                id: PointId::from("x"),
                vector: vec![1.0, 2.0],
                payload: Payload::new(),
                encoder_version: None,
                provenance: None,
                created_at: 0,
                updated_at: 0,
            },
        ];
        let mut text = Vec::new();
        for p in &points {
            write_point(&mut text, p).unwrap();
        }
        let (_dir, mut reader) = reader_for(std::str::from_utf8(&text).unwrap());
        let back = reader.read_batch(10).unwrap();
        assert_eq!(back.len(), 2);
        for (orig, read) in points.iter().zip(&back) {
            assert_eq!(orig.id, read.point.id);
            assert_eq!(orig.vector, read.point.vector);
            assert_eq!(orig.payload, read.point.payload);
            assert_eq!(orig.encoder_version, read.point.encoder_version);
        }
    }
}
