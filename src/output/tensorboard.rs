//! TensorBoard event files: the metrics of a run as scalars that TensorBoard
//! (`tensorboard --logdir RUN_DIR`) plots, written without TensorFlow or a
//! protobuf crate.
//!
//! **The file.** `RUN_DIR/events.out.tfevents.<START>.runner`, where `START`
//! is the run's start in whole unix seconds ([`file_name`]; TensorBoard only
//! asks that the name contain `tfevents`). It is a TFRecord file: a sequence
//! of records, each
//!
//! ```text
//! len        u64, little-endian         (8 bytes)  length of data in bytes
//! len_crc    u32, little-endian         (4 bytes)  masked CRC-32C of the 8 len bytes
//! data       len bytes                             one serialized tensorflow.Event
//! data_crc   u32, little-endian         (4 bytes)  masked CRC-32C of data
//! ```
//!
//! with `masked(crc) = ((crc >> 15) | (crc << 17)) + 0xa282ead8` (wrapping)
//! and CRC-32C the Castagnoli CRC (reflected polynomial `0x82F63B78`, initial
//! value and final xor `!0`).
//!
//! **The events.** The first record is an `Event` with `wall_time` = start
//! and `file_version` = `"brain.Event:2"` (step 0); then one `Event` per row
//! of metrics with `wall_time`, `step` and a `Summary` holding one `Value`
//! (`tag`, `simple_value`) per metric with a value, in row order. The
//! protobuf fields written (proto3 wire format, as `tensorflow/core/util/
//! event.proto` and `tensorflow/core/framework/summary.proto` number them):
//!
//! ```text
//! Event   1 wall_time     double  wire type 1 (fixed64)  seconds since the epoch
//!         2 step          int64   wire type 0 (varint)
//!         3 file_version  string  wire type 2 (length-delimited)
//!         5 summary       Summary wire type 2
//! Summary 1 value         repeated Value, wire type 2
//! Value   1 tag           string  wire type 2
//!         2 simple_value  float   wire type 5 (fixed32)
//! ```
//!
//! As protobuf's own serializers do, a `wall_time` or `step` at its default
//! (0) and an empty `tag` are not written, while `file_version`, `summary`
//! and `simple_value` (members of oneofs) always are, so the bytes are those
//! TensorBoard's Python writer produces for the same events. [`decode`]
//! reads any Event, skipping fields it does not know.
//!
//! **Why it is rewritten whole.** Like `metrics.csv` ([`super::CsvTable`]),
//! the sink keeps its rows and rewrites the file atomically
//! ([`super::write_atomic`]) after every row, so a crash (or a file-size
//! limit) never leaves a half-written record, and a resumed run rewrites the
//! file with exactly the rows it keeps ([`TensorBoardSink::with_rows`])
//! instead of appending duplicates of steps it repeats. The name depends only
//! on the start time the caller passes, so a resumed run that keeps its start
//! rewrites the same file instead of adding a second one (which TensorBoard
//! would merge into the same run, showing repeated steps twice).

use std::path::{Path, PathBuf};

use super::{is_temp_name, write_atomic};
use crate::metrics::{Metric, MetricSink};

/// The `file_version` of the first event of every file.
pub const FILE_VERSION: &str = "brain.Event:2";

/// The metric whose value (seconds since the run's start) sets the
/// `wall_time` of a row's event.
pub const WALL_METRIC: &str = "wall_s";

/// One scalar event: the metrics of one step.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalarRow {
    /// The training step (the x axis of TensorBoard's plots).
    pub step: u64,
    /// When the row was logged, in unix seconds.
    pub wall_time: f64,
    /// (tag, value) of each scalar, in the row's order.
    pub values: Vec<(String, f32)>,
}

impl ScalarRow {
    /// The scalar row of the metrics `row` of step `step` of a run started at
    /// `start` (unix seconds): one value per metric with a value that is not
    /// NaN (no data and NaN leave no scalar for that tag in this row), as f32
    /// (values beyond f32's range become ±inf), the [`WALL_METRIC`] included;
    /// `wall_time` = `start` + the row's [`WALL_METRIC`] when it has a finite
    /// one, else `start`.
    pub fn from_metrics(start: f64, step: u64, row: &[Metric]) -> Self {
        let wall_s = row
            .iter()
            .find(|m| m.name == WALL_METRIC)
            .and_then(|m| m.value)
            .filter(|w| w.is_finite());
        Self {
            step,
            wall_time: start + wall_s.unwrap_or(0.0),
            values: row
                .iter()
                .filter_map(|m| match m.value {
                    Some(v) if !v.is_nan() => Some((m.name.to_string(), v as f32)),
                    _ => None,
                })
                .collect(),
        }
    }
}

/// The name of the event file of a run started at `start` (unix seconds):
/// `events.out.tfevents.<start in whole seconds, rounded down>.runner`. It
/// depends on nothing else, so a run that keeps its start keeps its file.
pub fn file_name(start: f64) -> String {
    format!("events.out.tfevents.{}.runner", start.floor() as i64)
}

/// The metrics of a run as a TensorBoard event file
/// (`dir/`[`file_name`]`(start)`): it keeps its rows and rewrites the file
/// atomically after every row (see the module's documentation), so after a
/// crash the file holds exactly the rows logged so far.
pub struct TensorBoardSink {
    /// The event file.
    path: PathBuf,
    /// The run's start, unix seconds.
    start: f64,
    /// Every row logged so far (or kept on resume), in order.
    rows: Vec<ScalarRow>,
}

impl TensorBoardSink {
    /// A sink writing `dir/events.out.tfevents.<start>.runner` (not yet
    /// written), `start` being the unix seconds of the run's start. The
    /// caller keeps `start` stable across a run's resumes: the file's name
    /// comes from it ([`file_name`]), and a row's `wall_time` is `start` plus
    /// its `wall_s` metric.
    pub fn new(dir: &Path, start: f64) -> Self {
        Self {
            path: dir.join(file_name(start)),
            start,
            rows: Vec::new(),
        }
    }

    /// The path of the event file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The rows logged so far (or kept on resume), in order.
    pub fn rows(&self) -> &[ScalarRow] {
        &self.rows
    }

    /// The sink with the rows `rows` already logged (a resumed run): the file
    /// is rewritten with exactly these rows, then the new ones, at the next
    /// row ([`TensorBoardSink::rewrite`] writes it now).
    pub fn with_rows(mut self, rows: Vec<ScalarRow>) -> Self {
        self.rows = rows;
        self
    }

    /// Write the file now, atomically, with the rows held.
    pub fn rewrite(&self) -> std::io::Result<()> {
        write_atomic(&self.path, &encode(self.start, &self.rows))
    }
}

impl MetricSink for TensorBoardSink {
    /// Append the row ([`ScalarRow::from_metrics`]) and rewrite the file.
    /// When the write fails the row is still held, and the next write
    /// includes it.
    fn write_row(&mut self, step: u64, row: &[Metric]) -> std::io::Result<()> {
        self.rows
            .push(ScalarRow::from_metrics(self.start, step, row));
        self.rewrite()
    }
}

/// The bytes of the event file of a run started at `start` (unix seconds)
/// with the rows `rows`: the `file_version` event (`wall_time` = `start`,
/// step 0), then one event per row, its values in row order. Deterministic:
/// the same `start` and rows give the same bytes.
pub fn encode(start: f64, rows: &[ScalarRow]) -> Vec<u8> {
    let mut out = Vec::new();
    put_record(
        &mut out,
        &encode_event(start, 0, EventBody::FileVersion(FILE_VERSION)),
    );
    for row in rows {
        put_record(
            &mut out,
            &encode_event(row.wall_time, row.step, EventBody::Summary(&row.values)),
        );
    }
    out
}

/// Why the bytes of an event file could not be read. Every variant names
/// the record (0-based; record 0 is the `file_version` event) and the byte
/// offset where it starts.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DecodeError {
    /// The file ends inside a record (a partial header, data or CRC).
    #[error("record {record} (at byte {offset}) is truncated")]
    Truncated {
        /// Index of the record.
        record: usize,
        /// Byte offset of its start.
        offset: usize,
    },
    /// The masked CRC of the length does not match: the length is corrupt.
    #[error("record {record} (at byte {offset}): the CRC of its length does not match")]
    LengthCrc {
        /// Index of the record.
        record: usize,
        /// Byte offset of its start.
        offset: usize,
    },
    /// The masked CRC of the data does not match: the data is corrupt.
    #[error("record {record} (at byte {offset}): the CRC of its data does not match")]
    DataCrc {
        /// Index of the record.
        record: usize,
        /// Byte offset of its start.
        offset: usize,
    },
    /// The data passed its CRC but is not a valid Event protobuf.
    #[error("record {record} (at byte {offset}): invalid Event protobuf: {what}")]
    Protobuf {
        /// Index of the record.
        record: usize,
        /// Byte offset of its start.
        offset: usize,
        /// What is wrong.
        what: &'static str,
    },
    /// No event of the file has a `file_version` (an empty file, or not an
    /// event file).
    #[error("no event has a file_version (not a TensorBoard event file?)")]
    NoFileVersion,
}

/// Read the bytes of an event file: checks the length and data CRCs of
/// every record, and returns the first `file_version` found and one
/// [`ScalarRow`] per event with a summary, in file order. Only `simple_value`
/// scalars are read: other summary values (images, histograms, tensor-based
/// scalars) and fields unknown to this reader are skipped.
pub fn decode(bytes: &[u8]) -> Result<(String, Vec<ScalarRow>), DecodeError> {
    let mut file_version = None;
    let mut rows = Vec::new();
    let mut offset = 0;
    let mut record = 0;
    while offset < bytes.len() {
        let truncated = DecodeError::Truncated { record, offset };
        let header = bytes.get(offset..offset + 12).ok_or(truncated.clone())?;
        let (len_bytes, len_crc) = header.split_at(8);
        if masked_crc32c(len_bytes) != u32::from_le_bytes(len_crc.try_into().expect("4 bytes")) {
            return Err(DecodeError::LengthCrc { record, offset });
        }
        let len = u64::from_le_bytes(len_bytes.try_into().expect("8 bytes"));
        // data, then its 4-byte CRC; a length beyond the file is a truncation.
        let data_start = offset + 12;
        let data_end = usize::try_from(len)
            .ok()
            .and_then(|len| data_start.checked_add(len))
            .filter(|&end| end.checked_add(4).is_some_and(|e| e <= bytes.len()))
            .ok_or(truncated)?;
        let data = &bytes[data_start..data_end];
        let data_crc = &bytes[data_end..data_end + 4];
        if masked_crc32c(data) != u32::from_le_bytes(data_crc.try_into().expect("4 bytes")) {
            return Err(DecodeError::DataCrc { record, offset });
        }
        let event = parse_event(data).map_err(|what| DecodeError::Protobuf {
            record,
            offset,
            what,
        })?;
        if file_version.is_none() {
            file_version = event.file_version;
        }
        if let Some(values) = event.summary {
            rows.push(ScalarRow {
                step: event.step,
                wall_time: event.wall_time,
                values,
            });
        }
        offset = data_end + 4;
        record += 1;
    }
    Ok((file_version.ok_or(DecodeError::NoFileVersion)?, rows))
}

/// The scalar rows of every event file in `dir` (files whose name contains
/// `tfevents`, not the temporary files of atomic writes; subdirectories,
/// which TensorBoard shows as other runs, are not read), file after file in
/// name order. A file that does not decode is an `InvalidData` error naming
/// it; a missing `dir` is an error.
pub fn read_dir(dir: &Path) -> std::io::Result<Vec<ScalarRow>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        if name.contains("tfevents") && !is_temp_name(name, None) && entry.file_type()?.is_file() {
            files.push(entry.path());
        }
    }
    files.sort();
    let mut rows = Vec::new();
    for file in files {
        let bytes = std::fs::read(&file)?;
        let (_, file_rows) = decode(&bytes).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {e}", file.display()),
            )
        })?;
        rows.extend(file_rows);
    }
    Ok(rows)
}

// ---------------------------------------------------------------------------
// CRC-32C (Castagnoli) and the TFRecord framing.

/// CRC-32C lookup table: entry `i` is the CRC of the byte `i` (reflected
/// polynomial `0x82F63B78`), computed at compile time.
const CRC32C_TABLE: [u32; 256] = crc32c_table();

const fn crc32c_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

/// CRC-32C of `data` (initial value and final xor `!0`), one byte at a time.
fn crc32c(data: &[u8]) -> u32 {
    !data.iter().fold(!0u32, |crc, &b| {
        CRC32C_TABLE[((crc ^ u32::from(b)) & 0xFF) as usize] ^ (crc >> 8)
    })
}

/// TFRecord's masking of a CRC (stored CRCs are masked because computing the
/// CRC of bytes that embed CRCs is problematic).
fn mask_crc(crc: u32) -> u32 {
    // (crc >> 15) | (crc << 17)
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// The masked CRC-32C of `data`, as TFRecord stores it.
fn masked_crc32c(data: &[u8]) -> u32 {
    mask_crc(crc32c(data))
}

/// Append the TFRecord of `data` to `out`: length, its masked CRC, data, its
/// masked CRC (16 + `data.len()` bytes).
fn put_record(out: &mut Vec<u8>, data: &[u8]) {
    let len = (data.len() as u64).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc32c(data).to_le_bytes());
}

// ---------------------------------------------------------------------------
// Protobuf: the few pieces of the wire format an Event needs.

/// Wire types (the low 3 bits of a field's key).
const WIRE_VARINT: u8 = 0;
const WIRE_FIXED64: u8 = 1;
const WIRE_LEN: u8 = 2;
const WIRE_FIXED32: u8 = 5;

/// Field numbers of `tensorflow.Event`.
const EVENT_WALL_TIME: u32 = 1;
const EVENT_STEP: u32 = 2;
const EVENT_FILE_VERSION: u32 = 3;
const EVENT_SUMMARY: u32 = 5;
/// Field number of `Summary.value`.
const SUMMARY_VALUE: u32 = 1;
/// Field numbers of `Summary.Value`.
const VALUE_TAG: u32 = 1;
const VALUE_SIMPLE_VALUE: u32 = 2;

/// Append `v` as a base-128 varint (7 bits a byte, least significant group
/// first, high bit set on all bytes but the last; 1 to 10 bytes).
fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7F) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Append the key of field `field` with wire type `wire`.
fn put_key(out: &mut Vec<u8>, field: u32, wire: u8) {
    put_varint(out, (u64::from(field) << 3) | u64::from(wire));
}

/// Append field `field` as length-delimited `bytes`.
fn put_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_key(out, field, WIRE_LEN);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// What an Event carries besides its time and step (a oneof of `Event`).
enum EventBody<'a> {
    /// The file's first event.
    FileVersion(&'a str),
    /// A row of scalars: (tag, value).
    Summary(&'a [(String, f32)]),
}

/// The serialized `tensorflow.Event`, fields in number order.
fn encode_event(wall_time: f64, step: u64, body: EventBody<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    // Defaults are not written (proto3); -0.0 is not the default (its bits are not 0).
    if wall_time.to_bits() != 0 {
        put_key(&mut out, EVENT_WALL_TIME, WIRE_FIXED64);
        out.extend_from_slice(&wall_time.to_le_bytes());
    }
    if step != 0 {
        put_key(&mut out, EVENT_STEP, WIRE_VARINT);
        put_varint(&mut out, step);
    }
    match body {
        EventBody::FileVersion(version) => {
            put_bytes(&mut out, EVENT_FILE_VERSION, version.as_bytes())
        }
        EventBody::Summary(values) => {
            let mut summary = Vec::new();
            let mut value = Vec::new();
            for (tag, simple_value) in values {
                value.clear();
                if !tag.is_empty() {
                    put_bytes(&mut value, VALUE_TAG, tag.as_bytes());
                }
                put_key(&mut value, VALUE_SIMPLE_VALUE, WIRE_FIXED32);
                value.extend_from_slice(&simple_value.to_le_bytes());
                put_bytes(&mut summary, SUMMARY_VALUE, &value);
            }
            put_bytes(&mut out, EVENT_SUMMARY, &summary);
        }
    }
    out
}

/// A cursor over the bytes of one protobuf message.
struct Fields<'a> {
    bytes: &'a [u8],
    pos: usize,
}

/// A field's value as read off the wire.
enum Wire<'a> {
    Varint(u64),
    Fixed64([u8; 8]),
    Len(&'a [u8]),
    Fixed32([u8; 4]),
}

impl<'a> Fields<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    /// The next `n` bytes.
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or("a field runs past the end of its message")?;
        let taken = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(taken)
    }

    /// A varint (at most 10 bytes).
    fn varint(&mut self) -> Result<u64, &'static str> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = *self
                .bytes
                .get(self.pos)
                .ok_or("a varint runs past the end of its message")?;
            self.pos += 1;
            v |= u64::from(b & 0x7F) << (7 * i);
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err("a varint is longer than 10 bytes")
    }

    /// The next field (number, value), or `None` at the end of the message.
    /// Groups (wire types 3 and 4, deprecated, never used by Event) are an
    /// error.
    fn next_field(&mut self) -> Result<Option<(u64, Wire<'a>)>, &'static str> {
        if self.pos == self.bytes.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let field = key >> 3;
        if field == 0 {
            return Err("field number 0");
        }
        let value = match (key & 7) as u8 {
            WIRE_VARINT => Wire::Varint(self.varint()?),
            WIRE_FIXED64 => Wire::Fixed64(self.take(8)?.try_into().expect("8 bytes")),
            WIRE_LEN => {
                let len = usize::try_from(self.varint()?)
                    .map_err(|_| "a field runs past the end of its message")?;
                Wire::Len(self.take(len)?)
            }
            WIRE_FIXED32 => Wire::Fixed32(self.take(4)?.try_into().expect("4 bytes")),
            _ => return Err("unsupported wire type"),
        };
        Ok(Some((field, value)))
    }
}

/// The fields of an Event this reader uses.
struct Event {
    wall_time: f64,
    step: u64,
    file_version: Option<String>,
    /// (tag, simple_value) of the summary's scalar values; `None` without a
    /// summary.
    summary: Option<Vec<(String, f32)>>,
}

/// Read a serialized `tensorflow.Event`. A field this reader does not know
/// (or a known number with another wire type) is skipped, as protobuf does;
/// as protobuf's merging does too, a repeated `wall_time` or `step` keeps its
/// last value and repeated summaries are concatenated.
fn parse_event(bytes: &[u8]) -> Result<Event, &'static str> {
    let mut event = Event {
        wall_time: 0.0,
        step: 0,
        file_version: None,
        summary: None,
    };
    let mut fields = Fields::new(bytes);
    while let Some((field, value)) = fields.next_field()? {
        match (field, value) {
            (f, Wire::Fixed64(b)) if f == u64::from(EVENT_WALL_TIME) => {
                event.wall_time = f64::from_le_bytes(b)
            }
            // int64 on the wire; a negative step reads as its two's complement.
            (f, Wire::Varint(v)) if f == u64::from(EVENT_STEP) => event.step = v,
            (f, Wire::Len(b)) if f == u64::from(EVENT_FILE_VERSION) => {
                event.file_version =
                    Some(String::from_utf8(b.to_vec()).map_err(|_| "file_version is not UTF-8")?)
            }
            (f, Wire::Len(b)) if f == u64::from(EVENT_SUMMARY) => {
                let values = event.summary.get_or_insert_with(Vec::new);
                parse_summary(b, values)?;
            }
            _ => {}
        }
    }
    Ok(event)
}

/// Append the (tag, simple_value) of the scalar values of a serialized
/// `Summary` to `values`; values without a `simple_value` are skipped.
fn parse_summary(bytes: &[u8], values: &mut Vec<(String, f32)>) -> Result<(), &'static str> {
    let mut fields = Fields::new(bytes);
    while let Some((field, value)) = fields.next_field()? {
        if let (f, Wire::Len(b)) = (field, value) {
            if f == u64::from(SUMMARY_VALUE) {
                let (tag, simple_value) = parse_value(b)?;
                if let Some(simple_value) = simple_value {
                    values.push((tag, simple_value));
                }
            }
        }
    }
    Ok(())
}

/// The tag and `simple_value` (if any) of a serialized `Summary.Value`.
fn parse_value(bytes: &[u8]) -> Result<(String, Option<f32>), &'static str> {
    let mut tag = String::new();
    let mut simple_value = None;
    let mut fields = Fields::new(bytes);
    while let Some((field, value)) = fields.next_field()? {
        match (field, value) {
            (f, Wire::Len(b)) if f == u64::from(VALUE_TAG) => {
                tag = String::from_utf8(b.to_vec()).map_err(|_| "a tag is not UTF-8")?
            }
            (f, Wire::Fixed32(b)) if f == u64::from(VALUE_SIMPLE_VALUE) => {
                simple_value = Some(f32::from_le_bytes(b))
            }
            _ => {}
        }
    }
    Ok((tag, simple_value))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lowercase hex of `bytes`, for the golden comparisons.
    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn varint(v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint(&mut out, v);
        out
    }

    /// 0xE3069283 is CRC-32C's standard check value (the CRC of the ASCII
    /// "123456789"; "CRC-32/ISCSI" in the CRC RevEng catalogue); the CRC of no
    /// bytes is 0 (!(!0)); the 32-byte vectors are RFC 3720 (iSCSI),
    /// appendix B.4.
    #[test]
    fn crc32c_check_values() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
        assert_eq!(crc32c(&[0x00; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(&[0xFF; 32]), 0x62A8_AB43);
        let ascending: Vec<u8> = (0..32).collect();
        assert_eq!(crc32c(&ascending), 0x46DD_794E);
        let descending: Vec<u8> = (0..32).rev().collect();
        assert_eq!(crc32c(&descending), 0x113F_DB5C);
    }

    /// By hand: mask(0) is the constant 0xa282ead8. For 0xE3069283, `crc >>
    /// 15` keeps the high 17 bits, 0x1C60D; `crc << 17` moves the low 15
    /// bits, 0x1283, to 0x25060000; or-ed, 0x2507C60D; + 0xA282EAD8 =
    /// 0xC78AB0E5 (0xC60D + 0xEAD8 = 0x1B0E5, carry 1; 0x2507 + 0xA282 + 1 =
    /// 0xC78A). tensorboard's Python `masked_crc32c` gives the same two
    /// values (0xa282ead8 for b"", 0xc78ab0e5 for b"123456789").
    #[test]
    fn masked_crc_by_hand() {
        assert_eq!(mask_crc(0), 0xA282_EAD8);
        assert_eq!(masked_crc32c(b""), 0xA282_EAD8);
        assert_eq!(mask_crc(0xE306_9283), 0xC78A_B0E5);
        assert_eq!(masked_crc32c(b"123456789"), 0xC78A_B0E5);
    }

    /// 1 is one byte; 150 is `96 01` (the example of the protobuf encoding
    /// guide, protobuf.dev/programming-guides/encoding); 2^63 - 1 is 63 one
    /// bits: nine groups of 7, eight with the continuation bit (ff) and a
    /// last 0x7f; u64::MAX is 64 bits: nine ff, then the last bit (01).
    /// Each reads back.
    #[test]
    fn varints() {
        assert_eq!(varint(0), [0x00]);
        assert_eq!(varint(1), [0x01]);
        assert_eq!(varint(150), [0x96, 0x01]);
        assert_eq!(
            varint(i64::MAX as u64),
            [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]
        );
        assert_eq!(
            varint(u64::MAX),
            [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]
        );
        for v in [0, 1, 127, 128, 150, 300, i64::MAX as u64, u64::MAX] {
            let bytes = varint(v);
            let mut fields = Fields::new(&bytes);
            assert_eq!(fields.varint().unwrap(), v);
            assert_eq!(fields.pos, bytes.len());
        }
        // A truncated varint and an 11-byte one are errors.
        assert!(Fields::new(&[0x96]).varint().is_err());
        assert!(Fields::new(&[0x80; 11]).varint().is_err());
    }

    /// The name holds `tfevents` and the start in whole seconds, rounded down.
    #[test]
    fn file_name_from_start() {
        assert_eq!(
            file_name(1_700_000_000.75),
            "events.out.tfevents.1700000000.runner"
        );
        let dir = Path::new("/runs/a");
        assert_eq!(
            TensorBoardSink::new(dir, 12.5).path(),
            Path::new("/runs/a/events.out.tfevents.12.runner")
        );
    }

    /// The rows of three steps through from_metrics, NaN and no data
    /// skipped (expected values by hand: wall_time = start + wall_s; f32 of
    /// 0.1 is the f32 nearest 0.1), encoded and decoded back unchanged, with
    /// the file_version of the first record.
    #[test]
    fn round_trip() {
        let start = 1_700_000_000.25;
        let rows = vec![
            ScalarRow::from_metrics(
                start,
                0,
                &[
                    Metric::new("loss", 0.1),
                    Metric::optional("eval_l1", None),
                    Metric::new("wall_s", 0.5),
                ],
            ),
            ScalarRow::from_metrics(
                start,
                10,
                &[
                    Metric::new("loss", f64::NAN),
                    Metric::new("eval_l1", -2.5),
                    Metric::new("wall_s", 12.0),
                ],
            ),
            // No wall_s: wall_time is the start; nothing to log: an empty summary.
            ScalarRow::from_metrics(start, 1 << 40, &[Metric::optional("eval_l1", None)]),
        ];
        assert_eq!(
            rows[0],
            ScalarRow {
                step: 0,
                wall_time: 1_700_000_000.75,
                values: vec![("loss".into(), 0.1f32), ("wall_s".into(), 0.5)],
            }
        );
        assert_eq!(
            rows[1],
            ScalarRow {
                step: 10,
                wall_time: 1_700_000_012.25,
                values: vec![("eval_l1".into(), -2.5f32), ("wall_s".into(), 12.0)],
            }
        );
        assert_eq!(rows[2].wall_time, start);
        assert!(rows[2].values.is_empty());
        let bytes = encode(start, &rows);
        assert_eq!(bytes, encode(start, &rows), "encoding is deterministic");
        let (version, decoded) = decode(&bytes).unwrap();
        assert_eq!(version, "brain.Event:2");
        assert_eq!(decoded, rows);
        // No rows: the file_version event alone.
        assert_eq!(
            decode(&encode(start, &[])).unwrap(),
            (FILE_VERSION.to_string(), vec![])
        );
    }

    /// A flipped bit in a record's data or length fails its CRC, naming that
    /// record; a file cut anywhere inside a record is a truncation of that
    /// record; bytes that are no event file are refused.
    #[test]
    fn corruption_and_truncation_are_detected() {
        let rows = vec![
            ScalarRow {
                step: 1,
                wall_time: 2.0,
                values: vec![("loss".into(), 1.0)],
            },
            ScalarRow {
                step: 2,
                wall_time: 3.0,
                values: vec![("loss".into(), 0.5)],
            },
        ];
        let bytes = encode(1.0, &rows);
        // Record 0: 16 bytes of framing around its event; record 1 starts after it.
        let first_len = 16 + encode_event(1.0, 0, EventBody::FileVersion(FILE_VERSION)).len();
        let mut bad = bytes.clone();
        bad[first_len + 12 + 3] ^= 0x01; // record 1, a data byte
        assert_eq!(
            decode(&bad),
            Err(DecodeError::DataCrc {
                record: 1,
                offset: first_len
            })
        );
        assert!(decode(&bad).unwrap_err().to_string().contains("record 1"));
        let mut bad = bytes.clone();
        bad[0] ^= 0x01; // record 0, its length
        assert_eq!(
            decode(&bad),
            Err(DecodeError::LengthCrc {
                record: 0,
                offset: 0
            })
        );
        let mut bad = bytes.clone();
        bad[first_len - 1] ^= 0x80; // record 0, its data CRC
        assert_eq!(
            decode(&bad),
            Err(DecodeError::DataCrc {
                record: 0,
                offset: 0
            })
        );
        // Cut inside the header, the data and the CRC of the last record.
        let record2 =
            first_len + 16 + encode_event(2.0, 1, EventBody::Summary(&rows[0].values)).len();
        for cut in [record2 + 5, record2 + 14, bytes.len() - 2] {
            let err = decode(&bytes[..cut]).unwrap_err();
            assert_eq!(
                err,
                DecodeError::Truncated {
                    record: 2,
                    offset: record2
                },
                "cut at {cut}"
            );
            assert!(err.to_string().contains("record 2"));
        }
        assert_eq!(decode(&bytes[..record2]).unwrap().1, rows[..1]);
        assert_eq!(decode(b""), Err(DecodeError::NoFileVersion));
        assert!(decode(b"step,loss\n0,1\n").is_err());
    }

    /// Fields the reader does not use, of every wire type (as a newer writer
    /// or TensorFlow's own would add: Event.source_metadata,
    /// Value.node_name, Value.metadata, ...), are skipped; a Value without a
    /// simple_value (a tensor-based summary) is no scalar.
    #[test]
    fn unknown_fields_are_skipped() {
        let mut value = Vec::new();
        put_bytes(&mut value, 7, b"node"); // node_name
        put_bytes(&mut value, VALUE_TAG, b"loss");
        put_bytes(&mut value, 9, &[0x0a, 0x00]); // metadata
        put_key(&mut value, VALUE_SIMPLE_VALUE, WIRE_FIXED32);
        value.extend_from_slice(&0.75f32.to_le_bytes());
        let mut tensor_value = Vec::new();
        put_bytes(&mut tensor_value, VALUE_TAG, b"tensor");
        put_bytes(&mut tensor_value, 8, &[0x08, 0x01]); // tensor
        let mut summary = Vec::new();
        put_bytes(&mut summary, SUMMARY_VALUE, &value);
        put_bytes(&mut summary, SUMMARY_VALUE, &tensor_value);
        put_key(&mut summary, 20, WIRE_FIXED32);
        summary.extend_from_slice(&[1, 2, 3, 4]);
        let mut event = Vec::new();
        put_key(&mut event, 30, WIRE_VARINT);
        put_varint(&mut event, u64::MAX);
        put_key(&mut event, EVENT_WALL_TIME, WIRE_FIXED64);
        event.extend_from_slice(&5.5f64.to_le_bytes());
        put_key(&mut event, 31, WIRE_FIXED64);
        event.extend_from_slice(&[9; 8]);
        put_bytes(&mut event, 32, b"unknown bytes");
        put_key(&mut event, EVENT_STEP, WIRE_VARINT);
        put_varint(&mut event, 7);
        put_key(&mut event, 33, WIRE_FIXED32);
        event.extend_from_slice(&[9; 4]);
        put_bytes(&mut event, EVENT_SUMMARY, &summary);
        let mut file = encode(0.0, &[]);
        put_record(&mut file, &event);
        let (_, rows) = decode(&file).unwrap();
        assert_eq!(
            rows,
            vec![ScalarRow {
                step: 7,
                wall_time: 5.5,
                values: vec![("loss".into(), 0.75)],
            }]
        );
        // A length running past its message is an error naming the record.
        let mut file = encode(0.0, &[]);
        put_record(&mut file, &[0x2a, 0x05, 0x0a]);
        assert!(matches!(
            decode(&file),
            Err(DecodeError::Protobuf { record: 1, .. })
        ));
    }

    /// Golden bytes of a whole file, start 1700000000.5 and one row (step 3,
    /// wall_time 1700000001.75, loss 0.25, acc -1): the Python `tensorboard`
    /// package (2.21.0, protobuf 7.36.2) produced the same bytes from the same Events
    /// (`event_pb2.Event(wall_time=..., file_version="brain.Event:2")` and
    /// `event_pb2.Event(wall_time=..., step=3, summary=summary_pb2.Summary(
    /// value=[Value(tag="loss", simple_value=0.25), Value(tag="acc",
    /// simple_value=-1.0)]))`, serialized and framed by
    /// `tensorboard.summary.writer.record_writer.RecordWriter`), and its
    /// EventAccumulator read this file back with the same steps, values and
    /// wall times. Also checked by hand: record 0's length is `1800..00` (24 data
    /// bytes: 09 + 8 bytes of the double, 1a 0d + 13 bytes of
    /// "brain.Event:2").
    #[test]
    fn golden_bytes() {
        let rows = [ScalarRow {
            step: 3,
            wall_time: 1_700_000_001.75,
            values: vec![("loss".into(), 0.25), ("acc".into(), -1.0)],
        }];
        let bytes = encode(1_700_000_000.5, &rows);
        assert_eq!(hex(&bytes), GOLDEN);
        assert_eq!(decode(&bytes).unwrap().1, rows);
    }

    /// The golden file of [`golden_bytes`], as printed by the Python check
    /// there (`RecordWriter` into a `BytesIO`, then `.hex()`): record 0, then
    /// record 1 (length 0x26 = 38 bytes).
    const GOLDEN: &str = concat!(
        "1800000000000000a37f4b22",
        "0900002040fc54d9411a0d627261696e2e4576656e743a32",
        "2b353110",
        "2600000000000000734fe300",
        "0900007040fc54d94110032a190a0b0a046c6f7373150000803e0a0a0a0361636315000080bf",
        "5f9fedba",
    );

    /// write_row writes the file after every row (no temporary file left),
    /// read_dir reads it back; a resumed sink (with_rows) with the same start
    /// rewrites the same file with the rows it keeps, then its new ones.
    #[test]
    fn sink_writes_and_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let start = 1_700_000_000.0;
        let mut sink = TensorBoardSink::new(dir.path(), start);
        assert!(!sink.path().exists(), "nothing is written before a row");
        let row =
            |loss: f64, wall_s: f64| [Metric::new("loss", loss), Metric::new("wall_s", wall_s)];
        sink.write_row(0, &row(2.0, 1.0)).unwrap();
        sink.write_row(5, &row(1.0, 2.0)).unwrap();
        sink.write_row(10, &row(0.5, 3.0)).unwrap();
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            vec!["events.out.tfevents.1700000000.runner".to_string()]
        );
        // A stray temporary file of an atomic write and a non-event file are not read.
        std::fs::write(
            dir.path().join(".events.out.tfevents.1.runner.tmp1_1"),
            b"x",
        )
        .unwrap();
        std::fs::write(dir.path().join("metrics.csv"), b"step\n").unwrap();
        let read = read_dir(dir.path()).unwrap();
        assert_eq!(read, sink.rows());
        assert_eq!(
            read.iter()
                .map(|r| (r.step, r.wall_time))
                .collect::<Vec<_>>(),
            [(0, start + 1.0), (5, start + 2.0), (10, start + 3.0)]
        );
        assert_eq!(
            read[2].values,
            [("loss".to_string(), 0.5), ("wall_s".to_string(), 3.0)]
        );

        // Resume from step 5: the rows up to it are kept, step 10 is redone.
        let kept = read[..2].to_vec();
        let mut resumed = TensorBoardSink::new(dir.path(), start).with_rows(kept.clone());
        assert_eq!(resumed.path(), sink.path());
        resumed.rewrite().unwrap();
        assert_eq!(read_dir(dir.path()).unwrap(), kept);
        resumed.write_row(10, &row(0.25, 4.0)).unwrap();
        let read = read_dir(dir.path()).unwrap();
        assert_eq!(read.len(), 3);
        assert_eq!(read[2].values[0], ("loss".to_string(), 0.25));

        // A corrupt event file is an InvalidData error naming it.
        let mut bytes = std::fs::read(sink.path()).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(sink.path(), &bytes).unwrap();
        let err = read_dir(dir.path()).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("tfevents") && err.to_string().contains("record 3"));
    }
}
