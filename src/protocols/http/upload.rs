//! Streamed uploads: a `multipart/form-data` body larger than the upload threshold is not
//! buffered; it is read as it arrives, each file part written to a temporary file in the upload
//! directory and each plain field kept in memory (bounded by the maximum package size), so a
//! 1 GiB upload costs a constant amount of memory: one read buffer, one part head, one write
//! buffer.
//!
//! **Writing on the reactor thread.** The writes go to the page cache, as Workerman's do (PHP
//! writes its upload files synchronously too): a memory copy per read of the socket, the same
//! order of cost as the read itself. They wait only when the kernel throttles a writer whose
//! dirty pages outrun the disk, which is a disk slower than the network; an upload directory on
//! such a disk is a deployment to avoid (put it on local storage or a tmpfs).

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::protocols::http::error::HttpError;
use crate::protocols::http::form::{
    self, Form, MAX_FILE_UPLOADS, Pair, Span, TemporaryFile, Text, UploadedFile,
};
use crate::protocols::http::request::{Layout, Request};

/// A part head (its header lines) longer than this is malformed.
const MAX_PART_HEAD: usize = 16 * 1024;
/// Each file is written through a buffer of this size.
const WRITE_BUFFER: usize = 64 * 1024;

/// A request whose body is being streamed.
pub(crate) struct Upload {
    head: Vec<u8>,
    layout: Layout,
    /// Body bytes still to come.
    remaining: u64,
    multipart: MultipartStream,
}

impl Upload {
    /// `head` is the request head as received (`layout` describes it); `body_len` bytes of
    /// multipart body with this `boundary` follow.
    pub(crate) fn new(
        head: Vec<u8>,
        layout: Layout,
        body_len: u64,
        boundary: &str,
        directory: PathBuf,
        max_field_bytes: usize,
    ) -> Upload {
        Upload {
            head,
            layout,
            remaining: body_len,
            multipart: MultipartStream::new(boundary, directory, max_field_bytes),
        }
    }

    /// Takes the body bytes at the start of `data`: how many it took, and whether the body is
    /// now complete.
    pub(crate) fn feed(&mut self, data: &[u8]) -> Result<(usize, bool), HttpError> {
        let take = (data.len() as u64).min(self.remaining) as usize;
        self.multipart.feed(&data[..take])?;
        self.remaining -= take as u64;
        Ok((take, self.remaining == 0))
    }

    /// The request, its fields and files read (a part cut off by the end of the body is
    /// dropped, its temporary file removed).
    pub(crate) fn finish(self) -> Request {
        let head_len = self.head.len();
        let body = Span::new(head_len, head_len);
        Request::from_parts(self.head, self.layout, body, Span::default())
            .with_form(self.multipart.finish())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Before the first delimiter.
    Preamble,
    /// Just after a delimiter: `--` ends the body, CRLF starts a part.
    AfterDelimiter,
    /// Reading a part's head.
    Head,
    /// Reading a part's content, up to the next delimiter.
    Content,
    /// After the closing delimiter: the epilogue is ignored.
    End,
}

enum Part {
    Field { name: String, value: Vec<u8> },
    File(UploadedFile, Option<io::BufWriter<std::fs::File>>),
    Ignored,
}

/// A push parser of `multipart/form-data` that hands file contents to temporary files.
struct MultipartStream {
    /// `\r\n--boundary`.
    delimiter: Vec<u8>,
    /// Bytes received and not yet consumed: at most a part head, or a delimiter's length.
    pending: Vec<u8>,
    state: State,
    part: Option<Part>,
    form: Form,
    field_bytes: usize,
    max_field_bytes: usize,
    directory: PathBuf,
}

impl MultipartStream {
    fn new(boundary: &str, directory: PathBuf, max_field_bytes: usize) -> MultipartStream {
        let mut delimiter = b"\r\n--".to_vec();
        delimiter.extend_from_slice(boundary.as_bytes());
        MultipartStream {
            delimiter,
            // The first delimiter may open the body without a CRLF before it.
            pending: b"\r\n".to_vec(),
            state: State::Preamble,
            part: None,
            form: Form::default(),
            field_bytes: 0,
            max_field_bytes,
            directory,
        }
    }

    fn feed(&mut self, data: &[u8]) -> Result<(), HttpError> {
        if self.state == State::End {
            return Ok(());
        }
        let mut pending = std::mem::take(&mut self.pending);
        pending.extend_from_slice(data);
        let result = self.consume(&mut pending);
        self.pending = pending;
        result
    }

    /// Consumes what it can of `pending`, leaving what must wait for more bytes.
    fn consume(&mut self, pending: &mut Vec<u8>) -> Result<(), HttpError> {
        let mut start = 0;
        loop {
            let buffer = &pending[start..];
            match self.state {
                State::Preamble | State::Content => {
                    match form::find(buffer, &self.delimiter, 0) {
                        Some(at) => {
                            let taken = at + self.delimiter.len();
                            if self.state == State::Content {
                                self.write(&buffer[..at])?;
                                self.finish_part();
                            }
                            start += taken;
                            self.state = State::AfterDelimiter;
                        }
                        None => {
                            // A delimiter may begin in the last `len - 1` bytes: keep them.
                            let safe = buffer.len().saturating_sub(self.delimiter.len() - 1);
                            if self.state == State::Content && safe > 0 {
                                self.write(&buffer[..safe])?;
                            }
                            start += safe;
                            break;
                        }
                    }
                }
                State::AfterDelimiter => {
                    if buffer.len() < 2 {
                        break;
                    }
                    if buffer.starts_with(b"--") {
                        self.state = State::End;
                        start = pending.len();
                        break;
                    }
                    let padding = buffer
                        .iter()
                        .take_while(|&&b| b == b' ' || b == b'\t')
                        .count();
                    if padding > 64 {
                        return Err(malformed());
                    }
                    match buffer.get(padding..padding + 2) {
                        None => break,
                        Some(b"\r\n") => {
                            start += padding + 2;
                            self.state = State::Head;
                        }
                        Some(_) => return Err(malformed()),
                    }
                }
                State::Head => {
                    let end = if buffer.starts_with(b"\r\n") {
                        Some(2)
                    } else {
                        form::find(buffer, b"\r\n\r\n", 0).map(|at| at + 4)
                    };
                    let Some(end) = end else {
                        if buffer.len() > MAX_PART_HEAD {
                            return Err(HttpError::HeaderTooLarge);
                        }
                        break;
                    };
                    let head = form::part_head(&buffer[..end]).ok_or_else(malformed)?;
                    start += end;
                    self.start_part(head);
                    self.state = State::Content;
                }
                State::End => {
                    start = pending.len();
                    break;
                }
            }
        }
        pending.drain(..start);
        // What is left is a partial delimiter or part head, both bounded above.
        if pending.capacity() > 4 * WRITE_BUFFER {
            pending.shrink_to(2 * MAX_PART_HEAD);
        }
        Ok(())
    }

    fn start_part(&mut self, head: form::PartHead) {
        let Some(name) = head.name else {
            self.part = Some(Part::Ignored);
            return;
        };
        let Some(file_name) = head.file_name else {
            self.part = Some(Part::Field {
                name,
                value: Vec::new(),
            });
            return;
        };
        if self.form.files.len() >= MAX_FILE_UPLOADS {
            self.part = Some(Part::Ignored);
            return;
        }
        let mut file = UploadedFile::in_memory(name, file_name, head.content_type, Vec::new());
        let writer = match create_temporary(&self.directory) {
            Ok((path, handle)) => {
                file.temporary = Some(TemporaryFile {
                    path,
                    moved: std::cell::Cell::new(false),
                });
                Some(io::BufWriter::with_capacity(WRITE_BUFFER, handle))
            }
            Err(error) => {
                log::warn!(
                    "upload: no temporary file in {}: {error}",
                    self.directory.display()
                );
                file.error = UploadedFile::UPLOAD_ERR_CANT_WRITE;
                None
            }
        };
        self.part = Some(Part::File(file, writer));
    }

    fn write(&mut self, content: &[u8]) -> Result<(), HttpError> {
        match &mut self.part {
            Some(Part::Field { value, .. }) => {
                self.field_bytes += content.len();
                if self.field_bytes > self.max_field_bytes {
                    return Err(HttpError::PayloadTooLarge);
                }
                value.extend_from_slice(content);
            }
            Some(Part::File(file, writer)) => {
                file.size += content.len() as u64;
                if let Some(out) = writer {
                    if let Err(error) = out.write_all(content) {
                        log::warn!("upload: writing {:?}: {error}", file.tmp_name());
                        file.error = UploadedFile::UPLOAD_ERR_CANT_WRITE;
                        *writer = None;
                    }
                }
            }
            Some(Part::Ignored) | None => {}
        }
        Ok(())
    }

    fn finish_part(&mut self) {
        match self.part.take() {
            Some(Part::Field { name, value }) => {
                let value = String::from_utf8_lossy(&value).into_owned();
                self.form.fields.push(Pair {
                    name: Text::Owned(name.into()),
                    value: Text::Owned(value.into()),
                });
            }
            Some(Part::File(mut file, writer)) => {
                if let Some(Err(error)) = writer.map(|mut out| out.flush()) {
                    log::warn!("upload: writing {:?}: {error}", file.tmp_name());
                    file.error = UploadedFile::UPLOAD_ERR_CANT_WRITE;
                }
                self.form.files.push(file);
            }
            Some(Part::Ignored) | None => {}
        }
    }

    fn finish(self) -> Form {
        // A part still open was cut off by the end of the body: dropped with its file.
        self.form
    }
}

fn malformed() -> HttpError {
    HttpError::BadRequest("malformed multipart body")
}

/// A new file `workerman-upload-<random>` in `directory`, readable by its owner only.
fn create_temporary(directory: &Path) -> io::Result<(PathBuf, std::fs::File)> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut random = [0u8; 12];
    super::session::random_bytes(&mut random)?;
    let name: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let path = directory.join(format!("workerman-upload-{name}"));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    Ok((path, file))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn directory(test: &str) -> PathBuf {
        let directory =
            std::env::temp_dir().join(format!("wm-upload-unit-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&directory);
        std::fs::create_dir_all(&directory).unwrap();
        directory
    }

    const BODY: &[u8] = b"preamble\r\n--B\r\n\
        Content-Disposition: form-data; name=\"title\"\r\n\r\nhello\r\n\
        --B\r\nContent-Disposition: form-data; name=\"doc\"; filename=\"dir/a.txt\"\r\n\
        Content-Type: text/plain\r\n\r\nline one\r\n-B\r\n--not\r\nline two\r\n\
        --B\r\nContent-Disposition: form-data; name=\"empty\"; filename=\"\"\r\n\r\n\r\n\
        --B--\r\nepilogue";

    fn stream(directory: &Path, pieces: &[&[u8]]) -> Result<Form, HttpError> {
        let mut stream = MultipartStream::new("B", directory.to_path_buf(), 1024);
        for piece in pieces {
            stream.feed(piece)?;
        }
        Ok(stream.finish())
    }

    fn check(form: &Form) {
        assert_eq!(form.fields.len(), 1);
        let raw = &[][..];
        assert_eq!(form.fields[0].name.get(raw), "title");
        assert_eq!(form.fields[0].value.get(raw), "hello");
        assert_eq!(form.files.len(), 2);
        let doc = &form.files[0];
        assert_eq!(
            (doc.name(), doc.full_path(), doc.content_type()),
            ("doc", "dir/a.txt", "text/plain")
        );
        let expected = b"line one\r\n-B\r\n--not\r\nline two";
        assert_eq!(doc.size(), expected.len());
        assert_eq!(std::fs::read(doc.tmp_name().unwrap()).unwrap(), expected);
        assert_eq!(form.files[1].size(), 0);
        assert_eq!(form.files[1].error(), 0);
    }

    #[test]
    fn every_split_of_a_body_gives_the_same_form() {
        let directory = directory("split");
        for split in 0..BODY.len() {
            let form = stream(&directory, &[&BODY[..split], &BODY[split..]]).unwrap();
            check(&form);
        }
        let bytes: Vec<&[u8]> = BODY.chunks(1).collect();
        check(&stream(&directory, &bytes).unwrap());
        // Every temporary file went with its form.
        assert_eq!(std::fs::read_dir(&directory).unwrap().count(), 0);
        let _ = std::fs::remove_dir_all(&directory);
    }

    #[test]
    fn moved_files_stay_and_cut_off_parts_leave_nothing() {
        let directory = directory("move");
        let form = stream(&directory, &[BODY]).unwrap();
        let kept = directory.join("kept.txt");
        form.files[0].move_to(&kept).unwrap();
        assert!(form.files[0].move_to(directory.join("again")).is_err());
        drop(form);
        assert!(kept.exists());
        std::fs::remove_file(&kept).unwrap();
        let cut = &BODY[..BODY.len() - 30];
        let form = stream(&directory, &[cut]).unwrap();
        assert_eq!(form.files.len(), 1, "the cut-off part is not a file");
        drop(form);
        assert_eq!(std::fs::read_dir(&directory).unwrap().count(), 0);
        let _ = std::fs::remove_dir_all(&directory);
    }

    #[test]
    fn hostile_bodies_are_refused() {
        let directory = directory("hostile");
        let big_field = [
            b"--B\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\n".as_slice(),
            &[b'x'; 2000],
        ]
        .concat();
        assert_eq!(
            stream(&directory, &[&big_field]).err(),
            Some(HttpError::PayloadTooLarge)
        );
        let long_head = [b"--B\r\nX: ".as_slice(), &[b'h'; MAX_PART_HEAD + 10]].concat();
        assert_eq!(
            stream(&directory, &[&long_head]).err(),
            Some(HttpError::HeaderTooLarge)
        );
        assert!(stream(&directory, &[b"--B\r\nno colon here\r\n\r\nx"]).is_err());
        assert!(stream(&directory, &[b"--Bxx"]).is_err());
        assert_eq!(std::fs::read_dir(&directory).unwrap().count(), 0);
        let _ = std::fs::remove_dir_all(&directory);
    }
}
