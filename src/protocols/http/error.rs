// STUB (replaced by the request-codec helper)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpError { BadRequest(&'static str) }
impl HttpError {
    pub fn status(&self) -> u16 { 400 }
    pub(crate) fn response(&self) -> &'static [u8] { b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n" }
}
impl std::fmt::Display for HttpError { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { write!(f, "bad request") } }
