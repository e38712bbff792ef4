//! The json-file log on disk, as Docker's json-file driver keeps it: `<id>-json.log`, the
//! file being written, and with `max-size` its rotated predecessors `<id>-json.log.1` (the
//! newest) … `<id>-json.log.<max-file − 1>` (the oldest), each `.gz` with `compress`. The
//! monitor writes and rotates ([`LogWriter`]); readers ([`LogSet`], [`Follower`]) open the
//! files without any lock, so they check what they opened against renames done meanwhile.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::log_opts::Rotation;

/// `<base>.<n>`: the n-th newest rotated file.
pub fn rotated_path(base: &Path, n: u32) -> PathBuf {
    let mut s = base.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// `<base>.<n>.gz`: the same, compressed.
pub fn compressed_path(base: &Path, n: u32) -> PathBuf {
    let mut s = base.as_os_str().to_owned();
    s.push(format!(".{n}.gz"));
    PathBuf::from(s)
}

/// One entry of the log, in Docker's field order.
#[derive(Serialize)]
struct Entry<'a> {
    log: &'a str,
    stream: &'a str,
    time: &'a str,
}

/// The monitor's side: appends entries, created at the first one (a container that prints
/// nothing costs no file), and rotates before an entry when the current file has reached
/// `max-size` — so a file exceeds it by one entry at most, as in Docker. Buffered: the monitor
/// flushes once per round of its event loop.
pub struct LogWriter {
    path: PathBuf,
    /// The file of a store from before the Docker names (`ctr.log`), taken over at the
    /// first entry.
    legacy: Option<PathBuf>,
    rotation: Rotation,
    file: Option<BufWriter<File>>,
    /// Bytes in the current file, buffered ones included.
    size: u64,
    /// No file (it failed to open, or a write failed): when to try to open it again, and the
    /// wait after that (doubled on each failure up to `MAX_REOPEN_WAIT`): a full disk that
    /// gets space again gets the log back.
    reopen_at: Option<Instant>,
    reopen_wait: Duration,
    /// Output that could not be logged since the last entry that was: how many lines and
    /// why, told in the log itself (on `logs`' stderr) once it can be written again.
    lost: u64,
    lost_because: Option<String>,
    /// A rotation failed (the current file could not be renamed): when to try again.
    rotate_at: Option<Instant>,
    entry: Vec<u8>,
    /// The time of the last entry (the gzip header of a compressed file carries it).
    last_time: String,
    /// The compression of the file rotated last, which the next rotation waits for.
    compressing: Option<std::thread::JoinHandle<()>>,
}

/// The first wait before a log file that failed is opened again, and the longest.
const FIRST_REOPEN_WAIT: Duration = Duration::from_secs(1);
const MAX_REOPEN_WAIT: Duration = Duration::from_secs(60);
/// The wait before a rotation that failed is tried again.
const ROTATE_RETRY_WAIT: Duration = Duration::from_secs(10);

impl LogWriter {
    pub fn new(path: PathBuf, legacy: Option<PathBuf>, rotation: Rotation) -> LogWriter {
        LogWriter {
            path,
            legacy,
            rotation,
            file: None,
            size: 0,
            reopen_at: None,
            reopen_wait: FIRST_REOPEN_WAIT,
            lost: 0,
            lost_because: None,
            rotate_at: None,
            entry: Vec::new(),
            last_time: String::new(),
            compressing: None,
        }
    }

    /// One line of output (Docker's json-file format: one JSON object per line).
    pub fn write(&mut self, stream: &str, line: &[u8]) {
        if self.file.is_none() && self.reopen_at.is_none_or(|at| Instant::now() >= at) {
            self.open();
        }
        let Some(size) = self.file.as_ref().map(|_| self.size) else {
            self.lost += 1;
            return;
        };
        if self.rotation.max_size.is_some_and(|max| size >= max)
            && self.rotate_at.is_none_or(|at| Instant::now() >= at)
        {
            self.rotate();
        }
        if self.lost > 0 && self.file.is_some() {
            let because = self.lost_because.take().unwrap_or_default();
            let note = format!(
                "berth: {} line(s) of output could not be logged: {because}\n",
                self.lost
            );
            self.lost = 0;
            self.append("stderr", note.as_bytes());
        }
        self.append(stream, line);
    }

    /// Writes one entry to the open file; a failure closes it (to be opened again later)
    /// and counts the line as lost.
    fn append(&mut self, stream: &str, line: &[u8]) {
        self.last_time = crate::time::Timestamp::now().rfc3339_nano();
        let log = String::from_utf8_lossy(line);
        self.entry.clear();
        let entry = Entry {
            log: &log,
            stream,
            time: &self.last_time,
        };
        if serde_json::to_writer(&mut self.entry, &entry).is_err() {
            return;
        }
        self.entry.push(b'\n');
        let Some(file) = &mut self.file else {
            self.lost += 1;
            return;
        };
        match file.write_all(&self.entry) {
            Ok(()) => self.size += self.entry.len() as u64,
            Err(e) => {
                self.lost += 1;
                self.failed(e);
            }
        }
    }

    pub fn flush(&mut self) {
        if let Some(file) = &mut self.file
            && let Err(e) = file.flush()
        {
            // Buffered lines are gone: at least one.
            self.lost += 1;
            self.failed(e);
        }
    }

    /// The file could not be opened or written: it is dropped (what is buffered in it
    /// included) and opened again, appending, after a wait.
    fn failed(&mut self, error: io::Error) {
        if let Some(file) = self.file.take() {
            // Its buffer could not be written: drop it without another try.
            let _ = file.into_parts();
        }
        self.lost_because = Some(error.to_string());
        self.reopen_at = Some(Instant::now() + self.reopen_wait);
        self.reopen_wait = (self.reopen_wait * 2).min(MAX_REOPEN_WAIT);
    }

    /// Flushes, and waits for a compression under way.
    pub fn finish(self) {
        if let Some(handle) = self.close() {
            let _ = handle.join();
        }
    }

    /// Flushes and closes the current file (the container's log is complete when its exit
    /// is reported) and hands back a compression of a rotated file still under way, which
    /// the caller joins once the exit is reported: nobody waits on a gzip for it.
    pub fn close(mut self) -> Option<std::thread::JoinHandle<()>> {
        self.flush();
        self.file = None;
        self.compressing.take()
    }

    fn open(&mut self) {
        if let Some(legacy) = self.legacy.take()
            && !self.path.exists()
        {
            let _ = fs::rename(&legacy, &self.path);
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o640)
            .open(&self.path);
        match file.and_then(|f| f.metadata().map(|m| (f, m.len()))) {
            Ok((file, size)) => {
                self.size = size;
                self.file = Some(BufWriter::with_capacity(64 * 1024, file));
                self.reopen_at = None;
                self.reopen_wait = FIRST_REOPEN_WAIT;
            }
            Err(e) => self.failed(e),
        }
    }

    fn wait_for_compression(&mut self) {
        if let Some(handle) = self.compressing.take() {
            let _ = handle.join();
        }
    }

    /// Docker's rotation: the oldest file goes, `.i` becomes `.i+1`, the current file `.1`
    /// (with one file only, it is deleted), and a new current file starts; with `compress`,
    /// `.1` is then gzipped beside the writing, which goes on meanwhile.
    fn rotate(&mut self) {
        if let Some(mut file) = self.file.take()
            && let Err(e) = file.flush()
        {
            self.file = Some(file);
            self.lost += 1;
            self.failed(e);
            return;
        }
        self.wait_for_compression();
        let max = self.rotation.max_files;
        if max >= 2 {
            // The highest index in use (the writer alone renames, so there are no gaps).
            let mut top = 0;
            while top + 1 < max
                && (rotated_path(&self.path, top + 1).exists()
                    || compressed_path(&self.path, top + 1).exists())
            {
                top += 1;
            }
            if top == max - 1 {
                let _ = fs::remove_file(rotated_path(&self.path, top));
                let _ = fs::remove_file(compressed_path(&self.path, top));
                top -= 1;
            }
            for i in (1..=top).rev() {
                let _ = fs::rename(rotated_path(&self.path, i), rotated_path(&self.path, i + 1));
                let _ = fs::rename(
                    compressed_path(&self.path, i),
                    compressed_path(&self.path, i + 1),
                );
            }
            if let Err(e) = fs::rename(&self.path, rotated_path(&self.path, 1)) {
                // The current file stays where it is and is appended to, never truncated;
                // the rotation is tried again after a while, and the log says so once.
                let first = self.rotate_at.is_none();
                self.rotate_at = Some(Instant::now() + ROTATE_RETRY_WAIT);
                self.open();
                if first {
                    let note =
                        format!("berth: log rotation failed, the log grows past max-size: {e}\n");
                    self.append("stderr", note.as_bytes());
                }
                return;
            }
            self.rotate_at = None;
            if self.rotation.compress {
                let from = rotated_path(&self.path, 1);
                let to = compressed_path(&self.path, 1);
                let last_time = self.last_time.clone();
                self.compressing = std::thread::Builder::new()
                    .name("log-compress".into())
                    .stack_size(256 * 1024)
                    .spawn(move || compress(&from, &to, &last_time))
                    .ok();
            }
        } else {
            let _ = fs::remove_file(&self.path);
        }
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o640)
            .open(&self.path);
        self.size = 0;
        match file {
            Ok(file) => self.file = Some(BufWriter::with_capacity(64 * 1024, file)),
            Err(e) => self.failed(e),
        }
    }
}

/// Gzips a rotated file as Docker does: the gzip header's extra field holds the time of its
/// last entry (`{"lastTime":…}`); the plain file goes once the compressed one is complete,
/// so a reader always finds one whole copy (readers prefer the plain one).
fn compress(from: &Path, to: &Path, last_time: &str) {
    let done = (|| -> io::Result<()> {
        let mut input = File::open(from)?;
        let output = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o640)
            .open(to)?;
        let extra = serde_json::json!({ "lastTime": last_time }).to_string();
        let mut encoder = flate2::GzBuilder::new()
            .extra(extra.into_bytes())
            .write(BufWriter::new(output), flate2::Compression::default());
        io::copy(&mut input, &mut encoder)?;
        encoder.finish()?.into_inner().map_err(|e| e.into_error())?;
        Ok(())
    })();
    match done {
        Ok(()) => {
            let _ = fs::remove_file(from);
        }
        Err(_) => {
            let _ = fs::remove_file(to);
        }
    }
}

/// A file of the log, open for reading.
pub enum LogSource {
    Plain(File),
    Gzip(File),
}

/// The log's files open for reading, oldest first; the last is the current file when it
/// exists. Opened without a lock against the writer: the files are opened newest first and
/// the set is taken again if the current file was renamed meanwhile or one file was opened
/// under two names (a rotation went through the names as they were opened).
pub struct LogSet {
    pub files: Vec<LogSource>,
    /// Whether the last of `files` is the current file (it may have a line being written).
    pub has_current: bool,
}

impl LogSet {
    pub fn open(base: &Path, max_files: u32) -> io::Result<LogSet> {
        let mut attempt = 0;
        loop {
            let (set, consistent) = open_once(base, max_files)?;
            attempt += 1;
            if consistent || attempt >= 20 {
                return Ok(set);
            }
        }
    }
}

fn open_if_there(path: &Path) -> io::Result<Option<File>> {
    match File::open(path) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn identity(file: &File) -> io::Result<(u64, u64)> {
    let m = file.metadata()?;
    Ok((m.dev(), m.ino()))
}

fn path_identity(path: &Path) -> Option<(u64, u64)> {
    fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

fn open_once(base: &Path, max_files: u32) -> io::Result<(LogSet, bool)> {
    let current = open_if_there(base)?;
    let current_id = current.as_ref().map(identity).transpose()?;
    let mut seen: Vec<(u64, u64)> = current_id.into_iter().collect();
    let mut consistent = true;
    let mut older = Vec::new();
    // A rotation under way leaves one index free at a time: stop at the second gap (and
    // so never look at a million names for `max-file=1000000`).
    let mut gaps = 0;
    for n in 1..max_files {
        let source = match open_if_there(&rotated_path(base, n))? {
            Some(f) => Some(LogSource::Plain(f)),
            None => open_if_there(&compressed_path(base, n))?.map(LogSource::Gzip),
        };
        let Some(source) = source else {
            gaps += 1;
            if gaps == 2 {
                break;
            }
            continue;
        };
        let (LogSource::Plain(f) | LogSource::Gzip(f)) = &source;
        let id = identity(f)?;
        if seen.contains(&id) {
            consistent = false;
        }
        seen.push(id);
        older.push(source);
    }
    if path_identity(base) != current_id {
        consistent = false;
    }
    older.reverse();
    let has_current = current.is_some();
    older.extend(current.map(LogSource::Plain));
    Ok((
        LogSet {
            files: older,
            has_current,
        },
        consistent,
    ))
}

/// Where in a file reading starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// A byte offset (plain files).
    Bytes(u64),
    /// A number of lines (compressed files, which are only read forwards).
    Lines(u64),
}

/// Where the last `n` complete lines of the set begin: (file index, where in it). Plain files
/// are read backwards from their ends in blocks; a compressed one is decompressed once to
/// count its lines. Memory stays at one block whatever the log's size.
pub fn tail_start(set: &mut LogSet, n: u64) -> io::Result<(usize, Skip)> {
    let mut wanted = n;
    let count = set.files.len();
    for index in (0..count).rev() {
        let is_current = set.has_current && index + 1 == count;
        match &mut set.files[index] {
            LogSource::Plain(file) => {
                let (found, at) = scan_back(file, wanted, is_current)?;
                match at {
                    Some(offset) => return Ok((index, Skip::Bytes(offset))),
                    None => wanted -= found,
                }
            }
            LogSource::Gzip(file) => {
                let lines = count_lines(gzip_reader(file)?)?;
                if lines >= wanted {
                    return Ok((index, Skip::Lines(lines - wanted)));
                }
                wanted -= lines;
            }
        }
        if wanted == 0 {
            return Ok((index, Skip::Bytes(0)));
        }
    }
    Ok((0, Skip::Bytes(0)))
}

/// Counts complete lines backwards from the end of `file` (in the current file, a last line
/// still being written does not count): `(lines, Some(offset))` once `wanted` lines are
/// found, offset being where the first of them starts; otherwise `(lines in the file, None)`.
fn scan_back(file: &mut File, wanted: u64, is_current: bool) -> io::Result<(u64, Option<u64>)> {
    const BLOCK: u64 = 64 * 1024;
    let len = file.metadata()?.len();
    let mut buf = vec![0u8; BLOCK as usize];
    let mut end = len;
    // Line ends seen so far, from the end: the first closes the last complete line, the
    // (wanted + 1)-th the line just before the first one wanted.
    let mut ends = 0u64;
    // In a rotated file, a last line without its newline still counts as a line.
    if !is_current && len > 0 {
        let mut last = [0u8; 1];
        file.seek(SeekFrom::Start(len - 1))?;
        file.read_exact(&mut last)?;
        if last[0] != b'\n' {
            ends += 1;
            if ends == wanted + 1 {
                return Ok((wanted, Some(len)));
            }
        }
    }
    while end > 0 {
        let start = end.saturating_sub(BLOCK);
        let chunk = &mut buf[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        for i in (0..chunk.len()).rev() {
            if chunk[i] == b'\n' {
                ends += 1;
                if ends == wanted + 1 {
                    return Ok((wanted, Some(start + i as u64 + 1)));
                }
            }
        }
        end = start;
    }
    Ok((ends, None))
}

fn gzip_reader(file: &mut File) -> io::Result<BufReader<flate2::read::MultiGzDecoder<File>>> {
    let mut file = file.try_clone()?;
    file.seek(SeekFrom::Start(0))?;
    Ok(BufReader::new(flate2::read::MultiGzDecoder::new(file)))
}

fn count_lines(mut reader: impl BufRead) -> io::Result<u64> {
    let mut lines = 0u64;
    let mut last = b'\n';
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            break;
        }
        lines += buf.iter().filter(|b| **b == b'\n').count() as u64;
        last = buf[buf.len() - 1];
        let n = buf.len();
        reader.consume(n);
    }
    Ok(lines + u64::from(last != b'\n'))
}

/// Reads the set forwards from `start`, passing each complete line (without its newline) to
/// `line`. Returns the last file read (the current one, unless a rotation was under way)
/// positioned after its last complete line, for following; None if that was compressed.
pub fn read_forward(
    set: LogSet,
    start: (usize, Skip),
    line: &mut dyn FnMut(&[u8]),
) -> io::Result<Option<Follower>> {
    let has_current = set.has_current;
    let count = set.files.len();
    let mut follower = None;
    let mut buf = Vec::new();
    for (index, source) in set.files.into_iter().enumerate().skip(start.0) {
        let skip = if index == start.0 {
            start.1
        } else {
            Skip::Bytes(0)
        };
        match source {
            LogSource::Plain(mut file) => {
                let offset = match skip {
                    Skip::Bytes(b) => b,
                    Skip::Lines(_) => 0,
                };
                file.seek(SeekFrom::Start(offset))?;
                let is_current = has_current && index + 1 == count;
                let mut reader = BufReader::with_capacity(64 * 1024, file);
                let mut pos = offset;
                loop {
                    buf.clear();
                    let n = reader.read_until(b'\n', &mut buf)?;
                    if n == 0 {
                        break;
                    }
                    if buf.last() != Some(&b'\n') && is_current {
                        // Being written: the follower reads it again whole.
                        break;
                    }
                    pos += n as u64;
                    line(trim_newline(&buf));
                }
                let mut file = reader.into_inner();
                file.seek(SeekFrom::Start(pos))?;
                follower = Some(Follower::at(file, pos));
            }
            LogSource::Gzip(mut file) => {
                follower = None;
                let mut reader = gzip_reader(&mut file)?;
                let mut to_skip = match skip {
                    Skip::Lines(n) => n,
                    Skip::Bytes(_) => 0,
                };
                loop {
                    buf.clear();
                    if reader.read_until(b'\n', &mut buf)? == 0 {
                        break;
                    }
                    if to_skip > 0 {
                        to_skip -= 1;
                        continue;
                    }
                    line(trim_newline(&buf));
                }
            }
        }
    }
    Ok(follower)
}

fn trim_newline(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\n").unwrap_or(line)
}

/// Reads the current file as it grows and follows it through rotations: once the file it
/// reads has been renamed away and read to its end, it goes on with the file rotated after
/// it (found by its identity among `.1`, `.2`, …), or with the current file.
pub struct Follower {
    reader: BufReader<File>,
    id: (u64, u64),
    pos: u64,
}

impl Follower {
    /// The current file from its start; None while there is none.
    pub fn current(base: &Path) -> io::Result<Option<Follower>> {
        Ok(open_if_there(base)?.map(|f| Follower::at(f, 0)))
    }

    fn at(file: File, pos: u64) -> Follower {
        let id = identity(&file).unwrap_or((0, 0));
        Follower {
            reader: BufReader::with_capacity(64 * 1024, file),
            id,
            pos,
        }
    }

    /// Passes every complete line written since to `line`; whether there were any.
    pub fn drain(
        &mut self,
        base: &Path,
        max_files: u32,
        line: &mut dyn FnMut(&[u8]),
    ) -> io::Result<bool> {
        let mut got = false;
        let mut buf = Vec::new();
        loop {
            got |= self.read_available(&mut buf, line)?;
            if path_identity(base) == Some(self.id) {
                return Ok(got);
            }
            // Renamed away (or deleted): whatever it holds is complete, since the writer
            // flushes before it rotates. Read the rest, then move on.
            got |= self.read_available(&mut buf, line)?;
            let next = next_after(base, max_files, self.id);
            let Some(file) = next else {
                return Ok(got);
            };
            *self = Follower::at(file, 0);
        }
    }

    fn read_available(
        &mut self,
        buf: &mut Vec<u8>,
        line: &mut dyn FnMut(&[u8]),
    ) -> io::Result<bool> {
        let mut got = false;
        loop {
            buf.clear();
            let n = self.reader.read_until(b'\n', buf)?;
            if n == 0 {
                return Ok(got);
            }
            if buf.last() != Some(&b'\n') {
                // A line still being written: read it again whole next time.
                self.reader.seek(SeekFrom::Start(self.pos))?;
                return Ok(got);
            }
            self.pos += n as u64;
            got = true;
            line(trim_newline(buf));
        }
    }
}

/// The file written after the one whose identity is `id`: if `id` is now `.k`, it is `.k-1`
/// (or the current file for `.1`); if it is gone (deleted, or replaced by its compressed
/// copy), the current file. None: not there yet (a rotation is under way).
fn next_after(base: &Path, max_files: u32, id: (u64, u64)) -> Option<File> {
    let mut gaps = 0;
    for k in 1..max_files {
        match path_identity(&rotated_path(base, k)) {
            Some(found) if found == id => {
                let newer = if k == 1 {
                    base.to_path_buf()
                } else {
                    rotated_path(base, k - 1)
                };
                return open_if_there(&newer).ok().flatten();
            }
            Some(_) => {}
            None => {
                gaps += 1;
                if gaps == 2 {
                    break;
                }
            }
        }
    }
    open_if_there(base).ok().flatten()
}

/// The first reader of a log that had no file yet: once one appears, everything from the
/// oldest file on.
pub fn open_new(base: &Path, max_files: u32) -> io::Result<Option<LogSet>> {
    let set = LogSet::open(base, max_files)?;
    Ok((!set.files.is_empty()).then_some(set))
}

/// Reads a log source whole into `line` calls (used by tests of the reader).
#[cfg(test)]
fn lines_of(set: LogSet, start: (usize, Skip)) -> Vec<String> {
    let mut out = Vec::new();
    read_forward(set, start, &mut |l| {
        out.push(String::from_utf8_lossy(l).into_owned())
    })
    .unwrap();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("berth-logfile-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir.join("x-json.log")
    }

    fn logs_of(base: &Path, max_files: u32, tail: Option<u64>) -> Vec<String> {
        let mut set = LogSet::open(base, max_files).unwrap();
        let start = match tail {
            Some(n) => tail_start(&mut set, n).unwrap(),
            None => (0, Skip::Bytes(0)),
        };
        lines_of(set, start)
            .into_iter()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(&l).unwrap();
                v["log"].as_str().unwrap().trim_end().to_string()
            })
            .collect()
    }

    fn write_lines(writer: &mut LogWriter, from: usize, to: usize) {
        for i in from..to {
            writer.write(
                "stdout",
                format!("line {i:05} {}\n", "x".repeat(40)).as_bytes(),
            );
            writer.flush();
        }
    }

    /// A log that cannot be opened (no space, say) is opened again later, and the lines lost
    /// meanwhile are told in it, on stderr.
    #[test]
    fn a_log_that_failed_to_open_comes_back_and_tells_what_was_lost() {
        let base = scratch("reopen");
        let dir = base.parent().unwrap().to_path_buf();
        fs::remove_dir_all(&dir).unwrap();
        let mut writer = LogWriter::new(base.clone(), None, Rotation::default());
        write_lines(&mut writer, 0, 3);
        assert!(writer.file.is_none());
        fs::create_dir_all(&dir).unwrap();
        // The wait before the next try, over.
        writer.reopen_at = Some(Instant::now());
        write_lines(&mut writer, 3, 5);
        writer.finish();
        let lines = logs_of(&base, 1, None);
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(
            lines[0].starts_with("berth: 3 line(s) of output could not be logged: "),
            "{lines:?}"
        );
        assert!(lines[1].starts_with("line 00003"), "{lines:?}");
        assert!(lines[2].starts_with("line 00004"), "{lines:?}");
    }

    /// A rotation whose rename fails keeps appending to the current file: nothing is
    /// truncated away, and the log says why it grows.
    #[test]
    fn a_failed_rotation_keeps_appending() {
        let base = scratch("rename-fails");
        // A non-empty directory where the rotated file goes: the rename fails.
        let blocker = rotated_path(&base, 1);
        fs::create_dir_all(blocker.join("x")).unwrap();
        let rotation = Rotation {
            max_size: Some(300),
            max_files: 2,
            compress: false,
        };
        let mut writer = LogWriter::new(base.clone(), None, rotation);
        write_lines(&mut writer, 0, 20);
        writer.finish();
        let text = fs::read_to_string(&base).unwrap();
        for i in 0..20 {
            assert!(text.contains(&format!("line {i:05}")), "line {i} lost");
        }
        assert_eq!(
            text.matches("berth: log rotation failed, the log grows past max-size")
                .count(),
            1
        );
        assert!(blocker.join("x").is_dir());
    }

    #[test]
    fn rotation_keeps_max_files_and_tail_reads_across_them() {
        for compress in [false, true] {
            let base = scratch(if compress { "gz" } else { "plain" });
            let rotation = Rotation {
                max_size: Some(1000),
                max_files: 3,
                compress,
            };
            let mut writer = LogWriter::new(base.clone(), None, rotation);
            write_lines(&mut writer, 0, 200);
            writer.finish();
            let dir = base.parent().unwrap();
            let mut names: Vec<String> = fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            names.sort();
            let expected: Vec<&str> = if compress {
                vec!["x-json.log", "x-json.log.1.gz", "x-json.log.2.gz"]
            } else {
                vec!["x-json.log", "x-json.log.1", "x-json.log.2"]
            };
            assert_eq!(names, expected);
            for name in &names {
                let plain = !name.ends_with(".gz");
                let len = fs::metadata(dir.join(name)).unwrap().len();
                assert!(!plain || len < 1000 + 200, "{name}: {len} bytes");
            }
            let all = logs_of(&base, 3, None);
            assert_eq!(
                all.last().unwrap(),
                &format!("line 00199 {}", "x".repeat(40))
            );
            let n = all.len();
            assert!((15..=40).contains(&n), "{n} lines kept");
            // Consecutive, ending at the last.
            for (i, l) in all.iter().enumerate() {
                assert!(l.starts_with(&format!("line {:05}", 200 - n + i)), "{l}");
            }
            for t in [0u64, 1, 2, 7, 20, 30, n as u64 - 1, n as u64, n as u64 + 5] {
                let tail = logs_of(&base, 3, Some(t));
                let want = all[n.saturating_sub(t as usize)..].to_vec();
                assert_eq!(tail, want, "tail {t} (compress {compress})");
            }
            let _ = fs::remove_dir_all(dir);
        }
    }

    #[test]
    fn one_file_is_started_afresh() {
        let base = scratch("single");
        let rotation = Rotation {
            max_size: Some(500),
            max_files: 1,
            compress: false,
        };
        let mut writer = LogWriter::new(base.clone(), None, rotation);
        write_lines(&mut writer, 0, 50);
        writer.finish();
        assert!(fs::metadata(&base).unwrap().len() < 500 + 200);
        assert!(!rotated_path(&base, 1).exists());
        assert_eq!(
            logs_of(&base, 1, Some(1)),
            vec![format!("line 00049 {}", "x".repeat(40))]
        );
        let _ = fs::remove_dir_all(base.parent().unwrap());
    }

    #[test]
    fn a_line_being_written_is_not_read_yet() {
        let base = scratch("partial");
        fs::write(
            &base,
            b"{\"log\":\"a\\n\",\"stream\":\"stdout\",\"time\":\"t\"}\n{\"log\":\"b",
        )
        .unwrap();
        assert_eq!(logs_of(&base, 1, Some(5)), vec!["a"]);
        assert_eq!(logs_of(&base, 1, None), vec!["a"]);
        assert_eq!(logs_of(&base, 1, Some(0)), Vec::<String>::new());
        let _ = fs::remove_dir_all(base.parent().unwrap());
    }

    #[test]
    fn the_follower_goes_through_rotations() {
        let base = scratch("follow");
        let rotation = Rotation {
            max_size: Some(300),
            max_files: 10,
            compress: false,
        };
        let mut writer = LogWriter::new(base.clone(), None, rotation);
        write_lines(&mut writer, 0, 1);
        let set = LogSet::open(&base, 10).unwrap();
        let mut seen = Vec::new();
        let mut follower = read_forward(set, (0, Skip::Bytes(0)), &mut |l| {
            seen.push(String::from_utf8_lossy(l).into_owned())
        })
        .unwrap()
        .unwrap();
        // Several rotations between two looks, but none that deletes an unread file.
        for round in 0..5 {
            write_lines(&mut writer, 1 + round * 8, 9 + round * 8);
            follower
                .drain(&base, 10, &mut |l| {
                    seen.push(String::from_utf8_lossy(l).into_owned())
                })
                .unwrap();
        }
        writer.finish();
        let logs: Vec<String> = seen
            .iter()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["log"].as_str().unwrap()[..10].to_string()
            })
            .collect();
        let want: Vec<String> = (0..41).map(|i| format!("line {i:05}")).collect();
        assert_eq!(logs, want);
        let _ = fs::remove_dir_all(base.parent().unwrap());
    }
}
