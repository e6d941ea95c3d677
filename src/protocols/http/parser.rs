// STUB
use super::{HttpError, Request};
pub(crate) struct Limits { pub max_header_size: usize, pub max_package_size: usize }
#[derive(Default)]
pub(crate) struct RequestParser;
impl RequestParser {
    pub(crate) fn input(&mut self, buf: &[u8], _limits: &Limits) -> Result<Option<usize>, HttpError> {
        Ok(buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4))
    }
    pub(crate) fn head_complete(&self) -> bool { false }
    pub(crate) fn decode(&mut self, raw: Vec<u8>) -> Request { Request { raw } }
}
