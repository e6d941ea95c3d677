// STUB
pub struct Request { pub(crate) raw: Vec<u8> }
impl Request {
    pub fn header(&self, _name: &str) -> Option<&str> { None }
    pub fn path(&self) -> &str { "/" }
    pub(crate) fn into_raw(self) -> Vec<u8> { self.raw }
    pub(crate) fn keep_alive(&self) -> bool { true }
    pub(crate) fn is_head(&self) -> bool { false }
    pub(crate) fn range_header(&self) -> Option<&str> { None }
}
pub(crate) fn take_buffer(min: usize) -> Vec<u8> { Vec::with_capacity(min) }
