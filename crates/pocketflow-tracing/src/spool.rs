//! A bounded on-disk queue of encoded export requests, one per exporter:
//! what the backend could not take waits here, in order, across restarts.
//!
//! Layout: a directory of segment files `<id>.seg` (ids increase) and a
//! `cursor` file naming the next record to send (segment id and offset).
//! A record is `[payload length u32][span count u32][CRC-32 of the payload
//! u32][payload]`, little-endian, written with one `write_all` and synced
//! before the append returns. A crash mid-write leaves a torn record at
//! the end of the last segment; opening the spool cuts it off, so at most
//! that record is lost and the rest reads back whole. The cursor is
//! replaced atomically (written aside, synced, renamed), so a crash
//! between sending a record and moving the cursor sends that record again
//! rather than losing it.
//!
//! When the segments hold more than the size cap, the oldest segment is
//! deleted and its unsent spans counted as evicted.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

const HEADER: u64 = 12;
const SEGMENT_SUFFIX: &str = ".seg";
const CURSOR: &str = "cursor";
/// Segments are cut at this size, or at an eighth of the cap when that is
/// smaller, so that evicting one frees a small part of the spool.
const MAX_SEGMENT_BYTES: u64 = 8 * 1024 * 1024;
const MIN_SEGMENT_BYTES: u64 = 64 * 1024;

/// One record read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) payload: Vec<u8>,
    pub(crate) spans: u32,
    /// Where the record after it starts: pass to [`Spool::commit`] once
    /// this one is sent.
    next: (u64, u64),
}

/// The spool of one exporter.
#[derive(Debug)]
pub(crate) struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    segment_bytes: u64,
    /// Segment ids, oldest first; the last one is written to.
    segments: VecDeque<u64>,
    writer: File,
    write_len: u64,
    /// The next record to read: segment id and offset.
    cursor: (u64, u64),
    /// Bytes in all segments.
    bytes: u64,
}

fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:016}{SEGMENT_SUFFIX}"))
}

fn crc(payload: &[u8]) -> u32 {
    let mut crc = flate2::Crc::new();
    crc.update(payload);
    crc.sum()
}

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// Reads the record at `offset` of `file` (`len` bytes long): `None` at the
/// end or at a torn or corrupt record.
fn read_record(file: &mut File, offset: u64, len: u64) -> io::Result<Option<(Vec<u8>, u32, u64)>> {
    if offset + HEADER > len {
        return Ok(None);
    }
    file.seek(SeekFrom::Start(offset))?;
    let mut header = [0u8; HEADER as usize];
    file.read_exact(&mut header)?;
    let word = |at: usize| u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]]);
    let (length, spans, sum) = (u64::from(word(0)), word(4), word(8));
    let end = offset + HEADER + length;
    if end > len {
        return Ok(None);
    }
    let mut payload = vec![0u8; usize::try_from(length).map_err(|_| invalid("a record too large".into()))?];
    file.read_exact(&mut payload)?;
    if crc(&payload) != sum {
        return Ok(None);
    }
    Ok(Some((payload, spans, end)))
}

impl Spool {
    /// Opens (or creates) the spool in `dir`, holding at most `max_bytes`,
    /// and cuts off a torn record at its end.
    pub(crate) fn open(dir: &Path, max_bytes: u64) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        let mut segments: Vec<u64> = fs::read_dir(dir)?
            .filter_map(Result::ok)
            .filter_map(|entry| entry.file_name().to_str()?.strip_suffix(SEGMENT_SUFFIX)?.parse().ok())
            .collect();
        segments.sort_unstable();
        let mut segments: VecDeque<u64> = segments.into();
        if segments.is_empty() {
            segments.push_back(1);
        }
        let last = *segments.back().unwrap_or(&1);
        let path = segment_path(dir, last);
        let mut writer = OpenOptions::new().create(true).read(true).append(true).open(&path)?;
        // Keep the whole records of the last segment; cut off the rest.
        let len = writer.metadata()?.len();
        let mut valid = 0;
        while let Some((_, _, next)) = read_record(&mut writer, valid, len)? {
            valid = next;
        }
        if valid < len {
            writer.set_len(valid)?;
            writer.sync_all()?;
        }
        let mut bytes = valid;
        for id in segments.iter().take(segments.len() - 1) {
            bytes += fs::metadata(segment_path(dir, *id))?.len();
        }
        let first = *segments.front().unwrap_or(&last);
        let cursor = match fs::read(dir.join(CURSOR)) {
            Ok(text) if text.len() == 16 => {
                let half = |at: usize| {
                    let mut word = [0u8; 8];
                    word.copy_from_slice(&text[at..at + 8]);
                    u64::from_le_bytes(word)
                };
                (half(0), half(8))
            }
            _ => (first, 0),
        };
        // A cursor into a segment since removed starts at the oldest left.
        let cursor = if segments.contains(&cursor.0) { cursor } else { (first, 0) };
        let segment_bytes = (max_bytes / 8).clamp(MIN_SEGMENT_BYTES, MAX_SEGMENT_BYTES);
        Ok(Self { dir: dir.to_owned(), max_bytes, segment_bytes, segments, writer, write_len: valid, cursor, bytes })
    }

    /// Appends a record of `spans` spans and syncs it to disk. Returns the
    /// spans evicted (the oldest, unsent) to stay under the cap.
    pub(crate) fn append(&mut self, payload: &[u8], spans: u32) -> io::Result<u64> {
        let length = u32::try_from(payload.len()).map_err(|_| invalid("a request over 4 GiB".into()))?;
        if self.write_len >= self.segment_bytes {
            self.rotate()?;
        }
        let mut record = Vec::with_capacity(payload.len() + HEADER as usize);
        record.extend_from_slice(&length.to_le_bytes());
        record.extend_from_slice(&spans.to_le_bytes());
        record.extend_from_slice(&crc(payload).to_le_bytes());
        record.extend_from_slice(payload);
        self.writer.write_all(&record)?;
        self.writer.sync_data()?;
        self.write_len += record.len() as u64;
        self.bytes += record.len() as u64;
        self.evict()
    }

    fn rotate(&mut self) -> io::Result<()> {
        let next = self.segments.back().map_or(1, |id| id + 1);
        self.writer = OpenOptions::new().create(true).read(true).append(true).open(segment_path(&self.dir, next))?;
        self.segments.push_back(next);
        self.write_len = 0;
        sync_dir(&self.dir)
    }

    /// Deletes the oldest segments while over the cap (never the one being
    /// written); returns the unsent spans they held.
    fn evict(&mut self) -> io::Result<u64> {
        let mut evicted = 0;
        while self.bytes > self.max_bytes && self.segments.len() > 1 {
            let Some(oldest) = self.segments.pop_front() else { break };
            let path = segment_path(&self.dir, oldest);
            let mut file = File::open(&path)?;
            let len = file.metadata()?.len();
            let mut offset = if self.cursor.0 == oldest { self.cursor.1 } else { 0 };
            if self.cursor.0 <= oldest {
                while let Some((_, spans, next)) = read_record(&mut file, offset, len)? {
                    evicted += u64::from(spans);
                    offset = next;
                }
            }
            fs::remove_file(&path)?;
            self.bytes = self.bytes.saturating_sub(len);
            if self.cursor.0 <= oldest {
                let first = self.segments.front().copied().unwrap_or(oldest + 1);
                self.save_cursor((first, 0))?;
            }
        }
        Ok(evicted)
    }

    /// The next record to send, if any.
    pub(crate) fn peek(&mut self) -> io::Result<Option<Record>> {
        loop {
            let (id, offset) = self.cursor;
            let path = segment_path(&self.dir, id);
            let mut file = match File::open(&path) {
                Ok(file) => file,
                Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(error) => return Err(error),
            };
            let len = if self.segments.back() == Some(&id) { self.write_len } else { file.metadata()?.len() };
            if let Some((payload, spans, next)) = read_record(&mut file, offset, len)? {
                return Ok(Some(Record { payload, spans, next: (id, next) }));
            }
            // The end of a finished segment (or a corrupt rest of one): go
            // on to the next, removing this one.
            let Some(position) = self.segments.iter().position(|s| *s == id) else { return Ok(None) };
            let Some(&next) = self.segments.get(position + 1) else { return Ok(None) };
            self.save_cursor((next, 0))?;
            self.segments.remove(position);
            self.bytes = self.bytes.saturating_sub(len);
            fs::remove_file(&path)?;
        }
    }

    /// Marks `record` sent: the cursor moves past it, durably.
    pub(crate) fn commit(&mut self, record: &Record) -> io::Result<()> {
        self.save_cursor(record.next)
    }

    fn save_cursor(&mut self, cursor: (u64, u64)) -> io::Result<()> {
        let aside = self.dir.join("cursor.next");
        let mut file = File::create(&aside)?;
        file.write_all(&cursor.0.to_le_bytes())?;
        file.write_all(&cursor.1.to_le_bytes())?;
        file.sync_all()?;
        fs::rename(&aside, self.dir.join(CURSOR))?;
        self.cursor = cursor;
        Ok(())
    }
}

/// Makes a new or renamed file's directory entry durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pocketflow-spool-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn drain(spool: &mut Spool) -> Vec<(Vec<u8>, u32)> {
        let mut out = Vec::new();
        while let Some(record) = spool.peek().unwrap() {
            spool.commit(&record).unwrap();
            out.push((record.payload, record.spans));
        }
        out
    }

    #[test]
    fn records_come_back_in_order_across_a_reopen() {
        let dir = dir("order");
        let mut spool = Spool::open(&dir, 1 << 20).unwrap();
        for i in 0..5u32 {
            spool.append(format!("request {i}").as_bytes(), i).unwrap();
        }
        let first = spool.peek().unwrap().unwrap();
        spool.commit(&first).unwrap();
        drop(spool);
        let mut spool = Spool::open(&dir, 1 << 20).unwrap();
        let rest = drain(&mut spool);
        let expected: Vec<(Vec<u8>, u32)> = (1..5u32).map(|i| (format!("request {i}").into_bytes(), i)).collect();
        assert_eq!(rest, expected);
        assert_eq!(spool.peek().unwrap(), None);
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn a_torn_last_record_is_cut_off_and_the_rest_survives() {
        let dir = dir("torn");
        let mut spool = Spool::open(&dir, 1 << 20).unwrap();
        spool.append(b"whole one", 1).unwrap();
        spool.append(b"whole two", 2).unwrap();
        drop(spool);
        // A crash mid-write: a header and half a payload.
        let path = segment_path(&dir, 1);
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(&100u32.to_le_bytes()).unwrap();
        file.write_all(&[7, 0, 0, 0, 1, 2, 3, 4, b'h', b'a']).unwrap();
        drop(file);
        let mut spool = Spool::open(&dir, 1 << 20).unwrap();
        spool.append(b"after the crash", 3).unwrap();
        let all = drain(&mut spool);
        assert_eq!(all, vec![(b"whole one".to_vec(), 1), (b"whole two".to_vec(), 2), (b"after the crash".to_vec(), 3)]);
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn a_cut_at_every_byte_of_the_last_record_loses_only_that_record() {
        let dir = dir("cuts");
        let mut spool = Spool::open(&dir, 1 << 20).unwrap();
        spool.append(b"kept", 1).unwrap();
        spool.append(b"the last record", 2).unwrap();
        drop(spool);
        let path = segment_path(&dir, 1);
        let whole = fs::read(&path).unwrap();
        let kept_end = (HEADER + 4) as usize;
        for cut in kept_end..whole.len() {
            fs::write(&path, &whole[..cut]).unwrap();
            let _ = fs::remove_file(dir.join(CURSOR));
            let mut spool = Spool::open(&dir, 1 << 20).unwrap();
            assert_eq!(drain(&mut spool), vec![(b"kept".to_vec(), 1)], "cut at {cut}");
        }
        let _ = fs::remove_dir_all(dir);
    }

    /// Record `i`'s payload: recognisable, and of a length that varies.
    fn payload(i: u32) -> Vec<u8> {
        let mut payload = i.to_le_bytes().to_vec();
        payload.resize(4 + (i as usize * 37) % 3000, (i % 251) as u8);
        payload
    }

    /// The child of [`a_process_killed_while_writing_leaves_a_spool_that_reads_back_whole`]:
    /// appends records until it is killed.
    #[test]
    #[ignore = "run by a_process_killed_while_writing_leaves_a_spool_that_reads_back_whole"]
    fn crash_child_appends_until_killed() {
        let Some(dir) = std::env::var_os("POCKETFLOW_SPOOL_CRASH_DIR") else { return };
        let mut spool = Spool::open(Path::new(&dir), 1 << 30).unwrap();
        for i in 0.. {
            spool.append(&payload(i), i).unwrap();
        }
    }

    /// A real crash: a child process appending as fast as it can is killed
    /// (SIGKILL) mid-stream. The spool opens, every record in it is whole
    /// and in order from the first, and it takes new records.
    #[test]
    fn a_process_killed_while_writing_leaves_a_spool_that_reads_back_whole() {
        let dir = dir("crash");
        fs::create_dir_all(&dir).unwrap();
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "spool::tests::crash_child_appends_until_killed", "--ignored", "--test-threads=1"])
            .env("POCKETFLOW_SPOOL_CRASH_DIR", &dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Until it has written a good part of a segment.
        let first = segment_path(&dir, 1);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while fs::metadata(&first).map_or(0, |m| m.len()) < 256 * 1024 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        child.kill().unwrap();
        child.wait().unwrap();

        let mut spool = Spool::open(&dir, 1 << 30).unwrap();
        let records = drain(&mut spool);
        assert!(records.len() > 10, "the child wrote {} records", records.len());
        for (i, (bytes, spans)) in records.iter().enumerate() {
            let i = u32::try_from(i).unwrap();
            assert_eq!((bytes, *spans), (&payload(i), i), "record {i}");
        }
        let next = u32::try_from(records.len()).unwrap();
        spool.append(&payload(next), next).unwrap();
        assert_eq!(drain(&mut spool), vec![(payload(next), next)]);
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn over_the_cap_the_oldest_are_evicted_and_counted() {
        let dir = dir("cap");
        // A 64 KiB segment minimum, a 128 KiB cap: 1 KiB records.
        let mut spool = Spool::open(&dir, 128 * 1024).unwrap();
        let payload = vec![b'x'; 1024 - HEADER as usize];
        let mut evicted = 0;
        for _ in 0..400 {
            evicted += spool.append(&payload, 10).unwrap();
        }
        let left = drain(&mut spool);
        assert!(evicted > 0, "nothing was evicted");
        assert_eq!(evicted + left.len() as u64 * 10, 4000, "every span is either evicted or still there");
        let on_disk: u64 = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
        assert!(on_disk <= 128 * 1024 + 64 * 1024 + 64, "the spool holds {on_disk} bytes");
        let _ = fs::remove_dir_all(dir);
    }
}
